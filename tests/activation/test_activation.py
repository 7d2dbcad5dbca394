"""A parent claims the Parent Portal account from the letter: code, password and questions in one flow."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from selfservice.activation.models import ParentActivation
from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal.enrollment import enrollment_status
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import get_security
from selfservice.timeutil import utcnow
from tests.activation.helpers import (
    LETTER,
    NEW_PASSWORD,
    NO_EMAIL_LETTER,
    activate,
    answers,
    mailed_code,
    submit_letter,
)
from tests.api.helpers import Api, issue
from tests.conftest import post_form
from tests.fixtures.directories import ALL_DIRECTORIES
from tests.portal.test_recovery import enroll, recover
from tests.portal.test_recovery import mailed_code as recovery_code


def tags(app: Flask) -> list[str]:
    with app.app_context():
        return [row.tag for row in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_parent_activates_with_the_letter_and_can_sign_in(app: Flask, client: FlaskClient) -> None:
    activate(app, client)
    assert "Your account is active" in client.get("/activate/done").get_data(as_text=True)
    with app.app_context():
        account = get_directory().authenticate("p2000001", NEW_PASSWORD)
        assert account is not None
        assert enrollment_status(account.key).enrolled
        row = db.session.get(ParentActivation, account.key)
        assert row.activated_at is not None
        assert row.enrolled_at is not None
    steps = [tag for tag in tags(app) if tag.startswith("account:activation")]
    assert steps == [
        "account:activation:code-sent",
        "account:activation:code-verified",
        "account:activation:complete",
        "account:activation:enrolled",
    ]


def test_the_code_goes_only_to_the_address_on_file(app: Flask, client: FlaskClient) -> None:
    submit_letter(client)
    with app.app_context():
        recipients = {row.to_address for row in db.session.scalars(select(OutboxMessage))}
    assert recipients == {"maria.lopez@example.test"}
    assert "maria.lopez@example.test" not in client.get("/activate/code").get_data(as_text=True)


def test_a_parent_without_email_is_told_what_to_do(app: Flask, client: FlaskClient) -> None:
    response = post_form(client, "/activate", NO_EMAIL_LETTER)
    page = response.get_data(as_text=True)
    assert "no email address" in page
    assert "Parent Information" in page
    with app.app_context():
        assert db.session.scalar(select(OutboxMessage)) is None
    assert client.get("/activate/code").status_code == 303  # no way around the missing address


def test_unknown_numbers_and_wrong_pins_get_the_same_page_and_work(app: Flask) -> None:
    def attempt(**changes: str) -> tuple[int, str, list[str]]:
        client = app.test_client()
        client.get("/activate")
        with app.app_context():
            statements: list[str] = []
            record = lambda *args: statements.extend(filter(None, [_portal_work(args[2])]))  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", record)
            try:
                response = submit_letter(client, **changes)
            finally:
                event.remove(db.engine, "before_cursor_execute", record)
        # Form values differ (CSRF tokens, what was typed); everything else must be the same.
        page = re.sub(r'\svalue="[^"]*"', "", response.get_data(as_text=True))
        return response.status_code, page, statements

    wrong_pin, wrong_name = attempt(pin="0000"), attempt(parent_name="Somebody Else")
    unknown, unknown_again = attempt(account_number="A-9999999"), attempt(account_number="A-9999999")
    assert wrong_pin[0] == unknown[0] == wrong_name[0] == unknown_again[0] == 400
    assert wrong_pin[1] == unknown[1] == wrong_name[1] == unknown_again[1]
    assert "do not match our records" in wrong_pin[1]
    # The same work on the portal's own tables, statement by statement, first try and next
    # (the directory lookup aside, it is where the time goes).
    assert [wrong_pin[2], wrong_name[2]] == [unknown[2], unknown_again[2]]


def _portal_work(statement: str) -> str:
    """The verb and first table of a statement, or "" for the builtin directory's own tables."""
    words = statement.replace('"', "").split()
    tables = [word for word in words if word in PORTAL_TABLES or word.startswith("directory_")]
    return "" if any(t.startswith("directory_") for t in tables) else f"{words[0]} {tables[:1]}"


PORTAL_TABLES = {"lockout", "audit_event", "verification_code", "outbox_message", "parent_activation"}


def test_wrong_pins_lock_activation_for_the_account_and_mail_the_holder(make_app: Any) -> None:
    app = make_app(ACTIVATION_RATE_LIMIT="100 per minute")
    client = app.test_client()
    limit = app.config["LOCKOUT_MAX_FAILURES"]
    for _ in range(limit):
        assert submit_letter(client, pin="0000").status_code == 400
    locked = submit_letter(client)  # even the right PIN: the account is locked now
    assert "too many tries" in locked.get_data(as_text=True)
    with app.app_context():
        purposes = [row.purpose for row in db.session.scalars(select(OutboxMessage))]
    assert "activation:code" not in purposes
    assert purposes.count("notice:locked") == 1
    unknown = app.test_client()
    for _ in range(limit):
        submit_letter(unknown, account_number="A-0000000")
    assert "too many tries" in submit_letter(unknown, account_number="A-0000000").get_data(as_text=True)


