"""`selfservice deliver-mail`: once, as a worker, stopped by SIGTERM, and in the demo."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfservice.cli import main
from selfservice.config import ConfigError
from tests.mail.helpers import outbox, queue_many
from tests.mail.test_workers import worker_environment


@pytest.fixture(autouse=True)
def _restore_flask_cli_environment(monkeypatch):
    """FlaskGroup sets FLASK_RUN_FROM_CLI in os.environ; put it back after each test."""
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)


def test_once_sends_what_is_due_and_prints_a_summary(make_app, smtp_server):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_many(3)

    result = app.test_cli_runner().invoke(main, ["deliver-mail", "--once"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "mail: sent 3, failed 0, retry 0"
    assert len(smtp_server.mailbox.received) == 3


def test_once_with_the_relay_down_says_so_exits_1_and_keeps_the_mail(make_app, stopped_smtp_server):
    app = make_app(**stopped_smtp_server.settings())
    with app.app_context():
        queue_many(2)

    result = app.test_cli_runner().invoke(main, ["deliver-mail", "--once"])

    assert result.exit_code == 1
    assert "retry 2 (relay unavailable: ConnectionRefusedError" in result.output
    with app.app_context():
        assert {(row.status, row.attempts) for row in outbox()} == {("queued", 1)}


def test_without_an_smtp_host_the_outbox_is_left_for_the_demo_viewer(make_app):
    app = make_app(SMTP_HOST="")
    with app.app_context():
        queue_many(1)

    result = app.test_cli_runner().invoke(main, ["deliver-mail", "--once"])

    assert result.exit_code == 0
    assert "SMTP_HOST is not set" in result.output
    assert "/demo/mail" in result.output
    with app.app_context():
        assert [(row.status, row.attempts) for row in outbox()] == [("queued", 0)]


def test_an_unknown_smtp_security_is_refused_with_the_setting_named(make_app, smtp_server):
    # Refused when the app starts (a setting with a fixed set of values), not at the first delivery.
    with pytest.raises(ConfigError, match="SMTP_SECURITY must be one of none, starttls, ssl"):
        make_app(**smtp_server.settings(SMTP_SECURITY="tls-please"))


def test_worker_delivers_pass_after_pass_until_its_time_is_up(make_app, smtp_server):
    app = make_app(**smtp_server.settings(MAIL_POLL_SECONDS=1))
    with app.app_context():
        queue_many(2)

    result = app.test_cli_runner().invoke(main, ["deliver-mail", "--max-seconds", "1.5"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "started: polling every 1 s" in lines[0]
    assert "mail: sent 2, failed 0, retry 0" in lines
    assert lines[-1].endswith("stopped: sent 2, failed 0, retry 0")
    assert len(smtp_server.mailbox.received) == 2


def test_worker_process_stops_cleanly_on_sigterm(make_app, smtp_server, database_url, tmp_path):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_many(3)
    environment = worker_environment(database_url, tmp_path, smtp_server.port, MAIL_POLL_SECONDS="1")
    command = [str(Path(sys.executable).parent / "selfservice"), "deliver-mail"]
    worker = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(smtp_server.mailbox.received) == 3)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    assert worker.returncode == 0, err
    assert out.splitlines()[-1].endswith("stopped: sent 3, failed 0, retry 0")
    with app.app_context():
        assert {row.status for row in outbox()} == {"sent"}


def wait_for(condition, limit_seconds: float = 60) -> None:
    """Poll until ``condition()`` holds; a generous limit, for a slow machine, not a timing claim."""
    end = time.monotonic() + limit_seconds
    while not condition():
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.1)
