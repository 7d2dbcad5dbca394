"""Lockout counters and one-time token nonces: the state throttling and tokens need."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from selfservice.dbtypes import UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow


class Lockout(db.Model):
    """Self-service failures of one account; changed only by atomic UPDATEs (invariant 3)."""

    __tablename__ = "lockout"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(128))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_ip: Mapped[str | None] = mapped_column(String(45))
    #: The long-run cap (issue 14, item 10): failed answer sets and codes in a day, locked or not.
    day_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    day_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: True once the holder was told about this day's failures (one notice a day).
    day_noticed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TokenNonce(db.Model):
    """The server-side half of a one-time token: consumed once, void after a password change."""

    __tablename__ = "token_nonce"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VerificationCode(db.Model):
    """A one-time code mailed as a second factor: short-lived, few tries, single use."""

    __tablename__ = "verification_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64), index=True)
    #: The flow that mailed it (``security.codes.Purpose``): checked only by that flow.
    purpose: Mapped[str] = mapped_column(String(16), server_default="")
    #: HMAC-SHA256 of the code under the app's secret key; the code is never stored.
    code_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries_left: Mapped[int] = mapped_column(Integer, default=3)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitBreach(db.Model):
    """Refused requests counted per (address or account, limit, endpoint, minute): never a row each."""

    __tablename__ = "rate_limit_breach"
    __table_args__ = (UniqueConstraint("minute", "scope", "key", "limit_name", "endpoint", name="uq_breach"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The start of the UTC minute the refusals fall in.
    minute: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: "ip" (the key is an address) or "account" (the key is an account key or a login's keyed hash).
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128), index=True)
    #: The setting that refused (``SIGN_IN_RATE_LIMIT``) with its value at the time.
    limit_name: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
