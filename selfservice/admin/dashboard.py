"""The dashboard's numbers: resets (self-service vs assisted), lockouts, breaches, coverage, help desk.

Nothing here counts raw audit events: the writer keeps counts per quarter hour
(``audit_count``) and each account's last activity (``account_activity``,
``staff_activity``) in the transaction that writes each event (selfservice.audit.counts).
The dashboard reads at most 30 days of quarter hours per series and one row per account
seen, whatever the size of the audit log. Days are the district's days (TIME_ZONE), not
UTC's: quarter hours add up to local days exactly in every zone in use today.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, inspect, select, type_coerce
from sqlalchemy.types import NullType

from selfservice.audit.models import AccountActivity, AuditCount, StaffActivity
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.portal.models import Enrollment

HOURS_SHOWN = 48
DAYS_SHOWN = 30
COVERAGE_DAYS = 30


class Bucketing(StrEnum):
    HOUR = "hour"
    DAY = "day"


def count_by_bucket(
    moments: Select[Any], since: datetime, until: datetime, zone: tzinfo, bucketing: Bucketing
) -> list[tuple[datetime, int]]:
    """Counts of the datetimes ``moments`` selects, per hour or per local day, zeros included.

    Rows are read raw (naive UTC, as stored) and placed by bisecting the bucket edges:
    no per-row type conversion or time-zone arithmetic, which dominate otherwise.
    """
    starts = _buckets(since, until, zone, bucketing)
    edges = [start.astimezone(UTC).replace(tzinfo=None) for start in starts]
    counts = [0] * len(starts)
    # A second selected column, when there is one, is a count per row (audit_count, rate_limit_breach).
    raw = moments.with_only_columns(
        type_coerce(moments.selected_columns[0], NullType()), *list(moments.selected_columns)[1:2]
    )
    for value, *weight in db.session.execute(raw.execution_options(yield_per=5_000)):
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        index = bisect_right(edges, moment.replace(tzinfo=None)) - 1
        if index >= 0:
            counts[index] += weight[0] if weight else 1
    return list(zip(starts, counts, strict=True))


def _buckets(since: datetime, until: datetime, zone: tzinfo, bucketing: Bucketing) -> list[datetime]:
    if bucketing is Bucketing.HOUR:
        start = since.replace(minute=0, second=0, microsecond=0)
        hours = int((until - start).total_seconds() // 3600) + (
            1 if (until - start) % timedelta(hours=1) else 0
        )
        return [(start + timedelta(hours=n)).astimezone(zone) for n in range(hours)]
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    days = (last - first).days + 1
    return [
        datetime.combine(first + timedelta(days=n), datetime.min.time(), tzinfo=zone) for n in range(days)
    ]


def tag_counts(tag: Tag, since: datetime, until: datetime) -> Select[Any]:
    """(quarter hour, count) rows of ``tag`` in [since, until), as count_by_bucket takes them."""
    return select(AuditCount.bucket, AuditCount.count).where(
        AuditCount.tag == str(tag), AuditCount.bucket >= since, AuditCount.bucket < until
    )


@dataclass(frozen=True)
class ResetDay:
    day: date
    self_service: int
    assisted: int


@dataclass(frozen=True)
class Resets:
    days: list[ResetDay]

    @property
    def self_service(self) -> int:
        return sum(d.self_service for d in self.days)

    @property
    def assisted(self) -> int:
        return sum(d.assisted for d in self.days)

    @property
    def deflection_rate(self) -> float | None:
        """Share of resets the account holder did alone (None when there were none)."""
        total = self.self_service + self.assisted
        return self.self_service / total if total else None


def resets_per_day(now: datetime, zone: tzinfo, days: int = DAYS_SHOWN) -> Resets:
    """Password resets per local day: through the questions (self-service) or a help-desk link."""
    since = _local_midnight(now, zone) - timedelta(days=days - 1)
    rows = db.session.execute(
        select(AuditCount.bucket, AuditCount.kind, AuditCount.count).where(
            AuditCount.tag == str(Tag.PASSWORD_RESET), AuditCount.bucket >= since
        )
    )
    counts: Counter[tuple[date, str]] = Counter()
    for bucket, kind, count in rows:
        counts[(bucket.astimezone(zone).date(), kind)] += count
    day_list = [since.astimezone(zone).date() + timedelta(days=n) for n in range(days)]
    return Resets([ResetDay(d, counts[(d, "recovery")], counts[(d, "assisted")]) for d in day_list])


def per_hour(tag: Tag, now: datetime, zone: tzinfo, hours: int = HOURS_SHOWN) -> list[tuple[datetime, int]]:
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=hours)
    return count_by_bucket(tag_counts(tag, since, until), since, until, zone, Bucketing.HOUR)


def per_day(tag: Tag, now: datetime, zone: tzinfo, days: int = DAYS_SHOWN) -> list[tuple[datetime, int]]:
    since = _local_midnight(now, zone) - timedelta(days=days - 1)
    return count_by_bucket(tag_counts(tag, since, now), since, now, zone, Bucketing.DAY)


def _local_midnight(now: datetime, zone: tzinfo) -> datetime:
    local = now.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


@dataclass(frozen=True)
class Coverage:
    seen: int
    enrolled: int
    days: int

    @property
    def rate(self) -> float | None:
        return self.enrolled / self.seen if self.seen else None


def enrollment_coverage(now: datetime, days: int = COVERAGE_DAYS) -> Coverage:
    """Of the account holders seen in the last ``days`` days, how many have enrolled.

    "Seen": the distinct account keys that were the subject of an account holder's
    own sign-in, password, enrollment, recovery or lock event in the window, less
    the logins that acted as staff in the window (the audit log has no account kind).
    Both come from the last-activity tables the audit writer keeps: one row per
    (account key, login) and one per staff login.
    """
    since = now - timedelta(days=days)
    staff = list(db.session.scalars(select(StaffActivity.actor).where(StaffActivity.last_acted_at >= since)))
    conditions = [AccountActivity.last_seen_at >= since]
    if staff:
        # "" stands for an event with no login; the raw query's NOT IN left those out too.
        conditions += [AccountActivity.subject != "", AccountActivity.subject.not_in(staff)]
    seen = select(AccountActivity.subject_key).where(*conditions).distinct().subquery()
    # One pass: every key seen, and those of them with an enrollment row.
    seen_count, enrolled = db.session.execute(
        select(func.count(), func.count(Enrollment.id)).select_from(
            seen.outerjoin(Enrollment, Enrollment.account_key == seen.c.subject_key)
        )
    ).one()
    return Coverage(seen=seen_count or 0, enrolled=enrolled or 0, days=days)


@dataclass(frozen=True)
class QueueLoad:
    queue: str
    label: str
    open: int
    oldest: timedelta | None
    under_a_day: int
    one_to_three_days: int
    over_three_days: int


def help_desk_load(now: datetime) -> list[QueueLoad] | None:
    """Open help requests per queue with their ages; None when the help desk is not installed."""
    try:
        from selfservice.helpdesk.models import ACTIVE_STATUSES, HelpRequest, Queue
    except ImportError:
        return None
    if not inspect(db.engine).has_table(HelpRequest.__tablename__):
        return None
    opened: dict[str, list[datetime]] = {queue.value: [] for queue in Queue}
    rows = db.session.execute(
        select(HelpRequest.queue, HelpRequest.created_at).where(
            HelpRequest.status.in_([s.value for s in ACTIVE_STATUSES])
        )
    )
    for queue, created_at in rows:
        opened.setdefault(queue, []).append(created_at)
    return [
        _load(queue, Queue(queue).label if queue in Queue._value2member_map_ else queue, times, now)
        for queue, times in opened.items()
    ]


def _load(queue: str, label: str, times: list[datetime], now: datetime) -> QueueLoad:
    ages = [now - t for t in times]
    day = timedelta(days=1)
    return QueueLoad(
        queue=queue,
        label=label,
        open=len(ages),
        oldest=max(ages) if ages else None,
        under_a_day=sum(1 for a in ages if a < day),
        one_to_three_days=sum(1 for a in ages if day <= a < 3 * day),
        over_three_days=sum(1 for a in ages if a >= 3 * day),
    )


@dataclass(frozen=True)
class Overview:
    """Everything the dashboard shows, computed at ``now``."""

    now: datetime
    resets: Resets
    lockouts_hourly: list[tuple[datetime, int]]
    breaches_hourly: list[tuple[datetime, int]]
    lockouts_daily: list[tuple[datetime, int]]
    breaches_daily: list[tuple[datetime, int]]
    coverage: Coverage
    help_desk: list[QueueLoad] | None


def overview(now: datetime, zone: tzinfo) -> Overview:
    return Overview(
        now=now,
        resets=resets_per_day(now, zone),
        lockouts_hourly=per_hour(Tag.LOCKED, now, zone),
        breaches_hourly=per_hour(Tag.RATE_LIMIT_BREACH, now, zone),
        lockouts_daily=per_day(Tag.LOCKED, now, zone),
        breaches_daily=per_day(Tag.RATE_LIMIT_BREACH, now, zone),
        coverage=enrollment_coverage(now),
        help_desk=help_desk_load(now),
    )
