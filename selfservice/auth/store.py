"""Sessions kept on the server (DESIGN invariant 17).

The cookie holds only a random token; the session's contents live in ``web_session``
under the token's SHA-256, so a stolen database row is no cookie. Ending a session
deletes its row: a cookie whose row is gone opens an empty session, whatever it says.

- A signed-in row lives until SESSION_IDLE_MINUTES after its last request, and never
  past SESSION_ABSOLUTE_HOURS after the sign-in; an anonymous one (a form's CSRF
  token, the forgot-password stage) SESSION_ABSOLUTE_HOURS after it was made.
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
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, func, insert, select, update
from werkzeug.datastructures import CallbackDict

from selfservice.auth.models import WebSession
from selfservice.extensions import db
from selfservice.timeutil import utcnow

SERIALIZER = TaggedJSONSerializer()
#: Longest cookie value looked up; tokens are 43 characters.
MAX_TOKEN_CHARS = 64
#: The session key holding the signed-in account's snapshot (see auth.sessions).
ACCOUNT_KEY = "account"


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
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > MAX_TOKEN_CHARS:
            return ServerSession()
        with db.engine.connect() as connection:
            row = connection.execute(
                select(WebSession.data, WebSession.expires_at, WebSession.account_key).where(
                    WebSession.id == digest(token)
                )
            ).first()
        if row is None:
            return ServerSession()
        if _aware(row.expires_at) <= utcnow():
            _delete([token])
            # Say so on the next page when it was a signed-in session that ran out.
            return ServerSession({"expired": True}) if row.account_key else ServerSession()
        return ServerSession(self.serializer.loads(row.data), token)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        if not session:
            if session.token or session.replaced:
                _delete([*session.replaced, *([session.token] if session.token else [])])
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app))
            return
        if not session.modified:
            return
        values = self._row_values(app, session)
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            with db.engine.begin() as connection:
                if session.replaced:
                    connection.execute(
                        delete(WebSession).where(WebSession.id.in_(map(digest, session.replaced)))
                    )
                connection.execute(insert(WebSession).values(id=digest(session.token), **values))
        else:
            with db.engine.begin() as connection:
                stored = connection.execute(
                    update(WebSession).where(WebSession.id == digest(session.token)).values(**values)
                )
            if stored.rowcount == 0:  # ended while this request ran: it stays ended
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app))
                return
        response.set_cookie(
            name,
            session.token,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=domain,
            path=path,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    def _row_values(self, app: Flask, session: ServerSession) -> dict[str, Any]:
        now = utcnow()
        account = session.get(ACCOUNT_KEY) or {}
        absolute = timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])
        if account:
            signed_in = datetime.fromtimestamp(account["signed_in_at"], tz=now.tzinfo)
            idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
            expires = min(now + idle, signed_in + absolute)
        else:
            expires = now + absolute
        return {
            "account_key": account.get("key"),
            "data": self.serializer.dumps(dict(session)),
            "last_seen_at": now,
            "expires_at": expires,
            **({"created_at": now} if session.token is None else {}),
        }


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
