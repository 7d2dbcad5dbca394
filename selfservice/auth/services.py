"""Sign-in rules: a per-account limit first, then the directory decides; every attempt is audited.

The per-account limit (``SIGN_IN_ACCOUNT_RATE_LIMIT``) is claimed before the password
is checked, keyed by the account (aliases share it) or, for a login the directory does
not know, by the normalised typed login, so unknown and real logins are limited alike.
It holds across every address and instance sharing the limiter storage. The first
refusal of a burst is audited and the holder is told once an hour at most.

A failed sign-in is audited with a keyed hash of what was typed, never the text:
people type passwords into the login box.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import end_sessions
from selfservice.directory.interfaces import Account, Directory, normalise_login
from selfservice.extensions import limiter
from selfservice.limiter import RateLimited
from selfservice.mail.notices import Notice, notify_account
from selfservice.security import throttling

ACCOUNT_LIMIT = "SIGN_IN_ACCOUNT_RATE_LIMIT"
SCOPE = "account"
#: At most one notice of a sign-in burst per account in this window.
NOTICE_LIMIT = "1 per hour"


def sign_in(
    directory: Directory, settings: Mapping[str, Any], login: str, password: str, origin: Origin
) -> Account | None:
    """The account when ``password`` binds for ``login``, else None; RateLimited past the account's limit."""
    typed = normalise_login(login)
    known = directory.find(typed) if typed else None
    key = known.key if known else login_hash(settings, typed)
    try:
        throttling.claim(settings, ACCOUNT_LIMIT, SCOPE, key, "auth.login")
    except RateLimited:
        _burst(settings, known, key, origin)
        raise
    account = directory.authenticate(typed, password)  # unknown logins cost a dummy check there
    if account is None:
        record(
            Tag.LOGIN_FAILURE,
            outcome="failure",
            origin=origin,
            subject_key=known.key if known else None,
            details={"login_hash": login_hash(settings, typed)},
        )
        return None
    record(
        Tag.LOGIN_SUCCESS, origin=origin, actor=account.login, subject=account.login, subject_key=account.key
    )
    return account


def claim_password_check(
    settings: Mapping[str, Any], account: Account, origin: Origin, endpoint: str
) -> None:
    """Spend one of the account's password checks before the directory is asked; RateLimited past the limit.

    The current password typed by a signed-in holder (to change it, or to confirm new
    answers) is a guess at the same secret as a sign-in, so it shares the sign-in's
    per-account budget: an open session on a shared computer is no way round it.
    """
    try:
        throttling.claim(settings, ACCOUNT_LIMIT, SCOPE, account.key, endpoint)
    except RateLimited:
        _burst(settings, account, account.key, origin)
        raise


def login_hash(settings: Mapping[str, Any], typed: str) -> str:
    """A keyed hash of a typed login: equal for equal logins, useless without the secret key."""
    key = settings["SECRET_KEY"].encode()
    return hmac.new(key, b"audit-login:" + normalise_login(typed).encode(), hashlib.sha256).hexdigest()[:32]


def _burst(settings: Mapping[str, Any], account: Account | None, key: str, origin: Origin) -> None:
    """The first refusal in an hour is audited and, for a real account, told to the holder."""
    if limiter.hit(limiter.parse(NOTICE_LIMIT), SCOPE, "notice", key):
        return
    record(
        Tag.SIGN_IN_THROTTLED,
        outcome="refused",
        origin=origin,
        subject=account.login if account else None,
        subject_key=account.key if account else None,
        details={"limit": settings[ACCOUNT_LIMIT]},
    )
    if account is not None:
        notify_account(account, Notice.SIGN_IN_THROTTLED)


def sign_out(login: str, origin: Origin, account_key: str | None = None) -> None:
    """Sign-out ends every session of the account, on every browser (invariant 17)."""
    if account_key is not None:
        end_sessions(account_key, commit=False)
    record(Tag.LOGOUT, origin=origin, actor=login, subject=login, subject_key=account_key)


def end_every_session(account_key: str, subject_login: str, *, actor: str, origin: Origin) -> int:
    """An admin ends every session of an account at once (audited); how many there were."""
    ended = end_sessions(account_key, commit=False)
    record(
        Tag.SESSIONS_ENDED,
        origin=origin,
        actor=actor,
        subject=subject_login,
        subject_key=account_key,
        details={"sessions": ended},
    )
    return ended
