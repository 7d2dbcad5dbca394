"""STARTTLS and implicit TLS with a login, against aiosmtpd with a self-signed certificate."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from selfservice.mail.delivery import deliver_due
from tests.mail.conftest import RELAY_PASSWORD, RELAY_USER, SmtpServer
from tests.mail.helpers import outbox, queue_many


@pytest.fixture
def starttls_server(tls_files) -> Iterator[SmtpServer]:
    server = SmtpServer(tls=tls_files, auth=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ssl_server(tls_files) -> Iterator[SmtpServer]:
    server = SmtpServer(tls=tls_files, implicit_tls=True, auth=True)
    server.start()
    yield server
    server.stop()


def relay_login(tls_files, security: str, password: str = RELAY_PASSWORD) -> dict[str, str]:
    return {
        "SMTP_SECURITY": security,
        "SMTP_CA_FILE": str(tls_files / "cert.pem"),
        "SMTP_USERNAME": RELAY_USER,
        "SMTP_PASSWORD": password,
    }


def test_starttls_with_a_login_delivers_over_an_encrypted_authenticated_session(
    make_app, starttls_server, tls_files, worker
):
    app = make_app(**starttls_server.settings(**relay_login(tls_files, "starttls")))
    with app.app_context():
        queue_many(2)
        result = deliver_due(app.config, worker=worker)

    assert result.sent == 2
    assert [(item.over_tls, item.authenticated) for item in starttls_server.mailbox.received] == [
        (True, True)
    ] * 2


def test_implicit_tls_delivers(make_app, ssl_server, tls_files, worker):
    app = make_app(**ssl_server.settings(**relay_login(tls_files, "ssl")))
    with app.app_context():
        queue_many(1)
        result = deliver_due(app.config, worker=worker)

    assert result.sent == 1
    assert ssl_server.mailbox.received[0].over_tls


def test_an_untrusted_certificate_stops_delivery_instead_of_falling_back_to_plain_text(
    make_app, starttls_server, tls_files, worker
):
    settings = relay_login(tls_files, "starttls") | {"SMTP_CA_FILE": ""}  # system CAs: self-signed refused
    app = make_app(**starttls_server.settings(**settings))
    with app.app_context():
        queue_many(1)
        result = deliver_due(app.config, worker=worker)
        [row] = outbox()

    assert result.sent == 0
    assert starttls_server.mailbox.received == []
    assert (row.status, row.attempts) == ("queued", 1)
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_a_refused_login_keeps_mail_queued_and_the_password_appears_nowhere(
    make_app, starttls_server, tls_files, worker, caplog, capfd
):
    wrong = "Wrong-relay-passw0rd-5512"
    app = make_app(**starttls_server.settings(**relay_login(tls_files, "starttls", password=wrong)))
    with caplog.at_level(logging.DEBUG), app.app_context():
        queue_many(1)
        result = deliver_due(app.config, worker=worker)
        [row] = outbox()

    assert (row.status, row.attempts) == ("queued", 1)
    assert "SMTPAuthenticationError" in row.last_error
    assert "535" in result.relay_error
    seen = [row.last_error, result.relay_error, caplog.text, *capfd.readouterr()]
    for form in (wrong, base64.b64encode(wrong.encode()).decode(), RELAY_PASSWORD):
        assert all(form not in text for text in seen)
