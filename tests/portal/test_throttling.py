"""Throttle before cost (invariants 2 and 3) on /forgot: per-IP limits, then the account's lock."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.audit.tags import Tag
from selfservice.dates import format_moment
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal import recovery
from selfservice.security import get_security
from selfservice.security.models import Lockout, RateLimitBreach
from selfservice.security.throttling import flush_breaches
from tests.conftest import AppFactory, csrf_token, person, post_form
from tests.portal.test_recovery import (
    ORIGIN,
    WRONG,
    answer,
    audit,
    begin,
    enroll,
    mailed_code,
    masked,
    outbox,
    pinned_ids,
)

PARALLEL_GUESSES = 20
QUESTIONS = 3
MAX_FAILURES = 5
PARALLEL_CODES = 8


def verifies(app: Flask) -> int:
    with app.app_context():
        return get_security().hasher.verify_count


def test_the_429_arrives_before_any_argon2_work(make_app: AppFactory) -> None:
    app = make_app(RECOVERY_RATE_LIMIT="2 per minute")
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    answer(client, app, right=False)
    answer(client, app, right=False)
    before = verifies(app)

    refused = answer(client, app, right=False)

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    page = refused.get_data(as_text=True)
    assert "Too many attempts" in page
    assert "try again" in page
    assert verifies(app) == before
    with app.app_context():
        assert db.session.scalar(select(Lockout.failures)) == 2  # the lock claim was not touched either
    assert audit(app, Tag.RATE_LIMIT_BREACH) == []  # counted, not logged row by row
    with app.app_context():
        flush_breaches()
        (breach,) = db.session.scalars(select(RateLimitBreach))
    assert (breach.scope, breach.key, breach.endpoint, breach.count) == (
        "ip",
        "127.0.0.1",
        "portal.forgot_questions",
        1,
    )
    assert breach.limit_name == "RECOVERY_RATE_LIMIT: 2 per minute"


def test_every_forgot_step_is_limited_per_ip(make_app: AppFactory) -> None:
    app = make_app(RECOVERY_RATE_LIMIT="1 per minute")
    client = app.test_client()
    assert begin(client, "s1000001").status_code == 303
    assert begin(client, "s1000001").status_code == 429
    token = csrf_token(client, "/forgot")
    for path in ["/forgot/code", "/forgot/reset/anything"]:
        assert client.post(path, data={"csrf_token": token}).status_code != 429
        assert client.post(path, data={"csrf_token": token}).status_code == 429


def test_the_rate_limit_page_is_the_same_for_any_login(make_app: AppFactory) -> None:
    pages = []
    for login in ["s1000001", "ghost"]:
        app = make_app(RECOVERY_RATE_LIMIT="1 per minute")  # a fresh limiter each time
        enroll(app, "s1000001")
        client = app.test_client()
        begin(client, login)
        answer(client, app, right=False)
        refused = answer(client, app, right=False)
        pages.append((refused.status_code, masked(refused.get_data(as_text=True))))
    assert pages[0] == pages[1]
    assert pages[0][0] == 429


def _started(client: FlaskClient, login: str) -> str:
    """Start recovery for ``login`` on ``client``; the questions form's CSRF token."""
    begin(client, login)
    return csrf_token(client, "/forgot/questions")


def _guess_at_once(clients: list[FlaskClient], tokens: list[str]) -> list[Any]:
    """Every client posts wrong answers at the same moment: (status, Location) of each."""
    barrier = threading.Barrier(len(clients))
    results: list[Any] = []

    def guess(client: FlaskClient, token: str) -> None:
        data = {"csrf_token": token, **{f"answer_{n}": WRONG for n in range(1, QUESTIONS + 1)}}
        barrier.wait()
        response = client.post("/forgot/questions", data=data)
        results.append((response.status_code, response.headers.get("Location")))

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_twenty_parallel_wrong_answers_are_cut_off_at_the_lockout_limit(make_app: AppFactory) -> None:
    # The per-IP limit would stop them first: lift it, so the database lock is what holds.
    app = make_app(RECOVERY_RATE_LIMIT="1000 per minute", GLOBAL_RATE_LIMIT="1000 per minute")
    enroll(app, "s1000001")
    clients = [app.test_client() for _ in range(PARALLEL_GUESSES)]
    tokens = [_started(client, "s1000001") for client in clients]
    assert len({tuple(pinned_ids(c, app)) for c in clients}) == 1
    before = verifies(app)
    results = _guess_at_once(clients, tokens)

    assert results == [(303, "/forgot/help")] * PARALLEL_GUESSES
    assert verifies(app) - before <= QUESTIONS * MAX_FAILURES
    failed = audit(app, Tag.RECOVERY_ANSWER_FAILED)
    assert sum(e.outcome == "failure" for e in failed) == MAX_FAILURES  # guesses that reached argon2
    assert sum(e.outcome == "locked" for e in failed) == PARALLEL_GUESSES - MAX_FAILURES
    assert len(audit(app, Tag.LOCKED)) == 1
    assert [m.to_address for m in outbox(app, "notice:locked")] == [person("s1000001").email]
    with app.app_context():
        key = get_directory().find("s1000001").key  # type: ignore[union-attr]
        row = db.session.get(Lockout, key)
        assert row is not None
        assert row.failures == MAX_FAILURES
        assert row.locked_until is not None


