"""The sync queue: one row per password change and target."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from selfservice.dbtypes import BigId, UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow


class SyncStatus(StrEnum):
    QUEUED = "queued"  # waiting for the worker (maybe after a failed attempt)
    DONE = "done"  # the target has the new password
    MISSING = "missing"  # no account in the target matches: reported, not retried
    REFUSED = "refused"  # the target's policy refused the password: reported, not retried
    FAILED = "failed"  # the target stayed unreachable through every attempt
    GIVEN_UP = "given-up"  # an operator gave up on it
    SUPERSEDED = "superseded"  # a newer change of the same account replaced it
    HELD = "held"  # waiting for the primary change to be settled: never applied while held

    @property
    def settled(self) -> bool:
        return self not in (SyncStatus.QUEUED, SyncStatus.HELD)


class SyncWrite(db.Model):
    """One target's copy of one password change.

    ``secret`` is the new password encrypted (selfservice/sync/crypto.py); it is set to
    NULL in the same update that settles the row, so no password outlives its delivery.
    A row ``held`` for a change whose outcome is not known yet (``pending_change_id``, the
    intent) is released to ``queued`` when the change is settled as made, deleted when not.
    """

    __tablename__ = "sync_write"
    __table_args__ = (
        Index("ix_sync_write_status_next", "status", "next_attempt_at"),
        Index("ix_sync_write_account_target", "account_key", "target"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # When the write was queued (a held write: when it was held, then its release).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    change_id: Mapped[str] = mapped_column(String(32), index=True)
    pending_change_id: Mapped[int | None] = mapped_column(BigId, index=True)
    target: Mapped[str] = mapped_column(String(32))
    account_key: Mapped[str] = mapped_column(String(64))
    account_login: Mapped[str] = mapped_column(String(256))
    lookups: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    how: Mapped[str] = mapped_column(String(16))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    # The target's lock that this write must leave in place, and the target's password stamp,
    # both read before the first attempt that found a lock (NULL: no lock found yet). Kept
    # so an attempt after a lost reply, which finds the lock already lifted, puts it back.
    lock_before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secret: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The sync worker's lease, as in the mail outbox: a crashed worker's claim lapses.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
