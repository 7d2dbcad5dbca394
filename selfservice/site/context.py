"""Names every template can use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app, url_for
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.routing import BuildError

from selfservice.dates import day_names, format_clock, format_moment
from selfservice.directory.interfaces import Role
from selfservice.helpdesk.hours import SupportHours
from selfservice.i18n import LANGUAGE_NAMES, _


def describe_hours(hours: SupportHours) -> str:
    """'Monday, Tuesday, … 7:30 AM to 4:30 PM (America/New_York time)' in the page's language."""
    language = str(get_locale())
    names = day_names(language)
    return _(
        "%(days)s, %(opens)s to %(closes)s (%(zone)s time)",
        days=", ".join(names[index] for index in sorted(hours.days)),
        opens=format_clock(hours.opens, language),
        closes=format_clock(hours.closes, language),
        zone=hours.zone.key,
    )


def describe_moment(moment: datetime) -> str:
    """A stored moment in the district's time zone, written for the page's (or mail's) language."""
    return format_moment(moment, str(get_locale()), current_app.config["TIME_ZONE"])


def district_name() -> str:
    """The district's name in the page's language (DISTRICT_NAME_BY_LANGUAGE), else DISTRICT_NAME."""
    config = current_app.config
    return _in_language(config["DISTRICT_NAME_BY_LANGUAGE"]) or config["DISTRICT_NAME"]


def support_hours_note() -> str:
    """The district's own words about its hours in this language, else the standard note."""
    return _in_language(current_app.config["SUPPORT_HOURS_NOTE_BY_LANGUAGE"]) or _(
        "There is no evening help desk. Requests sent after hours are picked up the next working day."
    )


def _in_language(texts: dict[str, str]) -> str:
    return (texts or {}).get(str(get_locale()), "")


def staff_nav() -> list[dict[str, str]]:
    """Links to the staff areas the signed-in user may enter."""
    items = []
    endpoints = [
        ((Role.EMPLOYEE, Role.SUPPORT, Role.ITS, Role.ADMIN), "helpdesk.index", _("Help desk")),
        ((Role.ADMIN,), "admin.dashboard", _("Admin")),
    ]
    for roles, endpoint, label in endpoints:
        if current_user.has_role(*roles):
            try:
                items.append({"url": url_for(endpoint), "label": label})
            except BuildError:  # that area is not installed in this app
                continue
    return items


def _context() -> dict[str, Any]:
    return {
        "language_names": LANGUAGE_NAMES,
        "current_locale": lambda: str(get_locale()),
        "describe_hours": describe_hours,
        "describe_moment": describe_moment,
        "district_name": district_name,
        "support_hours_note": support_hours_note,
        "staff_nav": staff_nav,
        "support_hours": lambda: SupportHours.from_settings(current_app.config),
    }


def init_app(app: Flask) -> None:
    app.context_processor(_context)
