"""Signing in and out of the portal, sessions and role checks."""

from flask import Flask

from selfservice.auth import sessions
from selfservice.auth.admin import blueprint as admin_blueprint
from selfservice.auth.views import blueprint


def init_app(app: Flask) -> None:
    sessions.init_app(app)
    app.register_blueprint(blueprint)
    app.register_blueprint(admin_blueprint)
