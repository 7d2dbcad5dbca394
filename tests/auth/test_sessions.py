"""Server-side sessions (DESIGN invariant 17, issue 14 item 6).

A cookie used to keep working after sign-out, other browsers survived a password
change, and an admin removed from the admin group and disabled kept using /admin/audit.
"""

from __future__ import annotations

import base64
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from selfservice.audit.services import Origin
from selfservice.auth.models import WebSession
from selfservice.directory.models import DirectoryAccount
from selfservice.extensions import db
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import get_security
from tests.conftest import AuthActions, person, post_form

COOKIE = "__Host-selfservice_session"


def signed_in(app: Flask, login: str) -> FlaskClient:
    client = app.test_client()
    assert AuthActions(client).login(login).status_code == 303
    return client


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def replay(app: Flask, token: str) -> FlaskClient:
    """A fresh browser holding a copy of ``token``, as a thief would."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, token)
    return thief


def is_signed_in(client: FlaskClient) -> bool:
    return "Signed in as" in client.get("/").get_data(as_text=True)


def session_rows(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_a_copied_cookie_stops_working_at_sign_out(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    stolen = cookie_of(browser)
    assert is_signed_in(replay(app, stolen))
    AuthActions(browser).logout()
    assert not is_signed_in(replay(app, stolen))
    assert not is_signed_in(browser)


def test_sign_out_ends_every_session_of_the_account(app: Flask) -> None:
    laptop, library_pc = signed_in(app, "s1000001"), signed_in(app, "s1000001")
    someone_else = signed_in(app, "s1000002")
    AuthActions(laptop).logout()
    assert not is_signed_in(library_pc)
    assert is_signed_in(someone_else)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app: Flask) -> None:
    here, elsewhere = signed_in(app, "p2000001"), signed_in(app, "p2000001")
    old_cookie = cookie_of(here)
    data = {"current_password": person("p2000001").password, "new_password": "Violet-Meadow-Kettle-88"}
    response = post_form(here, "/password", {**data, "confirm": data["new_password"]})
    assert response.headers["Location"] == "/password/done"
    assert is_signed_in(here)
    assert cookie_of(here) != old_cookie
    assert not is_signed_in(elsewhere)
    assert not is_signed_in(replay(app, old_cookie))


def test_a_reset_ends_every_session_of_the_account(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    with app.app_context():
        account = app.extensions["selfservice.directory"].find("s1000001")
        new = NewPassword("Orchard-Lantern-Pebble-51", "Orchard-Lantern-Pebble-51")
        apply_new_password(
            app.extensions["selfservice.directory"],
            get_security(),
            account,
            new,
            how=How.RECOVERY,
            origin=Origin(),
        )
    assert not is_signed_in(browser)


def change_account(app: Flask, login: str, **changes: object) -> None:
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == login))
        assert row is not None
        for name, value in changes.items():
            setattr(row, name, value)
        db.session.commit()


def test_an_admin_removed_from_the_admin_group_loses_the_admin_pages_at_once(app: Flask) -> None:
    admin = signed_in(app, "admin1")
    other_browser = signed_in(app, "admin1")
    assert admin.get("/admin/audit").status_code == 200
    change_account(app, "admin1", groups=[])
    response = admin.get("/admin/audit")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert other_browser.get("/admin/audit").status_code == 302


def test_a_disabled_admin_is_signed_out_at_the_next_request(app: Flask) -> None:
    admin = signed_in(app, "admin1")
    stolen = cookie_of(admin)
    change_account(app, "admin1", disabled=True)
    assert admin.get("/admin/audit").status_code == 302
    assert replay(app, stolen).get("/admin/audit").status_code == 302


def test_a_disabled_student_is_signed_out_after_the_recheck_interval(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(SESSION_RECHECK_SECONDS=0)
    browser = signed_in(app, "s1000001")
    change_account(app, "s1000001", disabled=True)
    assert not is_signed_in(browser)


def test_a_kept_alive_session_ends_at_the_absolute_lifetime(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    with browser.session_transaction() as session:
        session["account"]["signed_in_at"] -= app.config["SESSION_ABSOLUTE_HOURS"] * 3600 + 1
        session.modified = True
    page = browser.get("/").get_data(as_text=True)  # active a second ago, but signed in too long ago
    assert "Signed in as" not in page


def test_a_stored_session_past_its_time_is_refused_by_the_server(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    with app.app_context():
        row = db.session.scalar(select(WebSession).where(WebSession.account_key.is_not(None)))
        assert row is not None
        assert row.expires_at - row.last_seen_at <= timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
        row.expires_at = row.last_seen_at  # as if the idle time had passed, whatever the cookie says
        db.session.commit()
    page = browser.get("/").get_data(as_text=True)
    assert "Signed in as" not in page
    assert "signed out after a period without activity" in page


def test_the_cookie_holds_only_a_random_id(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    token = cookie_of(browser)
    assert len(token) == 43
    decoded = base64.urlsafe_b64decode(token + "=")
    for secret in (b"Ana", b"Lopez", b"s1000001", b"student", b"account"):
        assert secret not in decoded
    assert "." not in token  # not a signed payload


def test_the_database_keeps_the_token_only_as_a_hash(app: Flask) -> None:
    token = cookie_of(signed_in(app, "s1000001"))
    with app.app_context():
        ids = list(db.session.scalars(select(WebSession.id)))
    assert token not in ids
    assert len(ids) == 1


def test_a_request_under_way_when_sessions_end_does_not_bring_its_session_back(app: Flask) -> None:
    from selfservice.auth.store import end_sessions

    browser = signed_in(app, "s1000001")
    with browser.session_transaction() as session:
        with app.app_context():
            key = session["account"]["key"]
            end_sessions(key)
        session["last_seen"] += 1  # the request's own write-back, after the end
    assert session_rows(app) == 0
    assert not is_signed_in(browser)


def test_anonymous_pages_without_a_form_store_no_session(app: Flask) -> None:
    client = app.test_client()
    client.get("/healthz")
    assert session_rows(app) == 0


def test_an_admin_ends_every_session_of_a_person(app: Flask) -> None:
    import re

    from selfservice.audit.models import AuditEvent
    from selfservice.audit.tags import Tag
    from tests.conftest import csrf_token

    student_laptop, student_phone = signed_in(app, "s1000001"), signed_in(app, "s1000001")
    admin = signed_in(app, "admin1")
    page = admin.get("/admin/accounts/?login=s1000001").get_data(as_text=True)
    assert "Signed-in sessions now</dt><dd>2" in page
    key = re.search(r'/admin/accounts/([^/"]+)/end-sessions', page).group(1)
    token = csrf_token(admin, "/admin/accounts/?login=s1000001")
    response = admin.post(f"/admin/accounts/{key}/end-sessions", data={"csrf_token": token})
    assert response.status_code == 303
    assert "2 sessions of s1000001 ended." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert not is_signed_in(student_laptop)
    assert not is_signed_in(student_phone)
    assert is_signed_in(admin)
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == Tag.SESSIONS_ENDED.value))
        assert (event.actor, event.subject, event.details) == ("admin1", "s1000001", {"sessions": 2})


def test_only_admins_reach_the_account_actions(app: Flask) -> None:
    its = signed_in(app, "its1")
    assert its.get("/admin/accounts/?login=s1000001").status_code == 403
    assert post_form(its, "/admin/accounts/abc/end-sessions", {}, form_path="/").status_code == 403


def test_an_odd_account_key_is_not_found(app: Flask) -> None:
    admin = signed_in(app, "admin1")
    for key in ["nobody", "a" * 65, "%C2%B2"]:
        assert post_form(admin, f"/admin/accounts/{key}/end-sessions", {}, form_path="/").status_code == 404


def test_purge_deletes_expired_sessions_and_keeps_live_ones(app: Flask) -> None:
    signed_in(app, "s1000001")
    signed_in(app, "s1000002")
    with app.app_context():
        rows = list(db.session.scalars(select(WebSession)))
        rows[0].expires_at = rows[0].created_at
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert session_rows(app) == 1


def test_a_refused_access_is_an_audit_event(app: Flask) -> None:
    from selfservice.audit.models import AuditEvent
    from selfservice.audit.tags import Tag

    student = signed_in(app, "s1000001")
    assert student.get("/admin/audit").status_code == 403
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == Tag.ACCESS_DENIED.value))
        assert (event.actor, event.outcome, event.details["path"]) == ("s1000001", "refused", "/admin/audit")


def test_anonymous_visitors_cost_no_session_row_even_on_form_pages(app: Flask) -> None:
    """Invariant 14: a flood of cookieless requests writes nothing; only a sign-in makes a row."""
    for _ in range(3):
        visitor = app.test_client()
        for path in ("/", "/login", "/forgot"):
            assert visitor.get(path).status_code == 200
    assert session_rows(app) == 0
    signed_in(app, "s1000001")
    assert session_rows(app) == 1


def test_signing_out_removes_the_row(app: Flask) -> None:
    browser = signed_in(app, "s1000001")
    assert session_rows(app) == 1
    AuthActions(browser).logout()
    assert session_rows(app) == 0
    assert "You are signed out." in browser.get("/").get_data(as_text=True)


def test_a_forged_anonymous_cookie_cannot_claim_a_signed_in_account(app: Flask) -> None:
    from flask.sessions import SecureCookieSessionInterface

    with app.test_request_context():
        signer = SecureCookieSessionInterface().get_signing_serializer(app)
        forged = signer.dumps({"account": {"key": "x", "login": "admin1", "kind": "staff"}, "_user_id": "x"})
    thief = replay(app, forged)
    assert not is_signed_in(thief)


def test_disabling_an_account_from_the_command_line_ends_its_sessions_at_once(app: Flask) -> None:
    # SESSION_RECHECK_SECONDS (60 by default) would otherwise let the session live on a minute.
    from selfservice.cli import main

    browser = signed_in(app, "s1000001")
    result = app.test_cli_runner().invoke(main, ["accounts", "disable", "s1000001"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(WebSession).where(WebSession.account_key.is_not(None))
            )
            == 0
        )
    assert not is_signed_in(browser)
