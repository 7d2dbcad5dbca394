"""The dashboard's numbers counted from raw rows, as the dashboard did before counts: the reference.

Kept verbatim in spirit (same queries, same bucketing) so tests can prove that the counts
the audit writer keeps give the same figures as counting the audit log itself.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, func, select

from selfservice.admin.dashboard import (
    COVERAGE_DAYS,
    DAYS_SHOWN,
    HOURS_SHOWN,
    Bucketing,
    Coverage,
    ResetDay,
    Resets,
    count_by_bucket,
)
from selfservice.audit.counts import HOLDER_TAGS, STAFF_TAGS
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.portal.models import Enrollment
from selfservice.security.models import RateLimitBreach


def _local_midnight(now: datetime, zone: tzinfo) -> datetime:
    local = now.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def _moments(tag: Tag, since: datetime, until: datetime) -> Select[Any]:
    if tag is Tag.RATE_LIMIT_BREACH:
        return select(RateLimitBreach.minute, RateLimitBreach.count).where(
            RateLimitBreach.minute >= since, RateLimitBreach.minute < until
        )
    return select(AuditEvent.created_at).where(
        AuditEvent.tag == str(tag), AuditEvent.created_at >= since, AuditEvent.created_at < until
    )


def resets_per_day(now: datetime, zone: tzinfo, days: int = DAYS_SHOWN) -> Resets:
    since = _local_midnight(now, zone) - timedelta(days=days - 1)
    how = AuditEvent.details["how"].as_string()
    rows = db.session.execute(
        select(AuditEvent.created_at, how).where(
            AuditEvent.tag == str(Tag.PASSWORD_RESET), AuditEvent.created_at >= since
        )
    )
    counts: Counter[tuple[date, str]] = Counter()
    for moment, kind in rows:
        counts[(moment.astimezone(zone).date(), kind)] += 1
    day_list = [since.astimezone(zone).date() + timedelta(days=n) for n in range(days)]
    return Resets([ResetDay(d, counts[(d, "recovery")], counts[(d, "assisted")]) for d in day_list])


def per_hour(tag: Tag, now: datetime, zone: tzinfo) -> list[tuple[datetime, int]]:
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=HOURS_SHOWN)
    return count_by_bucket(_moments(tag, since, until), since, until, zone, Bucketing.HOUR)


def per_day(tag: Tag, now: datetime, zone: tzinfo) -> list[tuple[datetime, int]]:
    since = _local_midnight(now, zone) - timedelta(days=DAYS_SHOWN - 1)
    return count_by_bucket(_moments(tag, since, now), since, now, zone, Bucketing.DAY)


def enrollment_coverage(now: datetime, days: int = COVERAGE_DAYS) -> Coverage:
    since = now - timedelta(days=days)
    staff = list(
        db.session.scalars(
            select(AuditEvent.actor)
            .where(
                AuditEvent.tag.in_([str(t) for t in STAFF_TAGS]),
                AuditEvent.created_at >= since,
                AuditEvent.actor.is_not(None),
            )
            .distinct()
        )
    )
    conditions = [
        AuditEvent.tag.in_([str(t) for t in HOLDER_TAGS]),
        AuditEvent.created_at >= since,
        AuditEvent.subject_key.is_not(None),
    ]
    if staff:
        conditions.append(AuditEvent.subject.not_in(staff))
    seen = select(AuditEvent.subject_key).where(*conditions).distinct().subquery()
    seen_count, enrolled = db.session.execute(
        select(func.count(), func.count(Enrollment.id)).select_from(
            seen.outerjoin(Enrollment, Enrollment.account_key == seen.c.subject_key)
        )
    ).one()
    return Coverage(seen=seen_count or 0, enrolled=enrolled or 0, days=days)


def figures(now: datetime, zone: tzinfo) -> dict[str, Any]:
    """Every counted figure of the dashboard, keyed like selfservice.admin.dashboard.Overview's fields."""
    return {
        "resets": resets_per_day(now, zone),
        "lockouts_hourly": per_hour(Tag.LOCKED, now, zone),
        "breaches_hourly": per_hour(Tag.RATE_LIMIT_BREACH, now, zone),
        "lockouts_daily": per_day(Tag.LOCKED, now, zone),
        "breaches_daily": per_day(Tag.RATE_LIMIT_BREACH, now, zone),
        "coverage": enrollment_coverage(now),
    }
