"""The sync worker: claim due writes, apply each to its target, record what happened.

Writes are leased as the mail outbox's messages are (selfservice/queues.py), so two workers
or two hosts never both hold a row. The directory write happens outside any transaction;
its outcome is committed right after.

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

A lock the write must leave in place (``unlock = false``, or an administrator's lock) is
read and committed on the row before the first write that may lift it (ppolicy lifts any
lock on a reset), with the target's password stamp: the attempt that settles a write whose
reply was lost finds the lock gone and puts back the one recorded (see _lock_before).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

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
from selfservice.queues import ERROR_CHARS, LeasedQueue, QueueRules
from selfservice.sync import Sync
from selfservice.sync.crypto import Undecryptable
from selfservice.sync.models import SyncStatus, SyncWrite
from selfservice.sync.targets import NoSingleMatch, Target, build_adapter, find_in_target
from selfservice.timeutil import utcnow
from selfservice.workers import Stop, StopFlag, run_passes

log = logging.getLogger(__name__)


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
    lock_before: dict[str, Any] | None = None

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
            dict(row.lock_before) if row.lock_before else None,
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

    def worth_reporting(self) -> bool:
        return bool(self.handled)

    def summary(self) -> str:
        always = [("done", "done"), ("queued", "retry later")]
        sometimes = [(name, name) for name in ("missing", "refused", "failed", "superseded", "released")]
        shown = always + [(key, name) for key, name in sometimes if self.counts.get(key)]
        return ", ".join(f"{name} {self.counts.get(key, 0)}" for key, name in shown)


# --- claiming ------------------------------------------------------------------------------

WRITES = LeasedQueue(SyncWrite)


def claim_due(worker: str, now: datetime, rules: QueueRules) -> list[Claimed]:
    """Lease up to a batch of due writes to ``worker``; empty only when none is left."""
    return WRITES.claim(worker, now, rules, Claimed.of)


# --- applying one write ----------------------------------------------------------------------


class Outcome(Exception):
    """How an attempt ended, when not with the password written."""

    def __init__(self, status: SyncStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def apply_write(
    write: Claimed, target: Target | None, directory: Directory | None, sync: Sync, *, worker: str
) -> str:
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
        kept_lock = _lock_before(write, worker, directory, account, unlock=target.unlock)
        _write_password(directory, account, password, write.must_change, unlock=target.unlock)
        if kept_lock:  # an attempt whose reply was lost lifted it, and the adapter could not know
            directory.restore_lock(account, kept_lock)
    except NoSingleMatch as exc:
        raise Outcome(SyncStatus.MISSING, str(exc)) from exc
    except PasswordRejected as exc:
        raise Outcome(SyncStatus.REFUSED, exc.reason) from exc
    except (DirectoryUnavailable, OutcomeUnknown) as exc:
        raise Outcome(SyncStatus.QUEUED, str(exc) or "the target did not answer") from exc
    except (DirectoryError, LookupError) as exc:
        raise Outcome(SyncStatus.REFUSED, f"{type(exc).__name__}: {exc}") from exc
    if target.unlock:
        _unlock(directory, account, write)
    return account.key


def _lock_before(
    write: Claimed, worker: str, directory: Directory, account: Account, *, unlock: bool
) -> str | None:
    """The lock the write must leave in place, as the target had it before this change's first write.

    Read and made durable (with the target's password stamp) before a write is sent, so an
    attempt after a lost reply or a dead worker, which finds the lock already lifted by the
    write that landed, still knows it. Read afresh while the stamp says no write landed since.
    """
    recorded = write.lock_before
    if recorded is not None:
        stamp = directory.password_stamp(account)
        if stamp is None or stamp != recorded.get("stamp"):  # a write landed (or cannot tell): keep it
            return str(recorded["lock"])
    lock = directory.lock_to_keep(account, unlock=unlock)
    if lock is None and recorded is None:
        return None
    state = {"lock": lock, "stamp": directory.password_stamp(account)} if lock else None
    held = WRITES.update(WRITES.held_by(write.id, worker), lock_before=state)
    db.session.commit()
    if not held:
        raise Outcome(SyncStatus.QUEUED, "the lease lapsed before the password was written")
    return lock


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
    WRITES.finish(
        write.id,
        status.value,
        attempts=write.attempts + 1,
        secret=None,
        settled_at=now,
        last_error=error[:ERROR_CHARS] if error else None,
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


def _defer(write: Claimed, worker: str, error: str, now: datetime, rules: QueueRules) -> SyncStatus:
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
    held = WRITES.retry(write.id, worker, attempts, error, now, rules)
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
    rules = QueueRules.from_config(config, "SYNC")
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
    rules: QueueRules,
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
            WRITES.release((write.id for write in batch[index:]), worker)
            result.add("released", len(batch) - index)
            return
        result.add(_apply_one(write, config, sync, rules, worker, now, adapters, down))


def _apply_one(
    write: Claimed,
    config: Mapping[str, Any],
    sync: Sync,
    rules: QueueRules,
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
        key = apply_write(write, target, directory, sync, worker=worker)
    except Outcome as outcome:
        return _record_outcome(write, worker, outcome, now, rules, down)
    except Exception as exc:  # an adapter bug must count an attempt, not loop the row forever
        log.exception("sync write %s to %s: unexpected error", write.id, write.target)
        return _defer(write, worker, f"unexpected error: {type(exc).__name__}", now, rules)
    _settle(write, worker, SyncStatus.DONE, now, None, Tag.SYNC_APPLIED, {"target_key": key})
    log.info("sync write %s applied to %s", write.id, write.target)
    return SyncStatus.DONE


def _record_outcome(
    write: Claimed, worker: str, outcome: Outcome, now: datetime, rules: QueueRules, down: dict[str, str]
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
    return run_passes(
        lambda: sync_due(config, sync, worker=worker, stop=stop),
        SyncPassResult,
        name="sync",
        stop=stop,
        poll_seconds=poll_seconds,
        max_seconds=max_seconds,
        report=report,
    )
