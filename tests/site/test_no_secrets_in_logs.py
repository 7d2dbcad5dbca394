"""No secret in any log (issue 11): recovery tokens, help-desk link tokens and mailed codes
appear neither in the portal's log lines nor in the access log format docs/deployment.md
recommends, whatever the flow and however it ends.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from gunicorn.config import Config
from gunicorn.http.wsgi import Response as GunicornResponse

from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.security import get_security
from selfservice.security.tokens import Purpose
from selfservice.site.accesslog import RedactedLogger
from selfservice.site.redaction import RedactTokens
from tests.conftest import csrf_token, post_form
from tests.helpdesk.helpers import act, browser, link_mails, open_request, opened_number, token_of
from tests.portal.test_recovery import NEW_PASSWORD, enroll, mailed_code, recover, reset_to
from tests.site.test_outages import on_every_connection, read_only


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_recovery_with_a_code_logs_neither_code_nor_token(
    app: Flask, every_log: pytest.LogCaptureFixture
) -> None:
    enroll(app, "p2000001")
    client = app.test_client()
    assert recover(client, app, "p2000001") == "/forgot/code"
    code = mailed_code(app)
    location = post_form(client, "/forgot/code", {"code": code}).headers["Location"]
    token = urlsplit(location).path.rsplit("/", 1)[1]
    assert reset_to(client, location).status_code == 303
    assert (
        client.get(location).status_code == 410
    )  # used: refused, and that refusal is logged nowhere with it
    assert_absent(every_log, code, token)


def test_a_help_desk_link_logs_no_link_token(app: Flask, every_log: pytest.LogCaptureFixture) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    token = token_of(link_mails(app)[-1])
    holder = app.test_client()
    data = {"new_password": NEW_PASSWORD, "confirm": "something else"}
    assert post_form(holder, f"/reset/{token}", data, form_path="/").status_code == 400
    data["confirm"] = NEW_PASSWORD
    assert post_form(holder, f"/reset/{token}", data, form_path="/").status_code == 200
    assert holder.get(f"/reset/{token}").status_code == 410
    assert_absent(every_log, token)


def test_a_reset_that_fails_logs_no_token(app: Flask, every_log: pytest.LogCaptureFixture) -> None:
    """The measured leak: the error line of a failed reset carried the live token."""
    with app.app_context():
        account = get_directory().find("s1000001")
        token = get_security().tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10)).value
        db.session.commit()
    client = app.test_client()
    form = {"csrf_token": csrf_token(client, f"/forgot/reset/{token}"), "new_password": NEW_PASSWORD}
    on_every_connection(app, read_only)  # the database stops taking writes mid-flow
    response = client.post(f"/forgot/reset/{token}", data={**form, "confirm": NEW_PASSWORD})
    assert response.status_code == 503
    assert any("database unavailable" in record.getMessage() for record in every_log.records)
    assert_absent(every_log, token)


def test_the_recommended_access_log_shows_reset_paths_without_their_token() -> None:
    token = "eyJrIjoiYWJjIiwibiI6Inh5eiJ9.SECRETSIGNATURE"
    logger = RedactedLogger(Config())
    for path in (f"/forgot/reset/{token}", f"/reset/{token}"):
        environ = {
            "REQUEST_METHOD": "POST",
            "RAW_URI": path,
            "PATH_INFO": path,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_REFERER": f"https://portal.example{path}",
        }
        response = GunicornResponse(_FakeRequest(), _FakeSocket(), Config())
        response.status = "303 SEE OTHER"
        atoms = logger.atoms(response, _FakeRequest(), environ, timedelta(milliseconds=5))
        line = Config().access_log_format % atoms
        assert token not in line
        assert "/reset/[token]" in line
        assert token not in atoms["U"]
        assert token not in atoms["f"]


def test_the_development_server_request_log_is_redacted() -> None:
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("GET /reset/abc.def HTTP/1.1", 200), None
    )
    RedactTokens().filter(record)
    assert record.getMessage() == '"GET /reset/[token] HTTP/1.1" 200'


def assert_absent(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    text = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    for secret in secrets:
        assert secret not in text


class _FakeRequest:
    headers: list[tuple[str, str]] = []
    version = (1, 1)
    method = "POST"

    def should_close(self) -> bool:
        return True


class _FakeSocket:
    def sendall(self, data: bytes) -> None:  # pragma: no cover - nothing is sent in this test
        pass
