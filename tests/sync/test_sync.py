"""Password sync on real servers: primary slapd, targets a Samba AD DC and the builtin directory."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.directory.builtin import BuiltinDirectory
from selfservice.extensions import db
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import get_security
from selfservice.sync import get_sync
from selfservice.sync.models import SyncWrite
from selfservice.sync.services import queue_sync
from selfservice.sync.worker import sync_due
from selfservice.timeutil import utcnow
from tests.conftest import person
from tests.faultproxy import FaultProxy
from tests.portal.test_change_password import everything_stored
from tests.sync.conftest import BUILTIN_TARGET, ad_target

pytestmark = [pytest.mark.ad, pytest.mark.slow]

NEW_PASSWORD = "Lantern-Orchard-Sync-58"
ORIGIN = Origin(ip="203.0.113.7", user_agent="pytest")


def reset(app: Flask, login: str, password: str = NEW_PASSWORD, **options: Any) -> None:
    """A self-service reset through the one path every flow takes."""
    with app.test_request_context():
        account = get_directory().find(login)
        assert account is not None
        apply_new_password(
            get_directory(),
            get_security(),
            account,
            NewPassword(password, password),
            how=How.RECOVERY,
            origin=ORIGIN,
            **options,
        )


def run_worker(app: Flask, *, later: timedelta = timedelta(0), worker: str = "test-worker") -> Any:
    with app.app_context():
        return sync_due(app.config, get_sync(), worker=worker, now=utcnow() + later)


def rows(app: Flask) -> dict[str, SyncWrite]:
    with app.app_context():
        found = db.session.scalars(sa.select(SyncWrite).order_by(SyncWrite.id)).all()
        db.session.expunge_all()
        return {row.target: row for row in found}


def events(app: Flask, tag: Tag) -> list[AuditEvent]:
    with app.app_context():
        found = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.tag == str(tag))).all()
        db.session.expunge_all()
        return list(found)


def binds_in_library(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return BuiltinDirectory(app.config).authenticate(login, password) is not None


def test_a_reset_reaches_all_three_directories(
    make_sync_app: Any, ad_directory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_sync_app()
    old = person("s1000001").password

    reset(app, "s1000001")

    with app.app_context():  # the primary has it at once; the targets wait for the worker
        assert get_directory().authenticate("s1000001", NEW_PASSWORD) is not None
    queued = rows(app)
    assert {name: row.status for name, row in queued.items()} == {"ad": "queued", "library": "queued"}
    assert all(row.secret for row in queued.values())
    assert NEW_PASSWORD not in everything_stored(app)  # held only encrypted while queued
    assert ad_directory.authenticate("s1000001", old) is not None

    result = run_worker(app)

    assert result.counts == {"done": 2}
    assert ad_directory.authenticate("s1000001", NEW_PASSWORD) is not None
    assert ad_directory.authenticate("s1000001", old) is None
    assert binds_in_library(app, "s1000001", NEW_PASSWORD)
    settled = rows(app)
    assert {row.status for row in settled.values()} == {"done"}
    assert [row.secret for row in settled.values()] == [None, None]  # the password is gone from the database
    applied = events(app, Tag.SYNC_APPLIED)
    assert sorted(event.details["target"] for event in applied) == ["ad", "library"]
    assert {event.subject for event in applied} == {"s1000001"}
    assert NEW_PASSWORD not in caplog.text


def test_a_target_down_during_the_reset_gets_the_password_after_it_returns(
    make_sync_app: Any, samba_proxy: FaultProxy, ad_directory: Any
) -> None:
    app = make_sync_app(ad_url=samba_proxy.url("ldaps"))
    samba_proxy.stop()

    reset(app, "p2000001")  # matched in AD by login: a parent has no student ID
    first = run_worker(app)

    assert first.counts == {"done": 1, "queued": 1}
    pending = rows(app)["ad"]
    assert (pending.status, pending.attempts) == ("queued", 1)
    assert pending.secret is not None
    assert pending.last_error
    assert pending.next_attempt_at > utcnow()
    assert rows(app)["library"].secret is None
    assert [event.details["target"] for event in events(app, Tag.SYNC_DEFERRED)] == ["ad"]
    assert run_worker(app).handled == 0  # not due again before its backoff

    samba_proxy.start()
    second = run_worker(app, later=timedelta(minutes=5))

    assert second.counts == {"done": 1}
    assert ad_directory.authenticate("p2000001", NEW_PASSWORD) is not None
    done = rows(app)["ad"]
    assert (done.status, done.attempts, done.secret) == ("done", 2, None)


def test_a_target_refusing_by_policy_is_reported_and_not_retried(
    make_sync_app: Any, ad_directory: Any
) -> None:
    app = make_sync_app()
    simple = "lowercaseonlyforeverandever"  # long enough for slapd and builtin, too simple for AD
    with app.app_context():
        account = get_directory().find("s1000002")
        queue_sync(get_sync(), account, simple, how="recovery", must_change=False, origin=ORIGIN)
        db.session.commit()

    result = run_worker(app)

    assert result.counts == {"done": 1, "refused": 1}
    refused = rows(app)["ad"]
    assert (refused.status, refused.secret) == ("refused", None)
    assert "too simple" in refused.last_error
    [event] = events(app, Tag.SYNC_REFUSED)
    assert (event.subject, event.details["target"]) == ("s1000002", "ad")
    assert run_worker(app, later=timedelta(days=1)).handled == 0  # never tried again
    assert ad_directory.authenticate("s1000002", person("s1000002").password) is not None
    assert binds_in_library(app, "s1000002", simple)


def test_an_account_missing_from_a_target_is_reported_and_the_reset_still_succeeds(
    make_sync_app: Any, samba_ad: Any
) -> None:
    # The AD target matches by student ID only; a parent has none there.
    app = make_sync_app(targets=[ad_target(samba_ad, match=["student_id"])])

    reset(app, "p2000002")
    result = run_worker(app)

    assert result.counts == {"missing": 1}
    missing = rows(app)["ad"]
    assert (missing.status, missing.secret) == ("missing", None)
    assert [event.details["target"] for event in events(app, Tag.SYNC_MISSING)] == ["ad"]
    with app.app_context():
        assert get_directory().authenticate("p2000002", NEW_PASSWORD) is not None


@pytest.mark.parametrize(("primary_must_change", "ad_must_change"), [(True, True), (False, False)])
def test_must_change_follows_the_primary_write_or_each_targets_own_flag(
    make_sync_app: Any, samba_ad: Any, ad_directory: Any, primary_must_change: bool, ad_must_change: bool
) -> None:
    never = {**BUILTIN_TARGET, "must_change": "never"}
    app = make_sync_app(targets=[ad_target(samba_ad), never])  # AD follows the primary write

    reset(app, "s1000001", must_change=primary_must_change)  # a help-desk link may ask for a change
    run_worker(app)

    assert ad_directory.find("s1000001").must_change is ad_must_change
    with app.app_context():
        assert BuiltinDirectory(app.config).find("s1000001").must_change is False


def test_an_account_locked_out_in_ad_signs_in_there_after_the_sync(
    make_sync_app: Any, samba_ad: Any, ad_directory: Any
) -> None:
    app = make_sync_app(targets=[ad_target(samba_ad)])
    for _attempt in range(10):  # the test DC locks after a few wrong passwords
        ad_directory.authenticate("s1000002", "Wrong-Password-0")
    assert ad_directory.find("s1000002").disabled  # locked out

    reset(app, "s1000002")
    run_worker(app)

    assert ad_directory.find("s1000002").disabled is False
    assert ad_directory.authenticate("s1000002", NEW_PASSWORD) is not None


def test_with_unlock_off_a_lockout_in_ad_stays_after_the_sync(
    make_sync_app: Any, samba_ad: Any, ad_directory: Any
) -> None:
    app = make_sync_app(targets=[ad_target(samba_ad, unlock=False)])
    for _attempt in range(10):
        ad_directory.authenticate("s1000002", "Wrong-Password-0")
    assert ad_directory.find("s1000002").disabled

    reset(app, "s1000002")
    assert run_worker(app).counts == {"done": 1}

    assert ad_directory.find("s1000002").disabled  # still locked out
    ad_directory.unlock(ad_directory.find("s1000002"))
    assert ad_directory.authenticate("s1000002", NEW_PASSWORD) is not None  # the password was written


def test_a_newer_change_supersedes_a_pending_older_one(
    make_sync_app: Any, samba_proxy: FaultProxy, ad_directory: Any
) -> None:
    app = make_sync_app(ad_url=samba_proxy.url("ldaps"))
    samba_proxy.stop()
    reset(app, "s1000001", "Older-Password-Sync-41")
    run_worker(app)
    reset(app, "s1000001")
    samba_proxy.start()

    run_worker(app, later=timedelta(hours=1))

    with app.app_context():
        statuses = db.session.execute(
            sa.select(SyncWrite.target, SyncWrite.status, SyncWrite.secret).order_by(SyncWrite.id)
        ).all()
    assert [tuple(row) for row in statuses] == [
        ("ad", "superseded", None),
        ("library", "done", None),
        ("ad", "done", None),
        ("library", "done", None),
    ]
    assert ad_directory.authenticate("s1000001", NEW_PASSWORD) is not None
