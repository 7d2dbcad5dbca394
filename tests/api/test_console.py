"""Admins issue, see and revoke API tokens on the console and from the command line."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.api.models import ApiClient
from selfservice.extensions import db
from tests.api.helpers import Api
from tests.conftest import AuthActions, csrf_token, post_form

TOKEN = re.compile(r'<code class="token" id="new-token">(ssapi_[\w-]+)</code>')


def create_on_console(client: FlaskClient, **changes: object) -> object:
    data = {
        "name": "Service desk",
        "scopes": ["requests:read", "requests:work"],
        "rate_limit": "60 per minute",
    }
    return post_form(client, "/admin/api-clients/", {**data, **changes})


def test_an_admin_creates_a_client_and_sees_its_token_once(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login("admin1")
    response = create_on_console(client)
    assert response.status_code == 200
    token = TOKEN.search(response.get_data(as_text=True)).group(1)
    assert Api(client, token).get("/events").status_code == 200
    listing = client.get("/admin/api-clients/").get_data(as_text=True)
    assert token not in listing  # never shown again
    assert "Service desk" in listing
    assert token[:10] in listing  # the hint, to tell tokens apart
    with app.app_context():
        row = db.session.scalar(select(ApiClient))
        assert row.created_by == "admin1"
        assert row.last_used_at is not None


def test_bad_fields_are_named_and_nothing_is_created(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login("admin1")
    response = create_on_console(client, name="", scopes=[], rate_limit="lots", expires_in_days="0")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Name the system" in page
    assert "at least one permission" in page
    assert "120 per minute" in page
    with app.app_context():
        assert db.session.scalar(select(ApiClient)) is None


def test_a_name_is_used_once(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("admin1")
    create_on_console(client)
    assert "already exists" in create_on_console(client).get_data(as_text=True)


def test_revoking_on_the_console_stops_the_token(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("admin1")
    token = TOKEN.search(create_on_console(client).get_data(as_text=True)).group(1)
    with app.app_context():
        client_id = db.session.scalar(select(ApiClient.id))
    response = client.post(
        f"/admin/api-clients/{client_id}/revoke",
        data={"csrf_token": csrf_token(client, "/admin/api-clients/")},
    )
    assert response.status_code == 303
    assert "Revoked" in client.get("/admin/api-clients/").get_data(as_text=True)
    assert Api(app.test_client(), token).get("/events").status_code == 401


def test_only_admins_reach_the_console(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("its1")
    assert client.get("/admin/api-clients/").status_code == 403


def test_the_cli_creates_lists_and_revokes(app: Flask, client: FlaskClient) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["api-client", "create", "sis", "--scope", "requests:read"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert Api(client, token).get("/events").status_code == 200
    listed = runner.invoke(args=["api-client", "list"]).output
    assert "sis\tactive\trequests:read" in listed
    assert token not in listed
    refused = runner.invoke(args=["api-client", "create", "sis", "--scope", "requests:read"])
    assert refused.exit_code != 0
    assert "already exists" in refused.output
    runner.invoke(args=["api-client", "revoke", "sis"])
    assert "sis\trevoked" in runner.invoke(args=["api-client", "list"]).output
