"""Languages: an explicit choice (cookie), then the browser's, then the district default."""

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, gettext, lazy_gettext, ngettext

LANGUAGE_COOKIE = "lang"

#: Shown in the language switcher, each in its own language.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "ht": "Kreyòl ayisyen"}

_ = gettext
_l = lazy_gettext
__all__ = ["LANGUAGE_COOKIE", "LANGUAGE_NAMES", "_", "_l", "init_app", "ngettext", "select_locale"]

babel = Babel()


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a CLI command or a worker: the district's language
        return current_app.config["DEFAULT_LANGUAGE"]
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or current_app.config["DEFAULT_LANGUAGE"]


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
