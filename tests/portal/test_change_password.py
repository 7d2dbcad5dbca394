"""Changing a known password: the policy, the directory's own refusals, and what follows a change."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.security import get_security
from selfservice.security.throttling import flush_breaches
from selfservice.security.tokens import Purpose, TokenRefused
from tests.conftest import AuthActions, person, post_form
from tests.fixtures.directories import ALL_DIRECTORIES

NEW_PASSWORD = "Lantern-Otter-Maple-5"
DIRECTORIES = ALL_DIRECTORIES


@pytest.fixture(params=DIRECTORIES)
def any_app(request: pytest.FixtureRequest, make_app: Any) -> Flask:
    """The app on each directory: builtin and a real slapd."""
    return make_app(directory=request.param)


def change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> Any:
    data = {"current_password": current, "new_password": new, "confirm": new if confirm is None else confirm}
    return post_form(client, "/password", data)


def events(app: Flask, tag: Tag) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag))))


def outbox(app: Flask) -> list[OutboxMessage]:
    with app.app_context():
        return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def everything_stored(app: Flask) -> str:
    """Every row of every table as text: passwords must appear nowhere in it."""
    with app.app_context():
        rows = [row for table in db.metadata.sorted_tables for row in db.session.execute(table.select())]
    return "\n".join(repr(tuple(row)) for row in rows)


def binds(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return get_directory().authenticate(login, password) is not None


def field_errors(page: str, field: str) -> str:
    """The text of one field's error message block."""
    match = re.search(rf'<p class="error-message" id="{field}-error">(.*?)</p>', page, re.S)
    return match.group(1) if match else ""


# --- end to end -----------------------------------------------------------------------------


def test_change_password_end_to_end(any_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = any_app.test_client()
    old = person("p2000001").password
    AuthActions(client).login("p2000001")
    with any_app.app_context():
        account = get_directory().find("p2000001")
        token = get_security().tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10))
        db.session.commit()
    old_sid = client.get_cookie("__Host-selfservice_session").value

    response = change(client, old, NEW_PASSWORD)

    assert response.status_code == 303
    assert response.headers["Location"] == "/password/done"
    done = client.get("/password/done")
    assert done.status_code == 200
    assert "Your password was changed" in done.get_data(as_text=True)
    assert "Signed in as Maria Lopez" in client.get("/").get_data(as_text=True)
    assert client.get_cookie("__Host-selfservice_session").value != old_sid  # a new session id
    assert binds(any_app, "p2000001", NEW_PASSWORD)
    assert not binds(any_app, "p2000001", old)
    with any_app.app_context(), pytest.raises(TokenRefused):
        get_security().tokens.peek(token.value, Purpose.RECOVERY)
    [changed] = events(any_app, Tag.PASSWORD_CHANGED)
    assert (changed.actor, changed.subject, changed.details) == ("p2000001", "p2000001", {"how": "change"})
    [mail] = outbox(any_app)
    assert mail.to_address == person("p2000001").email
    assert mail.subject == "Your password was changed"
    # Invariant 7: neither password in any row (audit, outbox, directory table) nor any log line.
    everything = everything_stored(any_app)
    for secret in (old, NEW_PASSWORD):
        assert secret not in everything
        assert secret not in caplog.text


