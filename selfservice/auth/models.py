"""Tables of signing in: server-side sessions and staff second factors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from selfservice.dbtypes import UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow


class WebSession(db.Model):
    """One browser's session. The cookie holds a random token; the row is keyed by its SHA-256.

    ``account_key`` is set while someone is signed in, or half-way (the password proved,
    the second factor owed), so every session of an account can be ended at once (DESIGN
    invariant 17).
    """

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_key: Mapped[str | None] = mapped_column(String(128), index=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SecondFactor(db.Model):
    """A staff member's TOTP secret (RFC 6238) and the hashes of their unused recovery codes."""

    __tablename__ = "second_factor"

    account_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    #: SHA-256 hex digests of the unused recovery codes, separated by spaces.
    recovery_codes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
