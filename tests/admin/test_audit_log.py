"""The audit log page: filters, keyset pages, the detail view and the streamed CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.admin.audit_log import CSV_COLUMNS, AuditQuery, Cursor, csv_lines, page
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.timeutil import utcnow
from tests.admin.conftest import add_event


@pytest.fixture
def events(app: Flask) -> dict[str, int]:
    """A small, varied log: ids by name, so tests can say which rows they expect."""
    now = utcnow()
    with app.app_context():
        made = {
            "old-failure": add_event(
                Tag.LOGIN_FAILURE,
                when=now - timedelta(days=40),
                outcome="failure",
                subject="s1000001",
                ip="192.0.2.1",
            ),
            "lock": add_event(
                Tag.LOCKED, when=now - timedelta(days=3), outcome="locked", subject="s1000002", ip="192.0.2.2"
            ),
            "unlock": add_event(
                Tag.UNLOCKED,
                when=now - timedelta(days=2),
                actor="support1",
                subject="s1000002",
                ip="192.0.2.3",
            ),
            "reset": add_event(
                Tag.PASSWORD_RESET,
                when=now - timedelta(hours=5),
                actor="p2000001",
                subject="p2000001",
                ip="2001:db8::5",
                details={"how": "recovery"},
            ),
        }
        return {name: event.id for name, event in made.items()}


def shown_ids(client: FlaskClient, query: str) -> set[int]:
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    ids = set()
    for line in response.get_data(as_text=True).splitlines():
        if 'href="/admin/audit/' in line:
            ids.add(int(line.split('href="/admin/audit/')[1].split('"')[0]))
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=account:selfservice:locked", {"lock"}),
        ("subject=s1000002", {"lock", "unlock"}),
        ("actor=support1", {"unlock"}),
        ("ip=2001:db8::5", {"reset"}),
        ("outcome=failure", {"old-failure"}),
        ("since=7d", {"lock", "unlock", "reset"}),
        ("until=30d", {"old-failure"}),
        ("subject=s1000002&since=60h", {"unlock"}),
    ],
)
def test_each_filter_narrows_the_log(
    admin: FlaskClient, events: dict[str, int], query: str, expected: set[str]
) -> None:
    shown = shown_ids(admin, query) & set(events.values())
    assert shown == {events[name] for name in expected}


def test_dates_filter_whole_days(admin: FlaskClient, events: dict[str, int]) -> None:
    today = utcnow().date()
    shown = shown_ids(admin, f"since={today - timedelta(days=60)}&until={today + timedelta(days=1)}")
    assert set(events.values()) <= shown


def test_newest_events_come_first(admin: FlaskClient, events: dict[str, int]) -> None:
    text = admin.get("/admin/audit?subject=s1000002").get_data(as_text=True)
    assert text.index(f"/admin/audit/{events['unlock']}") < text.index(f"/admin/audit/{events['lock']}")


@pytest.mark.parametrize(
    "query",
    [
        "tag=account:nothing:like-this",
        "ip=not-an-address",
        "since=yesterday-ish",
        "since=2026-13-45",
        "since=9999-12-31&until=9999-12-31",
        "since=2026-03-02&until=2026-03-01",
        "outcome=DROP TABLE",
        "subject=" + "x" * 200,
        "after=garbage",
        "after=99999999999999999999_1",
    ],
)
def test_bad_filters_get_a_message_and_400(admin: FlaskClient, query: str) -> None:
    paths = ["/admin/audit"] if query.startswith("after=") else ["/admin/audit", "/admin/audit.csv"]
    for path in paths:
        response = admin.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert "There is a problem" in response.get_data(as_text=True)


def test_pages_follow_each_other_without_overlap_or_gap(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        # 120 events, some sharing a timestamp, so the id breaks ties.
        for n in range(120):
            add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(seconds=n // 3), subject=f"s{n}")
        every = [
            e.id
            for e in db.session.query(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        ]
        seen: list[int] = []
        cursor = None
        while True:
            result = page(AuditQuery(), cursor, size=50)
            seen += [event.id for event in result.events]
            if result.next_cursor is None:
                break
            cursor = result.next_cursor
    assert seen == every
    assert len(seen) == len(set(seen)) == 120


def test_the_older_link_continues_where_the_page_ended(admin: FlaskClient, app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        made = [
            add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(minutes=n), subject="s1000001").id
            for n in range(60)
        ]
    first = shown_ids(admin, "subject=s1000001")
    text = admin.get("/admin/audit?subject=s1000001").get_data(as_text=True)
    link = text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = shown_ids(admin, link.split("?", 1)[1])
    assert len(first) == 50
    assert first.isdisjoint(second)
    assert first | second == set(made)


def test_an_event_has_a_detail_page(admin: FlaskClient, events: dict[str, int]) -> None:
    response = admin.get(f"/admin/audit/{events['reset']}")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "account:password:reset" in text
    assert "recovery" in text
    assert "2001:db8::5" in text
    assert admin.get("/admin/audit/999999").status_code == 404


def test_csv_export_has_every_matching_row_and_the_columns(
    admin: FlaskClient, events: dict[str, int]
) -> None:
    response = admin.get("/admin/audit.csv?subject=s1000002")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(row[0]) for row in rows[1:]] == [events["unlock"], events["lock"]]
    unlock = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (unlock["tag"], unlock["actor"], unlock["ip"]) == (
        "account:selfservice:unlocked",
        "support1",
        "192.0.2.3",
    )


def test_csv_export_of_everything_streams_in_batches(app: Flask) -> None:
    with app.app_context():
        for n in range(23):
            add_event(Tag.LOGIN_SUCCESS, subject=f"s{n}")
        chunks = csv_lines(AuditQuery(), batch=5)
        first = next(chunks)  # the header is ready before any batch is read
        rows = list(csv.reader(io.StringIO(first + "".join(chunks))))
    assert first.startswith("id,created_at,tag")
    assert len(rows) == 1 + 23


def test_csv_cells_cannot_run_as_spreadsheet_formulas(admin: FlaskClient, app: Flask) -> None:
    with app.app_context():
        add_event(
            Tag.LOGIN_FAILURE, outcome="failure", subject='=HYPERLINK("http://x")', user_agent="@SUM(A1)"
        )
    rows = list(
        csv.reader(
            io.StringIO(admin.get("/admin/audit.csv?tag=auth:session:login-failed").get_data(as_text=True))
        )
    )
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["subject"].startswith("'=")
    assert row["user_agent"].startswith("'@")


def test_exporting_is_itself_audited(admin: FlaskClient, app: Flask) -> None:
    admin.get("/admin/audit.csv?tag=account:selfservice:locked")
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(tag=str(Tag.AUDIT_EXPORTED)).one()
    assert event.actor == "admin1"
    assert event.details == {"tag": "account:selfservice:locked"}


def test_cursor_round_trips() -> None:
    cursor = Cursor(utcnow(), 42)
    assert Cursor.decode(cursor.encode()) == cursor


def test_the_older_link_keeps_the_time_range(admin: FlaskClient, app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        recent = {add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(minutes=n)).id for n in range(60)}
        old = {add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(days=30, minutes=n)).id for n in range(5)}
    text = admin.get("/admin/audit?since=7d").get_data(as_text=True)
    link = text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = shown_ids(admin, link.split("?", 1)[1])
    assert second.isdisjoint(old)
    assert (shown_ids(admin, "since=7d") | second) & (recent | old) == recent


def test_exporting_records_the_time_range_it_exported(admin: FlaskClient, app: Flask) -> None:
    admin.get("/admin/audit.csv?since=2026-03-01&until=2026-03-31")
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(tag=str(Tag.AUDIT_EXPORTED)).one()
    assert event.details["since"].startswith("2026-03-0")  # the start of 1 March in TIME_ZONE, in UTC
    assert event.details["until"].startswith("2026-04-01")
