"""Rate-limit breaches over a time range: grouped by address, endpoint and limit, and over time.

Breaches are counts (``RateLimitBreach``: one row per address or account, limit,
endpoint and minute), so the page reads at most one row per key and minute however
large a flood was (invariant 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from selfservice.admin.audit_log import Cursor
from selfservice.admin.dashboard import Bucketing, count_by_bucket
from selfservice.extensions import db
from selfservice.security.models import RateLimitBreach

TOP = 10
PAGE_SIZE = 50
#: Up to this span the chart counts per hour; beyond it, per day.
HOURLY_SPAN = timedelta(days=7)


@dataclass(frozen=True)
class Offender:
    value: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class BreachPage:
    """Counted breaches, newest minute first (``events`` for the shared pager macro)."""

    events: list[RateLimitBreach]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class BreachReport:
    total: int
    by_ip: list[Offender]
    by_endpoint: list[Offender]
    by_limit: list[Offender]
    over_time: list[tuple[datetime, int]]
    bucketing: Bucketing
    recent: BreachPage


def breach_report(
    since: datetime, until: datetime, zone: tzinfo, *, ip: str | None = None, cursor: Cursor | None = None
) -> BreachReport:
    """Everything the rate-limit page shows for breaches in [since, until), optionally of one key."""
    conditions = [RateLimitBreach.minute >= since, RateLimitBreach.minute < until]
    if ip:
        conditions.append(RateLimitBreach.key == ip)
    bucketing = Bucketing.HOUR if until - since <= HOURLY_SPAN else Bucketing.DAY
    groups = _groups(conditions)
    weighted = select(RateLimitBreach.minute, RateLimitBreach.count).where(*conditions)
    return BreachReport(
        total=sum(group.count for group in groups),
        by_ip=_top(groups, "ip"),
        by_endpoint=_top(groups, "endpoint"),
        by_limit=_top(groups, "limit"),
        over_time=count_by_bucket(weighted, since, until, zone, bucketing),
        bucketing=bucketing,
        recent=_page(conditions, cursor),
    )


def _page(conditions: list[ColumnElement[bool]], cursor: Cursor | None) -> BreachPage:
    if cursor is not None:
        conditions = [
            *conditions,
            RateLimitBreach.minute <= cursor.created_at,
            or_(RateLimitBreach.minute < cursor.created_at, and_(RateLimitBreach.id < cursor.id)),
        ]
    rows = list(
        db.session.scalars(
            select(RateLimitBreach)
            .where(*conditions)
            .order_by(RateLimitBreach.minute.desc(), RateLimitBreach.id.desc())
            .limit(PAGE_SIZE + 1)
        )
    )
    last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
    return BreachPage(rows[:PAGE_SIZE], Cursor(last.minute, last.id) if last else None)


@dataclass(frozen=True)
class _Group:
    ip: str
    endpoint: str
    limit: str
    count: int
    first_seen: datetime
    last_seen: datetime


def _groups(conditions: list[ColumnElement[bool]]) -> list[_Group]:
    """Breaches summed per (key, endpoint, limit): one scan of the range serves all three tables."""
    row = RateLimitBreach
    statement = (
        select(
            row.key,
            row.endpoint,
            row.limit_name,
            func.sum(row.count),
            func.min(row.minute),
            func.max(row.minute),
        )
        .where(*conditions)
        .group_by(row.key, row.endpoint, row.limit_name)
    )
    return [
        _Group(key or "?", where or "?", rule or "?", int(n), _aware(first), _aware(last))
        for key, where, rule, n, first, last in db.session.execute(statement)
    ]


def _top(groups: list[_Group], name: str) -> list[Offender]:
    """The TOP values of one dimension by breaches (ties by value), with first and last seen."""
    merged: dict[str, Offender] = {}
    for group in groups:
        value = getattr(group, name)
        seen = merged.get(value)
        merged[value] = Offender(
            value,
            group.count + (seen.count if seen else 0),
            min(group.first_seen, seen.first_seen) if seen else group.first_seen,
            max(group.last_seen, seen.last_seen) if seen else group.last_seen,
        )
    return sorted(merged.values(), key=lambda o: (-o.count, o.value))[:TOP]


def _aware(moment: Any) -> datetime:
    """min()/max() skip the column type on some databases: make the result aware UTC again."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
