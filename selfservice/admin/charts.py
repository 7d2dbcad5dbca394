"""Bar charts drawn on the server as SVG: geometry here, markup in templates/admin/_charts.html.

No script and no style element: colours are SVG presentation attributes, which the
Content-Security-Policy allows. Every chart is shown next to a table of its numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from flask_babel import format_time, get_locale

from selfservice.admin.dashboard import Bucketing, Overview
from selfservice.dates import format_day_short
from selfservice.i18n import _

#: Distinguishable for common colour-vision deficiencies (Okabe-Ito blue and orange, plus grey).
PALETTE = ("#0072B2", "#D55E00", "#6B6B6B")

WIDTH = 720
HEIGHT = 240
LEFT = 48
RIGHT = 12
TOP = 28
BOTTOM = 40
MAX_LABELS = 12


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str
    series: str
    fill: str


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class LegendItem:
    x: float
    name: str
    fill: str


@dataclass
class BarChart:
    """Grouped bars: one group per label, one bar per series."""

    id: str
    title: str
    labels: Sequence[str]
    series: Sequence[Series]
    label_heading: str = ""
    #: Shorter labels under the axis (the table and tooltips keep the full ones).
    short_labels: Sequence[str] | None = None
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(init=False)
    ticks: list[Tick] = field(init=False)
    x_labels: list[XLabel] = field(init=False)
    legend: list[LegendItem] = field(init=False)

    def __post_init__(self) -> None:
        self.bars, self.ticks, self.x_labels = self._geometry()
        self.legend = [
            LegendItem(LEFT + index * 180, s.name, PALETTE[index % len(PALETTE)])
            for index, s in enumerate(self.series)
        ]

    @property
    def plot_bottom(self) -> float:
        return self.height - BOTTOM

    @property
    def plot_right(self) -> float:
        return self.width - RIGHT

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        """The table under the chart: one row per label, one column per series."""
        return [(label, [s.values[i] for s in self.series]) for i, label in enumerate(self.labels)]

    @property
    def total(self) -> int:
        return sum(sum(s.values) for s in self.series)

    def _geometry(self) -> tuple[list[Bar], list[Tick], list[XLabel]]:
        top_value = nice_ceiling(max((max(s.values, default=0) for s in self.series), default=0))
        plot_height = self.height - TOP - BOTTOM
        slot = (self.width - LEFT - RIGHT) / max(len(self.labels), 1)
        gap = slot * 0.15
        bar_width = (slot - gap) / max(len(self.series), 1)
        bars = []
        for index, label in enumerate(self.labels):
            for number, series in enumerate(self.series):
                value = series.values[index]
                height = plot_height * value / top_value
                bars.append(
                    Bar(
                        x=round(LEFT + index * slot + gap / 2 + number * bar_width, 2),
                        y=round(TOP + plot_height - height, 2),
                        width=round(max(bar_width, 0.5), 2),
                        height=round(height, 2),
                        value=value,
                        label=label,
                        series=series.name,
                        fill=PALETTE[number % len(PALETTE)],
                    )
                )
        ticks = [
            Tick(round(TOP + plot_height * (1 - step / 4), 2), top_value * step // 4) for step in range(5)
        ]
        every = max(1, -(-len(self.labels) // MAX_LABELS))
        short = self.short_labels or self.labels
        x_labels = [
            XLabel(round(LEFT + index * slot + slot / 2, 2), short[index])
            for index in range(len(self.labels))
            if index % every == 0
        ]
        return bars, ticks, x_labels


def nice_ceiling(value: int) -> int:
    """A round top for the value axis, at or above ``value``, split into four whole-number steps."""
    magnitude = 1
    while True:
        for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
            size = step * magnitude
            if size == int(size) and 4 * size >= value:
                return int(4 * size)
        magnitude *= 10


def dashboard_charts(overview: Overview) -> dict[str, BarChart]:
    """The dashboard's charts, labelled in the page's language."""
    resets = overview.resets
    found = {
        "resets": BarChart(
            id="chart-resets",
            title=_("Password resets per day: self-service and assisted"),
            label_heading=_("Day"),
            labels=[format_day_short(d.day, _language()) for d in resets.days],
            short_labels=[format_day_short(d.day, _language(), weekday=False) for d in resets.days],
            series=[
                Series(_("Self-service (questions)"), [d.self_service for d in resets.days]),
                Series(_("Assisted (help-desk link)"), [d.assisted for d in resets.days]),
            ],
        ),
        "hourly": _pair_chart(
            "chart-hourly",
            _("Lockouts and rate-limit breaches per hour, last 48 hours"),
            _("Hour starting"),
            overview.lockouts_hourly,
            overview.breaches_hourly,
            Bucketing.HOUR,
        ),
        "daily": _pair_chart(
            "chart-daily",
            _("Lockouts and rate-limit breaches per day, last 30 days"),
            _("Day"),
            overview.lockouts_daily,
            overview.breaches_daily,
            Bucketing.DAY,
        ),
        "coverage": BarChart(
            id="chart-coverage",
            title=_("Enrollment coverage, last %(days)d days", days=overview.coverage.days),
            label_heading=_("Accounts"),
            labels=[_("Seen"), _("Enrolled")],
            series=[Series(_("Accounts"), [overview.coverage.seen, overview.coverage.enrolled])],
        ),
    }
    if overview.help_desk is not None:
        loads = overview.help_desk
        found["help_desk"] = BarChart(
            id="chart-help-desk",
            title=_("Open help requests per queue, by age"),
            label_heading=_("Queue"),
            labels=[_(load.label) for load in loads],
            series=[
                Series(_("Under a day"), [load.under_a_day for load in loads]),
                Series(_("1 to 3 days"), [load.one_to_three_days for load in loads]),
                Series(_("Over 3 days"), [load.over_three_days for load in loads]),
            ],
        )
    return found


def _pair_chart(
    chart_id: str,
    title: str,
    heading: str,
    lockouts: list[tuple[datetime, int]],
    breaches: list[tuple[datetime, int]],
    bucketing: Bucketing,
) -> BarChart:
    moments = [start for start, _count in lockouts]
    return BarChart(
        id=chart_id,
        title=title,
        label_heading=heading,
        labels=[bucket_label(m, bucketing) for m in moments],
        short_labels=[short_label(m, bucketing) for m in moments],
        series=[
            Series(_("Lockouts"), [count for _start, count in lockouts]),
            Series(_("Rate-limit breaches"), [count for _start, count in breaches]),
        ],
    )


def breach_chart(over_time: list[tuple[datetime, int]], bucketing: Bucketing, zone: tzinfo) -> BarChart:
    moments = [start for start, _count in over_time]
    title = _("Breaches per hour") if bucketing is Bucketing.HOUR else _("Breaches per day")
    return BarChart(
        id="chart-breaches",
        title=title,
        label_heading=_("Hour starting") if bucketing is Bucketing.HOUR else _("Day"),
        labels=[bucket_label(m, bucketing) for m in moments],
        short_labels=[short_label(m, bucketing) for m in moments],
        series=[Series(_("Breaches"), [count for _start, count in over_time])],
    )


def bucket_label(moment: datetime, bucketing: Bucketing) -> str:
    day = format_day_short(moment.date(), _language())  # Babel has no Kreyòl names: selfservice.dates
    if bucketing is Bucketing.HOUR:
        return f"{day} {format_time(moment, 'HH:mm', rebase=False)}"
    return day


def short_label(moment: datetime, bucketing: Bucketing) -> str:
    if bucketing is Bucketing.HOUR:
        return format_time(moment, "HH:mm", rebase=False)
    return format_day_short(moment.date(), _language(), weekday=False)


def _language() -> str:
    return str(get_locale())
