"""Sessions kept on the server (DESIGN invariant 17).

Once someone is signed in (or has proved the password and owes the second factor), the
cookie holds only a random token; the session's contents live in ``web_session`` under
the token's SHA-256, so a stolen database row is no cookie. Ending a session deletes
its row: a cookie whose row is gone opens an empty session, whatever it says.

An anonymous visitor's session (a form's CSRF token, the language, the sealed
forgot-password stage, a message) stays a signed cookie, as Flask keeps it: it holds
nothing personal, and a flood of cookieless requests costs no database row
(invariant 14). Signing out turns the session back into such a cookie.

- A signed-in row lives until SESSION_IDLE_MINUTES after its last request, and never
  past SESSION_ABSOLUTE_HOURS after the sign-in; a half-way one (second factor owed)
  SESSION_IDLE_MINUTES. An anonymous cookie is honoured SESSION_ABSOLUTE_HOURS after
  it was last written.
- :func:`end_sessions` ends every session of an account at once (sign-out, a password
  change or reset, disabling, a role change, an admin's action). A request already
  under way when that happens never writes its row back: saving only updates a row
  that still exists.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, insert, select, update
from werkzeug.datastructures import CallbackDict
from werkzeug.http import dump_cookie

from selfservice.auth.models import WebSession
from selfservice.extensions import db
from selfservice.timeutil import utcnow

SERIALIZER = TaggedJSONSerializer()
#: Length of a server session's token (``secrets.token_urlsafe(32)``).
TOKEN_CHARS = 43
#: The session key holding the signed-in account's snapshot (see auth.sessions).
ACCOUNT_KEY = "account"
#: The session key of a sign-in half-way: the password proved, the second factor owed.
PENDING_KEY = "pending_sign_in"
#: Keys that put a session on the server: someone signed in, or half-way (password proved).
SERVER_KEYS = frozenset({ACCOUNT_KEY, PENDING_KEY})


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session whose contents live on the server under ``token``."""

    def __init__(self, initial: dict[str, Any] | None = None, token: str | None = None) -> None:
        def on_update(session: ServerSession) -> None:
            session.modified = True

        super().__init__(initial, on_update)
        self.token = token
        self.replaced: list[str] = []
        self.modified = False

    def rotate(self) -> None:
        """Keep the contents under a new token; the old one stops working (no fixation)."""
        if self.token:
            self.replaced.append(self.token)
        self.token = None
        self.modified = True


