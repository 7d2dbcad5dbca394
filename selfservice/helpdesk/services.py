"""Working a help request: take, assign, note, contact, escalate, resolve, close, unlock, clear.

Every change is one conditional UPDATE of the request row (its status must allow the
action and, when the form says which revision it was drawn from, the revision must
still be that one) followed by the timeline row, the audit event and any mail in the
same transaction. A second click of the same button finds the revision changed and
does nothing: double-clicking any action does it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, Directory
from selfservice.extensions import db
from selfservice.helpdesk import notify
from selfservice.helpdesk.models import (
    ACTIVE_STATUSES,
    Action,
    ContactMethod,
    ContactOutcome,
    HelpRequest,
    Queue,
    RequestEvent,
    ResetLink,
    Status,
)
from selfservice.helpdesk.queues import (
    WORKERS,
    Staff,
    can_note,
    can_work,
    can_work_its,
    can_work_parent_support,
    require,
)
from selfservice.i18n_markers import N_
from selfservice.portal.enrollment import clear_enrollment
from selfservice.portal.unlock import DISABLED as UNLOCK_DISABLED
from selfservice.portal.unlock import refuse_unlock, unlock_account
from selfservice.security import Security
from selfservice.security.models import TokenNonce
from selfservice.timeutil import utcnow

STALE = N_(
    "Nothing was done: this request changed since the page was shown (for example, the button was "
    "pressed twice). Here is the request as it stands now."
)
NOT_A_WORKER = N_("%(login)s does not work this queue. Choose someone who does.")
HOLDER_GONE = N_("The account holder is no longer in the directory.")


class StaleRequest(Exception):
    """The request is not in a state that allows the action any more; nothing was done."""


class ActionRefused(Exception):
    """The action cannot be done; ``message`` (an id for ``_()``) says why; ``values`` fill it."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message)
        self.message = message
        self.values = values


