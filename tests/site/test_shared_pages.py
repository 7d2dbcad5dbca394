"""GET /forgot is rendered once a minute per language and shared by anonymous visitors (issue 17).

What a visitor would notice if the sharing went wrong: someone else's form token, a
message meant for someone else, the wrong language, or a token that does not work.
"""

from __future__ import annotations

import re

from flask import Flask, flash

from selfservice.site.pages import TOKEN_PLACEHOLDER
from tests.conftest import CSRF_FIELD, AuthActions

TOKENS = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def tokens(html: str) -> list[str]:
    return TOKENS.findall(html)


def test_each_visitor_gets_their_own_working_form_token(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    page_one = first.get("/forgot").get_data(as_text=True)
    page_two = second.get("/forgot").get_data(as_text=True)
    assert TOKEN_PLACEHOLDER not in page_one + page_two
    assert len(tokens(page_one)) == 2  # the form's and the language form's
    (token_one,) = set(tokens(page_one))
    assert token_one not in page_two  # never another visitor's token
    assert len(set(tokens(page_two))) == 1
    # Each token works for its own visitor only.
    assert first.post("/forgot", data={"csrf_token": token_one, "login": "ghost"}).status_code == 303
    (token_two,) = set(tokens(page_two))
    assert first.post("/forgot", data={"csrf_token": token_two, "login": "ghost"}).status_code == 400


def test_the_shared_page_matches_a_fresh_render(app: Flask) -> None:
    client = app.test_client()
    shared = client.get("/forgot").get_data(as_text=True)
    fresh = client.get("/forgot?fresh=1").get_data(as_text=True)  # a query string is never shared
    assert CSRF_FIELD.sub("", shared).replace('value="/forgot?"', "") == CSRF_FIELD.sub("", fresh).replace(
        'value="/forgot?fresh=1"', ""
    )


def test_a_message_waiting_for_a_visitor_is_shown_to_that_visitor_only(app: Flask) -> None:
    @app.get("/test-flash")
    def flash_something() -> str:
        flash("A message for one visitor only", "info")
        return "ok"

    client, other = app.test_client(), app.test_client()
    other.get("/forgot")  # the shared copy exists
    client.get("/test-flash")
    assert "A message for one visitor only" in client.get("/forgot").get_data(as_text=True)
    assert "A message for one visitor only" not in other.get("/forgot").get_data(as_text=True)


def test_each_language_has_its_own_page(app: Flask) -> None:
    english = app.test_client().get("/forgot", headers={"Accept-Language": "en"}).get_data(as_text=True)
    spanish = app.test_client().get("/forgot", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="en">' in english
    assert '<html lang="es">' in spanish
    assert "Forgot your password?" in english
    assert "Forgot your password?" not in spanish


def test_a_signed_in_person_sees_their_own_header(app: Flask) -> None:
    app.test_client().get("/forgot")  # the anonymous copy exists
    client = app.test_client()
    AuthActions(client).login("s1000001")
    page = client.get("/forgot").get_data(as_text=True)
    assert "Signed in as" in page
    assert "Signed in as" not in app.test_client().get("/forgot").get_data(as_text=True)
