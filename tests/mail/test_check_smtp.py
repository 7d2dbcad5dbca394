"""`selfservice check` tries the relay with the configured security, on a real aiosmtpd server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from selfservice.doctor import Verdict
from selfservice.doctor.services import check_smtp
from tests.mail.conftest import SmtpServer
from tests.mail.test_tls import relay_login


@pytest.fixture
def relay(tls_files) -> Iterator[SmtpServer]:  # type: ignore[no-untyped-def]
    """A relay that requires STARTTLS and a login."""
    server = SmtpServer(tls=tls_files, auth=True)
    server.start()
    yield server
    server.stop()


def test_the_relay_answers_with_starttls_and_the_login(make_app, relay, tls_files) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**relay.settings(**relay_login(tls_files, "starttls")))
    [finding] = check_smtp(app.config)
    assert finding.verdict is Verdict.OK
    assert finding.cause.endswith("(starttls) answers, login accepted")


def test_a_wrong_relay_password_is_named_and_never_shown(make_app, relay, tls_files) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**relay.settings(**relay_login(tls_files, "starttls", password="Not-The-One-99")))
    [finding] = check_smtp(app.config)
    assert finding.verdict is Verdict.FAIL
    assert finding.setting == "SMTP_USERNAME, SMTP_PASSWORD"
    assert "Not-The-One-99" not in finding.line()


def test_a_relay_that_is_down_fails_naming_the_host_settings(make_app, stopped_smtp_server) -> None:  # type: ignore[no-untyped-def]
    [finding] = check_smtp(make_app(**stopped_smtp_server.settings()).config)
    assert finding.verdict is Verdict.FAIL
    assert "SMTP_HOST" in finding.setting
    assert f"127.0.0.1:{stopped_smtp_server.port} (none)" in finding.cause


def test_implicit_tls_against_a_starttls_relay_fails(make_app, relay, tls_files) -> None:  # type: ignore[no-untyped-def]
    [finding] = check_smtp(make_app(**relay.settings(**relay_login(tls_files, "ssl"))).config)
    assert finding.verdict is Verdict.FAIL
    assert "SMTP_SECURITY" in finding.setting
