"""A change only the sweeper can settle still reaches every sync target (issue 15, invariant 15).

The primary slapd sits behind the fault proxy; the targets are the Samba AD DC and the
builtin directory. When the reply to the write is lost and slapd stays out of reach, the
person is told "we could not confirm"; the sweeper settles the change later from slapd's
own record. It never has the password: the password was held, encrypted, with the intent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal import pending
from selfservice.portal.models import PendingChange
from selfservice.portal.pending import How, Outcome
from selfservice.portal.reconcile import reconcile
from selfservice.security import get_security
from selfservice.sync.models import SyncStatus, SyncWrite
from tests.conftest import person
from tests.faultproxy import Fault, FaultProxy
from tests.portal.test_change_password import everything_stored
from tests.portal.test_write_faults import NEW_PASSWORD, PASSWORD_WRITE, recovery_token, reset
from tests.sync.test_sync import binds_in_library, events, run_worker

pytestmark = [pytest.mark.ad, pytest.mark.ldap, pytest.mark.slow]

LOGIN = "s1000001"
ORIGIN = Origin(ip="203.0.113.9", user_agent="pytest")


@pytest.fixture
def app(make_sync_app: Any, slapd_proxy: FaultProxy) -> Flask:
    """Primary slapd through the proxy (a lost reply is given up on after two seconds), two targets."""
    return make_sync_app(LDAP_URL=slapd_proxy.url(), LDAP_OPERATION_TIMEOUT_SECONDS=2)


def unconfirmed_reset(app: Flask, slapd_proxy: FaultProxy) -> None:
    """slapd applies the write, then the reply and slapd are gone: the page says "could not confirm"."""
    token = recovery_token(app, LOGIN)
    slapd_proxy.arm(Fault.PASS, PASSWORD_WRITE, after_forward=slapd_proxy.close)
    response = reset(app, token)
    assert response.status_code == 202
    assert "We could not confirm the change" in response.get_data(as_text=True)


def sweep(app: Flask, directory: Any) -> Any:
    with app.app_context():
        return reconcile(directory, get_security(), older_than=timedelta(0))


def sync_rows(app: Flask) -> list[tuple[str, str, bool]]:
    """(target, status, whether an encrypted password is held) for every queue row, oldest first."""
    with app.app_context():
        found = db.session.execute(
            sa.select(SyncWrite.target, SyncWrite.status, SyncWrite.secret).order_by(SyncWrite.id)
        ).all()
    return [(target, status, secret is not None) for target, status, secret in found]


def test_a_change_the_sweeper_settles_reaches_every_target(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any, ad_directory: Any
) -> None:
    old = person(LOGIN).password
    unconfirmed_reset(app, slapd_proxy)
    assert ldap_directory.authenticate(LOGIN, NEW_PASSWORD) is not None  # slapd did apply it

    assert sweep(app, ldap_directory).counts[Outcome.CHANGED] == 1
    run_worker(app)

    assert ad_directory.authenticate(LOGIN, NEW_PASSWORD) is not None
    assert ad_directory.authenticate(LOGIN, old) is None
    assert binds_in_library(app, LOGIN, NEW_PASSWORD)
    assert sync_rows(app) == [("ad", "done", False), ("library", "done", False)]
    assert NEW_PASSWORD not in everything_stored(app)
    queued = events(app, Tag.SYNC_QUEUED)
    assert len(queued) == 1
    assert sorted(queued[0].details["targets"]) == ["ad", "library"]


def test_held_writes_wait_for_the_change_to_be_settled(
    app: Flask, slapd_proxy: FaultProxy, ad_directory: Any
) -> None:
    unconfirmed_reset(app, slapd_proxy)
    assert sync_rows(app) == [("ad", "held", True), ("library", "held", True)]
    assert NEW_PASSWORD not in everything_stored(app)  # held only encrypted

    result = run_worker(app, later=timedelta(hours=1))

    assert result.counts == {}
    assert ad_directory.authenticate(LOGIN, NEW_PASSWORD) is None
    assert not binds_in_library(app, LOGIN, NEW_PASSWORD)
    assert sync_rows(app) == [("ad", "held", True), ("library", "held", True)]
    assert events(app, Tag.SYNC_QUEUED) == []


def test_a_change_the_sweeper_finds_not_made_leaves_no_password_behind(
    app: Flask, ldap_directory: Any, ad_directory: Any
) -> None:
    """The worker died after the intent was committed and before the write was sent."""
    with app.test_request_context():
        account = get_directory().find(LOGIN)
        ldap_directory.set_password(account, "Earlier-Password-Sync-12", must_change=False)  # a record
        intent = pending.open_intent(
            get_directory(), account, how=How.RECOVERY, origin=ORIGIN, sync_password=NEW_PASSWORD
        )
        db.session.commit()
        pending.mark_unknown(intent.id, "worker killed")
    assert sync_rows(app) == [("ad", "held", True), ("library", "held", True)]

    assert sweep(app, ldap_directory).counts[Outcome.NOT_CHANGED] == 1
    run_worker(app)

    assert sync_rows(app) == []
    assert ad_directory.authenticate(LOGIN, NEW_PASSWORD) is None
    assert not binds_in_library(app, LOGIN, NEW_PASSWORD)


def test_a_live_change_queues_exactly_one_write_per_target_and_the_sweeper_adds_none(
    app: Flask, ldap_directory: Any, ad_directory: Any
) -> None:
    token = recovery_token(app, LOGIN)
    assert reset(app, token).status_code == 303
    assert sync_rows(app) == [("ad", "queued", True), ("library", "queued", True)]

    assert sweep(app, ldap_directory).counts == dict.fromkeys(Outcome, 0)
    assert run_worker(app).counts == {"done": 2}

    assert sync_rows(app) == [("ad", "done", False), ("library", "done", False)]
    assert ad_directory.authenticate(LOGIN, NEW_PASSWORD) is not None
    assert len(events(app, Tag.SYNC_QUEUED)) == 1


def test_a_lost_reply_the_live_request_settles_queues_one_write_per_target(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any, ad_directory: Any
) -> None:
    token = recovery_token(app, LOGIN)
    slapd_proxy.arm(Fault.DROP_REPLY, PASSWORD_WRITE)
    assert reset(app, token).status_code == 303  # settled live from slapd's record and a bind
    assert sweep(app, ldap_directory).counts == dict.fromkeys(Outcome, 0)
    assert sync_rows(app) == [("ad", "queued", True), ("library", "queued", True)]
    run_worker(app)
    assert ad_directory.authenticate(LOGIN, NEW_PASSWORD) is not None


def test_two_sweepers_release_the_held_writes_once(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any
) -> None:
    unconfirmed_reset(app, slapd_proxy)
    with app.app_context():
        intent = db.session.scalars(sa.select(PendingChange)).one()
        db.session.expunge(intent)
    with app.app_context():  # a second sweeper read the same open intent before the first settled it
        first = pending.settle_from_directory(ldap_directory, get_security(), intent, settled_by="reconcile")
        second = pending.settle_from_directory(ldap_directory, get_security(), intent, settled_by="reconcile")
    assert first is Outcome.CHANGED  # both saw the change ...
    assert second is Outcome.CHANGED
    assert sync_rows(app) == [("ad", "queued", True), ("library", "queued", True)]  # ... one release
    assert len(events(app, Tag.SYNC_QUEUED)) == 1
    assert len(events(app, Tag.PASSWORD_RESET)) == 1
    assert run_worker(app).counts == {"done": 2}


def test_held_writes_past_the_hold_are_given_up_and_their_password_forgotten(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any
) -> None:
    unconfirmed_reset(app, slapd_proxy)
    hours = app.config["SYNC_HOLD_HOURS"]
    with app.app_context():
        ldap_down = get_directory()  # still through the closed proxy: the sweep cannot settle
        reconcile(ldap_down, get_security(), older_than=timedelta(0), now=_later(hours))
    assert sync_rows(app) == [("ad", SyncStatus.GIVEN_UP.value, False), ("library", "given-up", False)]
    assert {event.details["reason"] for event in events(app, Tag.SYNC_GIVEN_UP)} == {"held-too-long"}


def _later(hours: int) -> Any:
    from selfservice.timeutil import utcnow

    return utcnow() + timedelta(hours=hours, minutes=1)
