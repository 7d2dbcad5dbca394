"""The frame of the site: home, health, errors, security headers, language choice."""

from flask import Flask

from selfservice.site import context, errors, headers, inputs, pages, redaction
from selfservice.site.views import blueprint, demo_blueprint


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    if app.config["DEMO"]:
        app.register_blueprint(demo_blueprint)
    context.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    inputs.init_app(app)
    redaction.install()
    pages.init_app(app)
