"""Rate-limit breaches: grouped by address, page and limit over a chosen range, with a chart."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.extensions import db
from selfservice.security.models import RateLimitBreach
from selfservice.timeutil import utcnow
from tests.admin.conftest import table


def breach(app: Flask, ip: str, endpoint: str, limit: str, hours_ago: float, count: int = 1) -> None:
    """``count`` refusals counted in one minute ``hours_ago`` hours ago (one aggregate row)."""
    minute = (utcnow() - timedelta(hours=hours_ago)).replace(second=0, microsecond=0)
    with app.app_context():
        db.session.add(
            RateLimitBreach(
                minute=minute, scope="ip", key=ip, limit_name=limit, endpoint=endpoint, count=count
            )
        )
        db.session.commit()


def test_breaches_are_grouped_and_ranked(admin: FlaskClient, app: Flask) -> None:
    breach(app, "203.0.113.5", "auth.login", "10 per 1 minute", hours_ago=1, count=2)
    breach(app, "203.0.113.5", "auth.login", "10 per 1 minute", hours_ago=3)
    breach(app, "198.51.100.9", "portal.forgot", "50 per 1 hour", hours_ago=2)
    breach(app, "192.0.2.77", "auth.login", "10 per 1 minute", hours_ago=24 * 20)  # outside the 7 days
    text = admin.get("/admin/rate-limits").get_data(as_text=True)
    assert "4 breaches" in text
    assert [row[:2] for row in table(text, "By IP address (top 10)")] == [
        ["203.0.113.5", "3"],
        ["198.51.100.9", "1"],
    ]
    assert [row[:2] for row in table(text, "By page (top 10)")] == [
        ["auth.login", "3"],
        ["portal.forgot", "1"],
    ]
    assert [row[:2] for row in table(text, "By limit (top 10)")] == [
        ["10 per 1 minute", "3"],
        ["50 per 1 hour", "1"],
    ]
    assert "<svg" in text
    hourly = table(text, "Breaches per hour")
    assert sum(int(row[1]) for row in hourly) == 4
    assert len(hourly) in (7 * 24, 7 * 24 + 1)


def test_a_longer_range_counts_per_day(admin: FlaskClient, app: Flask) -> None:
    breach(app, "192.0.2.77", "auth.login", "10 per 1 minute", hours_ago=24 * 20)
    text = admin.get("/admin/rate-limits?since=30d").get_data(as_text=True)
    assert "1 breaches" in text
    daily = table(text, "Breaches per day")
    assert sum(int(row[1]) for row in daily) == 1


def test_one_address_at_a_time(admin: FlaskClient, app: Flask) -> None:
    breach(app, "203.0.113.5", "auth.login", "10 per 1 minute", hours_ago=1)
    breach(app, "198.51.100.9", "portal.forgot", "50 per 1 hour", hours_ago=2)
    text = admin.get("/admin/rate-limits?ip=198.51.100.9").get_data(as_text=True)
    assert [row[:2] for row in table(text, "By IP address (top 10)")] == [["198.51.100.9", "1"]]


def test_bad_ranges_get_400(admin: FlaskClient) -> None:
    for query in ("since=soon", "ip=999.1.1.1", "since=2026-03-02&until=2026-03-01", "after=x_y"):
        response = admin.get(f"/admin/rate-limits?{query}")
        assert response.status_code == 400, query


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("until=0001-01-02", "Enter a date like 2026-03-01"),  # the default week before it is before year 1
        ("since=0001-01-01", "at most 366 days"),  # a day per bar since year 1: a minute of work
        ("since=99999d", "at most 366 days"),
        ("since=2026-01-01&until=2027-06-01", "at most 366 days"),
        ("since=2999-01-01", "must come after its start"),  # from the future to now
    ],
)
def test_ranges_the_page_cannot_show_get_a_message_and_400_at_once(
    admin: FlaskClient, query: str, message: str
) -> None:
    started = time.monotonic()
    response = admin.get(f"/admin/rate-limits?{query}")
    assert response.status_code == 400, query
    assert message in response.get_data(as_text=True)
    assert time.monotonic() - started < 5


def test_a_year_is_still_shown(admin: FlaskClient, app: Flask) -> None:
    breach(app, "192.0.2.77", "auth.login", "10 per 1 minute", hours_ago=24 * 300)
    response = admin.get("/admin/rate-limits?since=365d")
    assert response.status_code == 200
    assert sum(int(row[1]) for row in table(response.get_data(as_text=True), "Breaches per day")) == 1
