"""Audit events: one row per security decision, append-only from the app's side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, event
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


class AuditTampering(RuntimeError):
    """Something tried to change or delete an audit event through the ORM."""


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, flush_context: object, instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent):
            raise AuditTampering("audit events are append-only")
