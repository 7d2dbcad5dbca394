"""The one place that sends mail: it queues a message in the outbox."""

from __future__ import annotations

import logging

from flask import render_template
from flask_babel import get_locale
from sqlalchemy import select

from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage

log = logging.getLogger(__name__)


#: The longest address SMTP can carry (RFC 5321's 256-character path, less its brackets),
#: which is also what the outbox column holds.
LONGEST_ADDRESS = 254


def queue_mail(
    to_address: str,
    subject: str,
    body_text: str,
    *,
    body_html: str | None = None,
    purpose: str = "notice",
    commit: bool = True,
) -> OutboxMessage | None:
    """Put one message in the outbox; the delivery worker sends it later.

    Every message goes out as plain text plus HTML: without an HTML body of its own,
    the text is set in the district's HTML layout (escaped, links made clickable).
    An address on file too long for any relay is not queued (None): the directory may
    hold one, and the change the mail reports, written in the same transaction, must stand.
    """
    if len(to_address) > LONGEST_ADDRESS:
        log.warning("%s mail not queued: the address on file is %d characters long", purpose, len(to_address))
        return None
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
