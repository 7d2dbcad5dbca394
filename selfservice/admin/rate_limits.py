"""Rate-limit breaches over a time range: grouped by IP, endpoint and limit, and over time.

Each breach is an audit event (tag RATE_LIMIT_BREACH) whose details hold the
limit, the limiter key, the endpoint and the method; the IP is a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from selfservice.admin.audit_log import AuditQuery, Cursor, Page, page
from selfservice.admin.dashboard import Bucketing, count_by_bucket
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db

TOP = 10
#: Up to this span the chart counts per hour; beyond it, per day.
HOURLY_SPAN = timedelta(days=7)


@dataclass(frozen=True)
class Offender:
    value: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class BreachReport:
    total: int
    by_ip: list[Offender]
    by_endpoint: list[Offender]
    by_limit: list[Offender]
    over_time: list[tuple[datetime, int]]
    bucketing: Bucketing
    recent: Page


def breach_report(
    since: datetime, until: datetime, zone: tzinfo, *, ip: str | None = None, cursor: Cursor | None = None
) -> BreachReport:
    """Everything the rate-limit page shows for breaches in [since, until), optionally from one IP."""
    query = AuditQuery(tags=(str(Tag.RATE_LIMIT_BREACH),), ip=ip, since=since, until=until)
    bucketing = Bucketing.HOUR if until - since <= HOURLY_SPAN else Bucketing.DAY
    groups = _groups(query.conditions())
    return BreachReport(
        total=sum(group.count for group in groups),
        by_ip=_top(groups, "ip"),
        by_endpoint=_top(groups, "endpoint"),
        by_limit=_top(groups, "limit"),
        over_time=count_by_bucket(
            select(AuditEvent.created_at).where(*query.conditions()), since, until, zone, bucketing
        ),
        bucketing=bucketing,
        recent=page(query, cursor),
    )


@dataclass(frozen=True)
class _Group:
    ip: str
    endpoint: str
    limit: str
    count: int
    first_seen: datetime
    last_seen: datetime


def _groups(conditions: list[ColumnElement[bool]]) -> list[_Group]:
    """Breaches counted per (IP, endpoint, limit): one scan of the range serves all three tables."""
    endpoint = AuditEvent.details["endpoint"].as_string()
    limit = AuditEvent.details["limit"].as_string()
    statement = (
        select(
            AuditEvent.ip,
            endpoint,
            limit,
            func.count(),
            func.min(AuditEvent.created_at),
            func.max(AuditEvent.created_at),
        )
        .where(*conditions)
        .group_by(AuditEvent.ip, endpoint, limit)
    )
    return [
        _Group(ip or "?", where or "?", rule or "?", n, _aware(first), _aware(last))
        for ip, where, rule, n, first, last in db.session.execute(statement)
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
