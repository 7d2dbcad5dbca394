"""Parent account activation: the letter's account number and PIN, a mailed code, a password, questions.

The order of the first step's checks is the point:

1. the per-IP limit (before the view) and the per-account-number limit, both before
   any directory or database work on the account (invariant 2);
2. the account's lockout claim, before the PIN is compared: wrong PINs lock
   self-service for the account as wrong answers do (invariant 3);
3. the PIN (constant time) and the parent's name.

An unknown account number takes the same path against a decoy key derived from the
number (its own claim, the same comparisons, the same page), so the answers and
timing do not tell which numbers exist (invariant 4). Only after the PIN and name
match does the page depend on the account: already activated, no email on file, or
"we emailed you a code" (to the address on file only, invariant 8; per-address limit).

The code is single use, short-lived and has few tries; it is kept as an HMAC. Each
step after it (the password, then the questions) takes a one-time token (invariant 6):
the browser's copy of the step is signed but could be replayed, the token's nonce is
spent once and dies with any password change. The password goes through
portal/passwords.py (the directory's rules, the notice, the audit event); the questions
through portal/enrollment.py. Every step is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import update

from selfservice.activation.models import ParentActivation
from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.dbtypes import insert_for
from selfservice.directory.interfaces import Account, AccountKind, Directory, DirectoryError
from selfservice.extensions import db
from selfservice.helpdesk.requests import names_match
from selfservice.i18n import _
from selfservice.limiter import Limiter
from selfservice.mail.notices import compose
from selfservice.mail.services import queue_mail
from selfservice.portal.passwords import How, NewPassword, Spend, apply_new_password
from selfservice.security import Security, codes
from selfservice.security.lockout import Locked
from selfservice.security.tokens import Purpose, TokenRefused
from selfservice.timeutil import utcnow

#: Compared against when the account number is unknown, so both paths do the same work.
DECOY_PIN = "decoy-pin-never-matches"


class Outcome(StrEnum):
    CODE_SENT = "code-sent"
    NO_MATCH = "no-match"  # unknown number, wrong PIN or name: one answer for all
    LOCKED = "locked"  # too many wrong PINs: the same page for real and decoy numbers
    LIMITED = "limited"  # too many tries for this account number
    NO_EMAIL = "no-email"
    ALREADY_ACTIVE = "already-active"
    TOO_MANY_CODES = "too-many-codes"  # per-address limit on mailed codes


@dataclass(frozen=True)
class Details:
    account_number: str
    pin: str = field(repr=False)
    parent_name: str


@dataclass(frozen=True)
class Started:
    outcome: Outcome
    account_key: str | None = None
    email: str | None = None


class CodeOutcome(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"
    SPENT = "spent"  # expired, used or out of tries: start again


@dataclass(frozen=True)
class Limits:
    """The limiter and the two limits the service spends."""

    limiter: Limiter
    per_account_number: str
    per_address: str

    @classmethod
    def from_settings(cls, limiter: Limiter, settings: Mapping[str, Any]) -> Limits:
        return cls(
            limiter, settings["ACTIVATION_ACCOUNT_RATE_LIMIT"], settings["ACTIVATION_ADDRESS_RATE_LIMIT"]
        )

    def spend(self, limit_text: str, scope: str, key: str) -> bool:
        """Count one try against every window of ``limit_text``; False when one is full (nothing spent)."""
        return self.limiter.hit(self.limiter.parse(limit_text), scope, key) is None


def start(
    directory: Directory,
    security: Security,
    settings: Mapping[str, Any],
    limits: Limits,
    details: Details,
    origin: Origin,
) -> Started:
    """Check the letter's details; mail a code when they match an account with an email on file."""
    number = _normalise(details.account_number)
    if not limits.spend(limits.per_account_number, "activation-number", _digest(settings, number)):
        _audit(Tag.ACTIVATION_REFUSED, "refused", origin, None, reason="account-number-limit")
        return Started(Outcome.LIMITED)
    found = directory.find_by("parent_account_number", details.account_number.strip())
    account = found if found is not None and found.kind is AccountKind.PARENT else None
    subject = account.key if account else _decoy_key(settings, number)
    try:
        security.lockout.claim_attempt(
            subject, account.login if account else f"activation:{number}"[:128], origin
        )
    except Locked as locked:
        _audit(Tag.ACTIVATION_REFUSED, "locked", origin, account, reason="locked")
        if locked.newly and account is not None:
            _mail_locked(account, locked)
        return Started(Outcome.LOCKED)
    if not _matches(account, details) or account is None:  # (_matches is False without an account)
        until = security.lockout.record_failure(subject, account.login if account else number, origin)
        _audit(Tag.ACTIVATION_REFUSED, "failure", origin, account, reason="mismatch")
        if until is not None and account is not None:
            _mail_locked(account, Locked(until, newly=True))
        return Started(Outcome.NO_MATCH)
    security.lockout.record_success(account.key)
    return _after_match(settings, limits, account, origin)


