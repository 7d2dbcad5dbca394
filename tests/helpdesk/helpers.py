"""Help-desk test helpers: one signed-in browser per person, request factories, outbox readers."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.audit.models import AuditEvent
from selfservice.extensions import db
from selfservice.helpdesk.models import HelpRequest
from selfservice.mail.models import OutboxMessage
from tests.conftest import AuthActions, csrf_token

LINK = re.compile(r"https?://\S+/reset/(\S+)")
REVISION = re.compile(r'name="revision" value="(\d+)"')
NUMBER = re.compile(r"/helpdesk/requests/(REQ-\d{6})$")

STUDENT = {"student_id": "1000001", "student_name": "Ana Lopez", "birth_month_year": "032012", "note": ""}
PARENT = {
    "contact_name": "Maria Lopez",
    "contact_phone": "(305) 555-0101",
    "pin": "4821",
    "account_number": "A-2000001",
    "parent_name": "Maria Lopez",
    "parent_phone": "305.555.0101",
    "note": "Forgot the password after the summer.",
}


def browser(app: Flask, login: str | None) -> FlaskClient:
    """A test client of its own (own cookies), signed in as ``login`` unless None."""
    client = app.test_client()
    if login is not None:
        response = AuthActions(client).login(login)
        assert response.status_code == 303, f"{login} could not sign in"
    return client


def open_request(client: FlaskClient, kind: str, **changes: Any) -> Any:
    """Fill and send the new-request form as a person would (one fetch, one POST)."""
    path = f"/helpdesk/new/{kind}"
    page = client.get(path).get_data(as_text=True)
    form_key = re.search(r'name="form_key"[^>]*value="([^"]*)"', page)
    data = {**(STUDENT if kind == "student" else PARENT), **changes}
    data["form_key"] = form_key.group(1) if form_key else ""
    return client.post(path, data={"csrf_token": csrf_token(client, path), **data})


def opened_number(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    match = NUMBER.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def act(client: FlaskClient, number: str, action: str, data: dict[str, Any] | None = None) -> Any:
    """Press a button on the request page: with the CSRF token and revision that page carries."""
    form = action_form(client, number)
    return client.post(f"/helpdesk/requests/{number}/{action}", data={**form, **(data or {})})


def action_form(client: FlaskClient, number: str) -> dict[str, str]:
    page = client.get(f"/helpdesk/requests/{number}")
    assert page.status_code == 200, page.status_code
    text = page.get_data(as_text=True)
    revision = REVISION.search(text)
    assert revision, "no action form on the request page"
    return {"csrf_token": csrf_token(client, f"/helpdesk/requests/{number}"), "revision": revision.group(1)}


def outbox(app: Flask, purpose: str | None = None) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if purpose:
            query = query.where(OutboxMessage.purpose == purpose)
        messages = list(db.session.scalars(query))
        db.session.expunge_all()
        return messages


def link_mails(app: Flask) -> list[OutboxMessage]:
    return outbox(app, "helpdesk:reset-link")


def token_of(message: OutboxMessage) -> str:
    match = LINK.search(message.body_text)
    assert match, message.body_text
    return match.group(1)


def audit_events(app: Flask, tag: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if tag:
            query = query.where(AuditEvent.tag == str(tag))
        events = list(db.session.scalars(query))
        db.session.expunge_all()
        return events


def request_row(app: Flask, number: str) -> HelpRequest:
    with app.app_context():
        row = db.session.get(HelpRequest, int(number.removeprefix("REQ-")))
        assert row is not None
        row.events  # noqa: B018 - load the timeline before leaving the session
        db.session.expunge_all()
        return row


def add_person(app: Flask, login: str, *, groups: list[str], email: str | None = None, **fields: Any) -> None:
    """One more builtin account (a colleague, a staff member without an address, ...)."""
    from selfservice.directory.builtin import NewAccount
    from selfservice.directory.interfaces import AccountKind

    with app.app_context():
        app.extensions["selfservice.directory"].create(
            NewAccount(
                login=login,
                password=f"Long-Enough-{login}-9",
                kind=AccountKind(fields.pop("kind", "staff")),
                display_name=fields.pop("display_name", login.title()),
                email=email,
                groups=groups,
                **fields,
            )
        )


def sign_in_as(app: Flask, login: str) -> FlaskClient:
    """A browser signed in as an account made with :func:`add_person`."""
    client = app.test_client()
    response = AuthActions(client).login(login, f"Long-Enough-{login}-9")
    assert response.status_code == 303
    return client
