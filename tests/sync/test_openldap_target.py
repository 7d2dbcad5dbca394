"""An OpenLDAP sync target on a real slapd: the builtin directory (or a slapd) is the primary,
the school portals' OpenLDAP gets every change through the queue.

The session slapd is the target (seed restored around each test); the district slapd, with
its own schema, is the target where the attribute mapping matters. A proxy in front of the
target takes it away and brings it back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ldap3
import pytest
from flask import Flask

from selfservice.audit.tags import Tag
from selfservice.cli import main
from selfservice.sync import get_sync
from selfservice.sync.worker import run_worker as run_sync_worker
from selfservice.workers import StopFlag
from tests.conftest import AuthActions, person, post_form
from tests.doctor import district
from tests.faultproxy import EXTENDED_REQUEST, Fault, FaultProxy, ldap_request
from tests.fixtures.disabling import PERMANENT_LOCK, failure_lock_time, ldap_lock
from tests.portal.test_recovery import enroll, recover, reset_to
from tests.slapd import Slapd
from tests.sync.conftest import district_target, lakeside_dn, openldap_target
from tests.sync.test_sync import NEW_PASSWORD, events, reset, rows, run_worker

pytestmark = [pytest.mark.ldap, pytest.mark.slow]


def binds(instance: Slapd, dn: str, password: str) -> bool:
    """Whether a simple bind as ``dn`` with ``password`` succeeds on ``instance``."""
    server = ldap3.Server(instance.url, get_info=ldap3.NONE, connect_timeout=5)
    connection = ldap3.Connection(server, dn, password, raise_exceptions=False, receive_timeout=5)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def ppolicy_state(instance: Slapd, dn: str) -> dict[str, list[str]]:
    """pwdReset and pwdAccountLockedTime of ``dn`` as the rootdn reads them (absent: empty)."""
    connection = instance.root_connection()
    try:
        found = connection.search(
            dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdReset", "pwdAccountLockedTime"]
        )
        assert found, connection.result
        attributes = connection.response[0]["raw_attributes"]
        return {name: [value.decode() for value in values] for name, values in attributes.items() if values}
    finally:
        connection.unbind()


def lock(instance: Slapd, dn: str) -> None:
    """Lock ``dn`` in the target the way ppolicy does for good (an administrator's lock)."""
    connection = instance.root_connection()
    try:
        change = {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]}
        assert connection.modify(dn, change), connection.result
    finally:
        connection.unbind()


def status_lines(app: Flask) -> str:
    result = app.test_cli_runner().invoke(main, ["sync", "status"])
    return result.output


# --- the change reaches the target ------------------------------------------------------------


def test_a_self_service_reset_on_the_builtin_primary_reaches_the_openldap_target(
    make_ldap_target_app: Any, slapd: Slapd
) -> None:
    app = make_ldap_target_app()
    enroll(app, "s1000001")
    client = app.test_client()
    old = person("s1000001").password

    done = reset_to(client, recover(client, app, "s1000001"), NEW_PASSWORD)

    assert done.headers["Location"] == "/forgot/done"
    assert "School portals follows within 15 minutes." in client.get("/forgot/done").get_data(as_text=True)
    assert binds(slapd, slapd.dn("s1000001"), old)  # the target waits for the worker
    assert run_worker(app).counts == {"done": 1}
    assert binds(slapd, slapd.dn("s1000001"), NEW_PASSWORD)
    assert not binds(slapd, slapd.dn("s1000001"), old)
    assert ppolicy_state(slapd, slapd.dn("s1000001")).get("pwdReset") is None
    written = rows(app)["portals"]
    assert (written.status, written.secret, written.attempts) == ("done", None, 1)
    [applied] = events(app, Tag.SYNC_APPLIED)
    assert (applied.subject, applied.details["target"]) == ("s1000001", "portals")


