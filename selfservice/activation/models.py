"""Which parent accounts were claimed through /activate, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from selfservice.dbtypes import UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow


class ParentActivation(db.Model):
    """A parent account whose holder proved the letter's account number and PIN and chose a password."""

    __tablename__ = "parent_activation"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(128))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
