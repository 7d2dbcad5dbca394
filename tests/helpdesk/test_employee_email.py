"""An employee with no email on file learns it when opening a student request, not when ITS sends the link."""

from __future__ import annotations

from flask import Flask

from selfservice.helpdesk.models import HelpRequest
from tests.helpdesk.helpers import add_person, audit_events, open_request, sign_in_as

NO_EMAIL = "You have no email address on file"


def count_requests(app: Flask) -> int:
    with app.app_context():
        return HelpRequest.query.count()


def test_the_student_request_page_tells_an_employee_without_email(app: Flask) -> None:
    add_person(app, "teacher9", groups=["employees"])
    page = sign_in_as(app, "teacher9").get("/helpdesk/new/student").get_data(as_text=True)
    assert NO_EMAIL in page


def test_a_student_request_from_an_employee_without_email_is_refused_and_saved_nowhere(app: Flask) -> None:
    add_person(app, "teacher9", groups=["employees"])
    response = open_request(sign_in_as(app, "teacher9"), "student")
    assert response.status_code == 400
    assert NO_EMAIL in response.get_data(as_text=True)
    assert count_requests(app) == 0
    [event] = audit_events(app, "helpdesk:request:refused")
    assert event.details["reason"] == "no-email"


def test_an_employee_with_email_sees_no_such_notice(app: Flask) -> None:
    add_person(app, "teacher8", groups=["employees"], email="teacher8@school.test")
    page = sign_in_as(app, "teacher8").get("/helpdesk/new/student").get_data(as_text=True)
    assert NO_EMAIL not in page
