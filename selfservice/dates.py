"""Dates and times as account holders and staff read them: one helper for pages and mail.

Every moment is stored in UTC and shown in the district's time zone (TIME_ZONE),
formatted for the reader's language by Babel. Babel has no date data for Haitian
Creole (it prints "2026 M12 2, Wed"), so Kreyòl names and patterns are defined here.
Nothing user-facing is formatted with strftime, and UTC is never shown.

Babel's formatting runs on a :class:`_DatesLocale`: the day and month names, day periods
and date, time and date-time patterns of en, es and fr come from date_names.json, a copy
of Babel's own (tests/site/test_dates.py keeps it equal; ``python -m selfservice.dates``
rewrites it). Reading them from Babel loads its whole locale data and global data, about
4 MB held for good by every worker on its first page with a date or its first reset
notice (issue 17, P5); anything else (time-zone names, another language) still comes from
Babel's data.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_datetime_format, parse_pattern
from babel.localedata import LocaleDataDict

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

DATE_NAMES_FILE = Path(__file__).with_name("date_names.json")
#: The Babel locale data read for dates and times; patterns are kept as their strings.
DATE_KEYS = ("days", "months", "day_periods", "date_formats", "time_formats", "datetime_formats")
_PATTERN_KEYS = ("date_formats", "time_formats")
_NUMBERED_KEYS = ("days", "months")  # JSON keeps their weekday and month numbers as strings


class _DatesLocale(Locale):
    """Babel's Locale with the names and patterns of DATE_KEYS from date_names.json."""

    def __init__(self, language: str, names: dict[str, Any]) -> None:
        super().__init__(language)
        self._names = LocaleDataDict(names)

    days = property(lambda self: self._names["days"])
    months = property(lambda self: self._names["months"])
    day_periods = property(lambda self: self._names["day_periods"])
    date_formats = property(lambda self: self._names["date_formats"])
    time_formats = property(lambda self: self._names["time_formats"])
    datetime_formats = property(lambda self: self._names["datetime_formats"])


@functools.cache
def _locale(language: str) -> Locale:
    """The Locale Babel formats ``language`` with: from date_names.json when it is there."""
    stored = json.loads(DATE_NAMES_FILE.read_text(encoding="utf-8")).get(language)
    if stored is None:
        return Locale.parse(language)
    names = {key: stored[key] for key in DATE_KEYS}
    for key in _NUMBERED_KEYS:  # {context: {width: {number: name}}}
        names[key] = {
            context: {width: {int(n): name for n, name in found.items()} for width, found in widths.items()}
            for context, widths in names[key].items()
        }
    for key in _PATTERN_KEYS:
        names[key] = {width: parse_pattern(pattern) for width, pattern in names[key].items()}
    return _DatesLocale(language, names)


def babel_date_names(language: str) -> dict[str, Any]:
    """DATE_KEYS of ``language`` as Babel's own locale data has them (what date_names.json holds)."""
    data = Locale.parse(language)._data

    def plain(value: Any) -> Any:
        if hasattr(value, "items"):
            return {str(key): plain(item) for key, item in value.items()}
        return getattr(value, "pattern", value)

    return {key: plain(data[key]) for key in DATE_KEYS}


def in_zone(moment: datetime, zone: str | ZoneInfo) -> datetime:
    """``moment`` in the district's zone (a naive moment is taken as UTC, as stored)."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone)


def day_names(language: str) -> list[str]:
    """The seven day names, Monday first, in ``language``."""
    if language == _KREYOL:
        return list(KREYOL_DAYS)
    names = _locale(language).days["format"]["wide"]
    return [names[index] for index in range(7)]


def format_clock(value: time, language: str) -> str:
    """A time of day, '2:30 PM' or '14:30' as the language writes it."""
    if language == _KREYOL:
        return f"{value.hour:02d}:{value.minute:02d}"
    return format_time(value, "short", locale=_locale(language))


def format_day(value: date, language: str) -> str:
    """A whole date with its weekday: 'Wednesday, December 2, 2026', 'mèkredi 2 desanm 2026'."""
    if language == _KREYOL:
        return f"{KREYOL_DAYS[value.weekday()]} {value.day} {KREYOL_MONTHS[value.month - 1]} {value.year}"
    return format_date(value, "full", locale=_locale(language))


def format_day_short(value: date, language: str, *, weekday: bool = True) -> str:
    """A day for a chart label: 'Wed 2 Dec' (or '2 Dec' without the weekday), 'mèk 2 des'."""
    if language == _KREYOL:
        day = f"{value.day} {KREYOL_MONTHS_SHORT[value.month - 1]}"
        return f"{KREYOL_DAYS_SHORT[value.weekday()]} {day}" if weekday else day
    return format_date(value, "EEE d MMM" if weekday else "d MMM", locale=_locale(language))


def format_log_moment(moment: datetime, language: str, zone: str | ZoneInfo) -> str:
    """A moment for logs and tables: '2026-12-02 14:14:05 EST', exact and sortable, in the district zone."""
    return format_datetime(in_zone(moment, zone), "yyyy-MM-dd HH:mm:ss zzz", locale=_locale(language))


def format_moment(moment: datetime, language: str, zone: str | ZoneInfo) -> str:
    """A stored moment as the reader's local date and time, e.g. 'mercredi 2 décembre 2026 à 14:14'."""
    local = in_zone(moment, zone)
    day, clock = format_day(local.date(), language), format_clock(local.time(), language)
    if language == _KREYOL:
        return f"{day} a {clock}"
    pattern = get_datetime_format("long", locale=_locale(language))
    return str(pattern).replace("'", "").format(clock, day)


if __name__ == "__main__":  # python -m selfservice.dates: rewrite date_names.json from Babel
    languages = sys.argv[1:] or ["en", "es", "fr"]
    table = {language: babel_date_names(language) for language in languages}
    DATE_NAMES_FILE.write_text(
        json.dumps(table, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
