"""Admin-console fixtures: a signed-in admin and factories for audit events and lockouts."""

from __future__ import annotations

import contextlib
import re
import threading
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.security import get_security
from selfservice.timeutil import utcnow
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions) -> FlaskClient:
    """The test client, signed in as admin1."""
    response = auth.login("admin1")
    assert response.status_code == 303
    return client


def add_event(tag: Tag, *, when: datetime | None = None, **fields: Any) -> AuditEvent:
    """One audit event at ``when`` (call inside an app context)."""
    event = AuditEvent(
        tag=str(tag), outcome=fields.pop("outcome", "success"), created_at=when or utcnow(), **fields
    )
    db.session.add(event)
    db.session.commit()
    return event


def lock_out(app: Flask, login: str, ip: str = "198.51.100.7") -> str:
    """Lock self-service for ``login`` the way wrong answers do; returns the account key."""
    with app.app_context():
        account = get_directory().find(login)
        assert account is not None
        lockout = get_security().lockout
        for _ in range(app.config["LOCKOUT_MAX_FAILURES"]):
            lockout.claim_attempt(account.key, account.login, Origin(ip=ip))
            lockout.record_failure(account.key, account.login, Origin(ip=ip))
        assert lockout.locked_until(account.key) is not None
        return account.key


def table(text: str, caption: str) -> list[list[str]]:
    """The text of each body cell of the table with ``caption``, row by row."""
    body = text.split(f"<caption>{caption}</caption>")[1].split("</tbody>")[0].split("<tbody>")[1]
    rows = []
    for row in body.split("<tr>")[1:]:
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        rows.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in cells])
    return rows


class PauseAfterRead:
    """Holds each armed thread just after it reads (a SELECT with ``marker``) till the other has.

    Two admins then both read the bank or the lock before either writes: the race a busy
    console meets by chance. A thread that cannot get there (it waits on the other's lock) is let
    go after a few seconds.
    """

    def __init__(self, app: Flask, parties: int, marker: str) -> None:
        self.marker = marker
        self.barrier = threading.Barrier(parties)
        self.local = threading.local()
        with app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "after_cursor_execute", self._after)

    def arm(self) -> None:
        self.local.armed = True

    def close(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        reads_bank = statement.lstrip().startswith("SELECT") and self.marker in statement
        if reads_bank and getattr(self.local, "armed", False):
            self.local.armed = False
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=3)


def post_at_once(
    app: Flask, posts: list[tuple[str, dict[str, str]]], marker: str, form_path: str = "/admin/questions"
) -> list[tuple[int, str]]:
    """Two admins, each signed in on their own client, post at the same moment."""
    pause = PauseAfterRead(app, len(posts), marker)
    results: list[tuple[int, str]] = []

    def post(path: str, data: dict[str, str]) -> None:
        client = app.test_client()
        assert AuthActions(client).login("admin1").status_code == 303
        token = csrf_token(client, form_path)
        pause.arm()
        response = client.post(path, data={"csrf_token": token, **data})
        results.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=post, args=each) for each in posts]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pause.close()
    return results
