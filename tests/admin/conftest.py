"""Admin-console fixtures: a signed-in admin and factories for audit events and lockouts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.security import get_security
from selfservice.timeutil import utcnow
from tests.conftest import AuthActions


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