def _lock_notice_tells_the_day_end(app: Flask, login: str) -> None:
    """One LOCKED event and one notice, both saying the day's end (when the cap lifts)."""
    (event,) = audit(app, Tag.LOCKED)
    with app.app_context():
        key = get_directory().find(login).key  # type: ignore[union-attr]
        row = db.session.get(Lockout, key)
        assert row is not None
        assert row.day_started_at is not None
        day_end = row.day_started_at + timedelta(days=1)
        assert row.locked_until == day_end
    assert event.details["until"] == day_end.isoformat()
    (notice,) = outbox(app, "notice:locked")
    assert notice.to_address == person(login).email
    assert format_moment(day_end, "en", app.config["TIME_ZONE"]) in notice.body_text


def test_parallel_wrong_answers_at_the_daily_cap_write_one_lock_and_one_notice(make_app: AppFactory) -> None:
    # Windows that never lock, so the daily cap is what stops the twenty.
    app = make_app(
        RECOVERY_RATE_LIMIT="1000 per minute",
        GLOBAL_RATE_LIMIT="1000 per minute",
        LOCKOUT_MAX_FAILURES=100,
        LOCKOUT_MAX_FAILURES_PER_DAY=MAX_FAILURES,
    )
    enroll(app, "s1000001")
    clients = [app.test_client() for _ in range(PARALLEL_GUESSES)]
    tokens = [_started(client, "s1000001") for client in clients]
    results = _guess_at_once(clients, tokens)

    assert results == [(303, "/forgot/help")] * PARALLEL_GUESSES
    failed = audit(app, Tag.RECOVERY_ANSWER_FAILED)
    assert sum(e.outcome == "failure" for e in failed) == MAX_FAILURES
    _lock_notice_tells_the_day_end(app, "s1000001")


def _wrong_code(app: Flask, barrier: threading.Barrier, results: list[Any]) -> None:
    with app.app_context():
        account = get_directory().find("p2000001")
        assert account is not None
        attempt = recovery.Attempt(lookup="unused", subject=account.key)
        barrier.wait()
        step = recovery.check_code(get_directory(), get_security(), app.config, attempt, "AAAAAAAA", ORIGIN)
        results.append(step.stage)
        db.session.remove()


def _at_the_code_page(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    """A parent with a daily cap of 2 who answered right and is asked for the mailed code."""
    app = make_app(LOCKOUT_MAX_FAILURES_PER_DAY=2, CODE_TRIES=3)
    enroll(app, "p2000001")
    client = app.test_client()
    begin(client, "p2000001")
    assert answer(client, app, "p2000001").headers["Location"] == "/forgot/code"
    return app, client


def test_parallel_wrong_codes_at_the_daily_cap_write_one_lock_and_one_notice(make_app: AppFactory) -> None:
    app, client = _at_the_code_page(make_app)
    barrier = threading.Barrier(PARALLEL_CODES)
    results: list[Any] = []
    threads = [
        threading.Thread(target=_wrong_code, args=(app, barrier, results)) for _ in range(PARALLEL_CODES)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == PARALLEL_CODES
    assert all(stage in (recovery.Stage.CODE, recovery.Stage.HELP) for stage in results)
    _lock_notice_tells_the_day_end(app, "p2000001")
    # And the right code no longer gets past the cap.
    assert post_form(client, "/forgot/code", {"code": mailed_code(app)}).headers["Location"] == "/forgot/help"


def test_a_lock_set_by_wrong_codes_says_codes_not_answers(make_app: AppFactory) -> None:
    app, client = _at_the_code_page(make_app)

    post_form(client, "/forgot/code", {"code": "AAAAAAAA"})
    post_form(client, "/forgot/code", {"code": "AAAAAAAA"})

    (event,) = audit(app, Tag.LOCKED)
    assert event.details["limit"] == "day"
    (notice,) = outbox(app, "notice:locked")
    assert "A wrong verification code reached today's limit of wrong tries" in notice.body_text
    assert "wrong answers to the security questions" not in notice.body_text


def test_a_lock_set_by_wrong_answers_still_says_answers(make_app: AppFactory) -> None:
    app = make_app(LOCKOUT_MAX_FAILURES=2)
    enroll(app, "s1000001")
    client = app.test_client()
    for _ in range(2):
        begin(client, "s1000001")
        answer(client, app, right=False)

    (notice,) = outbox(app, "notice:locked")
    assert "wrong answers to the security questions" in notice.body_text
    assert "verification code" not in notice.body_text