def test_a_signed_in_change_on_the_builtin_primary_reaches_the_openldap_target(
    make_ldap_target_app: Any, slapd: Slapd
) -> None:
    app = make_ldap_target_app()
    client = app.test_client()
    old = person("p2000001").password
    AuthActions(client).login("p2000001")

    form = {"current_password": old, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert post_form(client, "/password", form).status_code == 303
    result = run_worker(app)

    assert result.counts == {"done": 1}
    assert rows(app)["portals"].lookups == {"login": "p2000001"}  # a parent has no student ID
    assert binds(slapd, slapd.dn("p2000001"), NEW_PASSWORD)
    assert not binds(slapd, slapd.dn("p2000001"), old)


# --- finding the account in the target ----------------------------------------------------------


def test_the_target_account_is_found_by_student_id_then_login_with_the_targets_own_attributes(
    make_app: Any, slapd: Slapd, ldap_directory: Any, district_slapd: Slapd, lakeside_accounts: Any
) -> None:
    # The primary is the session slapd (student ID in schoolStudentId); the target's schema has
    # no such attribute: it keeps the student ID in lakesideStudentNumber, under other logins.
    app = make_app(directory="openldap", SYNC_TARGETS=[district_target(district_slapd)])
    reset(app, "s1000001")  # student 1000001 is ana.lopez there; "s1000001" there is someone else
    reset(app, "p2000001")  # no student ID: found by login
    reset(app, "s1000002")  # neither the student ID nor the login is there

    result = run_worker(app)

    assert result.counts == {"done": 2, "missing": 1}
    assert binds(district_slapd, lakeside_dn("ana.lopez"), NEW_PASSWORD)
    assert binds(district_slapd, lakeside_dn("p2000001"), NEW_PASSWORD)
    assert binds(district_slapd, lakeside_dn("s1000001"), district.PASSWORD)  # the login alone did not win
    assert not binds(district_slapd, lakeside_dn("s1000001"), NEW_PASSWORD)
    missing = {event.subject: event.details for event in events(app, Tag.SYNC_MISSING)}
    assert list(missing) == ["s1000002"]
    assert "student_id, login" in missing["s1000002"]["reason"]
    applied = {event.subject: event.details["target_key"] for event in events(app, Tag.SYNC_APPLIED)}
    assert applied["s1000001"] == entry_uuid(district_slapd, lakeside_dn("ana.lopez"))


def test_a_match_field_that_finds_two_accounts_is_never_passed_over_for_the_next(
    make_app: Any, slapd: Slapd, ldap_directory: Any, district_slapd: Slapd, lakeside_accounts: Any
) -> None:
    """Two target accounts hold Ana's student ID; "s1000001" there is someone else (Sam Other).

    Before, the ambiguous student ID was taken as "none" and the login tried next: Ana's new
    password went to Sam Other's account.
    """
    connection = district_slapd.root_connection()
    twin = lakeside_dn("ana.lopez2")
    entry = {
        "objectClass": ["inetOrgPerson", "lakesidePerson"],
        "uid": "ana.lopez2",
        "cn": "Ana Lopez",
        "sn": "Lopez",
        "lakesideRole": "student",
        "lakesideStudentNumber": "1000001",
        "userPassword": district.PASSWORD,
    }
    assert connection.add(twin, attributes=entry), connection.result
    try:
        app = make_app(directory="openldap", SYNC_TARGETS=[district_target(district_slapd)])
        reset(app, "s1000001")

        result = run_worker(app)

        for login in ("s1000001", "ana.lopez", "ana.lopez2"):
            assert not binds(district_slapd, lakeside_dn(login), NEW_PASSWORD), login
        assert result.counts == {"missing": 1}
        [missing] = [event.details for event in events(app, Tag.SYNC_MISSING)]
        assert "several accounts" in missing["reason"]
        assert "student_id" in missing["reason"]
    finally:
        connection.delete(twin)
        connection.unbind()


def entry_uuid(instance: Slapd, dn: str) -> str:
    connection = instance.root_connection()
    try:
        assert connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        return str(connection.entries[0].entryUUID.value)
    finally:
        connection.unbind()


# --- must change, unlock ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "primary_must_change", "pwd_reset"),
    [
        ("follow", True, ["TRUE"]),
        ("follow", False, None),
        ("always", False, ["TRUE"]),
        ("never", True, None),
    ],
)
def test_must_change_on_the_openldap_target_is_ppolicys_pwd_reset(
    make_ldap_target_app: Any,
    slapd: Slapd,
    ldap_directory: Any,
    rule: str,
    primary_must_change: bool,
    pwd_reset: list[str] | None,
) -> None:
    app = make_ldap_target_app(targets=[openldap_target(slapd, must_change=rule)])

    reset(app, "s1000002", must_change=primary_must_change)  # a help-desk link may ask for a change
    run_worker(app)

    assert ppolicy_state(slapd, slapd.dn("s1000002")).get("pwdReset") == pwd_reset
    assert ldap_directory.find("s1000002").must_change is (pwd_reset is not None)
    assert binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)  # ppolicy lets the bind in, then asks


def test_a_signed_in_change_clears_a_must_change_left_on_the_target(
    make_ldap_target_app: Any, slapd: Slapd, ldap_directory: Any
) -> None:
    app = make_ldap_target_app()
    ldap_directory.set_must_change(ldap_directory.find("p2000001"), True)
    client = app.test_client()
    AuthActions(client).login("p2000001")

    form = {"current_password": person("p2000001").password, "new_password": NEW_PASSWORD}
    post_form(client, "/password", {**form, "confirm": NEW_PASSWORD})
    run_worker(app)

    assert ppolicy_state(slapd, slapd.dn("p2000001")).get("pwdReset") is None


