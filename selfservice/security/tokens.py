"""One-time tokens (invariant 6): signed, bound to account, purpose and a server-side nonce.

The signed part (itsdangerous) proves the portal issued the token; the nonce row
makes it single use (consumed by one atomic UPDATE) and lets a password change void
every token of the account at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update

from selfservice.extensions import db
from selfservice.security.models import TokenNonce
from selfservice.timeutil import utcnow


class Purpose(StrEnum):
    RECOVERY = "recovery"  # after answering the questions: 10 minutes
    ASSISTED_RESET = "assisted-reset"  # a help-desk link: hours
    ACTIVATION = "activation"  # a parent activation's next step, after the code: ACTIVATION_MINUTES


class TokenRefused(Exception):
    """The token is forged, for another purpose, used, expired or void."""


@dataclass(frozen=True)
class IssuedToken:
    value: str
    nonce: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaim:
    account_key: str
    nonce: str
    purpose: Purpose


class TokenService:
    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key

    def issue(self, account_key: str, purpose: Purpose, lifetime: timedelta) -> IssuedToken:
        """A new token for ``account_key``; its nonce row is added to the session (caller commits)."""
        nonce = secrets.token_urlsafe(24)
        expires_at = utcnow() + lifetime
        db.session.add(
            TokenNonce(nonce=nonce, account_key=account_key, purpose=purpose, expires_at=expires_at)
        )
        value = self._serializer(purpose).dumps({"k": account_key, "n": nonce})
        return IssuedToken(value=value, nonce=nonce, expires_at=expires_at)

    def peek(self, value: str, purpose: Purpose) -> TokenClaim:
        """Check a token without using it up (to show the form it unlocks)."""
        claim = self._decode(value, purpose)
        row = db.session.get(TokenNonce, claim.nonce)
        now = utcnow()
        if (
            row is None
            or row.used_at is not None
            or row.expires_at <= now
            or row.account_key != claim.account_key
        ):
            raise TokenRefused()
        return claim

    def consume(self, value: str, purpose: Purpose, *, commit: bool = True) -> TokenClaim:
        """Use the token up, atomically: of two racing requests exactly one succeeds.

        ``commit=False`` leaves the claim in the caller's transaction (a password change's intent).
        """
        claim = self._decode(value, purpose)
        now = utcnow()
        result = db.session.execute(
            update(TokenNonce)
            .where(
                TokenNonce.nonce == claim.nonce,
                TokenNonce.account_key == claim.account_key,
                TokenNonce.purpose == purpose.value,
                TokenNonce.used_at.is_(None),
                TokenNonce.expires_at > now,
            )
            .values(used_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            raise TokenRefused()
        if commit:
            db.session.commit()
        return claim

    @staticmethod
    def void_all(account_key: str) -> int:
        """Void every unused token of the account (after any password change); returns how many."""
        result = db.session.execute(
            update(TokenNonce)
            .where(TokenNonce.account_key == account_key, TokenNonce.used_at.is_(None))
            .values(used_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _decode(self, value: str, purpose: Purpose) -> TokenClaim:
        try:
            data = self._serializer(purpose).loads(value)
        except BadSignature as exc:
            raise TokenRefused() from exc
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("k"), str)
            or not isinstance(data.get("n"), str)
        ):
            raise TokenRefused()
        return TokenClaim(account_key=data["k"], nonce=data["n"], purpose=purpose)

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        return URLSafeSerializer(self._secret_key, salt=f"selfservice-token:{purpose.value}")
