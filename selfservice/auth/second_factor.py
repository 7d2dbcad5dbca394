"""Staff second factor: TOTP codes (RFC 6238) from an authenticator app, and recovery codes.

STAFF_SECOND_FACTOR says per role whether it is required (admin and ITS by default).
A staff member who needs one and has none enrolls at sign-in: the portal makes a
secret, they add it to their app and prove it with a code, and they get ten one-time
recovery codes (shown once; only their SHA-256 is kept). Each code counts once: a TOTP
time step is accepted only after the last one used (no replay), a recovery code is
removed when used. Another admin can reset the factor (audited); the holder's sessions
end and they enroll again at the next sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import delete, update

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.models import SecondFactor
from selfservice.auth.store import end_sessions
from selfservice.directory.interfaces import Account, Role
from selfservice.extensions import db
from selfservice.mail.notices import Notice, notify_account
from selfservice.timeutil import utcnow

RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
#: Codes of the time step before and after the current one are accepted (clock drift).
VALID_WINDOW_STEPS = 1
ISSUER = "School password portal"


@dataclass(frozen=True)
class Enrollment:
    """What a staff member needs to add the portal to their authenticator app."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type into an app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def required_for(settings: Mapping[str, Any], roles: Iterable[Role]) -> bool:
    """Whether any of ``roles`` needs a second factor under STAFF_SECOND_FACTOR."""
    table = settings["STAFF_SECOND_FACTOR"]
    return any(table.get(role.value) == "required" for role in roles)


def enrolled(account_key: str) -> bool:
    row = db.session.get(SecondFactor, account_key)
    return row is not None and row.confirmed_at is not None


def begin_enrollment(account_key: str, login: str, issuer: str = ISSUER) -> Enrollment:
    """A new secret for ``account_key`` (replacing an unconfirmed one); confirmed ones stay."""
    row = db.session.get(SecondFactor, account_key)
    if row is not None and row.confirmed_at is not None:
        raise ValueError("already enrolled")
    secret = pyotp.random_base32()
    if row is None:
        db.session.add(SecondFactor(account_key=account_key, secret=secret, last_step=0, recovery_codes=""))
    else:
        row.secret = secret
    db.session.commit()
    return Enrollment(secret=secret, uri=pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=issuer))


def pending_enrollment(account_key: str, login: str, issuer: str = ISSUER) -> Enrollment | None:
    row = db.session.get(SecondFactor, account_key)
    if row is None or row.confirmed_at is not None:
        return None
    return Enrollment(row.secret, pyotp.TOTP(row.secret).provisioning_uri(name=login, issuer_name=issuer))


def confirm_enrollment(
    account_key: str, login: str, code: str, origin: Origin, holder: Account | None = None
) -> list[str] | None:
    """Turn the pending secret on when ``code`` is right; the new recovery codes, else None.

    ``holder`` (the account as the directory has it) is told by mail, when it has an address.
    """
    row = db.session.get(SecondFactor, account_key, populate_existing=True)
    if row is None or row.confirmed_at is not None or not _claim_totp(row, code):
        _audit(Tag.SECOND_FACTOR_FAILED, login, account_key, origin, outcome="failure", step="enroll")
        return None
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    row.recovery_codes = " ".join(_hash(code) for code in codes)
    row.confirmed_at = utcnow()
    _audit(Tag.SECOND_FACTOR_ENROLLED, login, account_key, origin, commit=False)
    if holder is not None:
        notify_account(holder, Notice.SECOND_FACTOR_ON, commit=False)
    db.session.commit()
    return codes


def verify(account_key: str, login: str, code: str, origin: Origin) -> bool:
    """Whether ``code`` (a TOTP code or an unused recovery code) proves the second factor."""
    row = db.session.get(SecondFactor, account_key, populate_existing=True)
    if row is None or row.confirmed_at is None:
        return False
    cleaned = "".join(code.split()).lower().replace("-", "")
    if not (len(cleaned) == 6 and cleaned.isdigit()):  # typed with or without its dashes
        ok = _use_recovery_code(row, "-".join(cleaned[i : i + 5] for i in range(0, len(cleaned), 5)))
        tag = Tag.SECOND_FACTOR_RECOVERY_CODE_USED if ok else Tag.SECOND_FACTOR_FAILED
    else:
        ok = _claim_totp(row, cleaned)
        tag = Tag.SECOND_FACTOR_VERIFIED if ok else Tag.SECOND_FACTOR_FAILED
    _audit(tag, login, account_key, origin, outcome="success" if ok else "failure", commit=False)
    db.session.commit()
    return ok


def reset(
    account_key: str, subject_login: str, *, actor: str, origin: Origin, holder: Account | None = None
) -> bool:
    """Remove the account's second factor, end its sessions and tell ``holder``; True when one was set."""
    result = db.session.execute(delete(SecondFactor).where(SecondFactor.account_key == account_key))
    end_sessions(account_key, commit=False)
    record(
        Tag.SECOND_FACTOR_RESET,
        origin=origin,
        actor=actor,
        subject=subject_login,
        subject_key=account_key,
        commit=False,
    )
    if holder is not None:
        notify_account(holder, Notice.SECOND_FACTOR_RESET, commit=False)
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _claim_totp(row: SecondFactor, code: str) -> bool:
    """Accept a six-digit code of a step near now, once: the step is claimed atomically."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return False
    totp = pyotp.TOTP(row.secret)
    now = utcnow()
    current = totp.timecode(now)
    for offset in range(-VALID_WINDOW_STEPS, VALID_WINDOW_STEPS + 1):
        step = current + offset
        if hmac.compare_digest(totp.generate_otp(step), code):
            claimed = db.session.execute(
                update(SecondFactor)
                .where(SecondFactor.account_key == row.account_key, SecondFactor.last_step < step)
                .values(last_step=step)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]
    return False


def _use_recovery_code(row: SecondFactor, code: str) -> bool:
    remaining = row.recovery_codes.split()
    found = next((stored for stored in remaining if _matches(stored, code)), None)
    if found is None:
        return False
    remaining.remove(found)
    # Compare-and-set on the whole list: of two requests using one code, only one wins.
    claimed = db.session.execute(
        update(SecondFactor)
        .where(SecondFactor.account_key == row.account_key, SecondFactor.recovery_codes == row.recovery_codes)
        .values(recovery_codes=" ".join(remaining))
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def recovery_codes_left(account_key: str) -> int:
    row = db.session.get(SecondFactor, account_key)
    return len(row.recovery_codes.split()) if row else 0


def _new_recovery_code() -> str:
    """Four groups of five letters and digits (base32): 100 random bits."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def _hash(code: str) -> str:
    """``salt$digest``: SHA-256 of a random 32-bit salt and the code (ASVS 2.6.2)."""
    salt = secrets.token_hex(4)
    return f"{salt}${_digest(salt, code)}"


def _matches(stored: str, code: str) -> bool:
    salt, _sep, digest = stored.partition("$")
    return hmac.compare_digest(_digest(salt, code), digest)


def _digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _audit(
    tag: Tag,
    login: str,
    account_key: str,
    origin: Origin,
    *,
    outcome: str = "success",
    commit: bool = True,
    **details: str,
) -> None:
    record(
        tag,
        outcome=outcome,
        origin=origin,
        actor=login,
        subject=login,
        subject_key=account_key,
        details=details or None,
        commit=commit,
    )
