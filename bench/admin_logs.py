"""Benchmark the admin log pages on a year of audit events, on SQLite and PostgreSQL.

    .venv/bin/python bench/admin_logs.py --events 1000000 --database both

For each database: a scratch database (a temporary SQLite file; a PostgreSQL
database named selfservice_bench_<pid> on 127.0.0.1:5432, dropped afterwards), the
migrations, ``seed_audit`` (the code behind ``selfservice seed-audit``), then each
page fetched through the Flask test client as a signed-in admin: once to warm up,
then --runs times. Prints the median and the slowest run per page, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from selfservice import create_app
from selfservice.admin.seeding import seed_audit, seed_flood
from selfservice.audit.services import Origin
from selfservice.directory import get_directory
from selfservice.directory.builtin import NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db
from selfservice.security import get_security

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Unique per run, so two people benchmarking on one server never drop each other's database.
SCRATCH = f"selfservice_bench_{os.getpid()}"
ADMIN_PASSWORD = "Bench-Admin-Password-42"
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
        # The bench admin signs in with a password only (admins need a second factor by default).
        "STAFF_SECOND_FACTOR": {"admin": "off", "its": "off", "support": "off", "employee": "off"},
    }


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.sqlite"


@contextmanager
def postgres_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{SCRATCH}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{SCRATCH}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        admin.dispose()


def prepare(app: Flask, events: int) -> None:
    with app.app_context():
        upgrade()
        get_directory().create(  # type: ignore[attr-defined]
            NewAccount(
                login="benchadmin",
                password=ADMIN_PASSWORD,
                kind=AccountKind.STAFF,
                display_name="Bench Admin",
                groups=["admins"],
            )
        )
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
    database = sqlite_database() if kind == "sqlite" else postgres_database()
    with database as url, tempfile.TemporaryDirectory() as folder:
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


if __name__ == "__main__":
    main()
