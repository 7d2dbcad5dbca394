"""Outages look alike (issue 11): database, rate-limit storage and directory each give the 503
page with Retry-After and a log line naming the part, never a 500; /healthz proves the
database accepts a write, and says which part cannot.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event

from selfservice import create_app
from selfservice.extensions import db
from tests.conftest import AppFactory, base_settings, post_form


def on_every_connection(app: Flask, statement: Callable[[str], str | None]) -> None:
    """Run ``statement(dialect)`` on every new database connection of ``app`` (old ones closed)."""
    with app.app_context():
        engine = db.engine
        engine.dispose()

        def configure(connection: Any, record: Any) -> None:
            sql = statement(engine.dialect.name)
            if sql:
                cursor = connection.cursor()
                cursor.execute(sql)
                cursor.close()
                connection.commit()  # PostgreSQL's SET is transactional: keep it

        event.listen(engine, "connect", configure)


def read_only(dialect: str) -> str:
    return "PRAGMA query_only = ON" if dialect == "sqlite" else "SET default_transaction_read_only = on"


def writable(dialect: str) -> str:
    """Undoes :func:`read_only` (its listener stays: this one runs after it)."""
    return "PRAGMA query_only = OFF" if dialect == "sqlite" else "SET default_transaction_read_only = off"


def test_healthz_is_ok_when_every_part_answers(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "directory": "ok", "limiter": "ok"}


def test_healthz_says_so_when_the_database_reads_but_refuses_writes(app: Flask) -> None:
    on_every_connection(app, read_only)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "read-only"


HEALTH_WITH_NO_ROOM = """
import json, sys
from selfservice import create_app
from tests.conftest import base_settings
app = create_app(base_settings(sys.argv[1], sys.argv[2]))
response = app.test_client().get("/healthz")
print(json.dumps([response.status_code, response.get_json()]))
"""


def _no_room_for_bytes() -> None:
    """In the child: no file may grow past one byte, as on a full disk (and no SIGXFSZ kill)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))


def test_healthz_says_so_when_the_disk_is_full(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'full.sqlite'}"
    app = create_app(base_settings(url, tmp_path))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    result = subprocess.run(
        [sys.executable, "-c", HEALTH_WITH_NO_ROOM, url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_no_room_for_bytes,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    status, report = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503, result.stderr
    assert report["checks"]["database"] == "read-only"


def test_a_database_that_refuses_writes_gives_the_503_page(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    on_every_connection(app, read_only)
    response = post_form(app.test_client(), "/forgot", {"login": "s1000001"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "Temporarily unavailable" in response.get_data(as_text=True)
    assert any(record.getMessage().startswith("database unavailable") for record in caplog.records)


def test_rate_limit_storage_down_keeps_serving_with_limits_counted_in_memory(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    client = app.test_client()
    response = post_form(client, "/forgot", {"login": "s1000001"})
    assert response.status_code == 303  # served: the limiter fell back to memory, no 500 and no 503
    assert any(record.getMessage().startswith("limiter storage down") for record in caplog.records)
    assert app.test_client().get("/healthz").get_json()["checks"]["limiter"] == "degraded"
