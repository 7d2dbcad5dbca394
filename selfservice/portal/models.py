"""Question bank, enrollments and pinned recovery challenges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfservice.dbtypes import BigId, UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow

#: The language of ``Question.text`` ("Question (English)" in the admin console).
QUESTION_BASE_LANGUAGE = "en"


class Question(db.Model):
    """A challenge question. Retired questions stay, so enrollments that use them stay valid."""

    __tablename__ = "question"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(300))
    #: {language code: text} for languages other than the default.
    translations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def text_in(self, language: str) -> str:
        return (self.translations or {}).get(language) or self.text

    def language_in(self, language: str) -> str:
        """The language of ``text_in(language)``: ``language``, or English when not translated."""
        return language if (self.translations or {}).get(language) else QUESTION_BASE_LANGUAGE


class Enrollment(db.Model):
    """One account holder's set of answers, keyed by the directory's stable account key."""

    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64), unique=True)
    login: Mapped[str] = mapped_column(String(128))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    answers: Mapped[list[EnrollmentAnswer]] = relationship(
        back_populates="enrollment", cascade="all, delete-orphan", lazy="selectin"
    )


class EnrollmentAnswer(db.Model):
    __tablename__ = "enrollment_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    #: argon2id of the normalised answer; the answer itself is never stored.
    answer_hash: Mapped[str] = mapped_column(Text)

    enrollment: Mapped[Enrollment] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship(lazy="joined")


class RecoveryChallenge(db.Model):
    """The questions pinned for one login until answered correctly or expired (invariant 5).

    ``lookup`` is an HMAC of the normalised login, so the row exists the same way for
    unknown logins (decoys) as for real ones and stores no login in the clear.
    """

    __tablename__ = "recovery_challenge"

    lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    question_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingChange(db.Model):
    """A password write the portal is about to send, or sent: its durable intent (invariant 15).

    Committed before the write and settled after it, from the directory's answer or, when
    that answer was lost, from the directory's own record of the password's last change
    (``previous_stamp`` is that record as read before the write). It holds no secret:
    ``token_nonce`` is only the server-side half of the token or link the change spends;
    with sync targets the new password waits, encrypted, in held ``sync_write`` rows tied
    to it (``SyncWrite.pending_change_id``) until it is settled.
    """

    __tablename__ = "pending_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_key: Mapped[str] = mapped_column(String(64), index=True)
    login: Mapped[str] = mapped_column(String(128))
    how: Mapped[str] = mapped_column(String(16))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    token_nonce: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(BigId)
    #: pending (about to write) -> unknown (sent, no answer) -> changed | not-changed
    state: Mapped[str] = mapped_column(String(16), index=True)
    previous_stamp: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_by: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(120))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
