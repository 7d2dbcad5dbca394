"""The two walks of the district procedure, on the builtin directory and on a real slapd.

Student: an employee opens a request -> ITS issues a link -> the link arrives in the
employee's mail -> the student sets a password that binds at the directory -> the
request resolves itself and the employee is told. Parent: Parent Support takes it,
records a contact, escalates -> ITS issues a link to the parent's own address.
"""

from __future__ import annotations

import ldap3
import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.directory.interfaces import Directory
from selfservice.helpdesk.models import Action, Queue, Status
from tests.conftest import AppFactory, csrf_token, person
from tests.fixtures.directories import ALL_DIRECTORIES
from tests.helpdesk.helpers import (
    act,
    browser,
    link_mails,
    open_request,
    opened_number,
    outbox,
    request_row,
    token_of,
)
from tests.slapd import Slapd

NEW_PASSWORD = "Lantern-Orchard-Basil-77"


@pytest.fixture(params=ALL_DIRECTORIES)
def flow_app(request: pytest.FixtureRequest, make_app: AppFactory) -> Flask:
    return make_app(directory=request.param)


def directory_of(app: Flask) -> Directory:
    return app.extensions["selfservice.directory"]


def binds(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return directory_of(app).authenticate(login, password) is not None


def set_password_with_link(app: Flask, token: str, password: str) -> str:
    holder = browser(app, None)
    assert holder.get(f"/reset/{token}").status_code == 200
    data = {
        "csrf_token": csrf_token(holder, f"/reset/{token}"),
        "new_password": password,
        "confirm": password,
    }
    response = holder.post(f"/reset/{token}", data=data)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def staff_pages(clients: dict[str, FlaskClient], number: str) -> list[str]:
    paths = [f"/helpdesk/requests/{number}", "/helpdesk/mine", "/helpdesk/all"]
    paths += [f"/helpdesk/queue/{queue.value}" for queue in Queue]
    pages = []
    for client in clients.values():
        for path in paths:
            response = client.get(path)
            if response.status_code == 200:
                pages.append(response.get_data(as_text=True))
    return pages


def test_student_reset_through_its_ends_with_a_password_the_student_chose(flow_app: Flask) -> None:
    app = flow_app
    teacher, its = browser(app, "teacher1"), browser(app, "its1")
    number = opened_number(open_request(teacher, "student"))
    assert number in its.get("/helpdesk/queue/its-student").get_data(as_text=True)

    assert act(its, number, "take").status_code == 303
    response = act(its, number, "reset-link")
    assert response.status_code == 303
    page = its.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "Link sent to t***@school.test" in page

    mails = link_mails(app)
    assert [mail.to_address for mail in mails] == [person("teacher1").email]
    token = token_of(mails[0])
    clients = {"teacher": teacher, "its": its, "admin": browser(app, "admin1")}
    assert all(token not in page for page in staff_pages(clients, number))

    done = set_password_with_link(app, token, NEW_PASSWORD)
    assert "The new password is set" in done
    assert binds(app, "s1000001", NEW_PASSWORD)
    assert not binds(app, "s1000001", person("s1000001").password)

    row = request_row(app, number)
    assert row.status == Status.RESOLVED
    assert [event.action for event in row.events][-2:] == [Action.LINK_USED, Action.RESOLVED]
    assert "Resolved" in teacher.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    resolved = outbox(app, "helpdesk:resolved")
    assert [mail.to_address for mail in resolved] == [person("teacher1").email]
    assert NEW_PASSWORD not in "".join(mail.body_text for mail in outbox(app))

    again = browser(app, None).get(f"/reset/{token}")
    assert again.status_code == 410


def test_parent_help_through_support_and_its_goes_to_the_parents_own_address(flow_app: Flask) -> None:
    app = flow_app
    teacher, support, its = browser(app, "teacher1"), browser(app, "support1"), browser(app, "its1")
    number = opened_number(open_request(teacher, "parent"))
    assert number in support.get("/helpdesk/queue/parent-support").get_data(as_text=True)
    assert its.get(f"/helpdesk/requests/{number}").status_code == 403  # not escalated yet

    assert act(support, number, "take").status_code == 303
    contact = {"contact_method": "phone", "contact_outcome": "reached", "contact_note": "Needs a reset."}
    assert act(support, number, "contact", contact).status_code == 303
    reason = {"escalate_reason": "Parent cannot sign in; a reset is needed."}
    assert act(support, number, "escalate", reason).status_code == 303

    row = request_row(app, number)
    assert (row.queue, row.status, row.assignee) == (Queue.ITS_PARENT, Status.ESCALATED, None)
    contact_event = next(event for event in row.events if event.action == Action.CONTACT)
    assert (contact_event.contact_method, contact_event.contact_outcome) == ("phone", "reached")
    assert number in its.get("/helpdesk/queue/its-parent").get_data(as_text=True)
    assert support.get(f"/helpdesk/requests/{number}").status_code == 200  # support keeps sight of it

    assert act(its, number, "reset-link").status_code == 303
    mails = link_mails(app)
    assert [mail.to_address for mail in mails] == [person("p2000001").email]
    token = token_of(mails[0])
    clients = {"teacher": teacher, "support": support, "its": its}
    assert all(token not in page for page in staff_pages(clients, number))

    set_password_with_link(app, token, NEW_PASSWORD)
    assert binds(app, "p2000001", NEW_PASSWORD)
    assert request_row(app, number).status == Status.RESOLVED
    assert [mail.to_address for mail in outbox(app, "helpdesk:resolved")] == [person("teacher1").email]


@pytest.mark.ldap
def test_a_password_the_directory_refuses_leaves_the_link_usable(make_app: AppFactory) -> None:
    app = make_app(directory="openldap")
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    token = token_of(link_mails(app)[0])
    holder = browser(app, None)
    current = person("s1000001").password  # the policy here accepts it; slapd refuses an unchanged one
    data = {"csrf_token": csrf_token(holder, f"/reset/{token}"), "new_password": current, "confirm": current}
    refused = holder.post(f"/reset/{token}", data=data)
    assert refused.status_code == 400
    assert "must be different from the current one" in refused.get_data(as_text=True)
    assert request_row(app, number).status == Status.IN_PROGRESS
    set_password_with_link(app, token, NEW_PASSWORD)
    assert binds(app, "s1000001", NEW_PASSWORD)


@pytest.mark.ldap
@pytest.mark.slow
def test_a_directory_name_longer_than_the_request_keeps_still_opens_the_request(
    make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    slapd = request.getfixturevalue("slapd")
    app = make_app(directory="openldap")
    long_name = "Ms. Teacher " + " ".join(["Longfamilyname"] * 20)  # 311 characters
    # Words padded with spaces: the typed name still matches (same words), the value is long.
    padded_holder = "Ana" + " " * 250 + "Lopez"
    request.addfinalizer(
        lambda: (
            _set_cn(slapd, "teacher1", person("teacher1").display_name),
            _set_cn(slapd, "s1000001", person("s1000001").display_name),
        )
    )
    _set_cn(slapd, "teacher1", long_name)
    _set_cn(slapd, "s1000001", padded_holder)

    number = opened_number(open_request(browser(app, "teacher1"), "student"))

    row = request_row(app, number)
    assert len(row.opened_by_name) == 200
    assert row.opened_by_name == long_name[:199] + "…"
    assert row.subject_name == "Ana Lopez"
    page = browser(app, "its1").get(f"/helpdesk/requests/{number}")
    assert page.status_code == 200
    assert long_name[:199] + "…" in page.get_data(as_text=True)


def _set_cn(slapd: Slapd, login: str, name: str) -> None:
    conn = slapd.root_connection()
    try:
        assert conn.modify(slapd.dn(login), {"cn": [(ldap3.MODIFY_REPLACE, [name])]}), conn.result
    finally:
        conn.unbind()
