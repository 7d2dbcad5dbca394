"""The dashboard reads counts the audit writer keeps: same figures as the raw log, no scan per view."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from selfservice.admin import dashboard
from selfservice.admin.purge import Retention, purge
from selfservice.admin.seeding import _Pools, seed_audit, seed_flood
from selfservice.audit.models import AccountActivity, AuditCount, AuditEvent, StaffActivity
from selfservice.audit.services import SYSTEM, Origin, record
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.portal.models import Enrollment
from selfservice.timeutil import utcnow
from tests.admin import raw_counts
from tests.admin.conftest import add_event

#: Whole-hour, half-hour and quarter-hour offsets from UTC, with and without daylight saving.
ZONES = ["America/Chicago", "UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"]


def seed_district(events: int, seed: int = 5) -> None:
    """A month and a half of events, a flood, some enrollments and the odd cases the counts must not miss."""
    seed_audit(events, days=45, seed=seed)
    seed_flood(20_000, per_minute=1_500)
    now = utcnow()
    for login, key in list(_Pools(random.Random(seed)).keys.items())[::7]:  # every 7th holder enrolled
        db.session.add(Enrollment(account_key=key, login=login))
    add_event(Tag.PASSWORD_RESET, when=now - timedelta(hours=2), subject="s1000001", details={})  # no "how"
    add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(days=3), subject=None, subject_key="k-no-login")
    add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(days=2), subject="staff001", subject_key="k-staff001")
    add_event(Tag.UNLOCKED, when=now - timedelta(days=1), actor="staff001")  # so staff001 is staff
    add_event(Tag.LOCKED, when=now - timedelta(days=40), subject="s1000002", subject_key="k-old")
    db.session.commit()


@pytest.mark.parametrize("zone", ZONES)
def test_dashboard_figures_equal_counting_the_raw_log(app: Flask, zone: str) -> None:
    with app.app_context():
        seed_district(6_000)
        now = utcnow()
        view = dashboard.overview(now, ZoneInfo(zone))
        reference = raw_counts.figures(now, ZoneInfo(zone))
        assert {name: getattr(view, name) for name in reference} == reference
        assert view.coverage.seen > 100  # the comparison is not between two empty dashboards
        assert view.resets.self_service > 10
        assert sum(count for _start, count in view.breaches_daily) >= 20_000


@contextmanager
def captured_statements(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_the_dashboard_reads_no_audit_event_and_a_fixed_number_of_statements(
    admin: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        seed_district(500)
    admin.get("/admin/")  # warm: anything done once per process is not the view's cost
    with captured_statements(app) as small:
        assert admin.get("/admin/").status_code == 200
    with app.app_context():
        seed_audit(8_000, days=45, seed=9)
    with captured_statements(app) as large:
        assert admin.get("/admin/").status_code == 200
    assert len(large) == len(small) <= 15
    assert [s for s in large if "audit_event" in s] == []
    reads = [s for s in large if "audit_count" in s or "account_activity" in s or "staff_activity" in s]
    assert len(reads) == 7  # resets, two lockout and two breach series, staff and coverage


def test_two_writers_at_once_lose_no_count(app: Flask) -> None:
    writers, each = 2, 60
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            with app.app_context():
                start.wait()
                for n in range(each):
                    record(
                        Tag.LOCKED,
                        outcome="locked",
                        origin=Origin(ip=f"198.51.100.{number}"),
                        subject="s1000001",
                        subject_key="k-s1000001",
                        details={"n": n},
                    )
                    record(Tag.UNLOCKED, actor=f"staff{number}")
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with app.app_context():
        counted = dict(
            db.session.execute(
                select(AuditCount.tag, func.sum(AuditCount.count)).group_by(AuditCount.tag)
            ).all()
        )
        assert counted == {str(Tag.LOCKED): writers * each, str(Tag.UNLOCKED): writers * each}
        last = db.session.scalar(
            select(func.max(AuditEvent.created_at)).where(AuditEvent.tag == str(Tag.LOCKED))
        )
        assert db.session.execute(
            select(AccountActivity.subject_key, AccountActivity.last_seen_at)
        ).all() == [("k-s1000001", last)]
        assert db.session.scalar(select(func.count()).select_from(StaffActivity)) == writers


def test_a_rolled_back_event_is_not_counted(app: Flask) -> None:
    with app.app_context():
        record(Tag.LOCKED, subject="s1000001", subject_key="k1", commit=False)
        db.session.flush()
        db.session.rollback()
        record(Tag.LOCKED, subject="s1000002", subject_key="k2")
        assert db.session.scalar(select(func.sum(AuditCount.count))) == 1
        assert db.session.scalars(select(AccountActivity.subject_key)).all() == ["k2"]


def test_an_event_a_rolled_back_savepoint_took_back_is_not_counted(app: Flask) -> None:
    with app.app_context():
        record(Tag.LOCKED, subject="s1000001", subject_key="k1", commit=False)
        with db.session.begin_nested() as savepoint:
            record(Tag.UNLOCKED, actor="staff001", commit=False)
            db.session.flush()
            savepoint.rollback()
        db.session.commit()
        counted = db.session.execute(select(AuditCount.tag, AuditCount.count)).all()
        assert counted == [(str(Tag.LOCKED), 1)]
        assert db.session.scalars(select(StaffActivity.actor)).all() == []


def test_purged_events_keep_their_counts_and_coverage_follows_the_events_left(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        add_event(Tag.LOCKED, when=now - timedelta(days=5), subject="s1000001", subject_key="k1")
        add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(hours=1), subject="s1000002", subject_key="k2")
        add_event(Tag.UNLOCKED, when=now - timedelta(days=5), actor="staff009")
        before = dashboard.overview(now, UTC)
        purge(Retention(audit_days=2, mail_days=90, requests_days=365), now=now, actor="cli", origin=SYSTEM)
        after = dashboard.overview(now, UTC)
        # The lockout's event is gone; its count stays on the dashboard (documented in audit/counts.py).
        assert sum(count for _start, count in raw_counts.per_day(Tag.LOCKED, now, UTC)) == 0
        assert after.lockouts_daily == before.lockouts_daily
        assert sum(count for _start, count in after.lockouts_daily) == 1
        # Coverage names accounts: it follows the events that are left, exactly as the raw log does.
        assert after.coverage == raw_counts.enrollment_coverage(now)
        assert (before.coverage.seen, after.coverage.seen) == (2, 1)
        assert db.session.scalars(select(AccountActivity.subject_key)).all() == ["k2"]
        assert db.session.scalars(select(StaffActivity.actor)).all() == []


@pytest.mark.slow
@pytest.mark.postgres
def test_a_transaction_still_open_holds_no_count_row(tmp_path: Any) -> None:
    """A request that has written its event but not committed (say, busy with argon2) must not
    make every other request counting the same tag in the same quarter hour wait for it:
    the counts are added at commit, so the row lock lasts only as long as the commit."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from selfservice import create_app
    from tests.conftest import FAST_HASHING
    from tests.scratch import scratch_postgres

    with scratch_postgres("selfservice_instances") as url:
        app = create_app(
            {"TESTING": True, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path), **FAST_HASHING}
        )
        with app.app_context():
            upgrade()
        outcome: list[BaseException | None] = []

        def other_request(app: Flask = app, outcome: list[BaseException | None] = outcome) -> None:
            with app.app_context():
                try:
                    db.session.execute(text("SET lock_timeout = '2s'"))
                    record(Tag.RECOVERY_STARTED, origin=Origin(ip="198.51.100.2"), subject="s1000002")
                    outcome.append(None)
                except BaseException as error:  # noqa: BLE001 - reported in the main thread
                    outcome.append(error)
                finally:
                    db.session.remove()

        with app.app_context():
            record(Tag.RECOVERY_STARTED, origin=Origin(ip="198.51.100.1"), subject="s1000001", commit=False)
            db.session.flush()  # the event is written; the transaction stays open
            other = threading.Thread(target=other_request)
            other.start()
            other.join()
            db.session.commit()
            assert outcome == [None]
            counted = db.session.scalar(
                select(func.sum(AuditCount.count)).where(AuditCount.tag == str(Tag.RECOVERY_STARTED))
            )
            assert counted == 2
            db.session.remove()
            db.engine.dispose()
