"""The sync worker: claim due writes, apply each to its target, record what happened.

Claims work as in the mail outbox (selfservice/mail/delivery.py): ``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL, then a conditional UPDATE per row takes a lease whose row
count says which worker won, so two workers or two hosts never both hold a row. The
directory write happens outside any transaction; its outcome is committed right after.

Outcomes per target:

* written -> ``done``; the encrypted password is set to NULL in that same update.
* no matching account -> ``missing``; refused by the target's policy -> ``refused``:
  reported (audit, admin page) and never retried, since a retry would get the same answer.
* target unreachable, or the write sent and left unanswered (the target may or may not
  have it) -> queued again after a backoff; ``failed`` after SYNC_MAX_ATTEMPTS.

A write is tried again whenever its outcome is unknown: a lost reply, or a worker that
dies between the target accepting the password and the database recording it (once its
lease lapses another worker takes the row). Writing the same password again is harmless
(an administrative reset); a target that refuses it as already its current password
(OpenLDAP's ppolicy: PasswordUnchanged) has it, and the write is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from selfservice.audit.services import record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import (
    Account,
    Directory,
    DirectoryError,
    DirectoryUnavailable,
    OutcomeUnknown,
    PasswordRejected,
    PasswordUnchanged,
)
from selfservice.extensions import db
from selfservice.sync import Sync
from selfservice.sync.crypto import Undecryptable
from selfservice.sync.models import SyncStatus, SyncWrite
from selfservice.sync.targets import Target, build_adapter, find_in_target
from selfservice.timeutil import utcnow
from selfservice.workers import Stop, StopFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncRules:
    max_attempts: int
    retry_base_seconds: int
    retry_max_seconds: int
    batch_size: int
    claim_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SyncRules:
        return cls(
            max_attempts=max(1, config["SYNC_MAX_ATTEMPTS"]),
            retry_base_seconds=max(0, config["SYNC_RETRY_BASE_SECONDS"]),
            retry_max_seconds=max(0, config["SYNC_RETRY_MAX_SECONDS"]),
            batch_size=max(1, config["SYNC_BATCH_SIZE"]),
            claim_seconds=max(1, config["SYNC_CLAIM_SECONDS"]),
        )

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff: base, 2 x base, 4 x base ... capped at the maximum."""
        seconds = self.retry_base_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.retry_max_seconds))


@dataclass(frozen=True)
class Claimed:
    """What a worker read of one write in the claim transaction."""

    id: int
    target: str
    account_key: str
    account_login: str
    lookups: dict[str, str]
    must_change: bool
    secret: str | None
    attempts: int

    @classmethod
    def of(cls, row: SyncWrite) -> Claimed:
        return cls(
            row.id,
            row.target,
            row.account_key,
            row.account_login,
            dict(row.lookups or {}),
            row.must_change,
            row.secret,
            row.attempts,
        )


@dataclass
class SyncPassResult:
    """What one pass over the queue did, by outcome."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: SyncStatus | str, count: int = 1) -> None:
        key = str(status)
        self.counts[key] = self.counts.get(key, 0) + count

    def merge(self, other: SyncPassResult) -> None:
        for key, count in other.counts.items():
            self.add(key, count)

    @property
    def handled(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        always = [("done", "done"), ("queued", "retry later")]
        sometimes = [(name, name) for name in ("missing", "refused", "failed", "superseded", "released")]
        shown = always + [(key, name) for key, name in sometimes if self.counts.get(key)]
        return ", ".join(f"{name} {self.counts.get(key, 0)}" for key, name in shown)


# --- claiming ------------------------------------------------------------------------------


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        SyncWrite.status == SyncStatus.QUEUED.value,
        SyncWrite.next_attempt_at <= now,
        sa.or_(SyncWrite.claimed_until.is_(None), SyncWrite.claimed_until < now),
    )


def claim_due(worker: str, now: datetime, rules: SyncRules) -> list[Claimed]:
    """Lease up to a batch of due writes to ``worker``; empty only when none is left."""
    while candidates := _candidates(now, rules):
        until = now + timedelta(seconds=rules.claim_seconds)
        won = [
            write_id
            for write_id in candidates
            if _update(sa.and_(SyncWrite.id == write_id, _due(now)), claimed_by=worker, claimed_until=until)
        ]
        rows = db.session.scalars(
            sa.select(SyncWrite)
            .where(SyncWrite.id.in_(won))
            .order_by(SyncWrite.id)
            .execution_options(populate_existing=True)
        ).all()
        claimed = [Claimed.of(row) for row in rows]
        db.session.commit()
        if claimed:
            return claimed
    db.session.commit()
    return []


def _candidates(now: datetime, rules: SyncRules) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(SyncWrite.id)
            .where(_due(now))
            .order_by(SyncWrite.next_attempt_at, SyncWrite.id)
            .limit(rules.batch_size)
            .with_for_update(skip_locked=True)
        )
    )


def _update(condition: sa.ColumnElement[bool], **values: Any) -> bool:
    result = db.session.execute(
        sa.update(SyncWrite).where(condition).values(**values).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# --- applying one write ----------------------------------------------------------------------


class Outcome(Exception):
    """How an attempt ended, when not with the password written."""

    def __init__(self, status: SyncStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def apply_write(write: Claimed, target: Target | None, directory: Directory | None, sync: Sync) -> str:
    """Write the password to the target; the target's account key, or raise Outcome."""
    if target is None or directory is None:
        raise Outcome(SyncStatus.FAILED, "the target is no longer configured")
    if write.secret is None:
        raise Outcome(SyncStatus.FAILED, "the password is no longer held")
    try:
        password = sync.cipher.decrypt(write.secret)
    except Undecryptable as exc:
        raise Outcome(SyncStatus.FAILED, str(exc)) from exc
    try:
        account = find_in_target(directory, write.lookups)
        if account is None:
            fields = ", ".join(write.lookups) or "none of the match fields has a value"
            raise Outcome(SyncStatus.MISSING, f"no account in the target matches ({fields})")
        _write_password(directory, account, password, write.must_change, unlock=target.unlock)
    except PasswordRejected as exc:
        raise Outcome(SyncStatus.REFUSED, exc.reason) from exc
    except (DirectoryUnavailable, OutcomeUnknown) as exc:
        raise Outcome(SyncStatus.QUEUED, str(exc) or "the target did not answer") from exc
    except (DirectoryError, LookupError) as exc:
        raise Outcome(SyncStatus.REFUSED, f"{type(exc).__name__}: {exc}") from exc
    if target.unlock:
        _unlock(directory, account, write)
    return account.key


