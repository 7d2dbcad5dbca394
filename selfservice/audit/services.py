"""The one place that writes audit events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db

#: Keys whose values never reach an audit row, whatever a caller passes.
SECRET_KEYS = ("password", "answer", "token", "code", "pin", "secret")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the network address and the browser's own words."""

    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Origin(ip=None, user_agent="selfservice-cli")


def record(
    tag: Tag,
    *,
    outcome: str = "success",
    origin: Origin = SYSTEM,
    actor: str | None = None,
    subject: str | None = None,
    subject_key: str | None = None,
    details: Mapping[str, Any] | None = None,
    commit: bool = True,
) -> AuditEvent:
    """Append one audit event; secrets in ``details`` are redacted by key."""
    event = AuditEvent(
        tag=str(tag),
        outcome=outcome,
        actor=actor,
        subject=subject,
        subject_key=subject_key,
        ip=origin.ip,
        user_agent=(origin.user_agent or "")[:300] or None,
        details=redact(details or {}),
    )
    db.session.add(event)
    if commit:
        db.session.commit()
    return event


def redact(details: Mapping[str, Any]) -> dict[str, Any]:
    """Copy ``details`` with the value of any secret-sounding key replaced."""
    return {
        key: REDACTED if any(word in key.lower() for word in SECRET_KEYS) else value
        for key, value in details.items()
    }
