"""Signing in and out of the portal, sessions and role checks."""

from flask import Flask, request
from flask_login import current_user
from werkzeug.exceptions import Forbidden

from selfservice.audit.services import record
from selfservice.audit.tags import Tag
from selfservice.auth import sessions
from selfservice.auth.admin import blueprint as admin_blueprint
from selfservice.auth.views import blueprint


def init_app(app: Flask) -> None:
    sessions.init_app(app)
    app.register_blueprint(blueprint)
    app.register_blueprint(admin_blueprint)
    app.register_error_handler(Forbidden, _access_denied)


def _access_denied(error: Forbidden) -> tuple[str, int]:
    """Every refused access decision is an audit event (ASVS 7.2.2), then the usual 403 page."""
    from selfservice.site.errors import http_error
    from selfservice.web import current_origin

    login = current_user.login if current_user.is_authenticated else None
    record(
        Tag.ACCESS_DENIED,
        outcome="refused",
        origin=current_origin(),
        actor=login,
        details={"method": request.method, "path": request.path[:200]},
    )
    return http_error(error)
