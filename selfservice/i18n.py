"""Languages: an explicit choice (cookie), then the browser's, then the district default."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale, gettext, lazy_gettext, ngettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from selfservice.mail.languages import remember_language

LANGUAGE_COOKIE = "lang"

#: Shown in the language switcher, each in its own language.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "ht": "Kreyòl ayisyen", "fr": "Français"}

#: Browser tags that mean Kreyòl: Haitian phones often ask for French of Haiti (fr-HT)
#: first, and a family reading French in Haiti reads Kreyòl more easily still.
_KREYOL_TAGS = {"ht", "ht-ht", "fr-ht"}

_ = gettext
_l = lazy_gettext
__all__ = [
    "LANGUAGE_COOKIE",
    "LANGUAGE_NAMES",
    "_",
    "_l",
    "best_language",
    "init_app",
    "language_of",
    "ngettext",
    "remember_page_language",
    "select_locale",
]

babel = Babel()


def best_language(accepted: Iterable[str], languages: Sequence[str]) -> str | None:
    """The first of the browser's tags (best first) that one of ``languages`` serves."""
    for tag in accepted:
        tag = tag.strip().lower().replace("_", "-")
        if tag in _KREYOL_TAGS and "ht" in languages:
            return "ht"
        primary = tag.split("-", 1)[0]
        if primary in languages:
            return primary
    return None


def select_locale() -> str:
    if not has_request_context():  # a CLI command or a worker: the district's language
        return current_app.config["DEFAULT_LANGUAGE"]
    return language_of(request.cookies, request.headers.get("Accept-Language", ""), current_app.config)


def language_of(cookies: Mapping[str, str], accept_language: str, config: Mapping[str, Any]) -> str:
    """:func:`select_locale` for a request not (yet) in Flask: its cookies and Accept-Language header."""
    chosen = cookies.get(LANGUAGE_COOKIE)
    if chosen in config["LANGUAGES"]:
        return str(chosen)
    accepted = [tag for tag, _quality in parse_accept_header(accept_language, LanguageAccept)]  # best first
    return best_language(accepted, config["LANGUAGES"]) or config["DEFAULT_LANGUAGE"]


def remember_page_language(account_key: str) -> None:
    """The account holder just proved who they are on a page in this language: mail them in it."""
    remember_language(account_key, str(get_locale()), current_app.config["LANGUAGES"])


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