def test_the_per_account_number_limit_holds_across_browsers(make_app: Any) -> None:
    app = make_app(ACTIVATION_ACCOUNT_RATE_LIMIT="2 per hour", LOCKOUT_MAX_FAILURES=10)
    assert submit_letter(app.test_client(), pin="1").status_code == 400
    assert submit_letter(app.test_client(), pin="2").status_code == 400
    page = submit_letter(app.test_client()).get_data(as_text=True)
    assert "too many tries for this account number" in page


def test_the_per_address_limit_stops_mailing_codes(make_app: Any) -> None:
    app = make_app(ACTIVATION_ADDRESS_RATE_LIMIT="2 per hour")
    for _ in range(2):
        assert submit_letter(app.test_client()).status_code == 303
    page = submit_letter(app.test_client()).get_data(as_text=True)
    assert "already emailed several codes" in page


def test_a_wrong_code_counts_down_then_the_flow_starts_over(app: Flask, client: FlaskClient) -> None:
    submit_letter(client)
    right = mailed_code(app)
    tries = app.config["CODE_TRIES"]
    for left in range(tries - 1, 0, -1):
        response = post_form(client, "/activate/code", {"code": "WRONG234"})
        assert f"{left} tr" in response.get_data(as_text=True)
    spent = post_form(client, "/activate/code", {"code": "WRONG234"})
    assert "no longer works" in spent.get_data(as_text=True)
    assert post_form(client, "/activate/code", {"code": right}, form_path="/activate").status_code == 303
    assert client.get("/activate/password").status_code == 303  # straight back to the start


