"""What the API does, as plain functions: the help desk's own services, seen by another system.

Requests are opened through selfservice/helpdesk/requests.py (the same directory
checks, refusals and audit events as the employee's form) and worked through
selfservice/helpdesk/services.py. The client acts as a staff member named
``api:<client name>`` whose roles follow from its scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from selfservice.api.clients import Scope
from selfservice.api.models import ApiClient
from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import AccountKind, Directory, Role
from selfservice.extensions import db
from selfservice.helpdesk import services as desk
from selfservice.helpdesk.models import (
    ACTIVE_STATUSES,
    HelpRequest,
    RequestEvent,
    Status,
    format_number,
    parse_number,
)
from selfservice.helpdesk.queues import Staff
from selfservice.portal.enrollment import HOLDER_KINDS, enrollment_status
from selfservice.security import Security

EVENTS_PAGE_MAX = 500
#: The fields of a timeline row another system may mirror (never a token or an address).
EVENT_DETAIL_KEYS = ("assignee", "queue")


class NotFound(Exception):
    """No such request or account."""


class Conflict(Exception):
    """The request's state does not allow that any more (already closed, changed meanwhile)."""


def staff_for(client: ApiClient) -> Staff:
    """The client as a help-desk staff member: an employee that opens, a worker that works."""
    roles = set()
    if Scope.REQUESTS_CREATE in client.scopes:
        roles.add(Role.EMPLOYEE)
    if Scope.REQUESTS_WORK in client.scopes:
        roles.update({Role.SUPPORT, Role.ITS})
    return Staff(
        key=f"api:{client.id}",
        login=f"api:{client.name}",
        display_name=client.name,
        roles=frozenset(roles),
        external=True,
    )


def form_key(client: ApiClient, idempotency_key: str | None) -> str | None:
    """The help desk's double-submit key for an Idempotency-Key header, private to the client."""
    return f"api:{client.id}:{idempotency_key}" if idempotency_key else None


def get_request(number: str) -> HelpRequest:
    request_id = parse_number(number)
    request = db.session.get(HelpRequest, request_id) if request_id else None
    if request is None:
        raise NotFound()
    return request


def describe_request(request: HelpRequest) -> dict[str, Any]:
    """A request as JSON: what staff see, never the PIN (it is not stored) or a link token."""
    common = {
        "number": format_number(request.id),
        "kind": request.kind,
        "status": request.status,
        "queue": request.queue,
        "assignee": request.assignee,
        "revision": request.revision,
        "created_at": _iso(request.created_at),
        "updated_at": _iso(request.updated_at),
        "resolved_at": _iso(request.resolved_at),
        "closed_at": _iso(request.closed_at),
        "opened_by": request.opened_by_login,
        "account": {"login": request.subject_login, "name": request.subject_name},
        "note": request.note,
    }
    if request.kind == "student":
        common["student"] = {
            "student_id": request.student_id,
            "name": request.student_name,
            "birth_month_year": request.birth_month_year,
        }
    else:
        common["parent"] = {
            "account_number": request.parent_account_number,
            "name": request.parent_name,
            "phone": request.parent_phone,
            "contact_name": request.contact_name,
            "contact_phone": request.contact_phone,
        }
    return common


def describe_event(event: RequestEvent, number: str) -> dict[str, Any]:
    details = event.details or {}
    return {
        "id": event.id,
        "request": number,
        "created_at": _iso(event.created_at),
        "actor": event.actor,
        "action": event.action,
        "text": event.text,
        "contact_method": event.contact_method,
        "contact_outcome": event.contact_outcome,
        "details": {key: details[key] for key in EVENT_DETAIL_KEYS if key in details},
    }


def events_after(cursor: int, limit: int, *, settled_before: datetime) -> tuple[list[dict[str, Any]], int]:
    """Timeline rows of every request after ``cursor`` (an event id), oldest first, and the next cursor.

    Ids are handed out before commit, so a slow transaction can commit event 41 after
    event 42 is visible; only events written before ``settled_before`` are listed, so a
    cursor never moves past one that is still on its way.
    """
    rows = db.session.execute(
        select(RequestEvent, HelpRequest.id)
        .join(HelpRequest, RequestEvent.request_id == HelpRequest.id)
        .where(RequestEvent.id > cursor, RequestEvent.created_at <= settled_before)
        .order_by(RequestEvent.id)
        .limit(min(max(limit, 1), EVENTS_PAGE_MAX))
    ).all()
    events = [describe_event(event, format_number(request_id)) for event, request_id in rows]
    return events, events[-1]["id"] if events else cursor


def add_note(request: HelpRequest, client: ApiClient, text: str, origin: Origin) -> None:
    try:
        desk.add_note(request, staff_for(client), text, revision=None, origin=origin)
    except desk.StaleRequest:
        raise Conflict() from None


def close(directory: Directory, request: HelpRequest, client: ApiClient, text: str, origin: Origin) -> None:
    """The external desk closed its ticket: resolve the request if still active, then close it."""
    staff = staff_for(client)
    try:
        if request.status in ACTIVE_STATUSES:
            desk.resolve(directory, request, staff, text, revision=None, origin=origin)
        if request.status != Status.RESOLVED:
            raise Conflict()
        desk.close(request, staff, text, revision=None, origin=origin)
    except desk.StaleRequest:
        raise Conflict() from None


@dataclass(frozen=True)
class AccountStatus:
    login: str
    kind: AccountKind
    enrolled: bool
    enrolled_at: datetime | None
    locked_until: datetime | None
    last_password_change: datetime | None
    must_change: bool
    disabled: bool  # sign-in refused now: a lockout after failed sign-ins, or an administrator's disable
    disabled_by_admin: bool  # only an administrator enables it again; self-service refuses it

    def as_json(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "kind": self.kind.value,
            "enrolled": self.enrolled,
            "enrolled_at": _iso(self.enrolled_at),
            "locked_until": _iso(self.locked_until),
            "last_password_change": _iso(self.last_password_change),
            "must_change_password": self.must_change,
            "disabled": self.disabled,
            "disabled_by_admin": self.disabled_by_admin,
        }


def account_status(directory: Directory, security: Security, login: str) -> AccountStatus:
    """Self-service state of a student or parent account: never an answer, a PIN or a password."""
    account = directory.find(login.strip()) if login.strip() else None
    if account is None or account.kind not in HOLDER_KINDS:  # staff accounts are none of its business
        raise NotFound()
    enrolled = enrollment_status(account.key)
    return AccountStatus(
        login=account.login,
        kind=account.kind,
        enrolled=enrolled.enrolled,
        enrolled_at=enrolled.enrolled_at,
        locked_until=security.lockout.locked_until(account.key),
        last_password_change=_last_change(account.key),
        must_change=account.must_change,
        disabled=account.disabled,
        disabled_by_admin=account.disabled_by_admin,
    )


def _last_change(account_key: str) -> datetime | None:
    """When the portal last changed, reset or activated this account's password (the audit log's word)."""
    changed = (str(Tag.PASSWORD_CHANGED), str(Tag.PASSWORD_RESET), str(Tag.PASSWORD_ACTIVATED))
    return db.session.scalar(
        select(AuditEvent.created_at)
        .where(AuditEvent.subject_key == account_key, AuditEvent.tag.in_(changed))
        .where(AuditEvent.outcome == "success")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def body_strings(body: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The named string fields of a JSON body (anything else is left for the form to refuse)."""
    return {name: body[name] for name in names if isinstance(body.get(name), str)}
