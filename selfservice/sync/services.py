"""Queueing a changed password for every sync target, and what operators do with the queue.

Invariant 7 holds here too: the password is stored only encrypted, only in queued rows,
and set to NULL in the same update that settles a row. It is never logged or audited.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from selfservice.audit.services import SYSTEM, Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, DirectoryError
from selfservice.doctor import Finding, fail, ok, warn
from selfservice.extensions import db
from selfservice.sync import Sync
from selfservice.sync.models import SyncStatus, SyncWrite
from selfservice.sync.targets import Target, build_adapter, target_settings
from selfservice.timeutil import utcnow

#: Settled rows an operator should look at.
PROBLEMS = (SyncStatus.MISSING, SyncStatus.REFUSED, SyncStatus.FAILED, SyncStatus.GIVEN_UP)


def queue_sync(
    sync: Sync,
    account: Account,
    new_password: str,
    *,
    how: str,
    must_change: bool,
    origin: Origin,
    held_for: int | None = None,
) -> list[SyncWrite]:
    """Queue ``new_password`` for every target; the caller commits with the primary's change.

    Older queued writes of the same account are superseded: a slow target must never
    end up with an older password than the one the person set last. With ``held_for``
    (the intent of a change not made yet) the rows are held instead, untouched by the
    worker, until :func:`release_held` or :func:`drop_held` settles them with the intent.
    """
    if not sync.targets:
        return []
    change_id = uuid.uuid4().hex
    now = utcnow()
    status = SyncStatus.QUEUED if held_for is None else SyncStatus.HELD
    rows = []
    for target in sync.targets:
        if held_for is None:
            _supersede(account.key, target.name, now)
        row = SyncWrite(
            change_id=change_id,
            pending_change_id=held_for,
            target=target.name,
            account_key=account.key,
            account_login=account.login,
            lookups=target.lookups(account),
            how=str(how),
            must_change=target.wants_must_change(must_change),
            secret=sync.cipher.encrypt(new_password),
            status=status.value,
            attempts=0,
            next_attempt_at=now,
        )
        db.session.add(row)
        rows.append(row)
    if held_for is None:
        _record_queued(
            account.login, account.key, change_id, [target.name for target in sync.targets], origin
        )
    return rows


def release_held(intent_id: int, *, origin: Origin) -> int:
    """The change of ``intent_id`` was made: its held writes become due (the caller commits).

    Called only by whoever won the intent's settle (one conditional UPDATE), and itself a
    conditional UPDATE on ``held``: two sweepers or a sweeper and the live request never
    release a change twice. How many writes were released.
    """
    held = db.session.execute(
        sa.select(SyncWrite.change_id, SyncWrite.target, SyncWrite.account_login, SyncWrite.account_key)
        .where(SyncWrite.pending_change_id == intent_id, SyncWrite.status == SyncStatus.HELD.value)
        .order_by(SyncWrite.id)
    ).all()
    if not held:
        return 0
    # Older queued writes of the account are superseded by the worker (a newer row exists);
    # a newer change already queued supersedes these in turn. A released write is queued
    # now ("Queued" on the sync page): the promise of SYNC_PROMISE_MINUTES starts here, not
    # when it was held, so a change the sweeper confirms late is not overdue at once.
    now = utcnow()
    released = db.session.execute(
        sa.update(SyncWrite)
        .where(SyncWrite.pending_change_id == intent_id, SyncWrite.status == SyncStatus.HELD.value)
        .values(status=SyncStatus.QUEUED.value, next_attempt_at=now, created_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    change_id, _, login, key = held[0]
    _record_queued(login, key, change_id, [row.target for row in held], origin)
    return int(released)


def drop_held(intent_id: int) -> int:
    """The change of ``intent_id`` was not made: its held writes and their password go (caller commits)."""
    result = db.session.execute(
        sa.delete(SyncWrite)
        .where(SyncWrite.pending_change_id == intent_id, SyncWrite.status == SyncStatus.HELD.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def expire_held(before: datetime, *, actor: str = "reconcile") -> int:
    """Give up held writes created before ``before`` (SYNC_HOLD_HOURS): their password is forgotten.

    A change still unsettled that long is for staff (the admin page lists it); a password
    must not wait in the database for a release that may never come.
    """
    old = db.session.scalars(
        sa.select(SyncWrite).where(SyncWrite.status == SyncStatus.HELD.value, SyncWrite.created_at < before)
    ).all()
    now = utcnow()
    for row in old:
        gone = db.session.execute(
            sa.update(SyncWrite)
            .where(SyncWrite.id == row.id, SyncWrite.status == SyncStatus.HELD.value)
            .values(
                status=SyncStatus.GIVEN_UP.value,
                secret=None,
                settled_at=now,
                last_error="held past SYNC_HOLD_HOURS: the primary change was never confirmed",
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if gone:
            record(
                Tag.SYNC_GIVEN_UP,
                actor=actor,
                subject=row.account_login,
                subject_key=row.account_key,
                details={"target": row.target, "write": row.id, "reason": "held-too-long"},
                commit=False,
            )
    db.session.commit()
    return len(old)


def _record_queued(login: str, key: str, change_id: str, targets: list[str], origin: Origin) -> None:
    record(
        Tag.SYNC_QUEUED,
        origin=origin,
        actor=login,
        subject=login,
        subject_key=key,
        details={"change": change_id, "targets": targets},
        commit=False,
    )


def _supersede(account_key: str, target: str, now: datetime) -> None:
    db.session.execute(
        sa.update(SyncWrite)
        .where(
            SyncWrite.account_key == account_key,
            SyncWrite.target == target,
            SyncWrite.status == SyncStatus.QUEUED.value,
        )
        .values(status=SyncStatus.SUPERSEDED.value, secret=None, settled_at=now, last_error=None)
        .execution_options(synchronize_session=False)
    )


# --- what operators see -------------------------------------------------------------------


@dataclass
class TargetState:
    """One target's queue at a glance."""

    name: str
    label: str
    kind: str
    counts: Counter[str] = field(default_factory=Counter)
    oldest_queued: datetime | None = None
    overdue: int = 0

    @property
    def pending(self) -> int:
        return self.counts[SyncStatus.QUEUED.value]

    @property
    def problems(self) -> int:
        return sum(self.counts[status.value] for status in PROBLEMS)


def target_states(sync: Sync, *, overdue_before: datetime | None = None) -> list[TargetState]:
    """Counts per status for every configured target (and any target still in the queue).

    ``overdue`` counts the pending writes queued before ``overdue_before``: later than
    the person was told (SYNC_PROMISE_MINUTES).
    """
    states = {target.name: TargetState(target.name, target.label, target.kind) for target in sync.targets}
    rows = db.session.execute(
        sa.select(SyncWrite.target, SyncWrite.status, sa.func.count(), sa.func.min(SyncWrite.created_at))
        .group_by(SyncWrite.target, SyncWrite.status)
        .order_by(SyncWrite.target)
    )
    for name, status, count, oldest in rows:
        state = states.setdefault(name, TargetState(name, name, "?"))
        state.counts[status] = count
        if status == SyncStatus.QUEUED.value:
            state.oldest_queued = oldest
    if overdue_before is not None:
        late = db.session.execute(
            sa.select(SyncWrite.target, sa.func.count())
            .where(SyncWrite.status == SyncStatus.QUEUED.value, SyncWrite.created_at < overdue_before)
            .group_by(SyncWrite.target)
        )
        for name, count in late:
            states[name].overdue = count
    return list(states.values())


def writes(
    *, statuses: tuple[SyncStatus, ...], target: str | None = None, limit: int = 100
) -> list[SyncWrite]:
    """The newest rows in ``statuses`` (of one target when given)."""
    query = sa.select(SyncWrite).where(SyncWrite.status.in_([status.value for status in statuses]))
    if target:
        query = query.where(SyncWrite.target == target)
    return list(db.session.scalars(query.order_by(SyncWrite.id.desc()).limit(limit)))


def retry_now(
    *,
    target: str | None = None,
    write_id: int | None = None,
    actor: str | None = None,
    origin: Origin = SYSTEM,
) -> int:
    """Make queued writes due now (after a target came back); how many were."""
    query = sa.update(SyncWrite).where(SyncWrite.status == SyncStatus.QUEUED.value)
    if target:
        query = query.where(SyncWrite.target == target)
    if write_id is not None:
        query = query.where(SyncWrite.id == write_id)
    result = db.session.execute(
        query.values(next_attempt_at=utcnow()).execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    record(
        Tag.SYNC_RETRIED,
        origin=origin,
        actor=actor,
        details={"target": target or "*", "write": write_id, "count": count},
        commit=False,
    )
    db.session.commit()
    return count


def give_up(write_id: int, *, actor: str | None, origin: Origin = SYSTEM) -> SyncWrite | None:
    """Stop trying one queued write and forget its password; None when it is not queued."""
    row = db.session.get(SyncWrite, write_id)
    if row is None or row.status != SyncStatus.QUEUED.value:
        return None
    done = db.session.execute(
        sa.update(SyncWrite)
        .where(SyncWrite.id == write_id, SyncWrite.status == SyncStatus.QUEUED.value)
        .values(
            status=SyncStatus.GIVEN_UP.value,
            secret=None,
            settled_at=utcnow(),
            claimed_by=None,
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        return None
    record(
        Tag.SYNC_GIVEN_UP,
        origin=origin,
        actor=actor,
        subject=row.account_login,
        subject_key=row.account_key,
        details={"target": row.target, "write": write_id},
        commit=False,
    )
    db.session.commit()
    db.session.refresh(row)
    return row


def check_targets(sync: Sync, config: Mapping[str, Any]) -> list[Finding]:
    """For `selfservice check`: each target answers its service account, or why not."""
    findings = []
    for target in sync.targets:
        directory = build_adapter(target, config)
        try:
            directory.ping()
            findings.append(ok(f"sync target {target.name}", "its service account binds and reads"))
        except DirectoryError as exc:
            findings.append(
                fail(f"sync target {target.name}", str(exc) or type(exc).__name__, "SYNC_TARGETS")
            )
        finally:
            close = getattr(directory, "close", None)
            if close is not None:
                close()
        findings.extend(_transport_findings(target, target_settings(target, config)))
    return findings


def _transport_findings(target: Target, settings: Mapping[str, Any]) -> list[Finding]:
    """A target gets every new password: say so when they cross in clear or to an unchecked server."""
    if target.kind != "openldap":  # builtin: the portal's database; AD: refused in clear (the ping fails)
        return []
    check = f"sync target {target.name}"
    if not (str(settings["LDAP_URL"]).strip().lower().startswith("ldaps://") or settings["LDAP_START_TLS"]):
        return [warn(check, "not encrypted: passwords cross the network in clear", "SYNC_TARGETS")]
    if not settings["LDAP_VALIDATE_CERT"]:
        return [warn(check, "encrypted, but the certificate is NOT verified", "SYNC_TARGETS")]
    return []
