"""Opening requests: details checked against the directory, refusals, throttling, receipts."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.helpdesk.hours import SupportHours
from selfservice.helpdesk.models import HelpRequest, Queue, Status
from selfservice.helpdesk.requests import names_match
from selfservice.security.models import RateLimitBreach
from selfservice.security.throttling import flush_breaches
from selfservice.timeutil import utcnow
from tests.conftest import AppFactory, csrf_token, person
from tests.helpdesk.helpers import (
    STUDENT,
    audit_events,
    browser,
    open_request,
    opened_number,
    outbox,
    request_row,
)


def request_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(HelpRequest)) or 0


# Student requests ----------------------------------------------------------------------


def test_a_student_request_is_received_queued_and_confirmed_by_mail(app: Flask) -> None:
    teacher = browser(app, "teacher1")
    response = open_request(
        teacher, "student", student_name="  ana   LÓPEZ ", note="Locked out since Monday."
    )
    number = opened_number(response)
    assert re.fullmatch(r"REQ-\d{6}", number)
    row = request_row(app, number)
    assert (row.queue, row.status, row.subject_login) == (Queue.ITS_STUDENT, Status.OPEN, "s1000001")
    mine = teacher.get("/helpdesk/mine").get_data(as_text=True)
    assert number in mine
    assert "Open" in mine
    [receipt] = outbox(app, "helpdesk:received")
    assert receipt.to_address == person("teacher1").email
    assert number in receipt.body_text
    assert "pick it up from" in receipt.body_text
    [opened] = audit_events(app, Tag.HELP_REQUEST_OPENED)
    assert opened.actor == "teacher1"
    assert opened.subject == "s1000001"


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"birth_month_year": "042012"}, ["birth_month_year"]),
        ({"student_name": "Ana Lopes"}, ["name"]),
        ({"student_id": "9999999"}, ["student_id"]),
        ({"student_name": "Ben Carter"}, ["name"]),
    ],
    ids=["wrong-birth-month-year", "wrong-name", "unknown-id", "someone-elses-name"],
)
def test_student_details_that_do_not_match_open_nothing(app: Flask, changes: dict, failed: list) -> None:
    response = open_request(browser(app, "teacher1"), "student", **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "do not match our records" in page
    assert request_count(app) == 0
    [refused] = audit_events(app, Tag.HELP_REQUEST_REFUSED)
    assert refused.actor == "teacher1"
    assert refused.details["failed"] == failed
    assert "032012" not in str(refused.details)
    assert "042012" not in str(refused.details)
    assert outbox(app) == []


@pytest.mark.parametrize(
    ("student_id", "typed", "born"),
    [
        ("1000001", "Lopez, Ana", "032012"),
        ("1000001", "ANA LÓPEZ", "03/2012"),
        ("1000004", "Jose Nunez", "092012"),
        ("1000003", "Sean O\u2019Brien", "072010"),
        ("1000003", "sean obrien", "07-2010"),
    ],
)
def test_names_match_whatever_the_case_accents_spacing_and_order(
    app: Flask, student_id: str, typed: str, born: str
) -> None:
    response = open_request(
        browser(app, "teacher1"), "student", student_id=student_id, student_name=typed, birth_month_year=born
    )
    opened_number(response)


def test_name_matching_needs_every_word() -> None:
    assert names_match("José  NÚÑEZ", "Jose Nunez")
    assert not names_match("Jose", "Jose Nunez")
    assert not names_match("", "")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("132012", "must be 01 to 12"),
        ("002012", "must be 01 to 12"),
        ("03201", "six digits"),
        ("March 2012", "six digits"),
        ("031850", "The year must be between"),
        (f"03{utcnow().year + 1}", "The year must be between"),
    ],
)
def test_birth_month_year_must_be_mmyyyy(app: Flask, typed: str, message: str) -> None:
    response = open_request(browser(app, "teacher1"), "student", birth_month_year=typed)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert audit_events(app, Tag.HELP_REQUEST_REFUSED) == []  # a typo, not a mismatch


def test_a_double_submit_opens_one_request(app: Flask) -> None:
    teacher = browser(app, "teacher1")
    page = teacher.get("/helpdesk/new/student").get_data(as_text=True)
    form_key = re.search(r'name="form_key"[^>]*value="([^"]+)"', page).group(1)
    data = {
        "csrf_token": csrf_token(teacher, "/helpdesk/new/student"),
        "form_key": form_key,
        "student_id": "1000001",
        "student_name": "Ana Lopez",
        "birth_month_year": "032012",
    }
    first = teacher.post("/helpdesk/new/student", data=data)
    second = teacher.post("/helpdesk/new/student", data=data)
    assert opened_number(first) == opened_number(second)
    assert request_count(app) == 1
    assert len(outbox(app, "helpdesk:received")) == 1


def test_the_confirmation_says_when_staff_pick_the_request_up(make_app: AppFactory) -> None:
    # Staff work one day a week, never today: the page must name the next one.
    hours = SupportHours.from_settings({**_hours_defaults(), "SUPPORT_DAYS": ["mon"]})
    today = utcnow().astimezone(hours.zone).strftime("%a").lower()[:3]
    day = "tue" if today == "mon" else "mon"
    app = make_app(SUPPORT_DAYS=[day])
    teacher = browser(app, "teacher1")
    number = opened_number(open_request(teacher, "student"))
    page = teacher.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    weekday = {"mon": "Monday", "tue": "Tuesday"}[day]
    assert "not at work now" in page
    assert f"They will pick this up from {weekday}" in page
    assert "Help desk hours" in page
    assert "no evening help desk" in page


def _hours_defaults() -> dict:
    from selfservice.config import DEFAULTS

    return dict(DEFAULTS)


# Throttling mismatches --------------------------------------------------------------------


def test_repeated_mismatches_by_one_employee_are_throttled(make_app: AppFactory) -> None:
    app = make_app(HELPDESK_MISMATCH_RATE_LIMIT="3 per hour")
    teacher = browser(app, "teacher1")
    for _attempt in range(4):  # typos do not count
        assert open_request(teacher, "student", birth_month_year="132012").status_code == 400
    opened_number(open_request(teacher, "student"))  # neither does success
    for _attempt in range(3):
        assert open_request(teacher, "student", birth_month_year="042012").status_code == 400
    assert open_request(teacher, "student").status_code == 429  # even the right details now
    assert open_request(teacher, "parent", pin="0000").status_code == 429  # one limit for both forms
    assert len(audit_events(app, Tag.HELP_REQUEST_REFUSED)) == 3
    assert audit_events(app, Tag.RATE_LIMIT_BREACH) == []  # counted, not a row each
    with app.app_context():
        flush_breaches()
        breaches = list(db.session.scalars(select(RateLimitBreach)))
        teacher_key = get_directory().find("teacher1").key  # type: ignore[union-attr]
    assert {(b.scope, b.key) for b in breaches} == {("account", teacher_key)}
    assert sum(b.count for b in breaches) == 2
    # Another employee is not held back by teacher1's mistakes.
    opened_number(open_request(browser(app, "admin1"), "student"))


BURST = 16


def test_a_burst_of_parallel_mismatches_gets_no_more_checks_than_the_limit(make_app: AppFactory) -> None:
    app = make_app(HELPDESK_MISMATCH_RATE_LIMIT="5 per hour")
    teacher = browser(app, "teacher1")
    path = "/helpdesk/new/student"
    token = csrf_token(teacher, path)
    data = {"csrf_token": token, **STUDENT, "birth_month_year": "042012", "form_key": ""}
    barrier = threading.Barrier(BURST)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        statuses.append(teacher.post(path, data=data).status_code)

    threads = [threading.Thread(target=send) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [400] * 5 + [429] * (BURST - 5)
    assert len(audit_events(app, Tag.HELP_REQUEST_REFUSED)) == 5  # checked against the directory: 5


# Parent requests ------------------------------------------------------------------------


def test_a_parent_request_goes_to_parent_support_and_never_keeps_the_pin(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "parent"))
    row = request_row(app, number)
    assert (row.queue, row.status, row.pin_matched) == (Queue.PARENT_SUPPORT, Status.OPEN, True)
    assert "4821" not in str(vars(row))
    support_page = browser(app, "support1").get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "4821" not in support_page
    assert "matched the records" in support_page
    assert all("4821" not in str(event.details) for event in audit_events(app))


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"pin": "4822"}, ["pin"]),
        ({"parent_name": "Maria Lopes"}, ["parent_name"]),
        ({"account_number": "A-9999999"}, ["account_number"]),
        ({"pin": "7390", "parent_name": "Maria Lopez"}, ["pin"]),
    ],
    ids=["wrong-pin", "wrong-name", "unknown-account", "another-parents-pin"],
)
def test_parent_details_that_do_not_match_open_nothing(app: Flask, changes: dict, failed: list) -> None:
    response = open_request(browser(app, "teacher1"), "parent", **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "do not match our records" in page
    assert changes.get("pin", "4821") not in page  # the PIN is never sent back
    assert request_count(app) == 0
    [refused] = audit_events(app, Tag.HELP_REQUEST_REFUSED)
    assert refused.details["failed"] == failed
    assert "4821" not in str(refused.details)
    assert "4822" not in str(refused.details)


def test_a_parent_without_email_is_refused_with_what_to_do(app: Flask) -> None:
    carter = person("p2000002")
    response = open_request(
        browser(app, "teacher1"),
        "parent",
        account_number=carter.parent_account_number,
        pin=carter.parent_pin,
        parent_name=carter.display_name,
        contact_name=carter.display_name,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "no email address on file" in page
    assert "add an email address on the Parent Information screen, then submit this request again" in page
    assert request_count(app) == 0
    [refused] = audit_events(app, Tag.HELP_REQUEST_REFUSED)
    assert refused.details["reason"] == "no-email"


@pytest.mark.parametrize("phone", ["555-0101", "(305) 555-0101", "+1 305.555.0101", "305 555 0101 ext. 12"])
def test_phone_numbers_are_accepted_as_people_write_them(app: Flask, phone: str) -> None:
    opened_number(open_request(browser(app, "teacher1"), "parent", contact_phone=phone, parent_phone=phone))


@pytest.mark.parametrize("phone", ["call me", "12", "555-0101-0101-0101-0101"])
def test_phone_numbers_that_are_not_phone_numbers_are_refused(app: Flask, phone: str) -> None:
    response = open_request(browser(app, "teacher1"), "parent", contact_phone=phone)
    assert response.status_code == 400
    assert "Enter a phone number" in response.get_data(as_text=True)


def test_new_requests_are_mirrored_to_the_intake_address_without_the_pin(make_app: AppFactory) -> None:
    app = make_app(HELPDESK_INTAKE_EMAIL="heat-intake@district.test")
    teacher = browser(app, "teacher1")
    parent_number = opened_number(open_request(teacher, "parent"))
    student_number = opened_number(open_request(teacher, "student"))
    mirrored = outbox(app, "helpdesk:intake")
    assert [mail.to_address for mail in mirrored] == ["heat-intake@district.test"] * 2
    assert parent_number in mirrored[0].subject
    assert student_number in mirrored[1].subject
    assert "A-2000001" in mirrored[0].body_text
    assert "4821" not in mirrored[0].body_text
    assert "032012" not in mirrored[1].body_text


def _send_form_key(teacher: FlaskClient, form_key: str) -> Any:
    data = {"csrf_token": csrf_token(teacher, "/helpdesk/new/student"), **STUDENT, "form_key": form_key}
    return teacher.post("/helpdesk/new/student", data=data)


def test_a_form_key_longer_than_its_column_is_a_clear_400_not_a_500(app: Flask) -> None:
    """The hidden form key comes from the browser: PostgreSQL refused the insert with a 500."""
    response = _send_form_key(browser(app, "teacher1"), "k" * 5000)
    assert response.status_code == 400
    assert request_count(app) == 0


def test_an_employees_form_cannot_take_an_api_clients_idempotency_key(app: Flask) -> None:
    """A form key shaped like ``api:<client>:<Idempotency-Key>`` took that key's place: the
    client's own call with that key then failed with a 500 and its request was never opened."""
    from selfservice.api.models import ApiClient
    from tests.api.helpers import STUDENT as API_STUDENT
    from tests.api.helpers import Api, issue

    api = Api(app.test_client(), issue(app))
    with app.app_context():
        client_id = db.session.scalar(select(ApiClient.id))
    taken = _send_form_key(browser(app, "teacher1"), f"api:{client_id}:sis-42")
    assert taken.status_code == 400
    opened = api.post("/requests", API_STUDENT, headers={"Idempotency-Key": "sis-42"})
    assert opened.status_code == 201
    assert request_count(app) == 1
