"""Input no form can use, refused before any view sees it."""

from flask import Flask, abort, request

from selfservice.i18n import _


def refuse_nul_characters() -> None:
    """A NUL character is never part of a name, answer or password, and PostgreSQL can't store one."""
    values = [*request.args.values(), *request.form.values(), request.path]
    if any("\x00" in value for value in values):
        abort(400, description=_("What you sent contains a character that is not allowed."))


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