def test_no_mail_without_an_address_on_file(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000002")
    assert change(client, person("s1000002").password, NEW_PASSWORD).status_code == 303
    assert outbox(app) == []
    assert len(events(app, Tag.PASSWORD_CHANGED)) == 1


def test_done_page_needs_a_change_first(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    response = client.get("/password/done")
    assert response.status_code == 303
    assert response.headers["Location"] == "/password"


def test_page_loads_the_meter_script_and_works_without_it(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    page = client.get("/password").get_data(as_text=True)
    assert '<script src="/static/js/password-meter.js" defer></script>' in page
    assert "<script>" not in page
    for name in ("current_password", "new_password", "confirm"):
        assert f'name="{name}"' in page
    with client.get("/static/js/password-meter.js") as script:
        assert script.status_code == 200


# --- refusals ------------------------------------------------------------------------------------


def test_wrong_current_password_is_refused(any_app: Flask) -> None:
    client = any_app.test_client()
    AuthActions(client).login("s1000001")

    response = change(client, "Not-My-Password-9", NEW_PASSWORD)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "That is not your current password." in field_errors(page, "current_password")
    assert binds(any_app, "s1000001", person("s1000001").password)
    assert not binds(any_app, "s1000001", NEW_PASSWORD)
    [failed] = events(any_app, Tag.PASSWORD_CHANGE_FAILED)
    assert failed.details == {"how": "change", "reason": "InvalidCredentials"}
    assert "Not-My-Password-9" not in everything_stored(any_app)
    assert outbox(any_app) == []


POLICY = [
    pytest.param("Ab1!x", "new_password", "This password is too short.", id="too-short"),
    pytest.param("x" * 129, "new_password", "This password is too long.", id="too-long"),
    pytest.param(
        "s1000001-Kite-Harbor", "new_password", "A password cannot contain your username.", id="login"
    ),
    pytest.param("Lopez-Kite-Harbor-77", "new_password", "A password cannot contain your name.", id="name"),
    pytest.param("password123", "new_password", "This password is too easy to guess.", id="guessable"),
    pytest.param("", "new_password", "Choose a new password.", id="empty"),
]


@pytest.mark.parametrize(("new", "field", "message"), POLICY)
def test_policy_problems_are_shown_on_the_new_password(
    app: Flask, client: FlaskClient, auth: AuthActions, new: str, field: str, message: str
) -> None:
    auth.login("s1000001")
    response = change(client, person("s1000001").password, new)
    assert response.status_code == 400
    assert message in field_errors(response.get_data(as_text=True), field)
    assert binds(app, "s1000001", person("s1000001").password)
    assert events(app, Tag.PASSWORD_CHANGED) == []


def test_guessable_password_shows_zxcvbn_feedback(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    errors = field_errors(
        change(client, person("s1000001").password, "password123").get_data(as_text=True), "new_password"
    )
    assert "too easy to guess" in errors
    assert errors.count("<span>") >= 2  # zxcvbn's own warning or suggestion follows ours


def test_mismatched_confirmation_is_shown_on_the_confirmation(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    response = change(client, person("s1000001").password, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert response.status_code == 400
    assert "The two passwords do not match." in field_errors(response.get_data(as_text=True), "confirm")


def test_minimum_length_is_a_setting(make_app: Any) -> None:
    app = make_app(PASSWORD_MIN_LENGTH=25)
    client = app.test_client()
    AuthActions(client).login("s1000001")
    response = change(client, person("s1000001").password, NEW_PASSWORD)
    assert response.status_code == 400
    assert "This password is too short." in response.get_data(as_text=True)


@pytest.mark.ldap
def test_recent_password_is_refused_by_ppolicy_history(make_app: Any) -> None:
    app = make_app(directory="openldap")
    client = app.test_client()
    original = person("s1000001").password
    AuthActions(client).login("s1000001")
    assert change(client, original, NEW_PASSWORD).status_code == 303

    response = change(client, NEW_PASSWORD, original)

    assert response.status_code == 400
    assert "That password was used recently." in field_errors(response.get_data(as_text=True), "new_password")
    assert binds(app, "s1000001", NEW_PASSWORD)
    [refused] = events(app, Tag.PASSWORD_CHANGE_FAILED)
    assert refused.details == {"how": "change", "reason": "PasswordRejected"}


# --- access and throttling ---------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client: FlaskClient) -> None:
    posted = post_form(client, "/password", {"current_password": "x"}, form_path="/login")
    for response in (client.get("/password"), posted):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")


def test_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    data = {
        "current_password": person("s1000001").password,
        "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    response = client.post("/password", data=data)
    assert response.status_code == 400
    assert binds(app, "s1000001", person("s1000001").password)


def test_guessing_the_current_password_from_many_addresses_is_limited_per_account(make_app: Any) -> None:
    # A session left open on a shared computer is no way round the sign-in's per-account
    # limit: the current password is one more guess at the same secret.
    app = make_app(SIGN_IN_ACCOUNT_RATE_LIMIT="5 per minute")
    client = app.test_client()
    AuthActions(client).login("s1000001")  # one claim of the five
    statuses = []
    for n in range(8):
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        statuses.append(change(client, f"Wrong-Guess-Number-{n}", NEW_PASSWORD).status_code)
    assert statuses == [400] * 4 + [429] * 4
    assert len(events(app, Tag.PASSWORD_CHANGE_FAILED)) == 4  # the others never reached the directory
    client.environ_base["REMOTE_ADDR"] = "198.51.100.99"
    assert change(client, person("s1000001").password, NEW_PASSWORD).status_code == 429
    assert binds(app, "s1000001", person("s1000001").password)


def test_too_many_attempts_get_429_before_the_directory_is_asked(make_app: Any) -> None:
    app = make_app(PASSWORD_RATE_LIMIT="2 per minute")
    client = app.test_client()
    AuthActions(client).login("s1000001")
    for _attempt in range(2):
        assert change(client, "Wrong-Guess-Number-1", NEW_PASSWORD).status_code == 400

    response = change(client, person("s1000001").password, NEW_PASSWORD)

    assert response.status_code == 429
    assert binds(app, "s1000001", person("s1000001").password)  # the third try never reached it
    assert len(events(app, Tag.PASSWORD_CHANGE_FAILED)) == 2
    assert events(app, Tag.RATE_LIMIT_BREACH) == []  # counted per minute, not a row each
    with app.app_context():
        assert flush_breaches() == 1
