"""Every /helpdesk route checks its role: a walk of every route with every role."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import csrf_token
from tests.helpdesk.helpers import add_person, browser, open_request, opened_number, sign_in_as

PEOPLE = {
    "anonymous": None,
    "student": "s1000001",
    "parent": "p2000001",
    "employee": "teacher1",
    "support": "support1",
    "its": "its1",
    "admin": "admin1",  # an admin who is also an employee (but did not open these requests)
}
STAFF_PAGES = {"employee", "support", "its", "admin"}
S, P = "{student}", "{parent}"

#: (method, path, roles that may use it). S and P: a student and a parent request opened by teacher1.
ROUTES = [
    ("GET", "/helpdesk/", STAFF_PAGES),
    ("GET", "/helpdesk/mine", {"employee", "admin"}),
    ("GET", "/helpdesk/new/student", {"employee", "admin"}),
    ("POST", "/helpdesk/new/student", {"employee", "admin"}),
    ("GET", "/helpdesk/new/parent", {"employee", "admin"}),
    ("POST", "/helpdesk/new/parent", {"employee", "admin"}),
    ("GET", "/helpdesk/queue/its-student", {"its", "admin"}),
    ("GET", "/helpdesk/queue/its-parent", {"its", "admin"}),
    ("GET", "/helpdesk/queue/parent-support", {"support", "admin"}),
    ("GET", "/helpdesk/all", {"admin"}),
    ("GET", f"/helpdesk/requests/{S}", {"employee", "its", "admin"}),
    ("GET", f"/helpdesk/requests/{P}", {"employee", "support", "admin"}),
    ("POST", f"/helpdesk/requests/{S}/take", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/take", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/assign", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/assign", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/note", {"employee", "its"}),
    ("POST", f"/helpdesk/requests/{P}/note", {"employee", "support"}),
    ("POST", f"/helpdesk/requests/{S}/contact", set()),
    ("POST", f"/helpdesk/requests/{P}/contact", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/escalate", set()),
    ("POST", f"/helpdesk/requests/{P}/escalate", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/resolve", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/resolve", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/close", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/close", {"support"}),
    ("POST", f"/helpdesk/requests/{S}/reset-link", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/reset-link", set()),
    ("POST", f"/helpdesk/requests/{S}/unlock", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/unlock", set()),
    ("POST", f"/helpdesk/requests/{S}/clear-enrollment", {"its"}),
    ("POST", f"/helpdesk/requests/{P}/clear-enrollment", set()),
]


def test_the_walk_covers_every_helpdesk_route(app: Flask) -> None:
    walked = {path.replace(S, "<number>").replace(P, "<number>") for _method, path, _roles in ROUTES}
    walked = {path.replace("/queue/its-student", "/queue/<name>") for path in walked}
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/helpdesk")}
    assert rules <= walked


@pytest.mark.parametrize("role", list(PEOPLE))
def test_every_route_refuses_the_roles_it_is_not_for(app: Flask, role: str) -> None:
    teacher = browser(app, "teacher1")
    numbers = {
        "student": opened_number(open_request(teacher, "student")),
        "parent": opened_number(open_request(teacher, "parent")),
    }
    client = browser(app, PEOPLE[role])
    token = csrf_token(client, "/login" if role == "anonymous" else "/")
    for method, template, roles in ROUTES:
        path = template.format(**numbers)
        # POSTs carry no revision and no fields: allowed callers get a 400, so the walk changes nothing.
        response = client.get(path) if method == "GET" else client.post(path, data={"csrf_token": token})
        where = f"{role} {method} {path} -> {response.status_code}"
        if role == "anonymous":
            assert response.status_code == 302, where
            assert "/login" in response.headers["Location"], where
        elif role in roles:
            assert response.status_code in {200, 303, 400}, where
        else:
            assert response.status_code == 403, where


def test_an_employee_cannot_see_or_touch_a_colleagues_request(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    add_person(app, "teacher2", groups=["employees"], email="teacher2@school.test")
    colleague = sign_in_as(app, "teacher2")
    assert colleague.get(f"/helpdesk/requests/{number}").status_code == 403
    token = csrf_token(colleague, "/helpdesk/mine")
    note = {"csrf_token": token, "revision": "1", "note_text": "hello"}
    assert colleague.post(f"/helpdesk/requests/{number}/note", data=note).status_code == 403
    assert number not in colleague.get("/helpdesk/mine").get_data(as_text=True)


def test_the_index_sends_each_role_to_its_page(app: Flask) -> None:
    expected = {
        "teacher1": "/helpdesk/mine",
        "support1": "/helpdesk/queue/parent-support",
        "its1": "/helpdesk/queue/its-student",
        "admin1": "/helpdesk/all",
    }
    for login, page in expected.items():
        response = browser(app, login).get("/helpdesk/")
        assert response.status_code == 303, login
        assert response.headers["Location"].endswith(page), login
