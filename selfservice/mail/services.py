"""The one place that sends mail: it queues a message in the outbox."""

from __future__ import annotations

from sqlalchemy import select

from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage


def queue_mail(
    to_address: str,
    subject: str,
    body_text: str,
    *,
    body_html: str | None = None,
    purpose: str = "notice",
    commit: bool = True,
) -> OutboxMessage:
    """Put one message in the outbox; the delivery worker sends it later."""
    message = OutboxMessage(
        to_address=to_address,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        purpose=purpose,
    )
    db.session.add(message)
    if commit:
        db.session.commit()
    return message


def recent_messages(limit: int = 50) -> list[OutboxMessage]:
    """The newest messages in the outbox, newest first (demo viewer, tests)."""
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)))
