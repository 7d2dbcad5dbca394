"""Every error kind mapped to a page, in one place."""

from __future__ import annotations

import math

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, get_locale
from flask_wtf.csrf import CSRFError
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError

from selfservice.api.errors import json_error
from selfservice.dbtypes import DATABASE_UNAVAILABLE
from selfservice.directory.interfaces import DirectoryUnavailable
from selfservice.extensions import db
from selfservice.i18n import _
from selfservice.limiter import RateLimited
from selfservice.security.work import Busy
from selfservice.site.redaction import redact

RETRY_AFTER = {"Retry-After": "60"}
Page = tuple[str, int, dict[str, str]]

# Outages look alike (whichever part is down): the 503 page with Retry-After, and one log
# line that names the part, never the statement, its parameters or a token in the path.


def directory_unavailable(error: DirectoryUnavailable) -> Page:
    current_app.logger.warning("directory unavailable: %s", error)
    return _unavailable()


def database_unavailable(error: DBAPIError) -> Page:
    """Connection lost, read-only, disk full, locked (``dbtypes.DATABASE_UNAVAILABLE``).

    (Constraint and programming errors are other DBAPIError kinds: they stay 500s, and logged.)
    """
    current_app.logger.warning("database unavailable: %s", type(error.orig).__name__)
    return _unavailable()


def limiter_unavailable(error: Exception) -> Page:
    current_app.logger.warning("rate-limit storage unavailable: %s", type(error).__name__)
    return _unavailable()


def _unavailable() -> Page:
    db.session.rollback()
    return render_template("errors/unavailable.html"), 503, RETRY_AFTER


def password_not_changed(retry_url: str) -> Page:
    """A password write the directory never took: say so, and that the page still works."""
    db.session.rollback()
    page = render_template("portal/password_not_changed.html", retry_url=retry_url)
    return page, 503, RETRY_AFTER


def password_unconfirmed(retry_url: str | None = None) -> tuple[str, int]:
    """A password write that got no answer: what we know, and what the person can do now."""
    return render_template("portal/password_unconfirmed.html", retry_url=retry_url), 202


def account_disabled(kind: str | None = None) -> tuple[str, int]:
    """A password refused because an administrator disabled the account: nothing was written."""
    return render_template("site/account_disabled.html", kind=kind), 403


def csrf_failed(error: CSRFError) -> tuple[str, int]:
    """A stale or foreign form; a language switch that failed still answers in the language chosen."""
    chosen = request.form.get("language") if request.endpoint == "site.choose_language" else None
    with force_locale(chosen if chosen in current_app.config["LANGUAGES"] else get_locale()):
        message = _(
            "This form had expired or was sent from another page. Please go back, reload it and try again."
        )
        page = render_template("errors/http.html", code=400, title=_("Please try again"), message=message)
    return page, 400


def rate_limited(error: RateLimited) -> tuple[str, int, dict[str, str]]:
    """A per-account limit (per-address ones are refused before Flask: security/throttling.py)."""
    db.session.rollback()
    minutes = max(1, math.ceil(error.resets_in / 60))
    page = render_template("errors/rate_limited.html", minutes=minutes, per_account=error.scope == "account")
    return page, 429, {"Retry-After": str(error.resets_in)}


def busy(error: Busy) -> tuple[str, int, dict[str, str]]:
    """Too many answer checks at once: the person tries again shortly, nothing was counted."""
    db.session.rollback()
    message = _(
        "The portal is very busy right now. Nothing was counted against you: please try again in a minute."
    )
    page = render_template("errors/http.html", code=503, title=_("Please try again"), message=message)
    return page, 503, {"Retry-After": str(error.retry_after)}


def http_error(error: HTTPException) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return json_error(error)  # other systems get JSON, even for a path that matches no route
    code = error.code or 500
    title, message = _messages().get(code, (_("Something went wrong"), error.description or ""))
    if error.description and error.description != type(error).description:
        message = error.description  # a view's own words (abort(400, description=...)) win
    return render_template("errors/http.html", code=code, title=title, message=message), code


def server_error(error: Exception) -> tuple[str, int]:
    original = getattr(error, "original_exception", None) or error
    current_app.logger.error("unhandled error on %s", redact(request.path), exc_info=original)
    db.session.rollback()
    title, message = _messages()[500]
    return render_template("errors/http.html", code=500, title=title, message=message), 500


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Please check what you sent"), _("The request could not be understood.")),
        403: (_("Not allowed"), _("Your account does not have access to this page.")),
        404: (_("Page not found"), _("There is no page at this address.")),
        405: (_("Not allowed"), _("This page cannot be used that way.")),
        413: (_("Too much data"), _("What you sent is too large.")),
        500: (_("Something went wrong"), _("Nothing you saved was lost. Please try again in a few minutes.")),
    }


def init_app(app: Flask) -> None:
    app.register_error_handler(DirectoryUnavailable, directory_unavailable)
    for database_error in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_error, database_unavailable)
    for storage_error in _limiter_storage_errors(app.config["RATELIMIT_STORAGE_URI"]):
        app.register_error_handler(storage_error, limiter_unavailable)
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(RateLimited, rate_limited)
    app.register_error_handler(Busy, busy)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(HTTPException, http_error)


def _limiter_storage_errors(storage_uri: str) -> tuple[type[Exception], ...]:
    """What the limiter's storage raises when it is down (Redis's own only when it is Redis)."""
    if "redis" not in storage_uri.split("://", 1)[0]:  # no worker loads the client it does not use
        return (StorageError,)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:
        return (StorageError,)
    return (StorageError, RedisConnectionError, RedisTimeoutError)
