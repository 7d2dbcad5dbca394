"""Audit events: one row per security decision, append-only from the app's side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from selfservice.dbtypes import BigId, UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_tag_created", "tag", "created_at"),
        Index("ix_audit_event_subject_created", "subject", "created_at"),
        Index("ix_audit_event_actor_created", "actor", "created_at"),
        Index("ix_audit_event_ip_created", "ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    tag: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(128))
    subject_key: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditCount(db.Model):
    """Audit events counted per (tag, quarter hour UTC, kind), kept by the writer (selfservice.audit.counts).

    Quarter hours, not hours: every time zone in use today is a whole number of quarter
    hours from UTC, so local days and local hours are exact sums of buckets in any of them.
    """

    __tablename__ = "audit_count"

    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The start of the quarter hour (UTC) the events fall in.
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    #: The event's ``details["how"]`` (a reset through the questions or a help-desk link), or "".
    kind: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    count: Mapped[int] = mapped_column(Integer, default=0)


class AccountActivity(db.Model):
    """When an account was last the subject of its holder's own event (sign-in, reset, enrollment...)."""

    __tablename__ = "account_activity"

    subject_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The login the event named ("" when none): a key seen under a staff login is not a holder.
    subject: Mapped[str] = mapped_column(String(128), primary_key=True, default="")
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StaffActivity(db.Model):
    """When a login last acted in an event only staff act in (help requests, unlocks, questions)."""

    __tablename__ = "staff_activity"

    actor: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_acted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditTampering(RuntimeError):
    """Something tried to change or delete an audit event through the ORM."""


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, flush_context: object, instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent):
            raise AuditTampering("audit events are append-only")
