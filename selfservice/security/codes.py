"""One-time codes mailed to the address on file: recovery's second factor, activation's proof.

A code is bound to its account and to the flow that mailed it: a new code voids only the
live code of the same flow, and a check reads only that flow's code, so a parent who is
recovering and an activation letter for the same account never cancel each other. The
code is never stored, only its HMAC (each flow brings its own). Each try is spent with one
atomic UPDATE before comparing, so parallel guesses cannot share a try; a match is single
use. The flows keep their own audit events, lockout and pages.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, select, update

from selfservice.extensions import db
from selfservice.security.models import VerificationCode
from selfservice.timeutil import utcnow

#: No 0/O, 1/I/L: a code is read off a phone and typed.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 8


class Purpose(StrEnum):
    RECOVERY = "recovery"
    ACTIVATION = "activation"


def issue(
    account_key: str, purpose: Purpose, digest: Callable[[str], str], *, minutes: int, tries: int
) -> str:
    """A fresh code for the account in this flow (not committed); the flow's older live code dies."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    now = utcnow()
    db.session.execute(update(VerificationCode).where(_live(account_key, purpose)).values(used_at=now))
    db.session.add(
        VerificationCode(
            account_key=account_key,
            purpose=purpose.value,
            code_digest=digest(code),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
            tries_left=tries,
        )
    )
    return code


def live_code(account_key: str, purpose: Purpose) -> VerificationCode | None:
    """The account's newest unused code of this flow (maybe expired: spending a try says)."""
    return db.session.scalar(
        select(VerificationCode)
        .where(_live(account_key, purpose))
        .order_by(VerificationCode.id.desc())
        .limit(1)
    )


def spend_try(code_id: int) -> bool:
    """One try of a live, unexpired code, spent atomically (committed); False when none is left."""
    spent = db.session.execute(
        update(VerificationCode)
        .where(
            VerificationCode.id == code_id,
            VerificationCode.used_at.is_(None),
            VerificationCode.tries_left > 0,
            VerificationCode.expires_at > utcnow(),
        )
        .values(tries_left=VerificationCode.tries_left - 1)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    return bool(spent == 1)


def use(code_id: int) -> bool:
    """Mark a matched code used (committed); False when a parallel request used it first."""
    used = db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == code_id, VerificationCode.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    return bool(used == 1)


def tries_left(code_id: int) -> int:
    return db.session.scalar(select(VerificationCode.tries_left).where(VerificationCode.id == code_id)) or 0


def normalise(typed: str) -> str:
    """What a person typed, as the code was made: upper case, no spaces or dashes."""
    return "".join(c for c in typed.upper() if c.isalnum())


def _live(account_key: str, purpose: Purpose) -> ColumnElement[bool]:
    return and_(
        VerificationCode.account_key == account_key,
        VerificationCode.purpose == purpose.value,
        VerificationCode.used_at.is_(None),
    )
