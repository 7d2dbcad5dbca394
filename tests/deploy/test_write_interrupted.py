"""Invariant 15 when the portal itself fails mid-write, on PostgreSQL and a real slapd.

A gunicorn worker killed (SIGKILL) while slapd applies the password write leaves only the
durable intent; the sweeper then settles it from slapd's pwdChangedTime: audit, notice,
token spent. A database connection killed right after the write (pg_terminate_backend)
still ends in one complete record, and the page says the truth.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from selfservice import create_app
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal.cli import reconcile_command
from selfservice.portal.models import PendingChange
from selfservice.security import get_security
from selfservice.security.tokens import Purpose
from tests.conftest import FAST_HASHING, person, post_form
from tests.deploy.instances import (
    Client,
    production_environment,
    serve_argv,
    worker_pids,
)
from tests.deploy.instances import _wait_until_serving as wait_until_serving
from tests.faultproxy import EXTENDED_REQUEST, Fault, FaultProxy, ldap_request
from tests.scratch import POSTGRES_ADMIN_URL, free_port, scratch_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.ldap]

NEW_PASSWORD = "Quartz-Lantern-Pebble-58"
LOGIN = "p2000001"
SHARED_SECRET = "two-instances-share-this-secret-0123456789"


def ldap_settings(slapd: Any, url: str) -> dict[str, Any]:
    settings = {key: value for key, value in slapd.settings().items() if key != "ROLE_GROUPS"}
    return {**settings, "LDAP_URL": url}


def portal(database_url: str, tmp_path: Path, slapd: Any, url: str) -> Flask:
    settings = {
        "TESTING": True,
        "SECRET_KEY": SHARED_SECRET,  # tokens issued here are checked by the gunicorn instance
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path),
        **FAST_HASHING,
    }
    return create_app({**settings, **ldap_settings(slapd, url)})


def _close(app: Flask) -> None:
    """Close what the app keeps open: its database pool and the directory's service connection."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["selfservice.directory"].close()


def issue_recovery_token(app: Flask) -> str:
    with app.app_context():
        account = get_directory().find(LOGIN)
        token = get_security().tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10))
        db.session.commit()
        return token.value


def tags_and_notices(app: Flask) -> tuple[list[str], list[str]]:
    with app.app_context():
        tags = db.session.scalars(select(AuditEvent.tag).where(AuditEvent.subject == LOGIN)).all()
        notices = db.session.scalars(
            select(OutboxMessage.purpose).where(OutboxMessage.purpose.like("notice:%"))
        )
        return sorted(tags), sorted(notices.all())


def intents(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(PendingChange.state).order_by(PendingChange.id)))


def password_stamp(app: Flask) -> str | None:
    with app.app_context():
        directory = get_directory()
        account = directory.find(LOGIN)
        assert account is not None
        return directory.password_stamp(account)


def binds(app: Flask, password: str) -> bool:
    with app.app_context():
        return get_directory().authenticate(LOGIN, password) is not None


@pytest.fixture
def gunicorn_on_proxy(
    tmp_path: Path, slapd: Any, ldap_directory: Any, slapd_proxy: FaultProxy
) -> Iterator[tuple[str, subprocess.Popen[str], Flask]]:
    """One gunicorn (one worker) on a scratch PostgreSQL, talking to slapd through the proxy."""
    with scratch_postgres("selfservice_instances") as database_url:
        app = portal(database_url, tmp_path, slapd, slapd.url)
        with app.app_context():
            upgrade()
        extra = {key: str(value) for key, value in ldap_settings(slapd, slapd_proxy.url()).items()}
        extra["LDAP_START_TLS"] = "false"
        extra["LDAP_OPERATION_TIMEOUT_SECONDS"] = "60"  # the reply is held until the worker is dead
        environment = production_environment(database_url, tmp_path, **extra)
        assert environment["SELFSERVICE_SECRET_KEY"] == SHARED_SECRET
        port = free_port()
        process = subprocess.Popen(
            serve_argv(port, "--timeout", "120"),
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, process)
            yield url, process, app
        finally:
            process.terminate()
            process.communicate(timeout=30)
            _close(app)


def test_a_worker_killed_mid_write_is_settled_by_the_sweeper(
    gunicorn_on_proxy: tuple[str, subprocess.Popen[str], Flask], slapd_proxy: FaultProxy
) -> None:
    url, master, app = gunicorn_on_proxy
    token = issue_recovery_token(app)
    before = password_stamp(app)
    slapd_proxy.arm(Fault.HOLD_REPLY, ldap_request(EXTENDED_REQUEST))
    browser = Client(client_ip="203.0.113.9")
    path = f"/forgot/reset/{token}"

    def send() -> None:
        with contextlib.suppress(OSError):  # the worker dies with the request in hand
            browser.post(url, path, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    request = threading.Thread(target=send, daemon=True)
    request.start()
    assert slapd_proxy.fired.wait(30), "the password write never reached slapd"
    # The proxy forwarded the write; slapd applies it in its own time (under load, later than
    # this thread runs on). Kill the worker only once slapd has it, as the test means to (its
    # change stamp, not binds: failed binds would count against the account's ppolicy).
    assert _eventually(lambda: password_stamp(app) != before), "slapd never applied the forwarded write"
    os.kill(_worker_of(master.pid), signal.SIGKILL)  # slapd has the write; the portal dies before its reply
    slapd_proxy.release()
    request.join(30)

    assert binds(app, NEW_PASSWORD)
    assert intents(app) == ["pending"]
    assert tags_and_notices(app) == ([], [])

    result = app.test_cli_runner().invoke(reconcile_command, ["--older-than-minutes", "0"])
    assert result.exit_code == 0, result.output
    assert "1 changed" in result.output
    tags, notices = tags_and_notices(app)
    assert tags == [Tag.PASSWORD_RESET]
    assert notices == ["notice:password_reset"]
    assert intents(app) == ["changed"]
    assert Client(client_ip="203.0.113.9").get(url, path).status == 410  # the token is spent


def _eventually(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _worker_of(master: int) -> int:
    [worker] = worker_pids(master)
    return worker


# --- the database connection dies right after the write ------------------------------------


@pytest.fixture
def postgres_app(tmp_path: Path, slapd: Any, ldap_directory: Any, slapd_proxy: FaultProxy) -> Iterator[Flask]:
    """The portal on a scratch PostgreSQL (whichever database the suite runs on), slapd via the proxy."""
    with scratch_postgres("selfservice_instances") as database_url:
        app = portal(database_url, tmp_path, slapd, slapd_proxy.url())
        with app.app_context():
            upgrade()
        yield app
        _close(app)


def _terminate_backends(database_url: str) -> None:
    """pg_terminate_backend on every connection of the portal's database."""
    name = database_url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    finally:
        admin.dispose()


def test_the_database_killed_right_after_the_write_still_records_the_change(
    postgres_app: Flask, slapd_proxy: FaultProxy
) -> None:
    app = postgres_app
    database_url = app.config["DATABASE_URL"]
    token = issue_recovery_token(app)
    slapd_proxy.arm(
        Fault.PASS, ldap_request(EXTENDED_REQUEST), after_forward=lambda: _terminate_backends(database_url)
    )
    response = post_form(
        app.test_client(), f"/forgot/reset/{token}", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert slapd_proxy.fired.is_set()
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/forgot/done")
    assert binds(app, NEW_PASSWORD)
    assert not binds(app, person(LOGIN).password)
    tags, notices = tags_and_notices(app)
    assert Tag.PASSWORD_RESET in tags
    assert notices == ["notice:password_reset"]
    assert intents(app) == ["changed"]
