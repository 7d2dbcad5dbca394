"""Lockouts: who is locked out of self-service now, and the history of locks and unlocks."""

from __future__ import annotations

from datetime import datetime

from selfservice.admin.audit_log import AuditQuery, Cursor, Page, merged_page
from selfservice.audit.tags import Tag
from selfservice.security.lockout import LockoutService
from selfservice.security.models import Lockout

HISTORY_TAGS = (Tag.LOCKED, Tag.UNLOCKED)


def locked_now(lockout: LockoutService) -> list[Lockout]:
    """Accounts self-service refuses now (a lock in force or the day's cap), the longest-running lock last."""
    return lockout.currently_locked()


def find_locked(lockout: LockoutService, account_key: str) -> Lockout | None:
    """The lock row of ``account_key`` while self-service refuses it (an admin's unlock lifts both)."""
    return lockout.refusing(account_key)


def history(
    login: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Cursor | None = None,
) -> Page:
    """Locks and unlocks, newest first, optionally for one login and a time range."""
    queries = [AuditQuery(tags=(str(tag),), subject=login, since=since, until=until) for tag in HISTORY_TAGS]
    return merged_page(queries, cursor)
