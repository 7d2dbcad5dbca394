"""Walk every route: every state change is a CSRF-checked POST, and no input makes a 500.

DESIGN invariants 9 and 13, checked for every route the app has, so a new route is
covered the day it is added.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.conftest import AuthActions, csrf_token

GARBAGE: list[dict[str, Any]] = [
    {},
    {
        "login": "a*)(uid=\x00*",
        "password": "\x00\ufffe",
        "answer_1": "x" * 5000,
        "next": "javascript:alert(1)",
    },
    {"question_1": "not-a-number", "answer_1": "", "code": "'; DROP TABLE audit_event; --"},
    {"student_id": "١٢٣", "birth_month_year": "13/2099", "pin": "\u202e", "since": "yesterday", "to": "z"},
    {"new_password": "short", "confirm": "different", "reason": "<script>x</script>", "position": "-1"},
]


def routes(app: Flask, method: str) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if method in (rule.methods or set()) and rule.endpoint != "static"
    ]


def path_for(rule: Rule) -> str:
    values = {name: _sample(rule, name) for name in rule.arguments}
    return rule.build(values, append_unknown=False)[1]  # type: ignore[index]


def _sample(rule: Rule, name: str) -> Any:
    converter = rule._converters.get(name)
    numeric = {"IntegerConverter", "IdConverter"}
    return 1 if converter is not None and type(converter).__name__ in numeric else "garbage"


def test_only_get_and_post_exist(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        assert set(rule.methods or ()) <= {"GET", "HEAD", "OPTIONS", "POST"}, rule


def test_every_post_route_refuses_a_request_without_a_csrf_token(
    app: Flask, auth: AuthActions, client: FlaskClient
) -> None:
    auth.login("admin1")
    rules = routes(app, "POST")
    assert len(rules) > 10
    for rule in rules:
        response = client.post(path_for(rule), data={"login": "s1000001"})
        if rule.rule.startswith("/api/"):
            # Bearer token only: the signed-in admin's cookie opens nothing there.
            assert response.status_code == 401, rule.rule
            continue
        assert response.status_code == 400, rule.rule
        assert "expired" in response.get_data(as_text=True), rule.rule


@pytest.mark.parametrize("login", [None, "s1000001", "teacher1", "support1", "its1", "admin1"])
def test_no_route_answers_garbage_with_a_500(
    app: Flask, client: FlaskClient, auth: AuthActions, login: str | None
) -> None:
    if login:
        auth.login(login)
    token = csrf_token(client, "/")
    for rule in routes(app, "GET"):
        path = path_for(rule)
        assert client.get(path, query_string={"since": "x", "page": "-1", "after": "zz"}).status_code < 500, (
            path
        )
    for rule in routes(app, "POST"):
        if rule.endpoint == "auth.logout":
            continue
        for data in GARBAGE:
            response = client.post(path_for(rule), data={"csrf_token": token, **data})
            assert response.status_code < 500, (rule.rule, data)
        broken_utf8 = f"csrf_token={token}&login=%ff%fe&answer_1=%c3%28".encode()
        response = client.post(
            path_for(rule), data=broken_utf8, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code < 500, (rule.rule, "invalid UTF-8")