def _write_password(
    directory: Directory, account: Account, password: str, must_change: bool, *, unlock: bool
) -> None:
    try:
        directory.set_password(account, password, must_change=must_change, unlock=unlock)
    except PasswordUnchanged:
        # The target already has it: an earlier attempt whose reply was lost wrote it. Only
        # the flag that attempt never got to may be missing.
        directory.set_must_change(account, must_change)


def _unlock(directory: Directory, account: Any, write: Claimed) -> None:
    # The password is already written: a lockout left in place is worth a warning, not a retry.
    try:
        directory.unlock(account)
    except DirectoryError as exc:
        log.warning("sync write %s: password set but unlock failed: %s", write.id, type(exc).__name__)


# --- recording outcomes ------------------------------------------------------------------------


def _settle(
    write: Claimed,
    worker: str,
    status: SyncStatus,
    now: datetime,
    error: str | None,
    tag: Tag | None,
    details: dict[str, Any],
) -> None:
    # The audit event is written for what the worker did, even when its lease had lapsed:
    # an operator must see a second write to a target if one ever happens.
    _update(
        sa.and_(SyncWrite.id == write.id, SyncWrite.status == SyncStatus.QUEUED.value),
        status=status.value,
        attempts=write.attempts + 1,
        secret=None,
        settled_at=now,
        last_error=error[:500] if error else None,
        claimed_by=None,
        claimed_until=None,
    )
    if tag is not None:
        record(
            tag,
            outcome="success" if status is SyncStatus.DONE else "failure",
            actor=worker,
            subject=write.account_login,
            subject_key=write.account_key,
            details={"target": write.target, "write": write.id, **details},
            commit=False,
        )
    db.session.commit()


def _defer(write: Claimed, worker: str, error: str, now: datetime, rules: SyncRules) -> SyncStatus:
    attempts = write.attempts + 1
    if attempts >= rules.max_attempts:
        _settle(
            write,
            worker,
            SyncStatus.FAILED,
            now,
            error,
            Tag.SYNC_FAILED,
            {"reason": error[:200], "attempts": attempts},
        )
        return SyncStatus.FAILED
    held = _update(
        sa.and_(SyncWrite.id == write.id, SyncWrite.claimed_by == worker),
        attempts=attempts,
        next_attempt_at=now + rules.retry_delay(attempts),
        last_error=error[:500],
        claimed_by=None,
        claimed_until=None,
    )
    if attempts == 1:  # the first failure is news; the rest are on the admin page
        record(
            Tag.SYNC_DEFERRED,
            outcome="failure",
            actor=worker,
            subject=write.account_login,
            subject_key=write.account_key,
            details={"target": write.target, "write": write.id, "reason": error[:200]},
            commit=False,
        )
    db.session.commit()
    if not held:
        log.warning("sync write %s: lease lapsed before its failure was recorded", write.id)
    return SyncStatus.QUEUED


def _superseded(write: Claimed) -> bool:
    """Whether a newer change of the same account for the same target exists."""
    newer = db.session.scalar(
        sa.select(sa.func.count()).where(
            SyncWrite.account_key == write.account_key,
            SyncWrite.target == write.target,
            SyncWrite.id > write.id,
            # A held write is a change not known to be made: it may still be dropped.
            SyncWrite.status != SyncStatus.HELD.value,
        )
    )
    db.session.commit()
    return bool(newer)


