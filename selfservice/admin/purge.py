"""Retention: delete what the portal no longer needs to keep, in batches, and say how much.

Audit events and rate-limit breach counts, delivered or abandoned mail and webhooks,
settled password sync writes, settled password-change intents, and closed or resolved
help requests older than the configured number of days go; queued mail, pending or held
sync writes, open intents and open requests stay whatever their age. The purge itself is
audited after the deletes, so it is never deleted by itself. The dashboard's counts of
audit events outlive the events (see selfservice.audit.counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, inspect, select

from selfservice.audit.models import AccountActivity, AuditEvent, StaffActivity
from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import purge_expired as purge_expired_sessions
from selfservice.extensions import db
from selfservice.mail.models import MailStatus, OutboxMessage
from selfservice.security.models import RateLimitBreach

BATCH = 10_000


@dataclass(frozen=True)
class Retention:
    audit_days: int
    mail_days: int
    requests_days: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **overrides: int | None) -> Retention:
        chosen = {
            "audit_days": settings["RETENTION_DAYS_AUDIT"],
            "mail_days": settings["RETENTION_DAYS_MAIL"],
            "requests_days": settings["RETENTION_DAYS_REQUESTS"],
        }
        chosen.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**chosen)


def purge(retention: Retention, *, now: datetime, actor: str, origin: Origin) -> dict[str, int]:
    """Delete what is older than ``retention``; returns the number of rows deleted per kind."""
    counts = {
        "audit_events": _purge_audit(now - timedelta(days=retention.audit_days)),
        "mail": _delete_in_batches(
            OutboxMessage.__table__,
            OutboxMessage.status.in_([MailStatus.SENT.value, MailStatus.FAILED.value]),
            OutboxMessage.created_at < now - timedelta(days=retention.mail_days),
        ),
        "webhooks": _purge_webhook_deliveries(now - timedelta(days=retention.mail_days)),
        "help_requests": _purge_help_requests(now - timedelta(days=retention.requests_days)),
        "expired_sessions": purge_expired_sessions(now),
        "sync_writes": _purge_sync_writes(now - timedelta(days=retention.mail_days)),
        "pending_changes": _purge_pending_changes(now - timedelta(days=retention.mail_days)),
        # Refusals are counted, not logged (invariant 14): these rows are their audit, keyed
        # by IP address or login, so they go when the audit events of the same age go.
        "rate_limit_breaches": _delete_in_batches(
            RateLimitBreach.__table__, RateLimitBreach.minute < now - timedelta(days=retention.audit_days)
        ),
    }
    record(
        Tag.RETENTION_PURGED,
        origin=origin,
        actor=actor,
        details={
            "deleted": counts,
            "days": {
                "audit": retention.audit_days,
                "mail": retention.mail_days,
                "requests": retention.requests_days,
            },
        },
    )
    return counts


def _delete_in_batches(
    table: Table, *conditions: ColumnElement[bool], children: tuple[Table, ...] = ()
) -> int:
    """Core DELETEs of at most BATCH rows each, committed one by one (short locks, bounded undo)."""
    key = table.primary_key.columns.values()[0]
    total = 0
    while True:
        ids = list(db.session.scalars(select(key).where(*conditions).limit(BATCH)))
        if not ids:
            return total
        for child in children:
            db.session.execute(delete(child).where(child.c.request_id.in_(ids)))
        db.session.execute(delete(table).where(key.in_(ids)))
        db.session.commit()
        total += len(ids)


def _purge_audit(cutoff: datetime) -> int:
    """Events before ``cutoff``, and the last-activity rows they alone account for.

    The quarter-hour counts stay (they name no one; the dashboard outlives the raw log).
    An (account, login) pair last seen before the cutoff has no event left after it, so
    coverage read from the activity tables still agrees with the events that remain.
    """
    deleted = _delete_in_batches(AuditEvent.__table__, AuditEvent.created_at < cutoff)
    db.session.execute(delete(AccountActivity).where(AccountActivity.last_seen_at < cutoff))
    db.session.execute(delete(StaffActivity).where(StaffActivity.last_acted_at < cutoff))
    db.session.commit()
    return deleted


def _purge_webhook_deliveries(cutoff: datetime) -> int:
    """Delivered or abandoned webhooks (they carry a copy of the request), as old as mail that went."""
    from selfservice.api.models import DeliveryStatus, WebhookDelivery

    return _delete_in_batches(
        WebhookDelivery.__table__,
        WebhookDelivery.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value]),
        WebhookDelivery.created_at < cutoff,
    )


def _purge_sync_writes(cutoff: datetime) -> int:
    """Sync writes settled (done, refused, given up...) before ``cutoff``: as old as mail that went."""
    from selfservice.sync.models import SyncStatus, SyncWrite

    return _delete_in_batches(
        SyncWrite.__table__,
        SyncWrite.status.not_in([SyncStatus.QUEUED.value, SyncStatus.HELD.value]),
        SyncWrite.settled_at.is_not(None),
        SyncWrite.settled_at < cutoff,
    )


def _purge_pending_changes(cutoff: datetime) -> int:
    """Password-change intents settled before ``cutoff`` (their audit event keeps what happened).

    Open intents stay whatever their age: the sweeper or staff still have to settle them.
    """
    from selfservice.portal.models import PendingChange

    return _delete_in_batches(
        PendingChange.__table__,
        PendingChange.state.in_(["changed", "not-changed"]),
        PendingChange.settled_at.is_not(None),
        PendingChange.settled_at < cutoff,
    )


def _purge_help_requests(cutoff: datetime) -> int:
    """Closed and resolved requests last touched before ``cutoff``, with their timelines and links."""
    try:
        from selfservice.helpdesk.models import HelpRequest, RequestEvent, ResetLink, Status
    except ImportError:
        return 0
    if not inspect(db.engine).has_table(HelpRequest.__tablename__):
        return 0
    finished = func.coalesce(HelpRequest.closed_at, HelpRequest.resolved_at, HelpRequest.updated_at)
    return _delete_in_batches(
        HelpRequest.__table__,
        HelpRequest.status.in_([Status.CLOSED.value, Status.RESOLVED.value]),
        finished < cutoff,
        children=(RequestEvent.__table__, ResetLink.__table__),
    )