def test_steps_cannot_be_skipped(client: FlaskClient) -> None:
    for path in ("/activate/code", "/activate/password", "/activate/questions"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/activate")


def test_the_password_follows_the_rules_and_a_refusal_keeps_the_step(app: Flask, client: FlaskClient) -> None:
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    weak = post_form(client, "/activate/password", {"new_password": "password", "confirm": "password"})
    assert weak.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(ParentActivation)) is None
    ok = post_form(client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert ok.status_code == 303


def test_refused_answers_keep_the_questions_step(app: Flask, client: FlaskClient) -> None:
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    post_form(client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    chosen = answers(app, client)
    same = {name: "harbor harbor" if name.startswith("answer_") else value for name, value in chosen.items()}
    assert post_form(client, "/activate/questions", same).status_code == 400
    done = post_form(client, "/activate/questions", chosen)
    assert done.headers["Location"].endswith("/activate/done")


def test_an_activated_account_cannot_be_claimed_again_with_the_letter(
    app: Flask, client: FlaskClient
) -> None:
    activate(app, client)
    again = submit_letter(app.test_client())
    assert "already active" in again.get_data(as_text=True)


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie as it is now."""
    name = app.config["SESSION_COOKIE_NAME"]
    copy = app.test_client()
    copy.set_cookie(name, client.get_cookie(name).value)
    return copy


def test_a_copied_step_cookie_sets_neither_the_password_nor_the_answers_again(
    app: Flask, client: FlaskClient
) -> None:
    """Each step after the code is single use (invariant 6): replaying its cookie does nothing."""
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    at_password = copy_of(app, client)
    post_form(client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    at_questions = copy_of(app, client)
    chosen = answers(app, client)
    assert post_form(client, "/activate/questions", chosen).headers["Location"].endswith("/activate/done")

    other = "Walrus-Banjo-Quarry-91"
    replayed = post_form(
        at_password, "/activate/password", {"new_password": other, "confirm": other}, form_path="/activate"
    )
    assert replayed.status_code == 303
    assert replayed.headers["Location"].endswith("/activate")
    again = post_form(at_questions, "/activate/questions", chosen, form_path="/activate")
    assert again.headers["Location"].endswith("/activate")
    with app.app_context():
        assert get_directory().authenticate("p2000001", other) is None
        assert get_directory().authenticate("p2000001", NEW_PASSWORD) is not None
    assert tags(app).count("account:password:activation") == 1
    assert tags(app).count("account:enrollment:save") == 1


def test_a_password_change_voids_the_questions_step_of_an_activation(app: Flask, client: FlaskClient) -> None:
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    post_form(client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    chosen = answers(app, client)
    with app.app_context():
        directory = get_directory()
        account = directory.find("p2000001")
        changed = NewPassword("Orchard-Lantern-Pebble-51", "Orchard-Lantern-Pebble-51")
        apply_new_password(directory, get_security(), account, changed, how=How.RECOVERY, origin=Origin())
    assert client.get("/activate/questions").headers["Location"].endswith("/activate")
    refused = post_form(client, "/activate/questions", chosen, form_path="/activate")
    assert refused.headers["Location"].endswith("/activate")
    assert "account:enrollment:save" not in tags(app)


@pytest.mark.parametrize("field", ["account_number", "pin", "parent_name"])
def test_each_field_is_required(client: FlaskClient, field: str) -> None:
    response = post_form(client, "/activate", {**LETTER, field: ""})
    assert response.status_code == 400
    assert "error-summary" in response.get_data(as_text=True)


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_activation_works_on_every_directory(make_app: Any, directory: str) -> None:
    app = make_app(directory=directory)
    client = app.test_client()
    assert "no email address" in post_form(client, "/activate", NO_EMAIL_LETTER).get_data(as_text=True)
    activate(app, client)
    with app.app_context():
        account = get_directory().authenticate("p2000001", NEW_PASSWORD)
        assert account is not None
        assert db.session.get(ParentActivation, account.key) is not None
        assert enrollment_status(account.key).enrolled


def test_the_per_ip_limit_answers_429(make_app: Any) -> None:
    app = make_app(ACTIVATION_RATE_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [submit_letter(client, pin="0000").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


@pytest.mark.ldap
@pytest.mark.slow
def test_activation_is_recorded_in_the_directory_where_configured(make_app: Any, slapd: Any) -> None:
    app = make_app(directory="openldap", ACTIVATION_DIRECTORY_ATTRIBUTE="schoolParentActivated")
    activate(app, app.test_client())
    connection = slapd.root_connection()
    try:
        with app.app_context():
            dn = get_directory().find("p2000001").ref
        connection.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["schoolParentActivated"])
        recorded = connection.entries[0].schoolParentActivated.value
    finally:
        connection.unbind()
    when = datetime.strptime(recorded, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    assert abs((when - utcnow()).total_seconds()) < 120


def test_a_disabled_account_cannot_be_activated(app: Flask, client: FlaskClient) -> None:
    from selfservice.directory.models import DirectoryAccount

    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "p2000001"))
        row.disabled = True
        db.session.commit()
    response = submit_letter(client)
    assert response.status_code == 400
    assert "do not match our records" in response.get_data(as_text=True)


def test_an_activation_is_audited_and_mailed_as_an_activation(app: Flask, client: FlaskClient) -> None:
    activate(app, client)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.tag.like("account:password:%"))).all()
        mails = db.session.scalars(select(OutboxMessage).where(OutboxMessage.purpose.like("notice:%"))).all()
    written = [(event.tag, event.details["how"]) for event in events]
    assert written == [("account:password:activation", "activation")]
    assert "notice:password_reset" not in [mail.purpose for mail in mails]
    mails = [mail for mail in mails if mail.purpose == "notice:account_activated"]
    assert len(mails) == 1
    assert mails[0].subject == "Your Parent Portal account is active"
    assert mails[0].to_address == "maria.lopez@example.test"
    assert "p2000001" in mails[0].body_text
    assert "If this was not you" in mails[0].body_text
    assert "reset" not in mails[0].body_text


def test_the_activation_notice_speaks_the_language_the_parent_used(app: Flask, client: FlaskClient) -> None:
    client.set_cookie("lang", "es")
    activate(app, client)
    with app.app_context():
        mail = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.purpose == "notice:account_activated")
        ).one()
    assert mail.subject == "Su cuenta del Portal para Familias está activa"


def test_the_api_reports_the_activation_as_the_last_password_change(app: Flask, client: FlaskClient) -> None:
    api = Api(app.test_client(), issue(app))
    assert api.get("/accounts/p2000001/status").json["last_password_change"] is None
    activate(app, client)
    assert api.get("/accounts/p2000001/status").json["last_password_change"] is not None


def test_an_account_disabled_during_activation_gets_no_password(app: Flask, client: FlaskClient) -> None:
    """Disabled by an administrator between the code and the password: refused, nothing written."""
    from selfservice.directory.models import DirectoryAccount

    assert submit_letter(client).headers["Location"].endswith("/activate/code")
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "p2000001"))
        row.disabled = True
        db.session.commit()
    response = post_form(
        client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 403
    assert "has been disabled" in response.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalars(
                select(AuditEvent).where(AuditEvent.tag == "account:activation:complete")
            ).all()
            == []
        )


# One account, two flows that mail codes: each keeps its own -----------------------


def test_an_activation_letter_does_not_void_a_recovery_code_in_flight(app: Flask) -> None:
    enroll(app, "p2000001")  # enrolled, never activated through /activate
    recovering = app.test_client()
    assert recover(recovering, app, "p2000001") == "/forgot/code"
    code = recovery_code(app)
    assert submit_letter(app.test_client()).headers["Location"].endswith("/activate/code")
    response = post_form(recovering, "/forgot/code", {"code": code})
    assert response.status_code == 303
    assert "/forgot/reset/" in response.headers["Location"]


def test_a_recovery_code_does_not_void_an_activation_code_in_flight(app: Flask) -> None:
    enroll(app, "p2000001")
    activating = app.test_client()
    assert submit_letter(activating).headers["Location"].endswith("/activate/code")
    code = mailed_code(app)
    assert recover(app.test_client(), app, "p2000001") == "/forgot/code"
    response = post_form(activating, "/activate/code", {"code": code})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/activate/password")
