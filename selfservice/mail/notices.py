"""Security notices to an account's address on file (invariant 11), always through the outbox.

Notices never carry a password or an answer: they say what happened, when, and what
to do if it wasn't the account holder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale

from selfservice.directory.interfaces import Account
from selfservice.i18n import _
from selfservice.mail.languages import language_of
from selfservice.mail.models import OutboxMessage
from selfservice.mail.services import queue_mail
from selfservice.timeutil import utcnow


class Notice(StrEnum):
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    ACCOUNT_ACTIVATED = "account_activated"
    ENROLLMENT_SAVED = "enrollment_saved"
    ENROLLMENT_CLEARED = "enrollment_cleared"
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    SECOND_FACTOR_ON = "second_factor_on"
    SECOND_FACTOR_RESET = "second_factor_reset"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    REPEATED_FAILURES = "repeated_failures"


def _subjects() -> dict[Notice, str]:
    return {
        Notice.PASSWORD_CHANGED: _("Your password was changed"),
        Notice.PASSWORD_RESET: _("Your password was reset"),
        Notice.ACCOUNT_ACTIVATED: _("Your Parent Portal account is active"),
        Notice.ENROLLMENT_SAVED: _("Your security questions were updated"),
        Notice.ENROLLMENT_CLEARED: _("Your security questions were cleared"),
        Notice.LOCKED: _("Password self-service is locked for your account"),
        Notice.UNLOCKED: _("Password self-service is unlocked for your account"),
        Notice.SECOND_FACTOR_ON: _("A second factor was set up for your account"),
        Notice.SECOND_FACTOR_RESET: _("The second factor of your account was reset"),
        Notice.SIGN_IN_THROTTLED: _("Many wrong passwords were tried for your account"),
        Notice.REPEATED_FAILURES: _("Many wrong answers were tried for your account today"),
    }


def compose(template: str, **context: Any) -> str:
    """Render ``templates/mail/<template>.txt`` for the body of a message."""
    return render_template(f"mail/{template}.txt", **context)


@contextmanager
def in_language_of(account_key: str | None) -> Iterator[str]:
    """Write a mail in the language the account chose (else the district's), whoever sends it."""
    config = current_app.config
    language = language_of(account_key, config["LANGUAGES"], config["DEFAULT_LANGUAGE"])
    with force_locale(language):
        yield language


def notify_account(
    account: Account, notice: Notice, *, commit: bool = True, **context: Any
) -> OutboxMessage | None:
    """Queue ``notice`` to the account's address on file; None when there is none."""
    if not account.email:
        return None
    with in_language_of(account.key):
        body = compose(str(notice), account=account, when=utcnow(), **context)
        subject = _subjects()[notice]
        return queue_mail(account.email, subject, body, purpose=f"notice:{notice}", commit=commit)
