"""Dates read the same from date_names.json as from Babel's own locale data (selfservice.dates)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_datetime_format

from selfservice import dates

STORED = json.loads(dates.DATE_NAMES_FILE.read_text(encoding="utf-8"))
ZONE = "America/New_York"
#: Every weekday and month, morning and afternoon, both sides of a daylight-saving change.
MOMENTS = [datetime(2026, 1, 1, 4, 5, tzinfo=UTC) + timedelta(days=17 * n, hours=7 * n) for n in range(40)]


@pytest.mark.parametrize("language", sorted(STORED))
def test_the_stored_names_are_babels(language: str) -> None:
    """When Babel is upgraded and its names change, run ``python -m selfservice.dates``."""
    assert STORED[language] == dates.babel_date_names(language)


@pytest.mark.parametrize("language", sorted(STORED))
def test_dates_read_as_babel_writes_them(language: str) -> None:
    babel = Locale.parse(language)
    assert dates.day_names(language) == [babel.days["format"]["wide"][n] for n in range(7)]
    for moment in MOMENTS:
        local = dates.in_zone(moment, ZONE)
        day, clock = (
            format_date(local.date(), "full", locale=babel),
            format_time(local.time(), "short", locale=babel),
        )
        assert dates.format_day(local.date(), language) == day
        assert dates.format_clock(local.time(), language) == clock
        pattern = str(get_datetime_format("long", locale=babel)).replace("'", "")
        assert dates.format_moment(moment, language, ZONE) == pattern.format(clock, day)
        assert dates.format_day_short(local.date(), language) == format_date(local, "EEE d MMM", locale=babel)
        assert dates.format_day_short(local.date(), language, weekday=False) == format_date(
            local, "d MMM", locale=babel
        )
        expected = format_datetime(local, "yyyy-MM-dd HH:mm:ss zzz", locale=babel)
        assert dates.format_log_moment(moment, language, ZONE) == expected


def test_a_language_without_stored_names_is_formatted_from_babels_data() -> None:
    assert "de" not in STORED
    assert dates.format_day(date(2026, 12, 2), "de") == "Mittwoch, 2. Dezember 2026"
    assert dates.format_clock(time(14, 30), "de") == "14:30"
