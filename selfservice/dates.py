"""Dates and times as account holders and staff read them: one helper for pages and mail.

Every moment is stored in UTC and shown in the district's time zone (TIME_ZONE),
formatted for the reader's language by Babel. Babel has no date data for Haitian
Creole (it prints "2026 M12 2, Wed"), so Kreyòl names and patterns are defined here.
Nothing user-facing is formatted with strftime, and UTC is never shown.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_datetime_format

#: Monday first, as Babel counts days.
KREYOL_DAYS = ("lendi", "madi", "mèkredi", "jedi", "vandredi", "samdi", "dimanch")
KREYOL_MONTHS = (
    "janvye",
    "fevriye",
    "mas",
    "avril",
    "me",
    "jen",
    "jiyè",
    "out",
    "septanm",
    "oktòb",
    "novanm",
    "desanm",
)
KREYOL_DAYS_SHORT = ("len", "mad", "mèk", "jed", "van", "sam", "dim")
KREYOL_MONTHS_SHORT = ("jan", "fev", "mas", "avr", "me", "jen", "jiy", "out", "sep", "okt", "nov", "des")
_KREYOL = "ht"


def in_zone(moment: datetime, zone: str | ZoneInfo) -> datetime:
    """``moment`` in the district's zone (a naive moment is taken as UTC, as stored)."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone)


def day_names(language: str) -> list[str]:
    """The seven day names, Monday first, in ``language``."""
    if language == _KREYOL:
        return list(KREYOL_DAYS)
    names = Locale.parse(language).days["format"]["wide"]
    return [names[index] for index in range(7)]


def format_clock(value: time, language: str) -> str:
    """A time of day, '2:30 PM' or '14:30' as the language writes it."""
    if language == _KREYOL:
        return f"{value.hour:02d}:{value.minute:02d}"
    return format_time(value, "short", locale=language)


def format_day(value: date, language: str) -> str:
    """A whole date with its weekday: 'Wednesday, December 2, 2026', 'mèkredi 2 desanm 2026'."""
    if language == _KREYOL:
        return f"{KREYOL_DAYS[value.weekday()]} {value.day} {KREYOL_MONTHS[value.month - 1]} {value.year}"
    return format_date(value, "full", locale=language)


def format_day_short(value: date, language: str, *, weekday: bool = True) -> str:
    """A day for a chart label: 'Wed 2 Dec' (or '2 Dec' without the weekday), 'mèk 2 des'."""
    if language == _KREYOL:
        day = f"{value.day} {KREYOL_MONTHS_SHORT[value.month - 1]}"
        return f"{KREYOL_DAYS_SHORT[value.weekday()]} {day}" if weekday else day
    return format_date(value, "EEE d MMM" if weekday else "d MMM", locale=language)


def format_log_moment(moment: datetime, language: str, zone: str | ZoneInfo) -> str:
    """A moment for logs and tables: '2026-12-02 14:14:05 EST', exact and sortable, in the district zone."""
    return format_datetime(in_zone(moment, zone), "yyyy-MM-dd HH:mm:ss zzz", locale=language)


def format_moment(moment: datetime, language: str, zone: str | ZoneInfo) -> str:
    """A stored moment as the reader's local date and time, e.g. 'mercredi 2 décembre 2026 à 14:14'."""
    local = in_zone(moment, zone)
    day, clock = format_day(local.date(), language), format_clock(local.time(), language)
    if language == _KREYOL:
        return f"{day} a {clock}"
    pattern = get_datetime_format("long", locale=language)
    return str(pattern).replace("'", "").format(clock, day)
