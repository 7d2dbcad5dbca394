"""Parent account activation (/activate): the Parent Portal's registration."""

from flask import Flask


def init_app(app: Flask) -> None:
    from selfservice.activation.views import blueprint

    app.register_blueprint(blueprint)
