"""When help-desk staff are at work (the evening desk was discontinued)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SupportHours:
    days: frozenset[int]
    opens: time
    closes: time
    zone: ZoneInfo
    holidays: frozenset[date]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SupportHours:
        return cls(
            days=frozenset(DAY_NAMES.index(day.lower()[:3]) for day in settings["SUPPORT_DAYS"]),
            opens=time.fromisoformat(settings["SUPPORT_OPENS"]),
            closes=time.fromisoformat(settings["SUPPORT_CLOSES"]),
            zone=ZoneInfo(settings["TIME_ZONE"]),
            holidays=frozenset(date.fromisoformat(day) for day in settings["SUPPORT_HOLIDAYS"]),
        )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return self.is_working_day(local.date()) and self.opens <= local.time() < self.closes

    def next_pickup(self, moment: datetime) -> datetime:
        """When staff will next be at work: ``moment`` itself during hours."""
        local = moment.astimezone(self.zone)
        if self.is_open(local):
            return local
        day = local.date() if local.time() < self.opens else local.date() + timedelta(days=1)
        for _ in range(366):
            if self.is_working_day(day):
                return datetime.combine(day, self.opens, tzinfo=self.zone)
            day += timedelta(days=1)
        raise ValueError("no working day within a year: check SUPPORT_DAYS and SUPPORT_HOLIDAYS")

    def working_day_names(self) -> list[str]:
        return [DAY_NAMES[index] for index in sorted(self.days)]
