"""Queueing test mail and reading the outbox back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.mail.services import queue_mail


def queue_many(count: int, *, prefix: str = "Notice", **kwargs: Any) -> list[int]:
    """Queue ``count`` messages with unique subjects ``<prefix> 1`` ...; their ids."""
    ids = []
    for number in range(1, count + 1):
        message = queue_mail(
            f"holder{number}@example.org",
            f"{prefix} {number}",
            f"Body of {prefix.lower()} {number}.",
            **kwargs,
        )
        ids.append(message.id)
    return ids


def outbox() -> list[OutboxMessage]:
    """Every outbox row as the database has it now, detached: later commits leave it as it was."""
    query = select(OutboxMessage).order_by(OutboxMessage.id).execution_options(populate_existing=True)
    rows = list(db.session.scalars(query))
    for row in rows:
        db.session.expunge(row)
    return rows
