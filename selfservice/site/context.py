"""Names every template can use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_datetime, format_time, get_day_names
from flask import Flask, current_app, url_for
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.routing import BuildError

from selfservice.directory.interfaces import Role
from selfservice.helpdesk.hours import SupportHours
from selfservice.i18n import LANGUAGE_NAMES, _


def describe_hours(hours: SupportHours) -> str:
    """'Monday, Tuesday, … 7:30 AM to 4:30 PM (America/New_York)' in the page's language."""
    locale = get_locale()
    names = get_day_names("wide", locale=locale)
    days = ", ".join(names[index] for index in sorted(hours.days))
    today = datetime.now(hours.zone).date()
    opens = format_time(datetime.combine(today, hours.opens), "short", locale=locale)
    closes = format_time(datetime.combine(today, hours.closes), "short", locale=locale)
    return _(
        "%(days)s, %(opens)s to %(closes)s (%(zone)s time)",
        days=days,
        opens=opens,
        closes=closes,
        zone=hours.zone.key,
    )


def describe_moment(moment: datetime) -> str:
    return format_datetime(moment, "full", tzinfo=moment.tzinfo, locale=get_locale())


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
        "staff_nav": staff_nav,
        "support_hours": lambda: SupportHours.from_settings(current_app.config),
    }


def init_app(app: Flask) -> None:
    app.context_processor(_context)
