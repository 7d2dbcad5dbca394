"""Benchmark the admin log pages on a year of audit events, on SQLite and PostgreSQL.

    .venv/bin/python bench/admin_logs.py --events 1000000 --database both

For each database: a scratch database (a temporary SQLite file; a PostgreSQL
database named selfservice_bench_<random> on 127.0.0.1:5432, dropped afterwards), the
migrations, ``seed_audit`` (the code behind ``selfservice seed-audit``), then each
page fetched through the Flask test client as a signed-in admin: once to warm up,
then --runs times. Prints the median and the slowest run per page, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from common import ADMIN_PASSWORD, create_admin, machine_line, result, scratch_database
from flask import Flask
from flask_migrate import upgrade

from selfservice import create_app
from selfservice.admin.seeding import seed_audit, seed_flood
from selfservice.audit.services import Origin
from selfservice.extensions import db
from selfservice.security import get_security

TARGET_MS = 100
#: Refused requests of one flood, counted as the portal counts them (``--flood``).
FLOOD = 1_000_000

PAGES = [
    ("audit: first page", "/admin/audit"),
    ("audit: by account", "/admin/audit?subject=s1000123"),
    ("audit: by event", "/admin/audit?tag=account:selfservice:locked"),
    ("audit: by IP and outcome", "/admin/audit?ip=203.0.113.7&outcome=refused"),
    ("audit: by actor and range", "/admin/audit?actor=staff003&since=90d&until=30d"),
    ("audit: next page", "{next_audit}"),
    ("audit: 6 months back", "{deep_audit}"),
    ("lockouts: first page", "/admin/lockouts"),
    ("lockouts: by account", "/admin/lockouts?login=s1000123"),
    ("rate limits: last 7 days", "/admin/rate-limits"),
    ("rate limits: by IP", "/admin/rate-limits?ip=203.0.113.7"),
    ("dashboard (not a log page)", "/admin/"),
]


def settings(url: str, folder: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "DATABASE_URL": url,
        "INSTANCE_PATH": folder,
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "ARGON2_MEMORY_KIB": 1024,
        "ARGON2_TIME_COST": 1,
        # The pages are timed after a password sign-in, not through the second factor.
        "STAFF_SECOND_FACTOR": {"admin": "off"},
    }


def prepare(app: Flask, events: int) -> None:
    with app.app_context():
        upgrade()
    create_admin(app)
    with app.app_context():
        started = time.perf_counter()
        seed_audit(events, echo=print)
        rows = seed_flood(FLOOD)
        print(f"  seeded {events} events and a flood of {FLOOD} refusals ({rows} counted rows)")
        print(f"  in {time.perf_counter() - started:.0f} s")
        lock_some(app)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE" if db.engine.name == "postgresql" else "ANALYZE"))


def lock_some(app: Flask, count: int = 25) -> None:
    """A few accounts locked right now, so the lockouts page has rows to show."""
    lockout = get_security().lockout
    for n in range(count):
        key, login = f"bench-key-{n}", f"s{1_000_000 + n}"
        for _ in range(app.config["LOCKOUT_MAX_FAILURES"]):
            lockout.claim_attempt(key, login, Origin(ip="203.0.113.9"))
            lockout.record_failure(key, login, Origin(ip="203.0.113.9"))


def cursors(app: Flask) -> dict[str, str]:
    """Links to page 2 of the audit log and to a page six months back."""
    from selfservice.admin.audit_log import AuditQuery, Cursor, page
    from selfservice.audit.models import AuditEvent
    from selfservice.timeutil import utcnow

    with app.app_context():
        second = page(AuditQuery()).next_cursor
        half_year = utcnow() - timedelta(days=182)
        row = db.session.execute(
            sa.select(AuditEvent.created_at, AuditEvent.id)
            .where(AuditEvent.created_at < half_year)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(1)
        ).one()
        deep = Cursor(row.created_at, row.id)
    assert second is not None
    return {
        "next_audit": f"/admin/audit?after={second.encode()}",
        "deep_audit": f"/admin/audit?after={deep.encode()}",
    }


def measure(app: Flask, runs: int) -> list[tuple[str, float, float]]:
    client = app.test_client()
    response = client.post("/login", data={"login": "benchadmin", "password": ADMIN_PASSWORD})
    assert response.status_code == 303, response.status_code
    links = cursors(app)
    results = []
    for name, path in PAGES:
        url = path.format(**links)
        timings = []
        for attempt in range(runs + 1):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if attempt:  # the first request warms caches
                timings.append(elapsed)
        results.append((name, statistics.median(timings), max(timings)))
    return results


def run(kind: str, events: int, runs: int) -> list[tuple[str, float, float]]:
    with scratch_database(kind) as url, tempfile.TemporaryDirectory() as folder:
        app = create_app(settings(url, folder))
        print(f"{kind}: preparing {events} events")
        prepare(app, events)
        results = measure(app, runs)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--flood", type=int, default=FLOOD, help="refused requests of one flood")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    options = parser.parse_args()
    globals()["FLOOD"] = options.flood
    kinds = ["sqlite", "postgres"] if options.database == "both" else [options.database]
    print(machine_line())
    for kind in kinds:
        results = run(kind, options.events, options.runs)
        print(
            f"\n{kind}, {options.events:,} audit events + {options.flood:,} refusals,"
            f" median and slowest of {options.runs} runs (ms)\n"
        )
        print("| page | median | slowest |")
        print("|---|---:|---:|")
        for name, median, slowest in results:
            flag = "" if median < TARGET_MS else " (over target)"
            print(f"| {name} | {median:.1f}{flag} | {slowest:.1f} |")
        print()
        logs = [median for name, median, _ in results if not name.startswith("dashboard")]
        dashboard = next(median for name, median, _ in results if name.startswith("dashboard"))
        events = f"{options.events:,} events"
        print(f"ratio line: {kind} dashboard {dashboard / TARGET_MS:.2f}x the {TARGET_MS} ms target")
        result(f"admin dashboard, {kind}, {events}", dashboard, "ms", f"< {TARGET_MS}")
        result(f"admin log pages, slowest median, {kind}, {events}", max(logs), "ms", f"< {TARGET_MS}")
    print(machine_line())


if __name__ == "__main__":
    main()
