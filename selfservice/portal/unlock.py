"""Unlocking self-service for an account: the one path the help desk, the admin console and the CLI use."""

from __future__ import annotations

from typing import Any

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, Directory
from selfservice.extensions import db
from selfservice.i18n_markers import N_
from selfservice.mail.notices import Notice, notify_account
from selfservice.portal.passwords import AccountDisabled
from selfservice.security import Security

#: What staff are told when the account holder cannot be helped by an unlock.
DISABLED = N_(
    "An administrator disabled this account in the directory, so unlocking self-service cannot "
    "help: the account must be enabled again first. Ask a directory administrator."
)


def unlock_account(
    directory: Directory,
    security: Security,
    account: Account,
    *,
    actor: str,
    origin: Origin,
    only_if_locked: bool = False,
) -> bool:
    """Clear the self-service lock and failures (and any directory lockout); audit and notify.

    Returns True when a self-service lock was in force. The account can try again at once.
    ``only_if_locked`` does nothing (False) when no self-service lock is left to lift: the
    admin page's unlock, where another admin may have lifted it a moment before; the
    lift itself is one conditional UPDATE, so of two at once only one is recorded and told.
    Raises AccountDisabled, with nothing done, when an administrator disabled the account:
    its holder would be told to try again and could not (self-service refuses it).
    """
    if account.disabled_by_admin:
        refuse_unlock(account, actor=actor, origin=origin)
        raise AccountDisabled(f"{account.login} is disabled by an administrator")
    was_locked = security.lockout.clear(account.key)
    if only_if_locked and not was_locked:
        db.session.rollback()
        return False
    directory.unlock(account)
    record(
        Tag.UNLOCKED,
        origin=origin,
        actor=actor,
        subject=account.login,
        subject_key=account.key,
        details={"was_locked": was_locked},
        commit=False,
    )
    notify_account(account, Notice.UNLOCKED, commit=False)
    db.session.commit()
    return was_locked


def refuse_unlock(account: Account, *, actor: str, origin: Origin, **details: Any) -> None:
    """Record that an unlock was refused because an administrator disabled the account (invariant 12)."""
    record(
        Tag.UNLOCK_REFUSED,
        outcome="refused",
        origin=origin,
        actor=actor,
        subject=account.login,
        subject_key=account.key,
        details={"reason": "disabled-by-admin", **details},
    )
