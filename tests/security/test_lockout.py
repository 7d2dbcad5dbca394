"""Per-account lockout (invariants 2 and 3): claim before verify, count atomically, lock, expire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.security import get_security
from selfservice.security.lockout import Locked, LockoutService
from selfservice.security.models import Lockout
from selfservice.timeutil import utcnow
from tests.conftest import AppFactory, person
from tests.portal.test_recovery import answer, begin, enroll, outbox

KEY, LOGIN = "account-1", "s1000001"
ORIGIN = Origin(ip="198.51.100.4", user_agent="pytest")


@pytest.fixture
def lockout(make_app: AppFactory) -> Iterator[LockoutService]:
    app: Flask = make_app(LOCKOUT_MAX_FAILURES=3, LOCKOUT_WINDOW_MINUTES=15, LOCKOUT_MINUTES=30)
    with app.app_context():
        yield get_security().lockout


def fail(lockout: LockoutService, times: int = 1) -> None:
    for _ in range(times):
        lockout.claim_attempt(KEY, LOGIN, ORIGIN)
        lockout.record_failure(KEY, LOGIN, ORIGIN)


def row() -> Lockout:
    found = db.session.get(Lockout, KEY, populate_existing=True)
    assert found is not None
    return found


def locks_recorded() -> int:
    return len(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(Tag.LOCKED))).all())


def test_each_claim_counts_before_the_guess_is_checked(lockout: LockoutService) -> None:
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    assert row().failures == 2
    assert row().login == LOGIN
    assert row().last_ip == ORIGIN.ip


def test_the_last_allowed_failure_locks_and_is_audited_once(lockout: LockoutService) -> None:
    fail(lockout, 2)
    assert lockout.locked_until(KEY) is None
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    until = lockout.record_failure(KEY, LOGIN, ORIGIN)
    assert until is not None
    assert timedelta(minutes=29) < until - utcnow() <= timedelta(minutes=30)
    assert lockout.locked_until(KEY) == until
    with pytest.raises(Locked) as refused:
        lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    assert refused.value.until == until
    assert row().failures == 3  # the refused claim counted nothing
    assert locks_recorded() == 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.tag == str(Tag.LOCKED)))
    assert event is not None
    assert (event.subject, event.subject_key, event.ip) == (LOGIN, KEY, ORIGIN.ip)
    assert [r.account_key for r in lockout.currently_locked()] == [KEY]


def test_success_gives_the_claims_back(lockout: LockoutService) -> None:
    fail(lockout, 2)
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    lockout.record_success(KEY)
    assert row().failures == 0
    fail(lockout, 2)
    assert lockout.locked_until(KEY) is None


def test_clear_lifts_a_lock_and_says_so(lockout: LockoutService) -> None:
    fail(lockout, 3)
    assert lockout.clear(KEY) is True
    db.session.commit()
    assert lockout.locked_until(KEY) is None
    assert row().failures == 0
    assert lockout.clear(KEY) is False
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)  # allowed again at once


def test_failures_outside_the_window_are_forgotten(lockout: LockoutService) -> None:
    fail(lockout, 2)
    db.session.execute(update(Lockout).values(window_started_at=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    assert row().failures == 1  # a fresh window
    assert row().window_started_at > utcnow() - timedelta(minutes=1)
    fail(lockout, 1)
    assert lockout.locked_until(KEY) is None


def test_after_the_lock_ends_a_fresh_window_begins(lockout: LockoutService) -> None:
    fail(lockout, 3)
    db.session.execute(update(Lockout).values(locked_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert lockout.locked_until(KEY) is None
    assert lockout.currently_locked() == []
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    assert row().failures == 1
    assert row().locked_until is None
    fail(lockout, 1)
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    assert lockout.record_failure(KEY, LOGIN, ORIGIN) is not None  # locks again after 3 new failures
    assert locks_recorded() == 2


def test_accounts_are_counted_apart(lockout: LockoutService) -> None:
    fail(lockout, 3)
    lockout.claim_attempt("account-2", "s1000002", ORIGIN)
    assert db.session.get(Lockout, "account-2").failures == 1  # type: ignore[union-attr]


# The long-run cap (issue 14, item 10) ---------------------------------------------------


def test_slow_guessing_stops_at_the_daily_cap_and_tells_the_holder_once(make_app: AppFactory) -> None:
    # Windows that never lock: only the daily cap can stop four-per-window guessing.
    app = make_app(
        LOCKOUT_MAX_FAILURES=100, LOCKOUT_MAX_FAILURES_PER_DAY=6, LOCKOUT_NOTICE_FAILURES_PER_DAY=3
    )
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    for _ in range(6):
        assert answer(client, app, right=False).headers["Location"] == "/forgot/help"
    with app.app_context():
        before = get_security().hasher.verify_count
    refused = answer(client, app, "s1000001")  # even the right answers, for the rest of the day
    assert refused.headers["Location"] == "/forgot/help"
    with app.app_context():
        assert get_security().hasher.verify_count == before  # capped before any argon2 work
    notices = outbox(app, "notice:repeated_failures")
    assert [m.to_address for m in notices] == [person("s1000001").email]
    assert "3 wrong tries" in notices[0].body_text


def test_code_tries_count_towards_the_daily_cap(lockout: LockoutService) -> None:
    cap = lockout.policy.max_failures_per_day
    for _ in range(cap):
        lockout.claim_code(KEY, LOGIN, ORIGIN)
    with pytest.raises(Locked) as refused:
        lockout.claim_code(KEY, LOGIN, ORIGIN)
    assert refused.value.until > utcnow() + timedelta(hours=23)
    with pytest.raises(Locked):
        lockout.claim_attempt(KEY, LOGIN, ORIGIN)  # and answer sets with them


def test_a_right_answer_gives_its_daily_claim_back_and_an_unlock_clears_the_day(
    lockout: LockoutService,
) -> None:
    fail(lockout, 2)
    lockout.claim_attempt(KEY, LOGIN, ORIGIN)
    lockout.record_success(KEY)
    assert row().day_failures == 2
    lockout.clear(KEY)
    db.session.commit()
    assert row().day_failures == 0


def day_end() -> datetime:
    started = row().day_started_at
    assert started is not None
    return started + timedelta(days=1)


def lock_events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(Tag.LOCKED))))


@pytest.fixture
def capped(make_app: AppFactory) -> Iterator[LockoutService]:
    """Windows that never lock: only the daily cap (4) can."""
    app = make_app(LOCKOUT_MAX_FAILURES=100, LOCKOUT_MAX_FAILURES_PER_DAY=4)
    with app.app_context():
        yield get_security().lockout


def test_the_answer_that_reaches_the_daily_cap_locks_once_until_the_day_ends(capped: LockoutService) -> None:
    fail(capped, 3)
    capped.claim_attempt(KEY, LOGIN, ORIGIN)
    until = capped.record_failure(KEY, LOGIN, ORIGIN)
    assert until == day_end()  # the true end: the day's, not a 30-minute lock's
    assert capped.locked_until(KEY) == until
    with pytest.raises(Locked) as refused:
        capped.claim_attempt(KEY, LOGIN, ORIGIN)
    assert (refused.value.until, refused.value.newly) == (until, False)
    (event,) = lock_events()
    assert (event.subject, event.subject_key, event.ip, event.outcome) == (LOGIN, KEY, ORIGIN.ip, "locked")
    assert event.details["until"] == until.isoformat()
    assert row().locked_at is not None  # "Locked since" on the admin pages


def test_the_code_that_reaches_the_daily_cap_locks_once_until_the_day_ends(capped: LockoutService) -> None:
    for _ in range(3):
        capped.claim_code(KEY, LOGIN, ORIGIN)
        assert capped.record_code_failure(KEY, LOGIN, ORIGIN) is None
    capped.claim_code(KEY, LOGIN, ORIGIN)
    until = capped.record_code_failure(KEY, LOGIN, ORIGIN)
    assert until == day_end()
    with pytest.raises(Locked) as refused:
        capped.claim_code(KEY, LOGIN, ORIGIN)
    assert (refused.value.until, refused.value.newly) == (until, False)
    assert len(lock_events()) == 1


def test_a_claim_refused_at_the_cap_sets_the_lock_when_nobody_has(capped: LockoutService) -> None:
    # Four claims in flight (none recorded yet): the fifth is refused and is the one that locks.
    for _ in range(4):
        capped.claim_attempt(KEY, LOGIN, ORIGIN)
    with pytest.raises(Locked) as refused:
        capped.claim_code(KEY, LOGIN, ORIGIN)
    assert (refused.value.until, refused.value.newly) == (day_end(), True)
    for _ in range(4):
        assert capped.record_failure(KEY, LOGIN, ORIGIN) is None  # already told
    assert len(lock_events()) == 1


def test_a_window_lock_is_extended_to_the_day_end_when_the_cap_follows(make_app: AppFactory) -> None:
    app = make_app(LOCKOUT_MAX_FAILURES=3, LOCKOUT_MAX_FAILURES_PER_DAY=4)
    with app.app_context():
        lockout = get_security().lockout
        fail(lockout, 3)  # a 30-minute lock
        assert len(lock_events()) == 1
        # A code claimed before the lock was set is wrong after it: the day's cap is reached.
        db.session.execute(update(Lockout).values(day_failures=4))
        db.session.commit()
        until = lockout.record_code_failure(KEY, LOGIN, ORIGIN)
        assert until == day_end()
        assert lockout.locked_until(KEY) == until
        assert len(lock_events()) == 2
        assert lockout.record_code_failure(KEY, LOGIN, ORIGIN) is None
        assert len(lock_events()) == 2


def test_an_unlock_lifts_a_daily_cap_lock(capped: LockoutService) -> None:
    fail(capped, 4)
    assert capped.locked_until(KEY) is not None
    assert capped.clear(KEY) is True
    db.session.commit()
    assert capped.locked_until(KEY) is None
    assert capped.currently_locked() == []
    capped.claim_attempt(KEY, LOGIN, ORIGIN)  # allowed again at once