class DatabaseSessionInterface(SessionInterface):
    serializer = SERIALIZER

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return ServerSession()
        if not _is_token(value):
            return self._open_cookie(app, value)
        with db.engine.connect() as connection:
            row = connection.execute(
                select(WebSession.data, WebSession.expires_at, WebSession.account_key).where(
                    WebSession.id == digest(value)
                )
            ).first()
        if row is None:
            return ServerSession()
        if _aware(row.expires_at) <= utcnow():
            _delete([value])
            # Say so on the next page when it was a signed-in session that ran out; the dead
            # token's cookie is replaced by this anonymous one.
            expired = ServerSession({"expired": True} if row.account_key else {})
            expired.modified = True
            return expired
        return ServerSession(self.serializer.loads(row.data), value)

    def _open_cookie(self, app: Flask, value: str) -> ServerSession:
        """An anonymous session: signed, in the cookie itself (nothing personal, no database work)."""
        return ServerSession(anonymous_contents(app, value, cookie_signer(app)) or {})

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        ended = [*session.replaced, *([session.token] if session.token else [])]
        on_server = any(key in session for key in SERVER_KEYS)
        if not session or not on_server:
            if ended:  # signed out (or ended): the row goes
                _delete(ended)
            if not session:
                if ended or session.modified:
                    response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app))
                return
            if session.modified or ended:
                self._set_cookie(app, response, cookie_signer(app).dumps(dict(session)), session)
            return
        if not session.modified:
            return
        values = self._row_values(app, session)
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            with db.engine.begin() as connection:
                if session.replaced:
                    replaced = [digest(token) for token in session.replaced]
                    connection.execute(delete(WebSession).where(WebSession.id.in_(replaced)))
                connection.execute(insert(WebSession).values(id=digest(session.token), **values))
        else:
            with db.engine.begin() as connection:
                stored = connection.execute(
                    update(WebSession).where(WebSession.id == digest(session.token)).values(**values)
                )
            if stored.rowcount == 0:  # ended while this request ran: it stays ended
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app))
                return
        self._set_cookie(app, response, session.token, session)

    def _set_cookie(self, app: Flask, response: Response, value: str, session: ServerSession) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            value,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    def _row_values(self, app: Flask, session: ServerSession) -> dict[str, Any]:
        now = utcnow()
        account = session.get(ACCOUNT_KEY) or {}
        # A half-way sign-in belongs to its account too: ending the account's sessions ends it.
        pending = session.get(PENDING_KEY) or {}
        idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
        expires = now + idle
        if account:
            signed_in = datetime.fromtimestamp(account["signed_in_at"], tz=now.tzinfo)
            expires = min(expires, signed_in + timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"]))
        return {
            "account_key": account.get("key") or pending.get("key"),
            "data": self.serializer.dumps(dict(session)),
            "last_seen_at": now,
            "expires_at": expires,
            **({"created_at": now} if session.token is None else {}),
        }


def anonymous_contents(app: Flask, value: str, signer: URLSafeTimedSerializer) -> dict[str, Any] | None:
    """What an anonymous session's cookie ``value`` holds; None when it is not one (bad, old, a token)."""
    if _is_token(value):
        return None
    try:
        data = signer.loads(value, max_age=app.config["SESSION_ABSOLUTE_HOURS"] * 3600)
    except BadSignature:
        return None
    if not isinstance(data, dict) or any(key in data for key in SERVER_KEYS):  # only the server sets them
        return None
    return data


def anonymous_cookie(app: Flask, data: dict[str, Any], signer: URLSafeTimedSerializer) -> str:
    """The Set-Cookie header value that gives a visitor the anonymous session ``data``.

    The same cookie :meth:`DatabaseSessionInterface.save_session` sets for a new anonymous
    (not permanent) session: used by the shared pages' WSGI layer, outside Flask.
    """
    interface = app.session_interface
    return dump_cookie(
        interface.get_cookie_name(app),
        signer.dumps(data),
        httponly=interface.get_cookie_httponly(app),
        domain=interface.get_cookie_domain(app),
        path=interface.get_cookie_path(app),
        secure=interface.get_cookie_secure(app),
        samesite=interface.get_cookie_samesite(app),
    )


def _is_token(value: str) -> bool:
    """A server session's token (43 URL-safe characters); a signed cookie always holds dots."""
    return len(value) == TOKEN_CHARS and "." not in value


def cookie_signer(app: Flask) -> URLSafeTimedSerializer:
    """The serializer that signs anonymous sessions' cookies."""
    signer = SecureCookieSessionInterface().get_signing_serializer(app)
    if signer is None:
        raise RuntimeError("SECRET_KEY is not set")
    return signer


def _aware(moment: datetime) -> datetime:
    """Core selects bypass the UTC column type on some drivers: read naive values as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _delete(tokens: list[str]) -> None:
    with db.engine.begin() as connection:
        connection.execute(delete(WebSession).where(WebSession.id.in_([digest(t) for t in tokens])))


def end_sessions(account_key: str, *, commit: bool = True) -> int:
    """End every session of ``account_key`` (in the caller's transaction unless ``commit``)."""
    result = db.session.execute(delete(WebSession).where(WebSession.account_key == account_key))
    if commit:
        db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_session_count(account_key: str) -> int:
    """How many unexpired sessions ``account_key`` has now (for the admin's account page)."""
    query = select(func.count()).where(
        WebSession.account_key == account_key, WebSession.expires_at > utcnow()
    )
    return int(db.session.scalar(query) or 0)


def purge_expired(now: datetime | None = None) -> int:
    """Delete expired session rows (``selfservice purge``); returns how many."""
    result = db.session.execute(delete(WebSession).where(WebSession.expires_at <= (now or utcnow())))
    db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    app.session_interface = DatabaseSessionInterface()