def _after_match(settings: Mapping[str, Any], limits: Limits, account: Account, origin: Origin) -> Started:
    if is_activated(account.key):
        _audit(Tag.ACTIVATION_REFUSED, "refused", origin, account, reason="already-active")
        return Started(Outcome.ALREADY_ACTIVE, account.key)
    if not account.email:
        _audit(Tag.ACTIVATION_REFUSED, "refused", origin, account, reason="no-email")
        return Started(Outcome.NO_EMAIL, account.key)
    address = _digest(settings, account.email.strip().casefold())
    if not limits.spend(limits.per_address, "activation-address", address):
        _audit(Tag.ACTIVATION_REFUSED, "refused", origin, account, reason="address-limit")
        return Started(Outcome.TOO_MANY_CODES, account.key)
    _send_code(settings, account, origin)
    return Started(Outcome.CODE_SENT, account.key, account.email)


def _matches(account: Account | None, details: Details) -> bool:
    on_file = ((account.parent_pin if account else None) or "").strip() or DECOY_PIN
    pin_ok = hmac.compare_digest(details.pin.strip().encode(), on_file.encode())
    name_ok = names_match(details.parent_name, account.display_name if account else "")
    # An account an administrator disabled is not for claiming: it answers like a wrong PIN
    # (staff can help). A failure lock is no bar: setting the password ends it, as a reset does.
    usable = account is not None and bool(account.parent_pin) and not account.disabled_by_admin
    return usable and pin_ok and name_ok


def _send_code(settings: Mapping[str, Any], account: Account, origin: Origin) -> None:
    """Mail a fresh code to the address on file; an older activation code of the account dies."""
    minutes = settings["CODE_MINUTES"]
    code = codes.issue(
        account.key,
        codes.Purpose.ACTIVATION,
        lambda typed: _code_digest(settings, typed),
        minutes=minutes,
        tries=settings["CODE_TRIES"],
    )
    body = compose("activation_code", account=account, code=code, minutes=minutes)
    queue_mail(account.email or "", _("Your activation code"), body, purpose="activation:code", commit=False)
    _audit(Tag.ACTIVATION_CODE_SENT, "success", origin, account, commit=False, minutes=minutes)
    db.session.commit()


def check_code(
    settings: Mapping[str, Any], account: Account, typed: str, origin: Origin
) -> tuple[CodeOutcome, int]:
    """Spend one try of the live code atomically, then compare; (outcome, tries left)."""
    row = codes.live_code(account.key, codes.Purpose.ACTIVATION)
    # Read now: spending the try commits, which expires the row (reading it again is a query).
    code_id, stored, tries = (row.id, row.code_digest, row.tries_left) if row else (0, "", 0)
    if row is None or not codes.spend_try(code_id):
        _audit(Tag.ACTIVATION_CODE_FAILED, "refused", origin, account, reason="expired-or-used")
        return CodeOutcome.SPENT, 0
    if hmac.compare_digest(stored, _code_digest(settings, codes.normalise(typed))) and codes.use(code_id):
        _audit(Tag.ACTIVATION_CODE_VERIFIED, "success", origin, account)
        return CodeOutcome.RIGHT, tries - 1
    tries_left = codes.tries_left(code_id)
    _audit(Tag.ACTIVATION_CODE_FAILED, "failure", origin, account, reason="wrong", tries_left=tries_left)
    return (CodeOutcome.WRONG if tries_left else CodeOutcome.SPENT), tries_left


def step_token(security: Security, settings: Mapping[str, Any], account: Account) -> str:
    """A one-time token for the account's next step, live ACTIVATION_MINUTES."""
    lifetime = timedelta(minutes=settings["ACTIVATION_MINUTES"])
    token = security.tokens.issue(account.key, Purpose.ACTIVATION, lifetime).value
    db.session.commit()
    return token


