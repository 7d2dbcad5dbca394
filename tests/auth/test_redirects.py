"""Open redirects: one function (selfservice.web.safe_next) decides every next/return target.

Issue 14 item 2: ``/login?next=/%09/evil.example/`` sent a signed-in person to
``//evil.example/``, and a ``next`` with CR or LF was a 500.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from selfservice.web import safe_next
from tests.conftest import AuthActions, csrf_token, person

#: Targets a browser would take off this site (as typed in the query string, percent-encoded).
OFF_SITE = [
    "//evil.example/",
    "/%09/evil.example/",
    "/%0D/evil.example/",
    "/%0A/evil.example/",
    "/%0D%0A/evil.example/",
    "/\\evil.example/",
    "/%5Cevil.example/",
    "%2F%2Fevil.example/",
    "/%2F/evil.example/",
    "/%252F%252Fevil.example/",
    "\\\\evil.example/",
    "https://evil.example/",
    "HTTPS:evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "%20//evil.example/",
    "/%E2%80%AE/evil.example/",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    page = client.get(f"/login?next={target}")
    assert page.status_code == 200
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "login": "s1000001",
            "password": person("s1000001").password,
            "next": page.request.args.get("next", ""),
        },
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "evil" not in location
    assert "\\" not in location


@pytest.mark.parametrize("target", ["/\t/evil.example/", "/\r\n/evil.example/", "//evil.example", "/\\x"])
def test_raw_control_characters_in_next_are_not_followed(client: FlaskClient, target: str) -> None:
    token = csrf_token(client, "/login")
    data = {"csrf_token": token, "login": "s1000001", "password": person("s1000001").password, "next": target}
    response = client.post("/login", data=data)
    assert response.status_code == 303
    assert "evil" not in response.headers["Location"]


def test_a_same_site_next_is_followed_after_sign_in(client: FlaskClient) -> None:
    client.get("/login?next=/password")
    token = csrf_token(client, "/login")
    data = {"csrf_token": token, "login": "s1000001", "password": person("s1000001").password}
    response = client.post("/login", data={**data, "next": "/password"})
    assert response.headers["Location"] == "/password"


@pytest.mark.parametrize("target", [*OFF_SITE, "/%0D%0ASet-Cookie:%20x=1", "/\r\nSet-Cookie: x=1"])
def test_language_choice_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    token = csrf_token(client, "/")
    response = client.post("/language", data={"csrf_token": token, "language": "es", "next": target})
    assert response.status_code == 303
    assert "evil" not in response.headers["Location"]
    assert "Set-Cookie: x" not in response.headers["Location"]


def test_language_choice_returns_to_the_page_it_was_made_on(client: FlaskClient) -> None:
    token = csrf_token(client, "/")
    response = client.post("/language", data={"csrf_token": token, "language": "es", "next": "/forgot"})
    assert response.headers["Location"] == "/forgot"


@pytest.mark.parametrize(
    ("target", "followed"),
    [
        ("/helpdesk/mine?show=all", "/helpdesk/mine?show=all"),
        ("/a\r\nb", "/ab"),
        ("/\t/evil.example", "/"),
        (None, "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_safe_next_keeps_paths_and_drops_the_rest(target: str | None, followed: str) -> None:
    assert safe_next(target) == followed


def test_a_signed_in_person_is_not_sent_off_site_by_the_language_form(
    auth: AuthActions, client: FlaskClient
) -> None:
    auth.login("s1000001")
    token = csrf_token(client, "/")
    response = client.post(
        "/language", data={"csrf_token": token, "language": "ht", "next": "/%09/evil.example/"}
    )
    assert response.headers["Location"] == "/"
