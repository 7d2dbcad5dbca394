"""Talking to the mail relay: settings, one SMTP session per batch, and what its answers mean."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from enum import StrEnum
from typing import Any

from selfservice.config import ConfigError

SECURITY_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    timeout_seconds: int
    mail_from: str
    ca_file: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        security = str(config["SMTP_SECURITY"]).lower()
        if security not in SECURITY_MODES:
            raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, got {security!r}")
        if not parseaddr(config["MAIL_FROM"])[1]:
            raise ConfigError(f"MAIL_FROM is not an email address: {config['MAIL_FROM']!r}")
        return cls(
            host=config["SMTP_HOST"],
            port=config["SMTP_PORT"],
            security=security,
            username=config["SMTP_USERNAME"],
            password=config["SMTP_PASSWORD"],
            timeout_seconds=config["SMTP_TIMEOUT_SECONDS"],
            mail_from=config["MAIL_FROM"],
            ca_file=config["SMTP_CA_FILE"],
        )

    @property
    def envelope_from(self) -> str:
        return parseaddr(self.mail_from)[1]


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    REFUSED = "refused"
    RELAY_DOWN = "relay-down"


class UnsupportedAddress(ValueError):
    """The relay is up but cannot take this message's address (an international one, no SMTPUTF8)."""


class Relay:
    """One SMTP session for a batch, opened on first use."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, email: EmailMessage, to_address: str) -> None:
        if self._smtp is None:
            self._smtp = connect(self.settings)
        try:
            self._smtp.send_message(email, from_addr=self.settings.envelope_from, to_addrs=[to_address])
        except smtplib.SMTPNotSupportedError as exc:
            # Raised before MAIL FROM when an address needs SMTPUTF8 and the relay lacks it:
            # this message cannot go, the relay and the session are fine for the others.
            raise UnsupportedAddress(str(exc)) from exc

    def attempt(self, email: EmailMessage, to_address: str) -> tuple[Outcome, str]:
        """Send one message; the outcome and, unless sent, the error as it may be recorded."""
        try:
            self.send(email, to_address)
        except smtplib.SMTPRecipientsRefused as exc:
            permanent = all(code >= 500 for code, _ in exc.recipients.values())
            return (Outcome.REFUSED if permanent else Outcome.RETRY), describe(exc, self.settings)
        except smtplib.SMTPDataError as exc:
            refused = exc.smtp_code >= 500
            return (Outcome.REFUSED if refused else Outcome.RETRY), describe(exc, self.settings)
        except smtplib.SMTPSenderRefused as exc:  # the relay's rule about MAIL_FROM, not this message
            return Outcome.RETRY, describe(exc, self.settings)
        except (smtplib.SMTPException, OSError) as exc:  # before ValueError: certificate errors are both
            return Outcome.RELAY_DOWN, describe(exc, self.settings)
        except ValueError as exc:  # e.g. an address the relay cannot take (no SMTPUTF8)
            return Outcome.REFUSED, describe(exc, self.settings)
        return Outcome.SENT, ""

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Open, secure and log in to the relay; TLS never falls back to plain text."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout_seconds, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    try:
        if settings.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password)
    except (smtplib.SMTPException, OSError):
        smtp.close()
        raise
    return smtp


def describe(exc: BaseException, settings: SmtpSettings) -> str:
    """The error as recorded and logged: never the SMTP password, in any encoding."""
    text = f"{type(exc).__name__}: {exc}"
    for secret in _password_forms(settings):
        text = text.replace(secret, "********")
    return text[:500]


def _password_forms(settings: SmtpSettings) -> list[str]:
    if not settings.password:
        return []
    raw = [settings.password, f"\0{settings.username}\0{settings.password}"]
    encoded = [base64.b64encode(value.encode()).decode() for value in raw]
    return sorted({settings.password, *encoded}, key=len, reverse=True)
