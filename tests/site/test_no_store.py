"""Cache-Control: no-store on every response that may carry personal data (issue 14 item 12)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AuthActions


def test_the_audit_csv_export_is_never_stored(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("admin1")
    response = client.get("/admin/audit.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"


def test_every_page_json_and_redirect_is_never_stored(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login("s1000001")
    for path in ["/", "/enroll", "/password", "/healthz", "/helpdesk/", "/forgot", "/no-such-page"]:
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path


def test_static_files_may_be_cached(client: FlaskClient) -> None:
    response = client.get("/static/css/site.css")
    response.close()
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
