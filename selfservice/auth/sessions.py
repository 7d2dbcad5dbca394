"""Who is signed in: a snapshot of the account kept in the signed session cookie.

The snapshot is taken at sign-in, so pages don't query the directory on every
request; the idle timeout bounds how stale it can get.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, session
from flask_login import AnonymousUserMixin, UserMixin, current_user, login_user, logout_user

from selfservice.directory.interfaces import Account, AccountKind, Role
from selfservice.extensions import login_manager
from selfservice.i18n import _l
from selfservice.timeutil import utcnow

F = TypeVar("F", bound=Callable[..., Any])
SNAPSHOT_KEY = "account"


@dataclass(frozen=True)
class PortalUser(UserMixin):
    key: str
    login: str
    kind: AccountKind
    display_name: str
    roles: frozenset[Role]
    signed_in_at: float

    def get_id(self) -> str:
        return self.key

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)


def start_session(account: Account) -> PortalUser:
    """Sign ``account`` in on a fresh session (a new session id: no fixation)."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(16)
    session["last_seen"] = utcnow().timestamp()
    user = PortalUser(
        key=account.key,
        login=account.login,
        kind=account.kind,
        display_name=account.display_name,
        roles=account.roles,
        signed_in_at=utcnow().timestamp(),
    )
    session[SNAPSHOT_KEY] = {
        "key": user.key,
        "login": user.login,
        "kind": user.kind.value,
        "display_name": user.display_name,
        "roles": sorted(role.value for role in user.roles),
        "signed_in_at": user.signed_in_at,
    }
    login_user(user)
    return user


def end_session() -> None:
    logout_user()
    session.clear()


def role_required(*roles: Role) -> Callable[[F], F]:
    """Signed-in users with one of ``roles`` only; others get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _load_user(key: str) -> PortalUser | None:
    snapshot = session.get(SNAPSHOT_KEY)
    if not snapshot or snapshot.get("key") != key:
        return None
    return PortalUser(
        key=snapshot["key"],
        login=snapshot["login"],
        kind=AccountKind(snapshot["kind"]),
        display_name=snapshot["display_name"],
        roles=frozenset(Role(role) for role in snapshot["roles"]),
        signed_in_at=snapshot["signed_in_at"],
    )


def _expire_idle_session() -> None:
    """Sign out a session left idle longer than SESSION_IDLE_MINUTES."""
    now = utcnow().timestamp()
    last_seen = session.get("last_seen")
    idle_seconds = current_app.config["SESSION_IDLE_MINUTES"] * 60
    if SNAPSHOT_KEY in session and last_seen is not None and now - last_seen > idle_seconds:
        end_session()
        session["expired"] = True
    if SNAPSHOT_KEY in session:
        session["last_seen"] = now


class Anonymous(AnonymousUserMixin):
    roles: frozenset[Role] = frozenset()
    is_staff = False

    def has_role(self, *roles: Role) -> bool:
        return False


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the session is renewed at sign-in instead
    app.before_request(_expire_idle_session)
