"""Every error kind mapped to a page, in one place."""

from __future__ import annotations

import math

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from selfservice.directory.interfaces import DirectoryUnavailable
from selfservice.extensions import db
from selfservice.i18n import _
from selfservice.limiter import RateLimited
from selfservice.security.work import Busy


def directory_unavailable(error: DirectoryUnavailable) -> tuple[str, int, dict[str, str]]:
    current_app.logger.warning("directory unavailable: %s", error)
    db.session.rollback()
    return render_template("errors/unavailable.html"), 503, {"Retry-After": "60"}


def csrf_failed(error: CSRFError) -> tuple[str, int]:
    message = _(
        "This form had expired or was sent from another page. Please go back, reload it and try again."
    )
    return render_template("errors/http.html", code=400, title=_("Please try again"), message=message), 400


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


def http_error(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    title, message = _messages().get(code, (_("Something went wrong"), error.description or ""))
    if error.description and error.description != type(error).description:
        message = error.description  # a view's own words (abort(400, description=...)) win
    return render_template("errors/http.html", code=code, title=title, message=message), code


def server_error(error: Exception) -> tuple[str, int]:
    original = getattr(error, "original_exception", None) or error
    current_app.logger.error("unhandled error on %s", request.path, exc_info=original)
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
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(RateLimited, rate_limited)
    app.register_error_handler(Busy, busy)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(HTTPException, http_error)
