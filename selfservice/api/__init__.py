"""The API for the district's other systems: clients, /api/v1, webhooks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from selfservice.api import webhooks
    from selfservice.api.admin import blueprint as admin_pages
    from selfservice.api.views import blueprint

    app.register_blueprint(blueprint)
    app.register_blueprint(admin_pages)
    webhooks.init_app(app)