@pytest.mark.parametrize("unlock", [True, False])
def test_unlock_clears_ppolicys_failure_lock_on_the_target_only_when_asked(
    make_ldap_target_app: Any, slapd: Slapd, ldap_directory: Any, unlock: bool
) -> None:
    app = make_ldap_target_app(targets=[openldap_target(slapd, unlock=unlock)])
    failure_lock = failure_lock_time()
    ldap_lock(slapd, "s1000002", failure_lock)
    assert ldap_directory.find("s1000002").disabled

    reset(app, "s1000002")
    assert run_worker(app).counts == {"done": 1}

    locked = ppolicy_state(slapd, slapd.dn("s1000002")).get("pwdAccountLockedTime")
    assert locked == (None if unlock else [failure_lock])  # ppolicy lifts it on any reset
    assert ldap_directory.find("s1000002").disabled is not unlock
    assert binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD) is unlock
    ldap_directory.unlock(ldap_directory.find("s1000002"))
    assert binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)  # the password was written either way


@pytest.mark.parametrize("unlock", [True, False])
def test_an_administrators_permanent_lock_on_the_target_outlives_the_sync(
    make_ldap_target_app: Any, slapd: Slapd, ldap_directory: Any, unlock: bool
) -> None:
    """unlock = true ends failure locks only: an account disabled in the target stays disabled."""
    app = make_ldap_target_app(targets=[openldap_target(slapd, unlock=unlock)])
    lock(slapd, slapd.dn("s1000002"))

    reset(app, "s1000002")
    assert run_worker(app).counts == {"done": 1}

    assert ppolicy_state(slapd, slapd.dn("s1000002")).get("pwdAccountLockedTime") == [PERMANENT_LOCK]
    assert ldap_directory.find("s1000002").disabled_by_admin
    assert not binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)


# --- the target away -----------------------------------------------------------------------------


def test_a_target_down_keeps_the_change_queued_and_the_worker_delivers_it_when_it_returns(
    make_ldap_target_app: Any, slapd: Slapd, slapd_proxy: FaultProxy
) -> None:
    url = slapd_proxy.url()
    app = make_ldap_target_app(
        targets=[openldap_target(slapd, url)], SYNC_RETRY_BASE_SECONDS=1, SYNC_POLL_SECONDS=1
    )
    enroll(app, "s1000001")
    client = app.test_client()
    old = person("s1000001").password
    slapd_proxy.stop()

    done = reset_to(client, recover(client, app, "s1000001"), NEW_PASSWORD)
    first = run_worker(app)

    assert done.headers["Location"] == "/forgot/done"  # the person's reset succeeded on the primary
    assert AuthActions(app.test_client()).login("s1000001", NEW_PASSWORD).status_code == 303
    assert first.counts == {"queued": 1}
    pending = rows(app)["portals"]
    assert (pending.status, pending.attempts) == ("queued", 1)
    assert pending.secret is not None
    assert "did not answer" in pending.last_error
    assert "portals (openldap): queued 1, done 0" in status_lines(app)
    assert [event.details["target"] for event in events(app, Tag.SYNC_DEFERRED)] == ["portals"]

    slapd_proxy.start()
    totals = worker_until_done(app)

    assert totals.counts == {"done": 1}
    assert binds(slapd, slapd.dn("s1000001"), NEW_PASSWORD)
    assert not binds(slapd, slapd.dn("s1000001"), old)
    delivered = rows(app)["portals"]
    assert (delivered.status, delivered.attempts, delivered.secret) == ("done", 2, None)
    assert "portals (openldap): queued 0, done 1" in status_lines(app)


def worker_until_done(app: Flask, seconds: float = 5) -> Any:
    """The long-running worker (`selfservice sync run`), stopped after its first delivery."""
    stop = StopFlag()

    def report(result: Any) -> None:
        if result.counts.get("done"):
            stop.set()

    with app.app_context():
        return run_sync_worker(
            app.config,
            get_sync(),
            worker="test-worker",
            stop=stop,
            poll_seconds=app.config["SYNC_POLL_SECONDS"],
            max_seconds=seconds,
            report=report,
        )


