"""The frame of the site: home, health, headers, errors, language, demo mailbox."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import AppFactory, post_form
from tests.scratch import free_port as closed_port


def unreachable_ldap(make_app: AppFactory):  # type: ignore[no-untyped-def]
    return make_app(
        directory="openldap",
        LDAP_URL=f"ldap://127.0.0.1:{closed_port()}",
        LDAP_BASE_DN="dc=nowhere",
        LDAP_BIND_DN="cn=nobody,dc=nowhere",
        LDAP_BIND_PASSWORD="irrelevant",
        LDAP_CONNECT_TIMEOUT_SECONDS=1,
    )


def test_home_page_links_to_the_four_destinations_and_shows_hours(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for path in ("/forgot", "/password", "/enroll", "/helpdesk/"):
        assert f'href="{path}"' in page
    assert "Help desk hours" in page
    assert "Monday" in page
    assert "Friday" in page
    assert "Saturday" not in page
    assert "no evening help desk" in page


def test_health_reports_database_and_directory(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "directory": "ok", "limiter": "ok"}}


def test_health_is_503_when_the_directory_is_down(make_app: AppFactory) -> None:
    response = unreachable_ldap(make_app).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "directory": "unavailable", "limiter": "ok"}


def test_health_says_degraded_when_the_limiter_storage_is_down(make_app: AppFactory) -> None:
    app = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200  # the portal still serves, counting limits in memory
    assert response.json["status"] == "degraded"
    assert response.json["checks"]["limiter"] == "degraded"


def test_health_reports_redis_limiter_storage(make_app: AppFactory) -> None:
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379")
    assert app.test_client().get("/healthz").json["checks"]["limiter"] == "ok"


def test_sign_in_with_the_directory_down_gives_a_clear_503_page(make_app: AppFactory) -> None:
    client = unreachable_ldap(make_app).test_client()
    response = post_form(client, "/login", {"login": "s1000001", "password": "whatever-it-is"})
    assert response.status_code == 503
    assert "cannot reach the account directory" in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "60"


def test_every_page_sends_the_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_over_https(client: FlaskClient) -> None:
    response = client.get("/", base_url="https://portal.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_have_no_inline_script_or_style(client: FlaskClient) -> None:
    for path in ("/", "/login"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page
        assert "<style" not in page
        assert " style=" not in page
        assert "onclick" not in page


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_oversized_post_is_a_413_not_a_500(client: FlaskClient) -> None:
    response = client.post("/login", data={"login": "x" * 100_000})
    assert response.status_code == 413


def test_language_choice_is_remembered_in_a_cookie(client: FlaskClient) -> None:
    response = post_form(client, "/language", {"language": "es", "next": "/login"}, form_path="/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    cookie = client.get_cookie("lang")
    assert cookie is not None
    assert cookie.value == "es"
    assert 'lang="es"' in client.get("/").get_data(as_text=True)


def test_language_switch_never_redirects_off_site(client: FlaskClient) -> None:
    response = post_form(client, "/language", {"language": "en", "next": "//evil.example/"}, form_path="/")
    assert response.headers["Location"] == "/"


def test_browser_language_is_used_without_a_choice(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Language": "ht, fr;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ht">' in page


@pytest.mark.parametrize(("demo", "status"), [(True, 200), (False, 404)])
def test_demo_mailbox_exists_only_in_demo_mode(make_app: AppFactory, demo: bool, status: int) -> None:
    app = make_app(DEMO=demo)
    assert app.test_client().get("/demo/mail").status_code == status


def test_a_nul_character_anywhere_is_a_clear_400(client: FlaskClient) -> None:
    response = post_form(client, "/login", {"login": "s1000001\x00", "password": "x"})
    assert response.status_code == 400
    assert "not allowed" in response.get_data(as_text=True)
    assert client.get("/", query_string={"q": "a\x00b"}).status_code == 400
