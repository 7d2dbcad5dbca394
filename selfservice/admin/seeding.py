"""Realistic audit events in bulk, for benchmarks of the log pages (``selfservice seed-audit``).

A district year in miniature: thousands of students and parents signing in, failing,
recovering, enrolling and getting locked out; a few dozen noisy addresses tripping
the rate limits; staff opening requests and unlocking. Rows go in with Core
executemany in batches of 10,000, oldest first, so ids grow with time as they do live.

Breaches are not audit events: they are counted per (address, limit, endpoint, minute)
in ``rate_limit_breach``, as the portal counts them; :func:`seed_flood` adds a flood.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from selfservice.audit.counts import count_breaches, count_events
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.security.models import RateLimitBreach
from selfservice.timeutil import utcnow

BATCH = 10_000
STUDENTS = 6_000
PARENTS = 2_500
STAFF = 60
ADDRESSES = 4_000
NOISY_ADDRESSES = 50

USER_AGENTS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) Version/17.2 Mobile Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36",
    "python-requests/2.31.0",
)
ENDPOINTS = (
    ("auth.login", "POST"),
    ("portal.forgot", "POST"),
    ("portal.answer", "POST"),
    ("portal.password", "POST"),
)
LIMITS = ("SIGN_IN_RATE_LIMIT: 10 per minute;50 per hour", "RECOVERY_RATE_LIMIT: 10 per minute;50 per hour")

#: (tag, weight): how often each kind of event happens relative to the others.
MIX: tuple[tuple[str, float], ...] = (
    ("login", 30),
    ("login-failed", 12),
    ("logout", 8),
    ("recovery-start", 7),
    ("answer-failed", 6),
    ("recovery-verified", 4),
    ("reset-recovery", 4),
    ("reset-assisted", 1),
    ("change", 4),
    ("enroll", 4),
    ("locked", 2),
    ("unlocked", 0.5),
    ("breach", 10),
    ("help-request", 1),
    ("reset-link", 1),
    ("token-refused", 1),
)


class _Pools:
    def __init__(self, rng: random.Random) -> None:
        holders = [f"s{1_000_000 + n}" for n in range(STUDENTS)] + [
            f"p{2_000_000 + n}" for n in range(PARENTS)
        ]
        self.holders = holders
        self.keys = {login: str(uuid.uuid5(uuid.NAMESPACE_OID, login)) for login in holders}
        self.staff = [f"staff{n:03d}" for n in range(STAFF)]
        self.addresses = [f"10.{n // 250}.{n % 250}.{rng.randint(1, 254)}" for n in range(ADDRESSES)]
        self.addresses += [f"2001:db8::{n:x}" for n in range(ADDRESSES // 10)]
        self.noisy = [f"203.0.113.{n + 1}" for n in range(NOISY_ADDRESSES)]


def seed_audit(
    count: int, *, days: int = 365, seed: int = 5, echo: Callable[[str], Any] | None = None
) -> int:
    """Insert ``count`` events spread evenly over the last ``days`` days; returns how many."""
    rng = random.Random(seed)
    pools = _Pools(rng)
    kinds = [kind for kind, _weight in MIX]
    weights = [weight for _kind, weight in MIX]
    end = utcnow()
    span = timedelta(days=days) / count
    start = end - timedelta(days=days)
    table = AuditEvent.__table__
    breaches: Counter[tuple[datetime, str, str, str]] = Counter()
    written = 0
    while written < count:
        size = min(BATCH, count - written)
        offsets = sorted(rng.random() * size for _ in range(size))
        chosen = rng.choices(kinds, weights=weights, k=size)
        rows = [
            _row(kind, start + span * (written + offset), pools, rng)
            for kind, offset in zip(chosen, offsets, strict=True)
        ]
        for row in rows:
            if row["tag"] == Tag.RATE_LIMIT_BREACH.value:
                minute = row["created_at"].replace(second=0, microsecond=0)
                details = row["details"]
                breaches[(minute, row["ip"], details["endpoint"], details["limit"])] += 1
        rows = [row for row in rows if row["tag"] != Tag.RATE_LIMIT_BREACH.value]
        if rows:
            db.session.execute(insert(table), rows)
            count_events(db.session.connection(), rows)
        db.session.commit()
        written += size
        if echo and written % 100_000 == 0:
            echo(f"  {written} events")
    _write_breaches(breaches)
    return written


def seed_flood(refusals: int, *, per_minute: int = 6_000, ip: str = "203.0.113.7") -> int:
    """A flood of ``refusals`` refused requests from one address, ending now: the rows it leaves."""
    end = utcnow().replace(second=0, microsecond=0)
    counts: Counter[tuple[datetime, str, str, str]] = Counter()
    minute = 0
    left = refusals
    while left > 0:
        now = min(per_minute, left)
        endpoint, _method = ENDPOINTS[minute % len(ENDPOINTS)]
        counts[(end - timedelta(minutes=minute), ip, endpoint, LIMITS[minute % len(LIMITS)])] += now
        left -= now
        minute += 1
    return _write_breaches(counts)


def _write_breaches(counts: Counter[tuple[datetime, str, str, str]]) -> int:
    rows = [
        {"minute": m, "scope": "ip", "key": ip, "endpoint": e, "limit_name": li, "count": n}
        for (m, ip, e, li), n in counts.items()
    ]
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        db.session.execute(insert(RateLimitBreach.__table__), batch)
        count_breaches(db.session.connection(), ((row["minute"], row["count"]) for row in batch))
        db.session.commit()
    return len(rows)


def _row(kind: str, when: Any, pools: _Pools, rng: random.Random) -> dict[str, Any]:
    login = rng.choice(pools.holders)
    row: dict[str, Any] = {
        "created_at": when,
        "tag": "",
        "outcome": "success",
        "actor": login,
        "subject": login,
        "subject_key": pools.keys[login],
        "ip": rng.choice(pools.addresses),
        "user_agent": rng.choice(USER_AGENTS),
        "details": {},
    }
    _SHAPES[kind](row, pools, rng)
    return row


def _login(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row["tag"] = Tag.LOGIN_SUCCESS.value


def _login_failed(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.LOGIN_FAILURE.value, outcome="failure", actor=None, subject_key=None)


def _logout(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.LOGOUT.value, subject_key=None)


def _recovery_start(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.RECOVERY_STARTED.value, actor=None)


def _answer_failed(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(
        tag=Tag.RECOVERY_ANSWER_FAILED.value,
        outcome="failure",
        actor=None,
        details={"failures": rng.randint(1, 5)},
    )


def _recovery_verified(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.RECOVERY_VERIFIED.value, actor=None)


def _reset_recovery(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.PASSWORD_RESET.value, details={"how": "recovery"})


def _reset_assisted(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.PASSWORD_RESET.value, details={"how": "assisted"})


def _change(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.PASSWORD_CHANGED.value, details={"how": "change"})


def _enroll(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.ENROLLMENT_SAVED.value, details={"count": 5})


def _locked(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    until = (row["created_at"] + timedelta(minutes=30)).isoformat()
    row.update(tag=Tag.LOCKED.value, outcome="locked", actor=None, details={"failures": 5, "until": until})


def _unlocked(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    actor = rng.choice([*pools.staff[:10], "cli"])
    row.update(tag=Tag.UNLOCKED.value, actor=actor, details={"was_locked": True})


def _breach(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    ip = rng.choice(pools.noisy) if rng.random() < 0.8 else row["ip"]
    endpoint, method = rng.choice(ENDPOINTS)
    limit = rng.choice(LIMITS)
    key = "global" if limit.startswith("600") else ip
    row.update(
        tag=Tag.RATE_LIMIT_BREACH.value,
        outcome="refused",
        actor=None,
        subject=None,
        subject_key=None,
        ip=ip,
        details={"limit": limit, "key": key, "endpoint": endpoint, "method": method},
    )


def _help_request(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(
        tag=Tag.HELP_REQUEST_OPENED.value, actor=rng.choice(pools.staff), details={"queue": "its-student"}
    )


def _reset_link(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(
        tag=Tag.RESET_LINK_ISSUED.value, actor=rng.choice(pools.staff[:20]), details={"recipient": "employee"}
    )


def _token_refused(row: dict[str, Any], pools: _Pools, rng: random.Random) -> None:
    row.update(tag=Tag.TOKEN_REFUSED.value, outcome="refused", actor=None, details={"reason": "expired"})


_SHAPES: dict[str, Callable[[dict[str, Any], _Pools, random.Random], None]] = {
    "login": _login,
    "login-failed": _login_failed,
    "logout": _logout,
    "recovery-start": _recovery_start,
    "answer-failed": _answer_failed,
    "recovery-verified": _recovery_verified,
    "reset-recovery": _reset_recovery,
    "reset-assisted": _reset_assisted,
    "change": _change,
    "enroll": _enroll,
    "locked": _locked,
    "unlocked": _unlocked,
    "breach": _breach,
    "help-request": _help_request,
    "reset-link": _reset_link,
    "token-refused": _token_refused,
}
