"""GET /forgot is rendered once a minute per language and shared by anonymous visitors (issue 17).

What a visitor would notice if the sharing went wrong: someone else's form token, a
message meant for someone else, the wrong language, or a token that does not work.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, flash
from werkzeug.test import Client, TestResponse

from selfservice.site.pages import TOKEN_PLACEHOLDER, SharedPages
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


# The WSGI layer that answers anonymous GET /forgot without Flask's request cycle ----------


def shared_layer(app: Flask) -> SharedPages:
    layer = app.wsgi_app
    while not isinstance(layer, SharedPages):
        layer = layer.wsgi_app  # type: ignore[attr-defined]
    return layer


def count_app_requests(app: Flask) -> list[str]:
    """The paths that reached the app behind the layer, from now on."""
    layer, seen = shared_layer(app), []
    inner = layer.wsgi_app

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    layer.wsgi_app = counting
    return seen


def cookie_attributes(response: TestResponse) -> tuple[str, list[str]]:
    """The session cookie's name and its attributes (everything after its value)."""
    (header,) = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    name_value, *attributes = header.split("; ")
    return name_value.split("=", 1)[0], attributes


def without_tokens(html: str) -> str:
    return CSRF_FIELD.sub("", html)


@pytest.mark.parametrize("base_url", ["http://localhost", "https://localhost"])
def test_a_new_visitor_gets_the_same_headers_cookie_and_page_from_the_layer_as_from_the_app(
    app: Flask, base_url: str
) -> None:
    behind = Client(shared_layer(app).wsgi_app, TestResponse)  # the app itself, without the layer
    from_app = behind.get("/forgot", base_url=base_url)
    app.test_client().get("/forgot", base_url=base_url)  # the layer's copy exists
    seen = count_app_requests(app)
    from_layer = app.test_client().get("/forgot", base_url=base_url)
    assert seen == []  # answered by the layer
    assert from_layer.status_code == from_app.status_code == 200
    assert from_layer.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in from_layer.headers["Content-Security-Policy"]
    assert ("Strict-Transport-Security" in from_layer.headers) == base_url.startswith("https")

    def comparable(response: TestResponse) -> list[tuple[str, str]]:
        per_visitor = ("Set-Cookie", "Content-Length")
        return sorted((k, v) for k, v in response.headers.items() if k not in per_visitor)

    assert comparable(from_layer) == comparable(from_app)
    assert cookie_attributes(from_layer) == cookie_attributes(from_app)
    assert "HttpOnly" in cookie_attributes(from_layer)[1]
    assert "SameSite=Lax" in cookie_attributes(from_layer)[1]
    page = without_tokens(from_layer.get_data(as_text=True))
    assert page == without_tokens(from_app.get_data(as_text=True))
    assert from_layer.headers["Content-Length"] == str(len(from_layer.get_data()))


def test_a_returning_visitor_keeps_their_session_and_token_and_gets_no_new_cookie(app: Flask) -> None:
    client = app.test_client()
    first = client.get("/forgot")
    (token,) = set(tokens(first.get_data(as_text=True)))
    seen = count_app_requests(app)
    again = client.get("/forgot")
    assert seen == []
    assert "Set-Cookie" not in again.headers
    name = cookie_attributes(first)[0]
    behind = Client(shared_layer(app).wsgi_app, TestResponse)
    behind.set_cookie(name, client.get_cookie(name).value)  # type: ignore[union-attr]
    from_app = behind.get("/forgot")
    assert "Set-Cookie" not in from_app.headers
    assert sorted(again.headers.items()) == sorted(from_app.headers.items())  # tokens: same length
    # Both the first page's token and the second's work for this visitor.
    (token_again,) = set(tokens(again.get_data(as_text=True)))
    assert client.post("/forgot", data={"csrf_token": token_again, "login": "ghost"}).status_code == 303
    assert client.post("/forgot", data={"csrf_token": token, "login": "ghost"}).status_code == 303


def test_a_token_from_the_layer_works_for_its_visitor_only(app: Flask) -> None:
    app.test_client().get("/forgot")
    seen = count_app_requests(app)
    visitor, other = app.test_client(), app.test_client()
    (token,) = set(tokens(visitor.get("/forgot").get_data(as_text=True)))
    (other_token,) = set(tokens(other.get("/forgot").get_data(as_text=True)))
    assert seen == []
    assert token != other_token
    assert other.post("/forgot", data={"csrf_token": token, "login": "ghost"}).status_code == 400
    assert app.test_client().post("/forgot", data={"csrf_token": token, "login": "ghost"}).status_code == 400
    assert visitor.post("/forgot", data={"login": "ghost"}).status_code == 400  # no token at all
    assert visitor.post("/forgot", data={"csrf_token": token, "login": "ghost"}).status_code == 303


@pytest.mark.parametrize(
    ("chosen", "accepted", "language"),
    [
        ("es", "", "es"),
        ("fr", "es", "fr"),  # the visitor's choice wins
        ("xx", "es", "es"),
        (None, "fr-HT, fr;q=0.9", "ht"),  # Kreyòl for French of Haiti
        (None, "de;q=0.9, fr;q=1.0", "fr"),  # best first
        (None, "de", "en"),  # the district's default
        (None, "", "en"),
    ],
)
def test_the_layer_picks_the_language_the_app_would(
    app: Flask, chosen: str | None, accepted: str, language: str
) -> None:
    def visitor(wsgi_app: Any) -> Client:
        client = Client(wsgi_app, TestResponse)
        if chosen:
            client.set_cookie("lang", chosen)
        return client

    headers = {"Accept-Language": accepted} if accepted else {}
    visitor(app).get("/forgot", headers=headers)  # the layer's copy exists
    seen = count_app_requests(app)
    from_layer = visitor(app).get("/forgot", headers=headers).get_data(as_text=True)
    assert seen == []
    assert f'<html lang="{language}">' in from_layer
    from_app = visitor(shared_layer(app).wsgi_app).get("/forgot", headers=headers).get_data(as_text=True)
    assert f'<html lang="{language}">' in from_app


def test_visitors_with_more_in_their_session_are_answered_by_the_app(app: Flask) -> None:
    app.test_client().get("/forgot")
    client = app.test_client()
    with client.session_transaction() as session:
        session["recovery"] = {"stage": "questions"}
    seen = count_app_requests(app)
    client.get("/forgot")
    client.set_cookie("__Host-selfservice_session", "not-a-signed-cookie")
    assert client.get("/forgot").status_code == 200  # a bad cookie: a fresh session, from the app
    app.test_client().get("/forgot?x=1")
    assert seen == ["/forgot", "/forgot", "/forgot"]


def test_a_post_never_goes_through_the_layer(app: Flask) -> None:
    app.test_client().get("/forgot")
    seen = count_app_requests(app)
    app.test_client().post("/forgot", data={"login": "ghost"})
    assert seen == ["/forgot"]


def test_a_portal_mounted_under_a_prefix_gets_its_own_links(app: Flask) -> None:
    plain = app.test_client().get("/forgot").get_data(as_text=True)
    mounted = app.test_client().get("/forgot", environ_overrides={"SCRIPT_NAME": "/portal"})
    assert 'action="/forgot"' in plain
    assert 'action="/portal/forgot"' in mounted.get_data(as_text=True)
