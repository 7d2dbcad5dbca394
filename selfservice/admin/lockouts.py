"""Lockouts: who is locked out of self-service now, and the history of locks and unlocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from selfservice.admin.audit_log import AuditQuery, Cursor, Page, merged_page
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.security.lockout import LockoutService
from selfservice.security.models import Lockout
from selfservice.timeutil import utcnow

HISTORY_TAGS = (Tag.LOCKED, Tag.UNLOCKED)


def locked_now() -> list[Lockout]:
    """Accounts whose self-service lock is in force, the longest-running lock last."""
    return LockoutService.currently_locked()


def find_locked(account_key: str) -> Lockout | None:
    """The lock row of ``account_key`` while its lock is in force."""
    return db.session.scalar(
        select(Lockout).where(Lockout.account_key == account_key, Lockout.locked_until > utcnow())
    )


def history(
    login: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Cursor | None = None,
) -> Page:
    """Locks and unlocks, newest first, optionally for one login and a time range."""
    queries = [AuditQuery(tags=(str(tag),), subject=login, since=since, until=until) for tag in HISTORY_TAGS]
    return merged_page(queries, cursor)
