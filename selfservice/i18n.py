"""Languages: an explicit choice (cookie), then the browser's, then the district default."""

from collections.abc import Iterable, Sequence

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale, gettext, lazy_gettext, ngettext

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
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a CLI command or a worker: the district's language
        return current_app.config["DEFAULT_LANGUAGE"]
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in languages:
        return chosen
    accepted = [tag for tag, _quality in request.accept_languages]  # already best first
    return best_language(accepted, languages) or current_app.config["DEFAULT_LANGUAGE"]


def remember_page_language(account_key: str) -> None:
    """The account holder just proved who they are on a page in this language: mail them in it."""
    remember_language(account_key, str(get_locale()), current_app.config["LANGUAGES"])


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
