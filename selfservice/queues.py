"""Durable queues worked by several workers at once: the mail outbox, sync writes, webhooks.

Each queue is a table whose rows carry ``status``, ``attempts``, ``next_attempt_at``,
``last_error`` and a lease (``claimed_by``, ``claimed_until``). A worker claims a batch in
one short transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks rows no other worker
holds (PostgreSQL; SQLite has no row locks and ignores it), then a conditional UPDATE per
row takes the lease and its row count says who won, which is all SQLite needs since it
serialises writers. The work happens outside any transaction and its outcome is committed
right after. A crashed worker's lease lapses and another worker picks the row up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from selfservice.extensions import db

QUEUED = "queued"
#: How much of an error a row keeps.
ERROR_CHARS = 500
Row = TypeVar("Row")
Read = TypeVar("Read")


@dataclass(frozen=True)
class QueueRules:
    """How a queue is worked: attempts, backoff, batch and lease (``<PREFIX>_*`` settings)."""

    max_attempts: int
    retry_base_seconds: int
    retry_max_seconds: int
    batch_size: int
    claim_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str) -> QueueRules:
        """``MAIL``, ``SYNC`` or ``WEBHOOK``: that queue's ``<prefix>_MAX_ATTEMPTS`` and the rest."""
        return cls(
            max_attempts=max(1, config[f"{prefix}_MAX_ATTEMPTS"]),
            retry_base_seconds=max(0, config[f"{prefix}_RETRY_BASE_SECONDS"]),
            retry_max_seconds=max(0, config[f"{prefix}_RETRY_MAX_SECONDS"]),
            batch_size=max(1, config[f"{prefix}_BATCH_SIZE"]),
            claim_seconds=max(1, config[f"{prefix}_CLAIM_SECONDS"]),
        )

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff: base, 2 x base, 4 x base ... capped at the maximum."""
        seconds = self.retry_base_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.retry_max_seconds))


class LeasedQueue(Generic[Row]):
    """The rows of one queue table, leased to one worker at a time."""

    def __init__(self, model: type[Row]) -> None:
        self.model: Any = model

    def due(self, now: datetime) -> sa.ColumnElement[bool]:
        """Queued, its time come, and no live lease on it."""
        model = self.model
        return sa.and_(
            model.status == QUEUED,
            model.next_attempt_at <= now,
            sa.or_(model.claimed_until.is_(None), model.claimed_until < now),
        )

    def claim(self, worker: str, now: datetime, rules: QueueRules, read: Callable[[Row], Read]) -> list[Read]:
        """Lease up to a batch of due rows to ``worker``, each as ``read`` saw it; empty when none is left."""
        model = self.model
        while candidates := self._candidates(now, rules):
            until = now + timedelta(seconds=rules.claim_seconds)
            won = [
                row_id
                for row_id in candidates
                if self.update(
                    sa.and_(model.id == row_id, self.due(now)), claimed_by=worker, claimed_until=until
                )
            ]
            rows = db.session.scalars(
                sa.select(model)
                .where(model.id.in_(won))
                .order_by(model.id)
                .execution_options(populate_existing=True)
            ).all()
            claimed = [read(row) for row in rows]
            db.session.commit()
            if claimed:
                return claimed
            # Another worker won every row we saw (SQLite: no SKIP LOCKED); look again.
        db.session.commit()
        return []

    def finish(self, row_id: int, status: str, **values: Any) -> bool:
        """Settle a row for good (not committed), whatever became of the lease.

        The work is done (a relay or a target has it), so it must never be tried again,
        even when a slow attempt outlived its lease: only a row still queued is changed.
        """
        model = self.model
        return self.update(
            sa.and_(model.id == row_id, model.status == QUEUED),
            status=status,
            claimed_by=None,
            claimed_until=None,
            **values,
        )

    def retry(
        self,
        row_id: int,
        worker: str,
        attempts: int,
        error: str,
        now: datetime,
        rules: QueueRules,
        **values: Any,
    ) -> bool:
        """Count a failed attempt and free the row for another after the backoff (not committed).

        Only while ``worker`` still holds the lease: False when it had lapsed.
        """
        return self.update(
            self.held_by(row_id, worker),
            attempts=attempts,
            next_attempt_at=now + rules.retry_delay(attempts),
            last_error=error[:ERROR_CHARS],
            claimed_by=None,
            claimed_until=None,
            **values,
        )

    def release(self, row_ids: Iterable[int], worker: str) -> None:
        """Give back leases on rows this worker will not try (stopping, lease nearly over)."""
        for row_id in row_ids:
            self.update(self.held_by(row_id, worker), claimed_by=None, claimed_until=None)
        db.session.commit()

    def held_by(self, row_id: int, worker: str) -> sa.ColumnElement[bool]:
        return sa.and_(self.model.id == row_id, self.model.claimed_by == worker)

    def update(self, condition: sa.ColumnElement[bool], **values: Any) -> bool:
        """Update the one row matching ``condition``; False when no row matched any more."""
        result = db.session.execute(
            sa.update(self.model)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def _candidates(self, now: datetime, rules: QueueRules) -> list[int]:
        model = self.model
        return list(
            db.session.scalars(
                sa.select(model.id)
                .where(self.due(now))
                .order_by(model.next_attempt_at, model.id)
                .limit(rules.batch_size)
                .with_for_update(skip_locked=True)
            )
        )
