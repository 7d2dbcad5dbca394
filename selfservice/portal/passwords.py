"""Setting a new password: the one path every flow takes (change, recovery, help-desk link).

Policy first, then a durable intent (:mod:`selfservice.portal.pending`), then the
directory, then the consequences in one transaction: every token of the account void
(invariant 6), self-service failures cleared, an audit event (invariant 12) and a notice
to the address on file (invariant 11). A token or link is claimed with the intent and
spent only when the change is known to have happened (invariant 15). The password
itself goes only to the directory, and, with sync targets, to the database encrypted with
the settings' key (held with the intent for the targets): never in plain text to the
database, a log, an audit row or a mail (invariant 7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import (
    Account,
    Directory,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    OutcomeUnknown,
    PasswordRejected,
)
from selfservice.extensions import db
from selfservice.portal import pending
from selfservice.portal.models import PendingChange
from selfservice.portal.pending import How, Outcome
from selfservice.security import Security
from selfservice.security.passwords import check_password, raised_to
from selfservice.security.tokens import Purpose
from selfservice.sync import get_sync
from selfservice.sync.policy import problems as directory_problems

__all__ = [
    "AccountDisabled",
    "ChangeUnconfirmed",
    "How",
    "NewPassword",
    "PolicyViolation",
    "Spend",
    "apply_new_password",
    "refuse_if_disabled",
]

log = logging.getLogger(__name__)


class PolicyViolation(Exception):
    """The new password is not acceptable; ``problems`` are user-facing messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class AccountDisabled(Exception):
    """An administrator disabled the account: no flow gives it a password (nothing was written).

    Only an administrator enables it again; a reset would not let the holder sign in (AD)
    or would undo the administrator's decision (OpenLDAP ppolicy lifts any lock on a reset).
    """


class ChangeUnconfirmed(Exception):
    """The write was sent, no answer came, and the directory could not tell yet.

    The intent stays open for the sweeper; its token or link stays claimed until then.
    """


@dataclass(frozen=True)
class NewPassword:
    password: str
    confirm: str


@dataclass(frozen=True)
class Spend:
    """The one-time token (recovery token or help-desk link) a change uses up."""

    token: str
    purpose: Purpose
    request_id: int | None = None


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
    spend: Spend | None = None,
) -> None:
    """Check ``new``, commit the intent (claiming ``spend``), write, settle.

    Raises AccountDisabled, PolicyViolation or InvalidCredentials (nothing changed, token still good),
    DirectoryUnavailable (nothing changed, token still good), ChangeUnconfirmed, or
    TokenRefused when ``spend`` is no longer live.
    """
    refuse_if_disabled(account, how, origin)
    ensure_acceptable(security, account, new)
    intent_id = _open(directory, security, account, how, origin, must_change, spend, new.password)
    try:
        _write(directory, account, new.password, how, current_password, must_change)
    except (PasswordRejected, InvalidCredentials, DirectoryUnavailable) as exc:
        pending.abandon(intent_id, reason=type(exc).__name__, settled_by="write")
        _record_failure(account, how, origin, exc)
        if isinstance(exc, PasswordRejected):
            raise PolicyViolation([exc.reason]) from exc
        raise
    except DisabledByAdmin as exc:  # disabled since the request read the account: nothing written
        pending.abandon(intent_id, reason=AccountDisabled.__name__, settled_by="write")
        refused = AccountDisabled(f"{account.login} is disabled by an administrator")
        _record_failure(account, how, origin, refused)
        raise refused from exc
    except OutcomeUnknown as exc:
        _settle_unanswered(directory, security, account, how, origin, intent_id, new.password, exc)
        return
    _complete_after_write(directory, security, account, intent_id)


def _open(
    directory: Directory,
    security: Security,
    account: Account,
    how: How,
    origin: Origin,
    must_change: bool,
    spend: Spend | None,
    password: str,
) -> int:
    """Claim the token and commit the intent in one transaction, before anything is sent.

    With sync targets the password is held with it, encrypted, until the change is settled.
    """
    intent = pending.open_intent(
        directory,
        account,
        how=how,
        origin=origin,
        must_change=must_change,
        request_id=spend.request_id if spend else None,
        sync_password=password if get_sync().targets else None,
    )
    if spend is not None:  # atomic: of two racing submits exactly one claims it
        with db.session.no_autoflush:  # the intent is inserted once, with its nonce
            intent.token_nonce = security.tokens.consume(spend.token, spend.purpose, commit=False).nonce
    db.session.flush()
    intent_id = intent.id  # read before the commit expires it: no second read
    db.session.commit()
    return intent_id


