"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, and helpers around it."""

from __future__ import annotations

import asyncio
import email
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from selfservice.workers import worker_name
from tests.scratch import free_port

RELAY_USER = "portal-relay"
RELAY_PASSWORD = "Relay-S3cret-pass-7781"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    authenticated: bool

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else None


class Mailbox:
    """The aiosmtpd handler: accepts everything except recipients named refused@ / busy@."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.delay_seconds = 0.0

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ):
        local = address.partition("@")[0]
        if local == "refused":
            return "550 5.1.1 No such user here"
        if local == "busy":
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        message = email.message_from_bytes(envelope.original_content or b"", policy=default_policy)
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,  # type: ignore[arg-type]
            over_tls=server.transport.get_extra_info("ssl_object") is not None,
            authenticated=bool(session.authenticated),
        )
        with self._lock:
            self.received.append(received)
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(item.message["Message-ID"] for item in self.received)

    def subjects(self) -> Counter[str]:
        with self._lock:
            return Counter(item.message["Subject"] for item in self.received)


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == RELAY_USER
        and data.password.decode() == RELAY_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """An aiosmtpd server on a fixed loopback port that can be stopped and started again."""

    def __init__(
        self,
        *,
        tls: Path | None = None,
        implicit_tls: bool = False,
        auth: bool = False,
        smtputf8: bool = True,
    ) -> None:
        self.port = free_port()
        self._smtputf8 = smtputf8
        self.mailbox = Mailbox()
        self._tls = tls
        self._implicit_tls = implicit_tls
        self._auth = auth
        self._controller: Controller | None = None

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings for an app that delivers to this server."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port, "SMTP_TIMEOUT_SECONDS": 5, **extra}

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        context = self._server_context()
        if context and self._implicit_tls:
            kwargs["ssl_context"] = context
        elif context:
            kwargs.update(tls_context=context, require_starttls=True)
        if self._auth:
            # aiosmtpd only counts STARTTLS as TLS for AUTH (and warns when requiring AUTH without
            # it); an implicit-TLS session is encrypted from the start, so AUTH is offered there too.
            plain = not self._implicit_tls
            kwargs.update(authenticator=_authenticate, auth_required=plain, auth_require_tls=plain)
        self._controller = Controller(
            self.mailbox, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self._smtputf8, **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _server_context(self) -> ssl.SSLContext | None:
        if self._tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._tls / "cert.pem", self._tls / "key.pem")
        return context


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server, running."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ascii_smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server that does not offer SMTPUTF8 (many relays do not)."""
    server = SmtpServer(smtputf8=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stopped_smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server whose port nobody listens on until the test calls start()."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder


@pytest.fixture
def worker() -> str:
    return worker_name()