def step_is_live(security: Security, account: Account, token: str) -> bool:
    """Whether ``token`` still opens the next step for ``account`` (unused, unexpired, no change since)."""
    try:
        return security.tokens.peek(token, Purpose.ACTIVATION).account_key == account.key
    except TokenRefused:
        return False


def take_step(security: Security, account: Account, token: str) -> bool:
    """Spend ``token`` (atomically: of two copies of the step, one goes on); False when it was spent."""
    try:
        return security.tokens.consume(token, Purpose.ACTIVATION).account_key == account.key
    except TokenRefused:
        return False


def set_password(
    directory: Directory,
    security: Security,
    account: Account,
    new: NewPassword,
    origin: Origin,
    *,
    token: str,
    attribute: str = "",
) -> None:
    """Write the parent's first password under the directory's rules and record the account as activated.

    ``token`` (from :func:`step_token`) is spent with the change. Raises PolicyViolation
    (nothing written, the token still good) like every other password path, and
    TokenRefused when the step was taken already. ``attribute`` names the directory
    attribute that records the activation too (empty: the portal only).
    """
    spend = Spend(token, Purpose.ACTIVATION)
    # The change's own transaction records the activation (record_activation), here or in the sweeper.
    apply_new_password(directory, security, account, new, how=How.ACTIVATION, origin=origin, spend=spend)
    _record_in_directory(directory, account, attribute, origin)


def record_activation(account: Account, origin: Origin) -> None:
    """The account's first password is set: it counts as activated (in the caller's transaction).

    Called when the change is settled, whoever settles it (the write's answer or the sweeper);
    an account already recorded stays as it was.
    """
    insert = insert_for(db.session.get_bind().dialect.name)
    added = db.session.execute(
        insert(ParentActivation)
        .values(account_key=account.key, login=account.login, activated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["account_key"])
    ).rowcount  # type: ignore[attr-defined]
    if added:
        _audit(Tag.ACTIVATION_COMPLETED, "success", origin, account, commit=False)


def _record_in_directory(directory: Directory, account: Account, attribute: str, origin: Origin) -> None:
    """Where the adapter can (LDAP, AD) and an attribute is configured, the directory learns it too.

    The portal's own row above is what counts: a refusal here is audited, not shown.
    """
    write = getattr(directory, "record_activation", None)
    if not attribute or not callable(write):
        return
    try:
        write(account, attribute, utcnow())
    except DirectoryError as exc:
        _audit(Tag.ACTIVATION_COMPLETED, "error", origin, account, directory=type(exc).__name__)


def record_enrolled(account: Account, origin: Origin) -> None:
    db.session.execute(
        update(ParentActivation)
        .where(ParentActivation.account_key == account.key)
        .values(enrolled_at=utcnow())
    )
    _audit(Tag.ACTIVATION_ENROLLED, "success", origin, account)


def is_activated(account_key: str) -> bool:
    return db.session.get(ParentActivation, account_key) is not None


def _mail_locked(account: Account, locked: Locked) -> None:
    if account.email:
        body = compose("activation_locked", account=account, until=locked.until)
        queue_mail(
            account.email, _("Account activation is paused for your account"), body, purpose="notice:locked"
        )


def _audit(
    tag: Tag, outcome: str, origin: Origin, account: Account | None, *, commit: bool = True, **details: Any
) -> None:
    record(
        tag,
        outcome=outcome,
        origin=origin,
        actor=account.login if account else None,
        subject=account.login if account else None,
        subject_key=account.key if account else None,
        details=details,
        commit=commit,
    )


def _normalise(number: str) -> str:
    return unicodedata.normalize("NFKC", number.strip()).casefold()


def _digest(settings: Mapping[str, Any], text: str) -> str:
    return hmac.new(
        settings["SECRET_KEY"].encode(), f"activation:{text}".encode(), hashlib.sha256
    ).hexdigest()


def _code_digest(settings: Mapping[str, Any], code: str) -> str:
    return _digest(settings, "code:" + code)


def _decoy_key(settings: Mapping[str, Any], number: str) -> str:
    """A key shaped like a directory's unique id, stable for the number."""
    return str(uuid.UUID(bytes=bytes.fromhex(_digest(settings, "decoy:" + number))[:16], version=4))
