"""The one place that sends mail: it queues a message in the outbox."""

from __future__ import annotations

from flask import render_template
from flask_babel import get_locale
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
    """Put one message in the outbox; the delivery worker sends it later.

    Every message goes out as plain text plus HTML: without an HTML body of its own,
    the text is set in the district's HTML layout (escaped, links made clickable).
    """
    message = OutboxMessage(
        to_address=to_address,
        subject=subject,
        body_text=body_text,
        body_html=body_html if body_html is not None else html_from_text(subject, body_text),
        purpose=purpose,
    )
    db.session.add(message)
    if commit:
        db.session.commit()
    return message


def html_from_text(subject: str, body_text: str) -> str:
    """The HTML twin of a plain-text message, in the current language's layout."""
    paragraphs = [part.strip("\n") for part in body_text.split("\n\n") if part.strip()]
    return render_template(
        "mail/layout.html", subject=subject, paragraphs=paragraphs, language=str(get_locale())
    )


def recent_messages(limit: int = 50) -> list[OutboxMessage]:
    """The newest messages in the outbox, newest first (demo viewer, tests)."""
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)))
