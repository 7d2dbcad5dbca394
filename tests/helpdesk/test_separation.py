"""Separation of duties and must-change as a state (DESIGN invariant 18, issue 14 item 3).

An ITS member could open a request for a student, receive the link (it goes to whoever
opened the request) and set the student's password: staff could know a student's password.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from selfservice.audit.tags import Tag
from selfservice.directory.models import DirectoryAccount, DirectoryGroup
from selfservice.extensions import db
from tests.conftest import AppFactory, AuthActions, person, post_form
from tests.helpdesk.helpers import (
    act,
    action_form,
    add_person,
    audit_events,
    browser,
    link_mails,
    open_request,
    opened_number,
    sign_in_as,
)


def test_an_its_member_who_opened_a_request_cannot_issue_its_link(app: Flask) -> None:
    add_person(app, "its2", groups=["its", "employees"], email="its2@school.test")
    its2 = sign_in_as(app, "its2")
    number = opened_number(open_request(its2, "student"))
    refused = act(its2, number, "reset-link")
    assert refused.status_code == 409
    assert "a colleague in ITS must issue its link" in refused.get_data(as_text=True)
    assert link_mails(app) == []
    # A colleague may: the link goes to the employee who opened the request, not to the issuer.
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    [mail] = link_mails(app)
    assert mail.to_address == "its2@school.test"


def test_a_link_that_would_reach_the_issuers_own_mailbox_is_refused(app: Flask) -> None:
    add_person(app, "its3", groups=["its"], email="TEACHER1@school.test")  # a shared mailbox
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    refused = act(sign_in_as(app, "its3"), number, "reset-link")
    assert refused.status_code == 409
    assert "your own address" in refused.get_data(as_text=True)
    assert link_mails(app) == []


def test_every_refused_link_is_an_audit_event(app: Flask) -> None:
    """Invariant 12: a link refused by separation of duties left no trace, however often it was tried."""
    add_person(app, "its2", groups=["its", "employees"], email="its2@school.test")
    add_person(app, "its3", groups=["its"], email="TEACHER1@school.test")
    its2 = sign_in_as(app, "its2")
    own = opened_number(open_request(its2, "student"))
    assert act(its2, own, "reset-link").status_code == 409
    theirs = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(sign_in_as(app, "its3"), theirs, "reset-link").status_code == 409
    refused = audit_events(app, "helpdesk:reset-link:issue-refused")
    seen = [(e.actor, e.outcome, e.subject, e.details["request"], e.details["reason"]) for e in refused]
    assert seen == [
        ("its2", "refused", "s1000001", own, "opener-issues"),
        ("its3", "refused", "s1000001", theirs, "issuer-receives"),
    ]
    assert link_mails(app) == []


def test_a_student_worker_cannot_open_a_request_for_their_own_account(app: Flask) -> None:
    add_person(
        app,
        "s1000077",
        groups=["employees"],
        email="sol.worker@school.test",
        kind="student",
        display_name="Sol Worker",
        student_id="1000077",
        birth_month_year="042008",
    )
    worker = sign_in_as(app, "s1000077")
    fields = {"student_id": "1000077", "student_name": "Sol Worker", "birth_month_year": "042008"}
    refused = open_request(worker, "student", **fields)
    assert refused.status_code == 400
    assert "your own account" in refused.get_data(as_text=True)
    [event] = audit_events(app, Tag.HELP_REQUEST_REFUSED)
    assert event.details["reason"] == "own-account"


def test_an_employee_cannot_open_a_parent_request_that_would_mail_their_own_address(app: Flask) -> None:
    add_person(app, "teacher9", groups=["employees"], email="maria.lopez@example.test")
    refused = open_request(sign_in_as(app, "teacher9"), "parent")
    assert refused.status_code == 400
    assert "your own account" in refused.get_data(as_text=True)


def test_a_parent_link_never_reaches_the_employee_who_opened_the_request(app: Flask) -> None:
    """The parent's address on file became the opener's after the request was opened."""
    number = opened_number(open_request(browser(app, "teacher1"), "parent"))
    assert act(browser(app, "support1"), number, "escalate", {"escalate_reason": "Reset."}).status_code == 303
    with app.app_context():
        db.session.execute(
            update(DirectoryAccount)
            .where(DirectoryAccount.login == "p2000001")
            .values(email="Teacher1@School.test")
        )
        db.session.commit()
    refused = act(browser(app, "its1"), number, "reset-link")
    assert refused.status_code == 409
    assert "whoever opened the request" in refused.get_data(as_text=True)
    assert link_mails(app) == []


def add_its_intern(app: Flask, groups: list[str]) -> dict[str, str]:
    """A student who also works for ITS: a student account that holds a staff role."""
    add_person(
        app,
        "s1000078",
        groups=groups,
        email="ivy.intern@students.school.test",
        kind="student",
        display_name="Ivy Intern",
        student_id="1000078",
        birth_month_year="052007",
    )
    return {"student_id": "1000078", "student_name": "Ivy Intern", "birth_month_year": "052007"}


def test_no_request_is_opened_for_a_student_account_that_holds_a_staff_role(app: Flask) -> None:
    """The link goes to whoever opened the request: an employee would get the account's ITS role
    (and so issue links for the requests they open themselves)."""
    fields = add_its_intern(app, ["its"])
    refused = open_request(browser(app, "teacher1"), "student", **fields)
    assert refused.status_code == 400
    assert "staff access" in refused.get_data(as_text=True)
    [event] = audit_events(app, Tag.HELP_REQUEST_REFUSED)
    assert event.details["reason"] == "staff-account"


def test_no_link_for_an_account_given_a_staff_role_after_the_request_was_opened(app: Flask) -> None:
    fields = add_its_intern(app, [])
    number = opened_number(open_request(browser(app, "teacher1"), "student", **fields))
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "s1000078"))
        admins = db.session.scalar(select(DirectoryGroup).where(DirectoryGroup.name == "admins"))
        row.groups = [admins]
        db.session.commit()
    refused = act(browser(app, "its1"), number, "reset-link")
    assert refused.status_code == 409
    assert "staff access" in refused.get_data(as_text=True)
    assert link_mails(app) == []


@pytest.mark.parametrize("login", ["teacher1", "support1", "admin1"])
def test_only_its_issues_links(app: Flask, login: str) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    path = f"/helpdesk/requests/{number}/reset-link"
    assert post_form(browser(app, login), path, {"revision": "1"}, form_path="/").status_code == 403
    assert link_mails(app) == []


# Must-change is a state -------------------------------------------------------------


def must_change(app: Flask, login: str, password: str) -> None:
    with app.app_context():
        directory = app.extensions["selfservice.directory"]
        directory.set_password(directory.find(login), password, must_change=True)


TEMPORARY = "Harbor-Lantern-Quill-42"


@pytest.mark.parametrize("path", ["/", "/enroll", "/password/done", "/helpdesk/", "/admin/audit"])
def test_a_must_change_session_reaches_only_the_change_page(app: Flask, path: str) -> None:
    must_change(app, "s1000002", TEMPORARY)
    client = app.test_client()
    AuthActions(client).login("s1000002", TEMPORARY)
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"] == "/password"


def test_a_must_change_session_cannot_enroll_answers_by_post(app: Flask, client: FlaskClient) -> None:
    must_change(app, "s1000002", TEMPORARY)
    AuthActions(client).login("s1000002", TEMPORARY)
    data = {"question_1": "1", "answer_1": "anything"}
    response = post_form(client, "/enroll", data, form_path="/password")
    assert response.status_code == 303
    assert response.headers["Location"] == "/password"
    assert audit_events(app, Tag.ENROLLMENT_SAVED) == []


def test_a_must_change_session_can_change_the_password_and_then_go_anywhere(
    app: Flask, client: FlaskClient
) -> None:
    must_change(app, "s1000002", TEMPORARY)
    auth = AuthActions(client)
    auth.login("s1000002", TEMPORARY)
    assert client.get("/password").status_code == 200
    new = "Velvet-Compass-Ridge-73"
    done = post_form(
        client, "/password", {"current_password": TEMPORARY, "new_password": new, "confirm": new}
    )
    assert done.headers["Location"] == "/password/done"
    assert client.get("/enroll").status_code == 200


def test_a_must_change_staff_member_reaches_no_help_desk_page(app: Flask) -> None:
    must_change(app, "its1", TEMPORARY)
    its = app.test_client()
    AuthActions(its).login("its1", TEMPORARY)
    assert its.get("/helpdesk/queue/its-student").status_code == 303
    assert post_form(its, "/logout", {}, form_path="/password").status_code == 303
    assert its.get("/password").status_code == 302  # signed out: the sign-in page


def test_a_staff_member_told_to_change_their_password_mid_session_reaches_only_the_change_page(
    app: Flask,
) -> None:
    """The flag set while signed in (``selfservice accounts set-must-change``, AD's "must change
    at next logon"): the session kept working every queue and issuing links until sign-out."""
    from selfservice.cli import main

    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    its = browser(app, "its1")
    form = action_form(its, number)
    result = app.test_cli_runner().invoke(main, ["accounts", "set-must-change", "its1"])
    assert result.exit_code == 0, result.output
    page = its.get("/helpdesk/queue/its-student")
    assert page.status_code == 303
    assert page.headers["Location"] == "/password"
    issued = its.post(f"/helpdesk/requests/{number}/reset-link", data=form)
    assert issued.status_code == 303
    assert issued.headers["Location"] == "/password"
    assert link_mails(app) == []
    assert its.get("/password").status_code == 200
    new = "Velvet-Compass-Ridge-73"
    current = person("its1").password
    changed = post_form(its, "/password", {"current_password": current, "new_password": new, "confirm": new})
    assert changed.headers["Location"] == "/password/done"
    assert its.get("/helpdesk/queue/its-student").status_code == 200  # changed: the desk again


# Links are built only from BASE_URL (issue 14 item 7) ----------------------------------


def test_a_poisoned_host_header_never_reaches_a_reset_link(make_app: AppFactory) -> None:
    app = make_app(BASE_URL="https://password.school.test/")
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    its = browser(app, "its1")
    form = action_form(its, number)
    cookie = its.get_cookie("__Host-selfservice_session")
    assert cookie is not None
    its.set_cookie(cookie.key, cookie.value, domain="evil.example")  # the browser talks to "evil.example"
    response = its.post(
        f"/helpdesk/requests/{number}/reset-link", data=form, headers={"Host": "evil.example"}
    )
    assert response.status_code == 303
    [mail] = link_mails(app)
    assert "evil.example" not in mail.body_text
    assert "https://password.school.test/reset/" in mail.body_text
