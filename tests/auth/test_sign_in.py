"""Signing in and out: the directory decides, sessions are renewed, every attempt audited."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from tests.conftest import AppFactory, AuthActions, person, post_form
from tests.portal.test_recovery import audit as audit_events
from tests.portal.test_recovery import outbox


def audit_tags(app: Flask) -> list[str]:
    with app.app_context():
        return [event.tag for event in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_sign_in_and_out(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    response = auth.login("s1000001")
    assert response.status_code == 303
    assert "Signed in as Ana Lopez" in client.get("/").get_data(as_text=True)
    assert auth.logout().status_code == 303
    assert "Sign in" in client.get("/").get_data(as_text=True)
    assert audit_tags(app) == [Tag.LOGIN_SUCCESS, Tag.LOGOUT]


def test_sign_in_works_with_student_id_and_email(client: FlaskClient, auth: AuthActions) -> None:
    password = person("s1000001").password
    assert auth.login("1000001", password).status_code == 303
    auth.logout()
    assert auth.login("ANA.LOPEZ@students.school.test", password).status_code == 303


def test_wrong_password_gives_a_clear_message_not_a_500(app: Flask, auth: AuthActions) -> None:
    response = auth.login("s1000001", "not-my-password")
    assert response.status_code == 400
    assert "do not match our records" in response.get_data(as_text=True)
    assert audit_tags(app) == [Tag.LOGIN_FAILURE]


def test_unknown_login_gets_the_same_message(auth: AuthActions) -> None:
    response = auth.login("nobody-here", "whatever-password")
    assert response.status_code == 400
    assert "do not match our records" in response.get_data(as_text=True)


def test_empty_fields_are_reported_per_field(client: FlaskClient, auth: AuthActions) -> None:
    response = auth.login("", "")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter your student ID, username or email." in page
    assert "Enter your password." in page
    assert 'aria-invalid="true"' in page
    assert "aria-describedby" in page


def test_post_without_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"login": "s1000001", "password": person("s1000001").password})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("__Host-selfservice_session")
    return cookie.value if cookie else None


def test_session_is_renewed_at_sign_in(client: FlaskClient, auth: AuthActions) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by-attacker"
    planted = session_cookie(client)
    assert planted
    auth.login("s1000001")
    assert session_cookie(client) not in (None, planted)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.permanent
    # The planted id is dead: a browser still holding it is not signed in.
    other = client.application.test_client()
    other.set_cookie("__Host-selfservice_session", planted)
    assert "Signed in as" not in other.get("/").get_data(as_text=True)


def test_session_cookie_flags(client: FlaskClient, auth: AuthActions) -> None:
    response = auth.login("s1000001")
    cookie = next(
        value
        for value in response.headers.getlist("Set-Cookie")
        if value.startswith("__Host-selfservice_session=")
    )
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie


def test_idle_session_is_signed_out(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    with client.session_transaction() as session:
        session["last_seen"] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 1
    page = client.get("/").get_data(as_text=True)
    assert "signed out after a period without activity" in page
    assert "Signed in as" not in page


def test_next_parameter_only_follows_local_paths(client: FlaskClient, auth: AuthActions) -> None:
    password = person("teacher1").password
    good = post_form(client, "/login", {"login": "teacher1", "password": password, "next": "/password"})
    assert good.headers["Location"] == "/password"
    auth.logout()
    evil = post_form(client, "/login", {"login": "teacher1", "password": password, "next": "//evil.example"})
    assert evil.headers["Location"] == "/"


def test_sign_in_is_rate_limited_per_ip(make_app, auth: AuthActions) -> None:  # type: ignore[no-untyped-def]
    client = make_app(SIGN_IN_RATE_LIMIT="3 per minute").test_client()
    actions = AuthActions(client)
    statuses = [actions.login("s1000001", "wrong-password").status_code for _ in range(3)]
    assert statuses == [400, 400, 400]
    refused = actions.login("s1000001", "wrong-password")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many attempts" in refused.get_data(as_text=True)


def test_forms_work_over_https_without_a_referer(client: FlaskClient) -> None:
    """Our pages send no Referer; a CSRF check that demanded one would refuse every form."""
    page = client.get("/login", base_url="https://portal.example").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login",
        base_url="https://portal.example",
        data={"csrf_token": token, "login": "teacher1", "password": person("teacher1").password},
    )
    assert response.status_code == 303


def test_an_account_that_must_change_its_password_is_sent_to_change_it(app: Flask, auth: AuthActions) -> None:
    with app.app_context():
        directory = app.extensions["selfservice.directory"]
        account = directory.find("s1000002")
        directory.set_password(account, "Harbor-Lantern-Quill-42", must_change=True)
    response = auth.login("s1000002", "Harbor-Lantern-Quill-42")
    assert response.headers["Location"] == "/password"


# Per-account limits (issue 14, item 1) ------------------------------------------------


def test_guessing_one_account_from_many_addresses_is_limited_per_account(make_app: AppFactory) -> None:
    app = make_app(SIGN_IN_ACCOUNT_RATE_LIMIT="5 per minute")
    statuses = []
    for n in range(12):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        statuses.append(AuthActions(client).login("s1000001", f"guess-number-{n}").status_code)
    assert statuses == [400] * 5 + [429] * 7
    right = AuthActions(app.test_client()).login("s1000001")
    assert right.status_code == 429  # no more checks this minute, even of the right password
    assert int(right.headers["Retry-After"]) > 0
    assert "paused attempts for this account" in right.get_data(as_text=True)
    assert AuthActions(app.test_client()).login("s1000002").status_code == 303  # others unaffected
    assert [m.to_address for m in outbox(app, "notice:sign_in_throttled")] == [person("s1000001").email]
    assert len(audit_events(app, Tag.SIGN_IN_THROTTLED)) == 1


def test_aliases_and_spellings_share_one_account_limit(make_app: AppFactory) -> None:
    app = make_app(SIGN_IN_ACCOUNT_RATE_LIMIT="3 per minute")
    auth = AuthActions(app.test_client())
    email = person("s1000001").email or ""
    statuses = [
        auth.login(login, "wrong-guess-1").status_code for login in ["s1000001", "1000001", email.upper()]
    ]
    assert statuses == [400, 400, 400]
    assert auth.login(" S1000001 ", "wrong-guess-2").status_code == 429


def test_a_failed_sign_in_stores_a_keyed_hash_not_what_was_typed(app: Flask, auth: AuthActions) -> None:
    typed = "MySecretPassw0rd!"  # typed into the login box by mistake
    auth.login(typed, "whatever-password")
    (event,) = audit_events(app, Tag.LOGIN_FAILURE)
    assert typed.lower() not in repr((event.subject, event.details)).lower()
    assert len(event.details["login_hash"]) == 32
    auth.login(typed.upper(), "another-password")
    assert len({e.details["login_hash"] for e in audit_events(app, Tag.LOGIN_FAILURE)}) == 1


def test_an_unknown_login_costs_the_same_password_check_as_a_real_one(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        hasher = get_directory().hasher  # type: ignore[attr-defined]
    checks: list[str] = []
    verify = type(hasher).verify

    def counted(self: object, stored: str, given: str) -> bool:
        checks.append(given)
        return verify(self, stored, given)

    monkeypatch.setattr(type(hasher), "verify", counted)
    for login in ["s1000001", "nobody-here"]:
        AuthActions(app.test_client()).login(login, "wrong-password-9")
    assert checks == ["wrong-password-9", "wrong-password-9"]  # one argon2 verify each


def test_a_wrong_password_for_a_real_login_loads_what_an_unknown_login_does(app: Flask) -> None:
    """Up to the password check, a found login must not cost more than a missing one: the
    same statements, and no account object built (building one, groups and all, was a
    0.2 ms tell at p < 0.01 in bench/timing.py)."""
    from sqlalchemy import event

    from selfservice.directory.models import DirectoryAccount

    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    loaded: list[object] = []

    def on_statement(*args: object) -> None:
        statements.append(str(args[2]))

    def on_load(target: object, context: object) -> None:
        loaded.append(target)

    seen: dict[str, tuple[int, int]] = {}
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(DirectoryAccount, "load", on_load)
    try:
        for login in ["s1000001", "nobody-here"]:
            client = app.test_client()
            client.get("/login")
            statements.clear()
            loaded.clear()
            AuthActions(client).login(login, "wrong-password-9")
            seen[login] = (len(statements), len(loaded))
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(DirectoryAccount, "load", on_load)
    assert seen["s1000001"] == seen["nobody-here"]
    assert seen["s1000001"][1] == 0
