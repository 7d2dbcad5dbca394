"""Only admins reach the admin console: others get 403, strangers are sent to sign in."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from selfservice.audit.models import AuditEvent
from selfservice.extensions import db
from selfservice.portal.models import Question
from tests.conftest import AuthActions, csrf_token

PAGES = [
    "/admin/",
    "/admin/audit",
    "/admin/audit.csv",
    "/admin/audit/1",
    "/admin/lockouts",
    "/admin/lockouts/some-key/unlock",
    "/admin/rate-limits",
    "/admin/questions",
    "/admin/questions/new",
    "/admin/questions/1",
]
ACTIONS = [
    "/admin/lockouts/some-key/unlock",
    "/admin/questions/new",
    "/admin/questions/1",
    "/admin/questions/1/retire",
    "/admin/questions/1/reactivate",
    "/admin/questions/1/move",
]
NOT_ADMINS = ["s1000001", "p2000001", "teacher1", "support1", "its1"]


@pytest.mark.parametrize("path", [p for p in PAGES if "unlock" not in p])
def test_admin_sees_every_page(admin: FlaskClient, path: str) -> None:
    with admin.application.app_context():
        event_id = db.session.query(AuditEvent.id).order_by(AuditEvent.id).limit(1).scalar()
        question_id = db.session.query(Question.id).order_by(Question.id).limit(1).scalar()
    real = path.replace("/audit/1", f"/audit/{event_id}").replace("/questions/1", f"/questions/{question_id}")
    assert admin.get(real).status_code == 200, real


@pytest.mark.parametrize("login", NOT_ADMINS)
def test_other_roles_are_refused_every_page(client: FlaskClient, auth: AuthActions, login: str) -> None:
    auth.login(login)
    for path in PAGES:
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("login", NOT_ADMINS)
def test_other_roles_are_refused_every_action(client: FlaskClient, auth: AuthActions, login: str) -> None:
    auth.login(login)
    token = csrf_token(client, "/")
    for path in ACTIONS:
        response = client.post(
            path, data={"csrf_token": token, "confirm": "y", "direction": "up", "text": "x" * 20}
        )
        assert response.status_code == 403, path


def test_strangers_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]
