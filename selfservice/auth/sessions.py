"""Who is signed in: a snapshot of the account kept in the server-side session.

The snapshot is taken at sign-in, so pages don't query the directory on every
request. Before each request (DESIGN invariants 9, 17 and 18):

1. a session idle longer than SESSION_IDLE_MINUTES, or older than
   SESSION_ABSOLUTE_HOURS, is signed out;
2. the account is read again from the directory (staff: every request; others every
   SESSION_RECHECK_SECONDS): gone, disabled, or with other roles than the snapshot's,
   every session of the account ends; told to change its password since, the session
   takes the must-change state of step 3;
3. a session whose password must change reaches only the change-password page and
   sign-out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import AnonymousUserMixin, UserMixin, current_user, login_user, logout_user

from selfservice.auth import store
from selfservice.directory.interfaces import Account, AccountKind, Role
from selfservice.extensions import login_manager
from selfservice.i18n import _, _l
from selfservice.timeutil import utcnow

F = TypeVar("F", bound=Callable[..., Any])
SNAPSHOT_KEY = store.ACCOUNT_KEY
#: Where a session whose password must change may go (and the pages every page needs).
MUST_CHANGE_ENDPOINTS = frozenset(
    {"portal.change_password", "auth.logout", "static", "site.choose_language", "auth.login"}
)


@dataclass(frozen=True)
class PortalUser(UserMixin):
    key: str
    login: str
    kind: AccountKind
    display_name: str
    roles: frozenset[Role]
    signed_in_at: float
    must_change: bool = False

    def get_id(self) -> str:
        return self.key

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)


def start_session(account: Account, *, signed_in_at: float | None = None) -> PortalUser:
    """Sign ``account`` in on a fresh session (a new session id: no fixation)."""
    language = session.get("lang")
    session.clear()
    _rotate()
    if language:
        session["lang"] = language
    session.permanent = True
    now = utcnow().timestamp()
    session["last_seen"] = now
    session["checked_at"] = now
    user = PortalUser(
        key=account.key,
        login=account.login,
        kind=account.kind,
        display_name=account.display_name,
        roles=account.roles,
        signed_in_at=signed_in_at or now,
        must_change=account.must_change,
    )
    session[SNAPSHOT_KEY] = {
        "key": user.key,
        "login": user.login,
        "kind": user.kind.value,
        "display_name": user.display_name,
        "roles": sorted(role.value for role in user.roles),
        "signed_in_at": user.signed_in_at,
        "must_change": user.must_change,
    }
    login_user(user)
    return user


def end_session() -> None:
    """Sign this browser out: its session row goes, and the cookie with it."""
    logout_user()
    session.clear()
    _rotate()


def _rotate() -> None:
    rotate = getattr(session, "rotate", None)
    if rotate is not None:
        rotate()


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
        must_change=bool(snapshot.get("must_change")),
    )


def _check_session() -> ResponseReturnValue | None:
    """Steps 1-3 of the module docstring, before every request."""
    snapshot = session.get(SNAPSHOT_KEY)
    if not snapshot:
        return None
    now = utcnow().timestamp()
    config = current_app.config
    idle = now - session.get("last_seen", now) > config["SESSION_IDLE_MINUTES"] * 60
    too_old = now - snapshot["signed_in_at"] > config["SESSION_ABSOLUTE_HOURS"] * 3600
    if idle or too_old:
        end_session()
        session["expired"] = True
        return None
    session["last_seen"] = now
    if _recheck_due(snapshot, now) and not _still_valid(snapshot):
        store.end_sessions(snapshot["key"])
        end_session()
        flash(_("Your account changed, so you were signed out. Please sign in again."), "info")
        return None
    if session[SNAPSHOT_KEY].get("must_change") and request.endpoint not in MUST_CHANGE_ENDPOINTS:
        flash(_("Please choose a new password before you go on."), "info")
        return redirect(url_for("portal.change_password"), code=303)
    return None


def _recheck_due(snapshot: dict[str, Any], now: float) -> bool:
    every = 0 if snapshot["roles"] else current_app.config["SESSION_RECHECK_SECONDS"]
    return now - session.get("checked_at", 0) >= every


def _still_valid(snapshot: dict[str, Any]) -> bool:
    """Whether the directory still knows the account, enabled, with the snapshot's roles."""
    from selfservice.directory import get_directory  # the directory is built after this module

    account = get_directory().get(snapshot["key"])
    session["checked_at"] = utcnow().timestamp()
    if account is None or account.disabled:
        return False
    if account.must_change and not snapshot.get("must_change"):
        # Told to change it while signed in (an administrator's flag, AD's pwdLastSet=0): from
        # now on this session reaches only the change page, as a fresh sign-in would.
        session[SNAPSHOT_KEY] = {**snapshot, "must_change": True}
    return sorted(role.value for role in account.roles) == snapshot["roles"]


class Anonymous(AnonymousUserMixin):
    roles: frozenset[Role] = frozenset()
    is_staff = False
    must_change = False

    def has_role(self, *roles: Role) -> bool:
        return False


def init_app(app: Flask) -> None:
    store.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the session is renewed at sign-in instead
    app.before_request(_check_session)
