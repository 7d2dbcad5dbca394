"""Help requests (the district's HEAT incidents), their timeline, and the reset links issued for them.

A request keeps what the employee typed (so staff see what was asked) and who the
directory says the account holder is. The parent PIN is never stored: only whether
it matched when the request was accepted.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfservice.dbtypes import BigId, UTCDateTime
from selfservice.extensions import db
from selfservice.i18n_markers import N_
from selfservice.timeutil import utcnow
from selfservice.web import parse_id

NUMBER_PREFIX = "REQ-"


class RequestKind(StrEnum):
    STUDENT = "student"
    PARENT = "parent"


class Queue(StrEnum):
    ITS_STUDENT = "its-student"
    PARENT_SUPPORT = "parent-support"
    ITS_PARENT = "its-parent"

    @property
    def label(self) -> str:
        return QUEUE_LABELS[self]


QUEUE_LABELS = {
    Queue.ITS_STUDENT: N_("ITS Student Accounts"),
    Queue.PARENT_SUPPORT: N_("Parent Support"),
    Queue.ITS_PARENT: N_("ITS Parent Accounts"),
}


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in-progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.OPEN: N_("Open"),
    Status.IN_PROGRESS: N_("In progress"),
    Status.ESCALATED: N_("Escalated"),
    Status.RESOLVED: N_("Resolved"),
    Status.CLOSED: N_("Closed"),
}

#: Statuses in which staff still have something to do.
ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.ESCALATED)


class Action(StrEnum):
    """What one timeline row records."""

    OPENED = "opened"
    NOTE = "note"
    CONTACT = "contact"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    LINK_ISSUED = "link-issued"
    LINK_USED = "link-used"
    UNLOCKED = "unlocked"
    ENROLLMENT_CLEARED = "enrollment-cleared"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ContactMethod(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    VOICEMAIL = "voicemail"


class ContactOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    LEFT_MESSAGE = "left-message"
    WRONG_CONTACT = "wrong-contact"


class HelpRequest(db.Model):
    __tablename__ = "help_request"
    __table_args__ = (
        Index("ix_help_request_queue_status", "queue", "status"),
        Index("ix_help_request_opened_by_created", "opened_by_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=Status.OPEN.value)
    #: Bumped by every change; forms carry the value they were drawn with, so a
    #: second click of the same button finds it changed and does nothing.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: A random key per "new request" form: a double submit opens one request.
    form_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    assignee: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The employee who opened it (email as it was then; links use the directory's at issue time).
    opened_by_login: Mapped[str] = mapped_column(String(128))
    opened_by_key: Mapped[str] = mapped_column(String(64))
    opened_by_name: Mapped[str] = mapped_column(String(200))
    opened_by_email: Mapped[str | None] = mapped_column(String(254))
    # The account holder, as the directory identified them.
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    subject_login: Mapped[str] = mapped_column(String(128))
    subject_name: Mapped[str] = mapped_column(String(200))
    # Student request, as typed.
    student_id: Mapped[str | None] = mapped_column(String(40))
    student_name: Mapped[str | None] = mapped_column(String(200))
    birth_month_year: Mapped[str | None] = mapped_column(String(6))
    # Parent request, as typed (never the PIN).
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    parent_account_number: Mapped[str | None] = mapped_column(String(40))
    parent_name: Mapped[str | None] = mapped_column(String(200))
    parent_phone: Mapped[str | None] = mapped_column(String(40))
    pin_matched: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", order_by="RequestEvent.id", cascade="all, delete-orphan"
    )
    links: Mapped[list[ResetLink]] = relationship(
        back_populates="request", order_by="ResetLink.issued_at", cascade="all, delete-orphan"
    )

    @property
    def number(self) -> str:
        return format_number(self.id)

    @property
    def status_value(self) -> Status:
        return Status(self.status)

    @property
    def queue_value(self) -> Queue:
        return Queue(self.queue)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class RequestEvent(db.Model):
    """One line of a request's timeline: who did what, and when."""

    __tablename__ = "help_request_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("help_request.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The staff login, or the account holder's login for a used link.
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    contact_method: Mapped[str | None] = mapped_column(String(16))
    contact_outcome: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    request: Mapped[HelpRequest] = relationship(back_populates="events")


class ResetLink(db.Model):
    """A help-desk reset link: the token's nonce tied to the request it resolves.

    The token itself is never stored; ``sent_to`` is the directory address it was
    mailed to, shown to staff only masked.
    """

    __tablename__ = "help_request_link"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("help_request.id", ondelete="CASCADE"), index=True)
    account_key: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(16))  # "employee" or "parent"
    sent_to: Mapped[str] = mapped_column(String(254))
    issued_by: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[HelpRequest] = relationship(back_populates="links")

    def is_live(self, now: datetime) -> bool:
        return self.used_at is None and self.void_at is None and self.expires_at > now


def format_number(request_id: int) -> str:
    return f"{NUMBER_PREFIX}{request_id:06d}"


def parse_number(number: str) -> int | None:
    """The id in ``REQ-000042`` (or ``42``); None when it is not a request number."""
    digits = number.strip().upper().removeprefix(NUMBER_PREFIX)
    return parse_id(digits, minimum=1)