def _settle_unanswered(
    directory: Directory,
    security: Security,
    account: Account,
    how: How,
    origin: Origin,
    intent_id: int,
    password: str,
    error: OutcomeUnknown,
) -> None:
    """No answer to the write: ask the directory's own record before telling the person anything."""
    log.warning("directory: no answer to a password write (change %s): %s", intent_id, error)
    pending.mark_unknown(intent_id, str(error))
    intent = db.session.get(PendingChange, intent_id, populate_existing=True)
    if intent is None:  # committed before the write; only the retention purge deletes intents
        raise RuntimeError(f"change {intent_id} vanished while its write was in doubt")
    try:
        outcome = pending.settle_from_directory(
            directory,
            security,
            intent,
            settled_by="write",
            new_password_works=lambda holder: directory.authenticate(holder.login, password) is not None,
        )
    except SQLAlchemyError as exc:  # the database went too: the sweeper settles it later
        db.session.rollback()
        log.error("database: could not settle password change %s: %s", intent_id, type(exc).__name__)
        raise ChangeUnconfirmed(str(error)) from exc
    if outcome is Outcome.CHANGED:
        return
    if outcome is Outcome.NOT_CHANGED:
        _record_failure(account, how, origin, error)
        raise DirectoryUnavailable("the directory did not apply the password write") from error
    record(
        Tag.PASSWORD_CHANGE_UNCONFIRMED,
        outcome="unknown",
        origin=origin,
        actor=account.login,
        subject=account.login,
        subject_key=account.key,
        details={"how": how.value, "change": intent_id},
    )
    raise ChangeUnconfirmed(str(error)) from error


def _complete_after_write(directory: Directory, security: Security, account: Account, intent_id: int) -> None:
    """The directory said yes: that is what the person is told, even if recording it must wait."""
    try:
        pending.complete(directory, security, intent_id, account, settled_by="write")
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error(
            "database: password changed in the directory but not recorded yet (change %s, %s); "
            "`selfservice reconcile` will record it",
            intent_id,
            type(exc).__name__,
        )


def refuse_if_disabled(account: Account, how: How, origin: Origin) -> None:
    """Raise AccountDisabled, audited, when an administrator disabled ``account``.

    ``account`` is read from the directory in the caller's request. A failure lock
    (``disabled`` alone) is no refusal: a reset is how self-service ends it.
    """
    if account.disabled_by_admin:
        refused = AccountDisabled(f"{account.login} is disabled by an administrator")
        _record_failure(account, how, origin, refused)
        raise refused


def _record_failure(account: Account, how: How, origin: Origin, exc: Exception) -> None:
    refused = isinstance(exc, PasswordRejected | InvalidCredentials | AccountDisabled)
    record(
        Tag.PASSWORD_CHANGE_FAILED,
        outcome="refused" if refused else "error",
        origin=origin,
        actor=account.login,
        subject=account.login,
        subject_key=account.key,
        details={"how": how.value, "reason": type(exc).__name__},
    )


def ensure_acceptable(security: Security, account: Account, new: NewPassword) -> None:
    """Raise PolicyViolation unless ``new`` passes the password policy for ``account``.

    Flows that spend a one-time token call this first, so a typo never burns the token.
    """
    # The directory's rules for this account (AD: its PSO, else the domain's) and every sync target's.
    rules = security.directory_password_rules(account)
    problems = check_password(
        new.password,
        raised_to(security.password_policy, rules),
        login=account.login,
        display_name=account.display_name,
        confirm=new.confirm,
    )
    problems += [
        problem for problem in directory_problems(new.password, rules, account) if problem not in problems
    ]
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
        directory.set_password(account, password, must_change=must_change, refuse_disabled=True)
