"""API clients: tokens issued by admins, kept only as SHA-256, with scopes, expiry and a rate limit.

A token is 32 random bytes (256 bits), so a fast hash is enough to keep it: nobody
can guess a token from its hash, and a stored hash cannot be replayed as a token.
Looking a token up by its hash and comparing again in constant time means the
answer's timing says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from limits import parse_many
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from selfservice.api.models import ApiClient
from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.i18n_markers import N_
from selfservice.timeutil import utcnow

TOKEN_PREFIX = "ssapi_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$")

BAD_NAME = N_(
    "Use 1 to 80 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit."
)
NAME_TAKEN = N_("An API client with this name already exists. Choose another name.")
NO_SCOPE = N_("Choose at least one permission.")
BAD_RATE_LIMIT = N_('Write the limit like "120 per minute" or "1000 per hour;60 per minute".')
BAD_EXPIRY = N_("Choose a number of days from 1 to 3650, or leave it empty for no expiry.")


class Scope(StrEnum):
    """What a client may do; each API operation names the one it needs."""

    REQUESTS_CREATE = "requests:create"
    REQUESTS_READ = "requests:read"
    REQUESTS_WORK = "requests:work"
    ACCOUNTS_READ = "accounts:read"


SCOPE_LABELS = {
    Scope.REQUESTS_CREATE: N_("Open help requests"),
    Scope.REQUESTS_READ: N_("Read help requests and their events"),
    Scope.REQUESTS_WORK: N_("Add notes to and close help requests"),
    Scope.ACCOUNTS_READ: N_("Read an account's self-service status"),
}


class ClientRefused(Exception):
    """The client was not created; ``errors`` maps a field to a message id for ``_()``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class IssuedToken:
    """A new client and its token: the only time the token exists outside the caller's hands."""

    client: ApiClient
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_client(
    name: str,
    scopes: list[str],
    *,
    rate_limit: str,
    expires_in_days: int | None,
    actor: str,
    origin: Origin,
) -> IssuedToken:
    """Issue a token for a new client; raise ClientRefused naming each bad field."""
    name = name.strip()
    errors = _problems(name, scopes, rate_limit, expires_in_days)
    if errors:
        raise ClientRefused(errors)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    client = ApiClient(
        name=name,
        token_hash=hash_token(token),
        token_hint=token[: len(TOKEN_PREFIX) + 4],
        scopes=sorted(set(scopes)),
        rate_limit=rate_limit.strip(),
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    try:
        db.session.add(client)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ClientRefused({"name": NAME_TAKEN}) from None
    record(
        Tag.API_CLIENT_CREATED,
        origin=origin,
        actor=actor,
        subject=client.name,
        details={"client": client.name, "scopes": client.scopes, "rate_limit": client.rate_limit},
        commit=False,
    )
    db.session.commit()
    return IssuedToken(client, token)


def _problems(name: str, scopes: list[str], rate_limit: str, expires_in_days: int | None) -> dict[str, str]:
    errors = {}
    if not NAME_PATTERN.match(name):
        errors["name"] = BAD_NAME
    elif db.session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        errors["name"] = NAME_TAKEN
    if not scopes or any(scope not in Scope._value2member_map_ for scope in scopes):
        errors["scopes"] = NO_SCOPE
    if not valid_rate_limit(rate_limit):
        errors["rate_limit"] = BAD_RATE_LIMIT
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        errors["expires_in_days"] = BAD_EXPIRY
    return errors


def valid_rate_limit(text: str) -> bool:
    try:
        return bool(text.strip()) and bool(parse_many(text))
    except ValueError:
        return False


def all_clients() -> list[ApiClient]:
    return list(db.session.scalars(select(ApiClient).order_by(ApiClient.name)))


def find_client(name: str) -> ApiClient | None:
    return db.session.scalar(select(ApiClient).where(ApiClient.name == name.strip()))


def revoke(client: ApiClient, *, actor: str, origin: Origin) -> bool:
    """Stop the client's token from working now; False when it was already revoked."""
    result = db.session.execute(
        update(ApiClient)
        .where(ApiClient.id == client.id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=actor)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return False
    record(
        Tag.API_CLIENT_REVOKED,
        origin=origin,
        actor=actor,
        subject=client.name,
        details={"client": client.name},
        commit=False,
    )
    db.session.commit()
    db.session.refresh(client)
    return True


def authenticate(token: str, now: datetime) -> ApiClient | None:
    """The live client holding ``token``, or None (unknown, revoked or expired alike)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    client = db.session.scalar(select(ApiClient).where(ApiClient.token_hash == digest))
    if client is None or not hmac.compare_digest(client.token_hash, digest):
        return None
    return client if client.is_live(now) else None


def mark_used(client: ApiClient, now: datetime, ip: str | None) -> None:
    """Note the client's last call (committed with the call's audit event)."""
    client.last_used_at = now
    client.last_used_ip = ip
