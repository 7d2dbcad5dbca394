"""Reading the moments admins and operators type: '2026-03-01', '2026-03-01T08:30', '7d', '48h'."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_RELATIVE = re.compile(r"^([0-9]{1,5})\s*([dh])$")


def parse_moment(text: str, zone: tzinfo, *, now: datetime, end_of_day: bool = False) -> datetime:
    """An aware UTC datetime for ``text``; raise ValueError when it is not a moment.

    ``Nd``/``Nh`` mean that long before ``now``. A date alone means the start of that
    day in ``zone`` (or the start of the next day with ``end_of_day``, so a range "to
    2026-03-01" includes that day). A time without an offset is read in ``zone``.
    """
    text = text.strip()
    relative = _RELATIVE.match(text.lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=zone)
        return start.astimezone(UTC)
    moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
