"""Fuzz every route and form with hypothesis: whatever arrives, the answer is never a 5xx.

DESIGN invariant 13. Each example picks a route of the app (so a new route is fuzzed the
day it is added), fills its path arguments, query string and form with hostile text
(control and format characters, Unicode digits, huge numbers, encoded slashes, markup)
and sends it as an anonymous visitor, a student, ITS or an admin, with a valid CSRF
token most of the time so forms get past it.

Profiles (SELFSERVICE_FUZZ_PROFILE): ``ci`` (default, a few hundred requests per role,
seconds) and ``long``, the documented deep run of at least 100,000 examples per role::

    SELFSERVICE_FUZZ_PROFILE=long .venv/bin/python -m pytest tests/site/test_fuzz.py
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from tests.conftest import AppFactory, AuthActions

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
settings.register_profile(
    "long", max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = os.environ.get("SELFSERVICE_FUZZ_PROFILE", "ci")

#: Routes a fuzzing client must not press: they end its own session.
SKIPPED_ENDPOINTS = {"static", "auth.logout", "accounts.end_sessions", "accounts.reset_second_factor"}
FIELDS = [
    "login", "password", "next", "code", "language", "current_password", "new_password", "confirm",
    "question_1", "answer_1", "question_2", "answer_2", "question_5", "answer_5", "revision",
    "student_id", "student_name", "birth_month_year", "note", "form_key", "contact_name", "contact_phone",
    "pin", "account_number", "parent_name", "parent_phone", "assign_login", "note_text", "contact_method",
    "contact_outcome", "contact_note", "escalate_reason", "resolve_note", "close_note", "confirm",
    "text_en", "text_es", "text_ht", "direction", "position", "after", "since", "until", "tag",
    "subject", "actor", "outcome", "ip", "show", "q",
]  # fmt: skip
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

# Text a person, a typo or an attacker might send; never lone surrogates (not encodable in a URL).
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(
        [
            "", " ", "²", "٣", "\uff11", "99999999999999999999", "-1", "0", "1", "REQ-000001", "REQ-²",
            "//evil.example", "/\t/evil.example", "/%0D%0A", "\r\n", "\\\\evil", "javascript:alert(1)",
            "<script>x</script>", "' OR 1=1 --", "*)(uid=*", "\u202e", "\ufeff", "x" * 5000, "%00", "\x00",
            "1_2", "²_1", "9223372036854775808_1", "2026-13-45", "7d", "99999d", "all", "active", "up", "es",
        ]
    ),
)  # fmt: skip


def fuzz_app(make_app: AppFactory) -> Flask:
    lots = "100000 per minute"
    return make_app(
        SIGN_IN_RATE_LIMIT=lots,
        RECOVERY_RATE_LIMIT=lots,
        PASSWORD_RATE_LIMIT=lots,
        GLOBAL_RATE_LIMIT=lots,
        HELPDESK_MISMATCH_RATE_LIMIT=lots,
    )


def routes(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.endpoint not in SKIPPED_ENDPOINTS),
        key=lambda rule: rule.rule,
    )


def client_as(app: Flask, login: str | None) -> tuple[FlaskClient, str]:
    client = app.test_client()
    if login is not None:
        assert AuthActions(client).login(login).status_code == 303
    match = CSRF.search(client.get("/login" if login is None else "/password").get_data(as_text=True))
    assert match
    return client, match.group(1)


@st.composite
def requests(draw: st.DrawFn, rules: list[Rule]) -> tuple[str, str, dict[str, str], dict[str, str]]:
    rule = draw(st.sampled_from(rules))
    path = rule.rule
    for name in rule.arguments:
        value = draw(hostile_text) or "x"
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(value, safe=""), path)
    method = draw(st.sampled_from(sorted((rule.methods or set()) & {"GET", "POST"})))
    query = draw(st.dictionaries(st.sampled_from(FIELDS), hostile_text, max_size=4))
    form = (
        draw(st.dictionaries(st.sampled_from(FIELDS), hostile_text, max_size=8)) if method == "POST" else {}
    )
    return method, path, query, form


def run(app: Flask, login: str | None) -> None:
    client, token = client_as(app, login)
    rules = routes(app)
    seen: list[tuple[int, str, str]] = []

    @settings(settings.get_profile(PROFILE))
    @given(st.data())
    def one_request(inner: st.DataObject) -> None:
        method, path, query, form = inner.draw(requests(rules))
        if method == "POST" and inner.draw(st.integers(0, 9), label="csrf") > 0:  # mostly with a token
            form = {"csrf_token": token, **form}
        response = client.open(path, method=method, query_string=query, data=form)
        response.close()
        seen.append((response.status_code, method, path))
        assert response.status_code < 500, (method, path, query, form)

    one_request()
    assert len({path for _status, _method, path in seen}) > 10


@pytest.mark.parametrize("login", [None, "s1000001", "its1", "admin1"])
def test_no_route_answers_hostile_input_with_a_5xx(make_app: AppFactory, login: str | None) -> None:
    app = fuzz_app(make_app)
    run(app, login)
