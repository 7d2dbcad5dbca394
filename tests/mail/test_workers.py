"""Several workers on one outbox (SQLite file or PostgreSQL, as the suite runs): each message goes once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from selfservice.mail.delivery import PassResult, deliver_due
from tests.conftest import base_settings
from tests.mail.helpers import outbox, queue_many

MESSAGES = 40


def test_two_workers_on_one_queue_send_each_message_exactly_once(make_app, smtp_server):
    settings = smtp_server.settings(MAIL_BATCH_SIZE=3)
    apps = [make_app(**settings), make_app(**settings)]  # one engine, one connection pool each
    with apps[0].app_context():
        queue_many(MESSAGES)
    smtp_server.mailbox.delay_seconds = 0.01  # slow the relay a little so the workers overlap
    start = threading.Barrier(len(apps))
    results: dict[str, PassResult] = {}
    errors: list[BaseException] = []

    def work(app, name: str) -> None:
        with app.app_context():
            start.wait()
            try:
                results[name] = deliver_due(app.config, worker=name)
            except Exception as exc:  # noqa: BLE001 - handed to the test thread below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(app, f"worker-{n}")) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(result.sent > 0 for result in results.values()), results
    assert sum(result.sent for result in results.values()) == MESSAGES
    assert len(smtp_server.mailbox.received) == MESSAGES
    assert set(smtp_server.mailbox.message_ids().values()) == {1}
    assert sorted(smtp_server.mailbox.subjects()) == sorted(f"Notice {n}" for n in range(1, MESSAGES + 1))
    with apps[0].app_context():
        assert {row.status for row in outbox()} == {"sent"}


def test_two_worker_processes_send_each_message_exactly_once(make_app, smtp_server, database_url, tmp_path):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_many(MESSAGES)
    smtp_server.mailbox.delay_seconds = 0.01
    environment = worker_environment(database_url, tmp_path, smtp_server.port, MAIL_BATCH_SIZE="3")
    command = [str(Path(sys.executable).parent / "selfservice"), "deliver-mail", "--once"]

    workers = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert all(out.startswith("mail: sent ") for out, _ in outputs), outputs
    assert len(smtp_server.mailbox.received) == MESSAGES
    assert set(smtp_server.mailbox.message_ids().values()) == {1}
    with app.app_context():
        assert {row.status for row in outbox()} == {"sent"}


def worker_environment(database_url: str, tmp_path: Path, smtp_port: int, **settings: str) -> dict[str, str]:
    """The environment of a `selfservice` process on the test database and the test relay."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SELFSERVICE_")}
    chosen = {
        **base_settings(database_url, tmp_path),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "SMTP_TIMEOUT_SECONDS": 5,
        **settings,
    }
    for key, value in chosen.items():
        if isinstance(value, dict | list):
            environment[f"SELFSERVICE_{key}"] = json.dumps(value)
        else:
            environment[f"SELFSERVICE_{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment
