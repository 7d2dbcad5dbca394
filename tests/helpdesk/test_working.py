"""Working the queues: unlock, clear an enrollment, resolve without a reset, escalation, assignment."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.helpdesk.models import Action, Status
from selfservice.portal.models import Enrollment
from selfservice.security import get_security
from selfservice.security.lockout import Locked
from tests.conftest import csrf_token, person
from tests.fixtures.disabling import disable_by_admin
from tests.helpdesk.helpers import (
    act,
    audit_events,
    browser,
    open_request,
    opened_number,
    outbox,
    request_row,
)


def lock_out(app: Flask, login: str) -> None:
    with app.app_context():
        account = app.extensions["selfservice.directory"].find(login)
        lockout = get_security().lockout
        for _guess in range(app.config["LOCKOUT_MAX_FAILURES"] + 1):
            try:
                lockout.claim_attempt(account.key, account.login, SYSTEM)
            except Locked:
                return
            lockout.record_failure(account.key, account.login, SYSTEM)
        assert lockout.locked_until(account.key) is not None


def test_its_unlocks_self_service_and_the_student_is_told(app: Flask) -> None:
    lock_out(app, "s1000001")
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    response = act(browser(app, "its1"), number, "unlock")
    assert response.status_code == 303
    with app.app_context():
        key = app.extensions["selfservice.directory"].find("s1000001").key
        assert get_security().lockout.locked_until(key) is None
    [unlocked] = audit_events(app, Tag.UNLOCKED)
    assert unlocked.actor == "its1"
    assert unlocked.subject == "s1000001"
    assert [mail.to_address for mail in outbox(app, "notice:unlocked")] == [person("s1000001").email]
    row = request_row(app, number)
    assert Action.UNLOCKED in [event.action for event in row.events]
    assert (row.status, row.assignee) == (Status.IN_PROGRESS, "its1")


def test_its_clears_an_enrollment_so_the_student_enrolls_again(app: Flask) -> None:
    with app.app_context():
        key = app.extensions["selfservice.directory"].find("s1000001").key
        db.session.add(Enrollment(account_key=key, login="s1000001"))
        db.session.commit()
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    response = act(browser(app, "its1"), number, "clear-enrollment")
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Enrollment).where(Enrollment.account_key == key)) is None
    assert [event.actor for event in audit_events(app, Tag.ENROLLMENT_CLEARED)] == ["its1"]
    assert [mail.to_address for mail in outbox(app, "notice:enrollment_cleared")] == [
        person("s1000001").email
    ]
    assert Action.ENROLLMENT_CLEARED in [event.action for event in request_row(app, number).events]


def test_support_resolves_without_a_reset_and_the_employee_is_told(app: Flask) -> None:
    teacher, support = browser(app, "teacher1"), browser(app, "support1")
    number = opened_number(open_request(teacher, "parent"))
    contact = {"contact_method": "email", "contact_outcome": "reached", "contact_note": "Typo in the login."}
    act(support, number, "contact", contact)
    assert (
        act(support, number, "resolve", {"resolve_note": "The parent was using the wrong login."}).status_code
        == 303
    )
    [resolved] = outbox(app, "helpdesk:resolved")
    assert resolved.to_address == person("teacher1").email
    assert "wrong login" in resolved.body_text
    assert act(support, number, "close").status_code == 303
    assert request_row(app, number).status == Status.CLOSED
    assert "Closed" in teacher.get("/helpdesk/mine").get_data(as_text=True)


def test_a_resolve_without_a_note_is_refused_with_a_message(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    response = act(browser(app, "its1"), number, "resolve", {"resolve_note": ""})
    assert response.status_code == 400
    assert "Say how the request was resolved." in response.get_data(as_text=True)
    assert request_row(app, number).status == Status.OPEN


def test_once_escalated_support_can_no_longer_work_the_request(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "parent"))
    support = browser(app, "support1")
    act(support, number, "escalate", {"escalate_reason": "Needs a reset."})
    page = support.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "Escalated" in page
    assert 'name="revision"' not in page
    form = {"csrf_token": csrf_token(support, "/"), "revision": str(request_row(app, number).revision)}
    contact = {**form, "contact_method": "phone", "contact_outcome": "reached"}
    assert support.post(f"/helpdesk/requests/{number}/contact", data=contact).status_code == 403
    resolve = {**form, "resolve_note": "x"}
    assert support.post(f"/helpdesk/requests/{number}/resolve", data=resolve).status_code == 403
    assert [event.actor for event in audit_events(app, Tag.HELP_REQUEST_ESCALATED)] == ["support1"]


def test_requests_are_assigned_only_to_people_who_work_the_queue(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    its = browser(app, "its1")
    refused = act(its, number, "assign", {"assign_login": "support1"})
    assert refused.status_code == 409
    assert "does not work this queue" in refused.get_data(as_text=True)
    assert request_row(app, number).assignee is None
    assert act(browser(app, "its1"), number, "assign", {"assign_login": "its1"}).status_code == 303
    assert request_row(app, number).assignee == "its1"


def test_the_employee_adds_a_note_that_staff_see_in_the_timeline(app: Flask) -> None:
    teacher = browser(app, "teacher1")
    number = opened_number(open_request(teacher, "student"))
    assert act(teacher, number, "note", {"note_text": "The student is in room 12 today."}).status_code == 303
    page = browser(app, "its1").get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "The student is in room 12 today." in page
    assert "teacher1" in page


def test_its_cannot_unlock_an_account_an_administrator_disabled_and_is_told_why(
    app: Flask, request: pytest.FixtureRequest
) -> None:
    lock_out(app, "s1000001")
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    disable_by_admin(request, app, "s1000001")
    response = act(browser(app, "its1"), number, "unlock")
    assert response.status_code == 409
    assert "An administrator disabled this account in the directory" in response.get_data(as_text=True)
    with app.app_context():
        key = app.extensions["selfservice.directory"].find("s1000001").key
        assert get_security().lockout.locked_until(key) is not None
    assert audit_events(app, Tag.UNLOCKED) == []
    assert outbox(app, "notice:unlocked") == []
    assert Action.UNLOCKED not in [event.action for event in request_row(app, number).events]
    (refused,) = audit_events(app, "account:selfservice:unlock-refused")
    assert (refused.actor, refused.subject, refused.outcome) == ("its1", "s1000001", "refused")
    assert refused.details == {"reason": "disabled-by-admin", "request": number}
