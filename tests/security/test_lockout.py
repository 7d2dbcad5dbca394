"""Per-account lockout (invariants 2 and 3): claim before verify, count atomically, lock, expire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

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
from tests.conftest import AppFactory

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
