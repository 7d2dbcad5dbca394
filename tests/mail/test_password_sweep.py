"""The deliver-mail worker settles open password changes each pass, and their notice goes out."""

from __future__ import annotations

import pytest

from selfservice.cli import main
from tests.portal.test_reconcile import facts, interrupted_reset


@pytest.fixture(autouse=True)
def _restore_flask_cli_environment(monkeypatch):
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)


def test_the_mail_worker_settles_a_change_and_sends_its_notice(make_app, smtp_server):
    app = make_app(**smtp_server.settings(MAIL_POLL_SECONDS=1), RECONCILE_AFTER_MINUTES=0)
    interrupted_reset(app, written=True)

    result = app.test_cli_runner().invoke(main, ["deliver-mail", "--max-seconds", "0.5"])

    assert result.exit_code == 0, result.output
    assert "password changes settled: 1 changed, 0 not-changed, 0 unknown" in result.output
    assert facts(app)[2] == ["changed"]
    assert smtp_server.mailbox.subjects()["Your password was reset"] == 1