def transition(
    request: HelpRequest,
    *,
    revision: int | None,
    allowed: Iterable[Status],
    **values: Any,
) -> None:
    """Change the request row only if its status (and revision) still allow it; else StaleRequest.

    The caller adds the rest of the change to the same transaction and commits.
    """
    query = update(HelpRequest).where(
        HelpRequest.id == request.id, HelpRequest.status.in_([status.value for status in allowed])
    )
    if revision is not None:
        query = query.where(HelpRequest.revision == revision)
    result = db.session.execute(
        query.values(revision=HelpRequest.revision + 1, updated_at=utcnow(), **values),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise StaleRequest()
    db.session.expire(request)


def add_event(
    request: HelpRequest, actor: str, action: Action, text: str | None = None, **extra: Any
) -> None:
    db.session.add(
        RequestEvent(
            request_id=request.id,
            actor=actor,
            action=action.value,
            text=(text or "").strip() or None,
            contact_method=extra.pop("contact_method", None),
            contact_outcome=extra.pop("contact_outcome", None),
            details=extra,
        )
    )


def audit(tag: Tag, request: HelpRequest, staff: Staff, origin: Origin, **details: Any) -> None:
    record(
        tag,
        origin=origin,
        actor=staff.login,
        subject=request.subject_login,
        subject_key=request.subject_key,
        details={"request": request.number, **details},
        commit=False,
    )


def take(request: HelpRequest, staff: Staff, *, revision: int | None, origin: Origin) -> None:
    """Assign the request to oneself and start on it."""
    require(can_work(staff, request))
    transition(
        request,
        revision=revision,
        allowed=ACTIVE_STATUSES,
        assignee=staff.login,
        status=Status.IN_PROGRESS.value,
    )
    add_event(request, staff.login, Action.ASSIGNED, assignee=staff.login)
    audit(Tag.HELP_REQUEST_UPDATED, request, staff, origin, action="take")
    db.session.commit()


def assign(
    directory: Directory,
    request: HelpRequest,
    staff: Staff,
    login: str,
    *,
    revision: int | None,
    origin: Origin,
) -> None:
    """Give the request to a colleague who works its queue."""
    require(can_work(staff, request))
    colleague = directory.find_by("login", login.strip())
    if colleague is None or not colleague.has_role(WORKERS[request.queue_value]):
        raise ActionRefused(NOT_A_WORKER, login=login.strip())
    transition(
        request,
        revision=revision,
        allowed=ACTIVE_STATUSES,
        assignee=colleague.login,
        status=Status.IN_PROGRESS.value,
    )
    add_event(request, staff.login, Action.ASSIGNED, assignee=colleague.login)
    audit(Tag.HELP_REQUEST_UPDATED, request, staff, origin, action="assign", assignee=colleague.login)
    db.session.commit()


def add_note(request: HelpRequest, staff: Staff, text: str, *, revision: int | None, origin: Origin) -> None:
    require(can_note(staff, request))
    transition(request, revision=revision, allowed=(*ACTIVE_STATUSES, Status.RESOLVED))
    add_event(request, staff.login, Action.NOTE, text)
    audit(Tag.HELP_REQUEST_UPDATED, request, staff, origin, action="note")
    db.session.commit()


def record_contact(
    request: HelpRequest,
    staff: Staff,
    method: ContactMethod,
    outcome: ContactOutcome,
    text: str,
    *,
    revision: int | None,
    origin: Origin,
) -> None:
    """Parent Support records one contact with the parent (procedure step 3)."""
    require(can_work_parent_support(staff, request))
    transition(
        request,
        revision=revision,
        allowed=(Status.OPEN, Status.IN_PROGRESS),
        status=Status.IN_PROGRESS.value,
        assignee=func.coalesce(HelpRequest.assignee, staff.login),
    )
    add_event(
        request,
        staff.login,
        Action.CONTACT,
        text,
        contact_method=method.value,
        contact_outcome=outcome.value,
    )
    audit(Tag.HELP_REQUEST_UPDATED, request, staff, origin, action="contact", method=method.value)
    db.session.commit()


def escalate(
    request: HelpRequest, staff: Staff, reason: str, *, revision: int | None, origin: Origin
) -> None:
    """Parent Support hands a parent request to ITS Parent Accounts when a reset is needed."""
    require(can_work_parent_support(staff, request))
    transition(
        request,
        revision=revision,
        allowed=(Status.OPEN, Status.IN_PROGRESS),
        queue=Queue.ITS_PARENT.value,
        status=Status.ESCALATED.value,
        assignee=None,
    )
    add_event(request, staff.login, Action.ESCALATED, reason, queue=Queue.ITS_PARENT.value)
    audit(Tag.HELP_REQUEST_ESCALATED, request, staff, origin, queue=Queue.ITS_PARENT.value)
    db.session.commit()


def resolve(
    directory: Directory,
    request: HelpRequest,
    staff: Staff,
    text: str,
    *,
    revision: int | None,
    origin: Origin,
) -> None:
    """Resolve without a reset (or after one done another way); the employee is told.

    A link mailed earlier and not used dies with it: nothing is left to do with it.
    """
    require(can_work(staff, request))
    now = utcnow()
    transition(
        request, revision=revision, allowed=ACTIVE_STATUSES, status=Status.RESOLVED.value, resolved_at=now
    )
    void_links(request, now)
    add_event(request, staff.login, Action.RESOLVED, text)
    audit(Tag.HELP_REQUEST_RESOLVED, request, staff, origin, how="staff")
    notify.mail_resolved(directory, request, how=text)
    db.session.commit()


def void_links(request: HelpRequest, now: datetime) -> None:
    """Make the request's unused links unusable (not committed): replaced, or the request resolved."""
    live = list(
        db.session.scalars(
            select(ResetLink.nonce).where(
                ResetLink.request_id == request.id, ResetLink.used_at.is_(None), ResetLink.void_at.is_(None)
            )
        )
    )
    if not live:
        return
    db.session.execute(
        update(ResetLink).where(ResetLink.nonce.in_(live)).values(void_at=now),
        execution_options={"synchronize_session": False},
    )
    db.session.execute(
        update(TokenNonce)
        .where(TokenNonce.nonce.in_(live), TokenNonce.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )


def close(request: HelpRequest, staff: Staff, text: str, *, revision: int | None, origin: Origin) -> None:
    """Close a resolved request: nothing more will happen to it."""
    require(can_work(staff, request))
    transition(
        request, revision=revision, allowed=(Status.RESOLVED,), status=Status.CLOSED.value, closed_at=utcnow()
    )
    add_event(request, staff.login, Action.CLOSED, text)
    audit(Tag.HELP_REQUEST_UPDATED, request, staff, origin, action="close")
    db.session.commit()


def unlock(
    directory: Directory,
    security: Security,
    request: HelpRequest,
    staff: Staff,
    *,
    revision: int | None,
    origin: Origin,
) -> bool:
    """ITS lifts the account holder's self-service lockout; True when a lock was in force."""
    holder = _its_holder(directory, request, staff)
    if holder.disabled_by_admin:
        refuse_unlock(holder, actor=staff.login, origin=origin, request=request.number)
        raise ActionRefused(UNLOCK_DISABLED)
    _start_its_work(request, staff, revision)
    add_event(request, staff.login, Action.UNLOCKED)
    return unlock_account(directory, security, holder, actor=staff.login, origin=origin)


def clear_holder_enrollment(
    directory: Directory,
    request: HelpRequest,
    staff: Staff,
    *,
    revision: int | None,
    origin: Origin,
) -> bool:
    """ITS clears the holder's security questions so they enroll again; False when there were none."""
    holder = _its_holder(directory, request, staff)
    _start_its_work(request, staff, revision)
    add_event(request, staff.login, Action.ENROLLMENT_CLEARED)
    cleared = clear_enrollment(holder, actor=staff.login, origin=origin)
    if not cleared:
        db.session.commit()  # nothing to clear: keep the timeline row all the same
    return cleared


def _its_holder(directory: Directory, request: HelpRequest, staff: Staff) -> Account:
    require(can_work_its(staff, request))
    holder = directory.get(request.subject_key)
    if holder is None:
        raise ActionRefused(HOLDER_GONE)
    return holder


def _start_its_work(request: HelpRequest, staff: Staff, revision: int | None) -> None:
    transition(
        request,
        revision=revision,
        allowed=ACTIVE_STATUSES,
        status=Status.IN_PROGRESS.value,
        assignee=func.coalesce(HelpRequest.assignee, staff.login),
    )
