"""Two instances and two worker processes on one sync queue: each write is applied once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.directory.builtin import NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db
from selfservice.sync import get_sync
from selfservice.sync.models import SyncWrite
from selfservice.sync.services import queue_sync
from selfservice.sync.worker import SyncPassResult, sync_due
from tests.conftest import base_settings

ACCOUNTS = 15
TARGETS = [
    {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]},
    {"name": "cafeteria", "label": "Cafeteria accounts", "kind": "builtin", "match": ["login"]},
]
WRITES = ACCOUNTS * len(TARGETS)


def queue_changes(app: Flask) -> None:
    """One change for each of ACCOUNTS new builtin accounts, queued for both targets."""
    with app.app_context():
        directory = get_directory()
        for number in range(ACCOUNTS):
            account = directory.create(
                NewAccount(
                    f"w{number:03}", "Initial-Password-77", AccountKind.STUDENT, f"Worker Test {number}"
                )
            )
            queue_sync(
                get_sync(),
                account,
                f"Synced-Password-{number:03}",
                how="recovery",
                must_change=False,
                origin=Origin(),
            )
        db.session.commit()


def applied_per_write(app: Flask) -> Counter[int]:
    with app.app_context():
        events = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.tag == str(Tag.SYNC_APPLIED))
        ).all()
        return Counter(event.details["write"] for event in events)


def statuses(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(SyncWrite.status)))


def test_two_instances_apply_each_queued_write_once(make_app: Any) -> None:
    apps = [make_app(SYNC_TARGETS=TARGETS, SYNC_BATCH_SIZE=2) for _ in range(2)]
    queue_changes(apps[0])
    start = threading.Barrier(len(apps))
    results: dict[str, SyncPassResult] = {}
    errors: list[BaseException] = []

    def work(app: Flask, name: str) -> None:
        with app.app_context():
            start.wait()
            try:
                results[name] = sync_due(app.config, get_sync(), worker=name)
            except Exception as exc:  # noqa: BLE001 - handed to the test thread below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(app, f"instance-{n}")) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(result.counts.get("done", 0) for result in results.values()) == WRITES
    applied = applied_per_write(apps[0])
    assert len(applied) == WRITES
    assert set(applied.values()) == {1}
    assert statuses(apps[0]) == {"done"}


def test_two_worker_processes_apply_each_queued_write_once(
    make_app: Any, database_url: str, tmp_path: Path
) -> None:
    app = make_app(SYNC_TARGETS=TARGETS)
    queue_changes(app)
    environment = worker_environment(database_url, tmp_path, SYNC_BATCH_SIZE="2")
    command = [str(Path(sys.executable).parent / "selfservice"), "sync", "run", "--once"]

    workers = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert all(out.startswith("sync: done ") for out, _ in outputs), outputs
    applied = applied_per_write(app)
    assert len(applied) == WRITES
    assert set(applied.values()) == {1}
    assert statuses(app) == {"done"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(SyncWrite.secret.is_not(None))) == 0


def worker_environment(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `selfservice` process on the test database with the test targets."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SELFSERVICE_")}
    chosen = {**base_settings(database_url, tmp_path), "SYNC_TARGETS": json.dumps(TARGETS), **settings}
    for key, value in chosen.items():
        if isinstance(value, dict | list):
            environment[f"SELFSERVICE_{key}"] = json.dumps(value)
        else:
            environment[f"SELFSERVICE_{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment
