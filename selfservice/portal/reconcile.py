"""The sweeper: settles password changes whose outcome was never recorded (invariant 15).

An intent stays open when the directory's answer was lost and the directory's record
could not settle it at once, or when the worker died mid-write. Once older than
``RECONCILE_AFTER_MINUTES`` (longer than any write can still be in flight), the
directory's own record of the password's last change settles it: changed means the
full consequences now (audit, notice to the holder, link used, request resolved);
unchanged gives the token or link back. The new password, held encrypted with the intent
for the sync targets, is released to the sync worker or deleted with it; one held past
``SYNC_HOLD_HOURS`` is given up and forgotten. Run by ``selfservice reconcile`` and by every
pass of the ``deliver-mail`` worker, so the notice goes out in the same pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from selfservice.directory import get_directory
from selfservice.directory.interfaces import Directory, DirectoryError
from selfservice.extensions import db
from selfservice.portal.models import PendingChange
from selfservice.portal.pending import OPEN_STATES, Outcome, settle_from_directory
from selfservice.security import Security, get_security
from selfservice.sync import get_sync
from selfservice.sync.services import expire_held
from selfservice.timeutil import utcnow

BATCH = 100


@dataclass
class Sweep:
    """How many open changes one sweep settled each way."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def summary(self) -> str:
        return ", ".join(f"{self.counts[outcome]} {outcome.value}" for outcome in Outcome)


def reconcile(
    directory: Directory, security: Security, *, older_than: timedelta, now: datetime | None = None
) -> Sweep:
    """Settle every open change started before ``now - older_than`` from the directory's record."""
    cutoff = (now or utcnow()) - older_than
    sweep = Sweep()
    for intent in _open_before(cutoff):
        try:
            outcome = settle_from_directory(directory, security, intent, settled_by="reconcile")
        except DirectoryError:
            outcome = Outcome.UNKNOWN  # the directory is away: the next sweep tries again
        sweep.counts[outcome] += 1
    hold = timedelta(hours=get_sync().config["SYNC_HOLD_HOURS"])
    expire_held((now or utcnow()) - hold)  # a password waits no longer for a release
    return sweep


def unsettled(limit: int = 200) -> list[PendingChange]:
    """Open changes, oldest first: what the admin page lists for staff to look at."""
    query = select(PendingChange).where(PendingChange.state.in_(OPEN_STATES)).order_by(PendingChange.id)
    return list(db.session.scalars(query.limit(limit)))


def _open_before(cutoff: datetime) -> list[PendingChange]:
    query = (
        select(PendingChange)
        .where(PendingChange.state.in_(OPEN_STATES), PendingChange.started_at <= cutoff)
        .order_by(PendingChange.id)
        .limit(BATCH)
    )
    return list(db.session.scalars(query))


def run_configured_sweep() -> Sweep:
    """One sweep with the app's directory, security services and RECONCILE_AFTER_MINUTES."""
    minutes = current_app.config["RECONCILE_AFTER_MINUTES"]
    return reconcile(get_directory(), get_security(), older_than=timedelta(minutes=minutes))
