"""Lockouts: who is locked now, unlocking from the page and from the command line, and the history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ldap3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.security import get_security
from selfservice.security.lockout import Locked
from selfservice.security.models import Lockout
from selfservice.timeutil import utcnow
from tests.admin.conftest import lock_out, post_at_once, table
from tests.conftest import csrf_token, person
from tests.fixtures.disabling import disable_by_admin


def assert_can_try_again(app: Flask, key: str, login: str) -> None:
    """The lock is gone and a fresh guess is allowed at once."""
    with app.app_context():
        lockout = get_security().lockout
        assert lockout.locked_until(key) is None
        lockout.claim_attempt(key, login, Origin(ip="198.51.100.7"))  # raises Locked if still locked


def unlock_records(app: Flask, login: str) -> tuple[list[AuditEvent], list[OutboxMessage]]:
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(tag=str(Tag.UNLOCKED), subject=login).all()
        mail = db.session.query(OutboxMessage).filter_by(purpose="notice:unlocked").all()
        return events, mail


def test_locked_accounts_are_listed_with_their_details(admin: FlaskClient, app: Flask) -> None:
    lock_out(app, "s1000001", ip="198.51.100.23")
    text = admin.get("/admin/lockouts").get_data(as_text=True)
    assert "s1000001" in text
    assert "198.51.100.23" in text
    assert ">5<" in text  # failures
    assert "Unlock" in text


def test_unlocking_from_the_page_lets_the_account_try_again(admin: FlaskClient, app: Flask) -> None:
    key = lock_out(app, "s1000001")
    confirm_page = f"/admin/lockouts/{key}/unlock"
    assert admin.get(confirm_page).status_code == 200

    response = admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page), "confirm": "y"})

    assert response.status_code == 303
    assert_can_try_again(app, key, "s1000001")
    events, mail = unlock_records(app, "s1000001")
    assert [(e.actor, e.details["was_locked"]) for e in events] == [("admin1", True)]
    assert [m.to_address for m in mail] == ["ana.lopez@students.school.test"]
    page = admin.get("/admin/lockouts").get_data(as_text=True)
    assert "s1000001" not in page.split('id="locked-now"')[1].split('id="lock-history"')[0]


def test_an_account_at_the_daily_cap_can_be_unlocked_from_the_page(admin: FlaskClient, app: Flask) -> None:
    # Past LOCKOUT_MAX_FAILURES_PER_DAY self-service waits for the day to end "or an admin's
    # unlock" (docs/configuration.md), also once the last 30-minute lock has run out.
    key = lock_out(app, "s1000001")
    with app.app_context():
        now = utcnow()
        db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == key)
            .values(
                locked_at=now - timedelta(hours=2),
                locked_until=now - timedelta(hours=1),
                day_started_at=now - timedelta(hours=3),
                day_failures=app.config["LOCKOUT_MAX_FAILURES_PER_DAY"],
            )
        )
        db.session.commit()
        with pytest.raises(Locked):
            get_security().lockout.claim_attempt(key, "s1000001", Origin(ip="198.51.100.7"))

    listed = admin.get("/admin/lockouts").get_data(as_text=True)
    assert "s1000001" in listed.split('id="locked-now"')[1].split('id="lock-history"')[0]
    confirm_page = f"/admin/lockouts/{key}/unlock"
    assert admin.get(confirm_page).status_code == 200
    response = admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page), "confirm": "y"})
    assert response.status_code == 303
    assert_can_try_again(app, key, "s1000001")
    events, _mail = unlock_records(app, "s1000001")
    assert [e.details["was_locked"] for e in events] == [True]


def test_an_account_capped_by_wrong_codes_shows_like_a_lock_and_an_unlock_lifts_it(
    admin: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        account = get_directory().find("p2000001")
        assert account is not None
        key, lockout = account.key, get_security().lockout
        for _ in range(app.config["LOCKOUT_MAX_FAILURES_PER_DAY"]):
            lockout.claim_code(key, "p2000001", Origin(ip="198.51.100.9"))
        with pytest.raises(Locked):
            lockout.claim_code(key, "p2000001", Origin(ip="198.51.100.9"))

    listed = admin.get("/admin/lockouts").get_data(as_text=True)
    (locked_row,) = table(listed, listed.split("<caption>")[1].split("</caption>")[0])
    assert locked_row[0] == "p2000001"
    assert locked_row[1] != ""  # locked since
    assert locked_row[2] != ""  # until the day ends
    assert history_rows(listed) == [("Locked", "p2000001")]
    confirm_page = f"/admin/lockouts/{key}/unlock"
    response = admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page), "confirm": "y"})
    assert response.status_code == 303
    assert_can_try_again(app, key, "p2000001")


def test_unlocking_needs_the_confirmation_tick(admin: FlaskClient, app: Flask) -> None:
    key = lock_out(app, "s1000001")
    confirm_page = f"/admin/lockouts/{key}/unlock"
    response = admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page)})
    assert response.status_code == 400
    assert "Tick the box" in response.get_data(as_text=True)
    with app.app_context():
        assert get_security().lockout.locked_until(key) is not None


def test_unlocking_needs_a_csrf_token(admin: FlaskClient, app: Flask) -> None:
    key = lock_out(app, "s1000001")
    assert admin.post(f"/admin/lockouts/{key}/unlock", data={"confirm": "y"}).status_code == 400
    with app.app_context():
        assert get_security().lockout.locked_until(key) is not None


def test_an_account_that_is_not_locked_goes_back_to_the_list(admin: FlaskClient) -> None:
    response = admin.get("/admin/lockouts/nobody/unlock")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/lockouts")


def test_unlocking_from_the_command_line(app: Flask, runner: Any) -> None:
    key = lock_out(app, "s1000001")
    result = runner.invoke(args=["unlock", "s1000001"])
    assert result.exit_code == 0, result.output
    assert "unlocked" in result.output
    assert_can_try_again(app, key, "s1000001")
    events, mail = unlock_records(app, "s1000001")
    assert [e.actor for e in events] == ["cli"]
    assert len(mail) == 1


def test_the_command_line_names_an_unknown_login(runner: Any) -> None:
    result = runner.invoke(args=["unlock", "nobody-here"])
    assert result.exit_code != 0
    assert "no account found" in result.output


def test_history_shows_locks_and_unlocks_newest_first(admin: FlaskClient, app: Flask, runner: Any) -> None:
    lock_out(app, "s1000001")
    lock_out(app, "p2000001")
    runner.invoke(args=["unlock", "s1000001"])
    rows = history_rows(admin.get("/admin/lockouts").get_data(as_text=True))
    assert rows == [("Unlocked", "s1000001"), ("Locked", "p2000001"), ("Locked", "s1000001")]
    assert history_rows(admin.get("/admin/lockouts?login=p2000001").get_data(as_text=True)) == [
        ("Locked", "p2000001")
    ]


def history_rows(text: str) -> list[tuple[str, str]]:
    """(what, account) for each row of the history table, top to bottom."""
    body = text.split("Locks and unlocks, newest first")[1].split("</tbody>")[0]
    rows = []
    for row in body.split("<tr>")[2:]:
        cells = [cell.split("</td>")[0].strip() for cell in row.split("<td>")[1:]]
        rows.append((cells[1], cells[2]))
    return rows


def test_history_pages_do_not_overlap(admin: FlaskClient, app: Flask) -> None:
    from datetime import timedelta

    from selfservice.timeutil import utcnow
    from tests.admin.conftest import add_event

    now = utcnow()
    with app.app_context():
        for n in range(40):
            add_event(Tag.LOCKED, when=now - timedelta(minutes=2 * n), outcome="locked", subject=f"s{n:03d}")
            add_event(Tag.UNLOCKED, when=now - timedelta(minutes=2 * n + 1), actor="cli", subject=f"s{n:03d}")
    first = admin.get("/admin/lockouts").get_data(as_text=True)
    link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = admin.get(link).get_data(as_text=True)
    ids = [_event_ids(first), _event_ids(second)]
    assert len(ids[0]) == 50
    assert len(ids[1]) == 30
    assert ids[0].isdisjoint(ids[1])


def _event_ids(text: str) -> set[str]:
    return {part.split('"')[0] for part in text.split('href="/admin/audit/')[1:]}


def test_bad_history_filters_get_400(admin: FlaskClient) -> None:
    for query in ("since=someday", "after=zzz", "login=" + "x" * 300):
        response = admin.get(f"/admin/lockouts?{query}")
        assert response.status_code == 400, query


def test_an_account_an_administrator_disabled_is_not_unlocked_from_the_page_or_the_command_line(
    admin: FlaskClient, app: Flask, runner: Any, request: pytest.FixtureRequest
) -> None:
    key = lock_out(app, "s1000001")
    disable_by_admin(request, app, "s1000001")
    confirm_page = f"/admin/lockouts/{key}/unlock"
    response = admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page), "confirm": "y"})
    assert response.status_code == 409
    assert "An administrator disabled this account in the directory" in response.get_data(as_text=True)
    result = runner.invoke(args=["unlock", "s1000001"])
    assert result.exit_code != 0
    assert "disabled" in result.output
    with app.app_context():
        assert get_security().lockout.locked_until(key) is not None
    assert unlock_records(app, "s1000001") == ([], [])


UNLOCK_REFUSED = "account:selfservice:unlock-refused"


def test_a_refused_unlock_of_a_disabled_account_is_audited_from_the_page_and_the_command_line(
    admin: FlaskClient, app: Flask, runner: Any, request: pytest.FixtureRequest
) -> None:
    key = lock_out(app, "s1000001")
    disable_by_admin(request, app, "s1000001")
    confirm_page = f"/admin/lockouts/{key}/unlock"
    admin.post(confirm_page, data={"csrf_token": csrf_token(admin, confirm_page), "confirm": "y"})
    runner.invoke(args=["unlock", "s1000001"])
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(tag=UNLOCK_REFUSED).order_by(AuditEvent.id).all()
        seen = [(e.actor, e.subject, e.subject_key, e.outcome, e.details) for e in events]
    reason = {"reason": "disabled-by-admin"}
    assert seen == [
        ("admin1", "s1000001", key, "refused", reason),
        ("cli", "s1000001", key, "refused", reason),
    ]


def test_two_admins_unlocking_at_once_record_one_unlock_and_send_one_notice(app: Flask) -> None:
    key = lock_out(app, "s1000001")
    confirm_page = f"/admin/lockouts/{key}/unlock"

    # Both admins see the lock before either lifts it.
    results = post_at_once(app, [(confirm_page, {"confirm": "y"})] * 2, "lockout", form_path=confirm_page)

    assert [status for status, _page in results] == [303, 303]
    assert_can_try_again(app, key, "s1000001")
    events, mail = unlock_records(app, "s1000001")
    assert [e.details["was_locked"] for e in events] == [True]
    assert len(mail) == 1


@pytest.mark.ldap
@pytest.mark.slow
def test_an_address_on_file_too_long_to_send_to_does_not_undo_the_unlock(make_app: Any, slapd: Any) -> None:
    """A directory may hold a mail value longer than any deliverable address (254 characters):
    the unlock, its audit event and the other effects stand; only that notice is not queued."""
    app = make_app(directory="openldap")
    long_address = "a" * 250 + "@students.school.test"
    connection = slapd.root_connection()
    try:
        connection.modify(slapd.dn("s1000001"), {"mail": [(ldap3.MODIFY_REPLACE, [long_address])]})
        key = lock_out(app, "s1000001")
        result = app.test_cli_runner().invoke(args=["unlock", "s1000001"])
    finally:
        seeded = person("s1000001").email
        connection.modify(slapd.dn("s1000001"), {"mail": [(ldap3.MODIFY_REPLACE, [seeded])]})
        connection.unbind()
    assert result.exit_code == 0, repr(result.exception)
    assert_can_try_again(app, key, "s1000001")
    events, mail = unlock_records(app, "s1000001")
    assert [e.actor for e in events] == ["cli"]
    assert mail == []