def release(writes: list[Claimed], worker: str) -> None:
    """Give back leases on writes this worker will not try (stopping, lease nearly over)."""
    for write in writes:
        _update(
            sa.and_(SyncWrite.id == write.id, SyncWrite.claimed_by == worker),
            claimed_by=None,
            claimed_until=None,
        )
    db.session.commit()


# --- one pass ----------------------------------------------------------------------------------


def sync_due(
    config: Mapping[str, Any],
    sync: Sync,
    *,
    worker: str,
    now: datetime | None = None,
    stop: Stop | None = None,
) -> SyncPassResult:
    """One pass: apply every write due at ``now``, batch by batch, until none is left."""
    rules = SyncRules.from_config(config)
    now = now or utcnow()
    result = SyncPassResult()
    adapters: dict[str, Directory] = {}
    down: dict[str, str] = {}  # targets that did not answer in this pass: skip their other writes
    try:
        while not (stop and stop.is_set()):
            batch = claim_due(worker, now, rules)
            if not batch:
                break
            _apply_batch(batch, config, sync, rules, worker, now, result, stop, adapters, down)
    finally:
        for directory in adapters.values():
            close = getattr(directory, "close", None)
            if close is not None:
                close()
    return result


def _apply_batch(
    batch: list[Claimed],
    config: Mapping[str, Any],
    sync: Sync,
    rules: SyncRules,
    worker: str,
    now: datetime,
    result: SyncPassResult,
    stop: Stop | None,
    adapters: dict[str, Directory],
    down: dict[str, str],
) -> None:
    deadline = time.monotonic() + rules.claim_seconds / 2
    for index, write in enumerate(batch):
        if (stop and stop.is_set()) or time.monotonic() > deadline:
            release(batch[index:], worker)
            result.add("released", len(batch) - index)
            return
        result.add(_apply_one(write, config, sync, rules, worker, now, adapters, down))


def _apply_one(
    write: Claimed,
    config: Mapping[str, Any],
    sync: Sync,
    rules: SyncRules,
    worker: str,
    now: datetime,
    adapters: dict[str, Directory],
    down: dict[str, str],
) -> SyncStatus:
    if _superseded(write):
        _settle(write, worker, SyncStatus.SUPERSEDED, now, None, None, {})
        return SyncStatus.SUPERSEDED
    if write.target in down:
        return _defer(write, worker, down[write.target], now, rules)
    target = sync.target(write.target)
    directory = _adapter(target, config, adapters)
    try:
        key = apply_write(write, target, directory, sync)
    except Outcome as outcome:
        return _record_outcome(write, worker, outcome, now, rules, down)
    except Exception as exc:  # an adapter bug must count an attempt, not loop the row forever
        log.exception("sync write %s to %s: unexpected error", write.id, write.target)
        return _defer(write, worker, f"unexpected error: {type(exc).__name__}", now, rules)
    _settle(write, worker, SyncStatus.DONE, now, None, Tag.SYNC_APPLIED, {"target_key": key})
    log.info("sync write %s applied to %s", write.id, write.target)
    return SyncStatus.DONE


def _record_outcome(
    write: Claimed, worker: str, outcome: Outcome, now: datetime, rules: SyncRules, down: dict[str, str]
) -> SyncStatus:
    log.warning("sync write %s to %s: %s (%s)", write.id, write.target, outcome.status, outcome.reason)
    if outcome.status is SyncStatus.QUEUED:
        down[write.target] = outcome.reason
        return _defer(write, worker, outcome.reason, now, rules)
    tag = {SyncStatus.MISSING: Tag.SYNC_MISSING, SyncStatus.REFUSED: Tag.SYNC_REFUSED}.get(
        outcome.status, Tag.SYNC_FAILED
    )
    _settle(write, worker, outcome.status, now, outcome.reason, tag, {"reason": outcome.reason[:200]})
    return outcome.status


def _adapter(
    target: Target | None, config: Mapping[str, Any], adapters: dict[str, Directory]
) -> Directory | None:
    if target is None:
        return None
    if target.name not in adapters:
        adapters[target.name] = build_adapter(target, config)
    return adapters[target.name]


# --- the long-running worker -------------------------------------------------------------------


def run_worker(
    config: Mapping[str, Any],
    sync: Sync,
    *,
    worker: str,
    stop: StopFlag,
    poll_seconds: float,
    max_seconds: float | None = None,
    report: Callable[[SyncPassResult], None] = lambda result: None,
) -> SyncPassResult:
    """Pass after pass until ``stop`` is set (or ``max_seconds`` passed); the totals."""
    started = time.monotonic()
    totals = SyncPassResult()
    while not stop.is_set():
        try:
            result = sync_due(config, sync, worker=worker, stop=stop)
        except OperationalError as exc:  # the database is away: try again at the next poll
            db.session.rollback()
            log.warning("sync worker: database unavailable: %s", exc.orig)
            result = SyncPassResult()
        totals.merge(result)
        if result.handled:
            report(result)
        left = poll_seconds
        if max_seconds is not None:
            left = min(left, max_seconds - (time.monotonic() - started))
            if left <= 0:
                break
        stop.wait(left)
    return totals