def test_a_newer_change_made_while_the_target_is_down_is_the_one_it_gets(
    make_ldap_target_app: Any, slapd: Slapd, slapd_proxy: FaultProxy
) -> None:
    app = make_ldap_target_app(targets=[openldap_target(slapd, slapd_proxy.url())])
    slapd_proxy.stop()
    reset(app, "s1000002", "Older-Password-Sync-41")
    run_worker(app)
    reset(app, "s1000002")
    slapd_proxy.start()

    result = run_worker(app, later=timedelta(hours=1))

    assert result.counts == {"done": 1, "superseded": 1}
    assert binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.DROP_REPLY, id="written-reply-lost"),
        pytest.param(Fault.CUT_BEFORE, id="cut-before-the-server-saw-it"),
    ],
)
def test_a_password_write_left_unanswered_by_the_target_is_tried_again_not_refused(
    make_ldap_target_app: Any, slapd: Slapd, slapd_proxy: Any, fault: Fault
) -> None:
    target = openldap_target(slapd, slapd_proxy.url())
    target["settings"]["LDAP_OPERATION_TIMEOUT_SECONDS"] = 1
    app = make_ldap_target_app(targets=[target])
    reset(app, "s1000001")
    slapd_proxy.arm(fault, ldap_request(EXTENDED_REQUEST))  # the Password Modify request

    first = run_worker(app)

    assert slapd_proxy.fired.is_set()
    assert first.counts == {"queued": 1}  # sent, no answer: the target may or may not have it
    unanswered = rows(app)["portals"]
    assert (unanswered.status, unanswered.attempts) == ("queued", 1)
    assert unanswered.secret is not None
    assert events(app, Tag.SYNC_REFUSED) == []

    second = run_worker(app, later=timedelta(minutes=5))

    assert second.counts == {"done": 1}
    assert binds(slapd, slapd.dn("s1000001"), NEW_PASSWORD)
    assert not binds(slapd, slapd.dn("s1000001"), person("s1000001").password)
    assert rows(app)["portals"].secret is None


# --- selfservice check ---------------------------------------------------------------------------


def test_check_warns_when_a_target_gets_passwords_in_clear_or_unverified(
    make_ldap_target_app: Any, slapd: Slapd
) -> None:
    """The primary's transport gets a WARN; a target's said only "OK" (the test slapd is plain ldap://)."""
    unverified = openldap_target(slapd)
    unverified["name"] = "unverified"
    unverified["settings"] = {
        **unverified["settings"],
        "LDAP_START_TLS": True,
        "LDAP_VALIDATE_CERT": False,
    }
    app = make_ldap_target_app(targets=[openldap_target(slapd), unverified])

    output = app.test_cli_runner().invoke(main, ["check", "--no-settings"]).output

    assert "OK    sync target portals: its service account binds and reads" in output
    assert "WARN  sync target portals: not encrypted: passwords cross the network in clear" in output
    assert "WARN  sync target unverified: encrypted, but the certificate is NOT verified" in output


@pytest.mark.parametrize(
    ("unlock", "kept"),
    [
        pytest.param(False, "failure", id="unlock-false-failure-lock"),
        pytest.param(False, "permanent", id="unlock-false-permanent-lock"),
        pytest.param(True, "permanent", id="unlock-true-permanent-lock"),
    ],
)
def test_a_lock_the_target_keeps_survives_a_lost_reply_to_the_password_write(
    make_ldap_target_app: Any, slapd: Slapd, slapd_proxy: Any, ldap_directory: Any, unlock: bool, kept: str
) -> None:
    """ppolicy lifts the lock on the reset whose reply is lost; the retry finds no lock to write back.

    The lock read before the first attempt is kept on the queue row, so the attempt that
    settles the write (the retry) puts it back.
    """
    target = openldap_target(slapd, slapd_proxy.url(), unlock=unlock)
    target["settings"]["LDAP_OPERATION_TIMEOUT_SECONDS"] = 1
    app = make_ldap_target_app(targets=[target])
    lock_value = PERMANENT_LOCK if kept == "permanent" else failure_lock_time()
    ldap_lock(slapd, "s1000002", lock_value)
    reset(app, "s1000002")
    slapd_proxy.arm(Fault.DROP_REPLY, ldap_request(EXTENDED_REQUEST))  # the Password Modify request

    first = run_worker(app)

    assert slapd_proxy.fired.is_set()
    assert first.counts == {"queued": 1}
    second = run_worker(app, later=timedelta(minutes=5))

    assert second.counts == {"done": 1}
    assert ppolicy_state(slapd, slapd.dn("s1000002")).get("pwdAccountLockedTime") == [lock_value]
    assert ldap_directory.find("s1000002").disabled
    assert not binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)
    ldap_directory.unlock(ldap_directory.find("s1000002"))
    if kept == "failure":  # the password was written: once unlocked it binds
        assert binds(slapd, slapd.dn("s1000002"), NEW_PASSWORD)
