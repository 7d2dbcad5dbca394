"""Setting a new password: the one path every flow takes (change, recovery, help-desk link).

Policy first, then the directory, then the consequences: every token of the account
void (invariant 6), self-service failures cleared, an audit event (invariant 12) and a
notice to the address on file (invariant 11). The password itself goes only to the
directory: never to the database, a log, an audit row or a mail (invariant 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import end_sessions
from selfservice.directory.interfaces import Account, Directory, InvalidCredentials, PasswordRejected
from selfservice.extensions import db
from selfservice.mail.notices import Notice, notify_account
from selfservice.security import Security
from selfservice.security.passwords import check_password


class How(StrEnum):
    CHANGE = "change"  # the account holder, knowing the current password
    RECOVERY = "recovery"  # after answering the challenge questions
    ASSISTED = "assisted"  # through a help-desk reset link


class PolicyViolation(Exception):
    """The new password is not acceptable; ``problems`` are user-facing messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewPassword:
    password: str
    confirm: str


def apply_new_password(
    directory: Directory,
    security: Security,
    account: Account,
    new: NewPassword,
    *,
    how: How,
    origin: Origin,
    current_password: str | None = None,
    must_change: bool = False,
) -> None:
    """Check ``new`` against the policy and write it; raise PolicyViolation or InvalidCredentials."""
    ensure_acceptable(security, account, new)
    try:
        _write(directory, account, new.password, how, current_password, must_change)
    except (PasswordRejected, InvalidCredentials) as exc:
        record(
            Tag.PASSWORD_CHANGE_FAILED,
            outcome="refused",
            origin=origin,
            actor=account.login,
            subject=account.login,
            subject_key=account.key,
            details={"how": how.value, "reason": type(exc).__name__},
        )
        if isinstance(exc, PasswordRejected):
            raise PolicyViolation([exc.reason]) from exc
        raise
    _after_change(security, account, how, origin)


def ensure_acceptable(security: Security, account: Account, new: NewPassword) -> None:
    """Raise PolicyViolation unless ``new`` passes the password policy for ``account``.

    Flows that spend a one-time token call this first, so a typo never burns the token.
    """
    problems = check_password(
        new.password,
        security.password_policy,
        login=account.login,
        display_name=account.display_name,
        confirm=new.confirm,
    )
    if problems:
        raise PolicyViolation(problems)


def _write(
    directory: Directory,
    account: Account,
    password: str,
    how: How,
    current_password: str | None,
    must_change: bool,
) -> None:
    if how is How.CHANGE:
        directory.change_password(account, current_password or "", password)
    else:
        directory.set_password(account, password, must_change=must_change)


def _after_change(security: Security, account: Account, how: How, origin: Origin) -> None:
    security.tokens.void_all(account.key)
    end_sessions(account.key, commit=False)  # every signed-in browser of the account (invariant 17)
    security.lockout.clear(account.key)
    tag = Tag.PASSWORD_CHANGED if how is How.CHANGE else Tag.PASSWORD_RESET
    record(
        tag,
        origin=origin,
        actor=account.login,
        subject=account.login,
        subject_key=account.key,
        details={"how": how.value},
        commit=False,
    )
    notify_account(
        account, Notice.PASSWORD_CHANGED if how is How.CHANGE else Notice.PASSWORD_RESET, commit=False
    )
    db.session.commit()
