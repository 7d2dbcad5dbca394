"""The dashboard: resets and deflection, lockouts and breaches over time, coverage, help-desk load."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.helpdesk.models import HelpRequest
from selfservice.portal.models import Enrollment
from selfservice.security.throttling import breaches, flush_breaches
from selfservice.timeutil import utcnow
from tests.admin.conftest import add_event, table


def key_of(login: str) -> str:
    account = get_directory().find(login)
    assert account is not None
    return account.key


def test_resets_show_the_deflection_rate(admin: FlaskClient, app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        for _ in range(3):
            add_event(Tag.PASSWORD_RESET, when=now - timedelta(minutes=5), details={"how": "recovery"})
        add_event(Tag.PASSWORD_RESET, when=now - timedelta(days=1), details={"how": "assisted"})
        add_event(Tag.PASSWORD_CHANGED, when=now, details={"how": "change"})  # not a reset
    text = admin.get("/admin/").get_data(as_text=True)
    assert "75%" in text
    rows = table(text, "Password resets per day: self-service and assisted")
    assert len(rows) == 30
    assert [row[1:] for row in rows[-2:]] in (
        [["0", "1"], ["3", "0"]],
        [["0", "0"], ["3", "1"]],  # just after midnight the two fall on the same day
    )


def test_lockouts_and_breaches_are_counted_per_hour_and_day(admin: FlaskClient, app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        add_event(Tag.LOCKED, when=now - timedelta(hours=3), outcome="locked", subject="s1000001")
        add_event(Tag.LOCKED, when=now - timedelta(days=10), outcome="locked", subject="s1000002")
        breaches.add("ip", "192.0.2.1", "L", "e", count=2)  # two refusals in one minute: one counted row
        assert flush_breaches() == 1
    text = admin.get("/admin/").get_data(as_text=True)
    hourly = table(text, "Lockouts and rate-limit breaches per hour, last 48 hours")
    daily = table(text, "Lockouts and rate-limit breaches per day, last 30 days")
    assert len(hourly) == 48
    assert sum(int(row[1]) for row in hourly) == 1
    assert sum(int(row[2]) for row in hourly) == 2
    assert len(daily) == 30
    assert sum(int(row[1]) for row in daily) == 2


def test_coverage_counts_account_holders_seen_and_enrolled(admin: FlaskClient, app: Flask) -> None:
    with app.app_context():
        for login in ("s1000001", "s1000002", "p2000001"):
            add_event(Tag.LOGIN_SUCCESS, subject=login, actor=login, subject_key=key_of(login))
        add_event(Tag.QUESTION_CHANGED, actor="admin1")  # admin1 acted as staff: not an account holder
        db.session.add(Enrollment(account_key=key_of("s1000001"), login="s1000001"))
        db.session.commit()
    text = admin.get("/admin/").get_data(as_text=True)
    assert table(text, "Enrollment coverage, last 30 days") == [["Seen", "3"], ["Enrolled", "1"]]
    assert "33%" in text


def test_open_help_requests_per_queue_and_age(admin: FlaskClient, app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        for queue, status, age in [
            ("its-student", "open", timedelta(hours=2)),
            ("its-student", "escalated", timedelta(days=4)),
            ("parent-support", "in-progress", timedelta(days=2)),
            ("parent-support", "closed", timedelta(days=9)),
        ]:
            db.session.add(
                HelpRequest(
                    kind="student" if queue == "its-student" else "parent",
                    queue=queue,
                    status=status,
                    created_at=now - age,
                    opened_by_login="teacher1",
                    opened_by_key="k-teacher1",
                    opened_by_name="Tina Teacher",
                    subject_key="k-s1000001",
                    subject_login="s1000001",
                    subject_name="Ana Lopez",
                )
            )
        db.session.commit()
    text = admin.get("/admin/").get_data(as_text=True)
    by_age = table(text, "Open help requests per queue, by age")
    assert by_age == [
        ["ITS Student Accounts", "1", "0", "1"],
        ["Parent Support", "0", "1", "0"],
        ["ITS Parent Accounts", "0", "0", "0"],
    ]
    counts = table(text, "Open help requests per queue")
    assert [row[:2] for row in counts] == [
        ["ITS Student Accounts", "2"],
        ["Parent Support", "1"],
        ["ITS Parent Accounts", "0"],
    ]
    assert "4 days" in counts[0][2]


def test_charts_are_svg_with_no_inline_style_or_script(admin: FlaskClient) -> None:
    text = admin.get("/admin/").get_data(as_text=True)
    assert text.count("<svg") >= 4
    assert 'role="img"' in text
    assert "<style" not in text
    assert "style=" not in text
    assert "<script>" not in text
