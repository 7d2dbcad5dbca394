"""Unlocking self-service for an account: the one path the help desk, the admin console and the CLI use."""

from __future__ import annotations

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, Directory
from selfservice.extensions import db
from selfservice.mail.notices import Notice, notify_account
from selfservice.security import Security


def unlock_account(
    directory: Directory, security: Security, account: Account, *, actor: str, origin: Origin
) -> bool:
    """Clear the self-service lock and failures (and any directory lockout); audit and notify.

    Returns True when a self-service lock was in force. The account can try again at once.
    """
    was_locked = security.lockout.clear(account.key)
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
