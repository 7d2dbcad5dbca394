"""Who works which queue, who may see which request, and the lists each role works from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from selfservice.directory.interfaces import Account, Directory, Role
from selfservice.extensions import db
from selfservice.helpdesk.hours import SupportHours
from selfservice.helpdesk.models import ACTIVE_STATUSES, HelpRequest, Queue, RequestKind, parse_number
from selfservice.i18n_markers import N_

#: The role that works each queue (DESIGN: student -> ITS; parent -> Parent Support -> ITS).
WORKERS: dict[Queue, Role] = {
    Queue.ITS_STUDENT: Role.ITS,
    Queue.PARENT_SUPPORT: Role.SUPPORT,
    Queue.ITS_PARENT: Role.ITS,
}
ITS_QUEUES = frozenset({Queue.ITS_STUDENT, Queue.ITS_PARENT})
FIRST_QUEUE = {RequestKind.STUDENT: Queue.ITS_STUDENT, RequestKind.PARENT: Queue.PARENT_SUPPORT}


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member an action is done by."""

    key: str
    login: str
    display_name: str
    roles: frozenset[Role]
    #: A district system acting through the API, not a person in the directory.
    external: bool = False

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class NotAllowed(Exception):
    """This staff member may not do that to this request."""


def works_queue(staff: Staff, queue: Queue) -> bool:
    return staff.has_role(WORKERS[queue])


def queues_of(staff: Staff) -> list[Queue]:
    """The queues a staff member may open: the ones they work, or all of them for an admin."""
    return [queue for queue in Queue if works_queue(staff, queue) or staff.has_role(Role.ADMIN)]


def can_view(staff: Staff, request: HelpRequest) -> bool:
    if staff.has_role(Role.ADMIN) or request.opened_by_key == staff.key:
        return True
    if works_queue(staff, request.queue_value):
        return True
    # Support keeps sight of the parent requests it escalated.
    return staff.has_role(Role.SUPPORT) and request.kind == RequestKind.PARENT


def can_work(staff: Staff, request: HelpRequest) -> bool:
    """Whether ``staff`` works the queue the request is in now."""
    return works_queue(staff, request.queue_value)


def can_note(staff: Staff, request: HelpRequest) -> bool:
    """Queue staff, and the employee who opened the request, may add notes."""
    return can_work(staff, request) or request.opened_by_key == staff.key


def can_work_parent_support(staff: Staff, request: HelpRequest) -> bool:
    """Contact records and escalation: Parent Support, on a request still in its queue."""
    return can_work(staff, request) and request.queue_value is Queue.PARENT_SUPPORT


def can_work_its(staff: Staff, request: HelpRequest) -> bool:
    """Reset links, unlocks and clearing enrollments: ITS, on a request in one of its queues."""
    return can_work(staff, request) and request.queue_value in ITS_QUEUES


# Separation of duties (DESIGN invariant 18) ------------------------------------------
# Whoever opens a request never issues its link, so no one person both vouches for an
# account holder and sends the link; nobody opens a request for, or issues a link that
# reaches, their own account or mailbox; and no link resets an account with a staff role
# (the opener, who gets a student's link, would gain that role: a second account of theirs
# that issues links).


def opened_it(staff: Staff, request: HelpRequest) -> bool:
    return request.opened_by_key == staff.key


def is_own(directory: Directory, staff: Staff, holder: Account, address: str | None = None) -> bool:
    """Whether ``holder`` is ``staff``'s own account, or ``address`` (default: the holder's) is theirs."""
    return reaches(directory, staff.key, holder, address)


def reaches(directory: Directory, person_key: str, holder: Account, address: str | None = None) -> bool:
    """Whether ``holder`` is the account ``person_key``, or ``address`` (default: the holder's) is theirs."""
    if holder.key == person_key:
        return True
    mine = directory.get(person_key)
    theirs = address if address is not None else holder.email
    return bool(mine and mine.email and theirs and mine.email.strip().casefold() == theirs.strip().casefold())


#: An account holder with a staff role (a student who works for ITS, say): the desk resets none.
STAFF_ACCOUNT = N_(
    "This account has staff access to the portal, so the help desk does not reset its password: "
    "the link would hand that access to someone else. A directory administrator resets it."
)


def has_staff_access(holder: Account) -> bool:
    """Whether a reset of ``holder`` would hand over a staff role (and with it the desk's own checks)."""
    return bool(holder.roles)


def require(allowed: bool) -> None:
    if not allowed:
        raise NotAllowed()


def find_request(number: str) -> HelpRequest | None:
    request_id = parse_number(number)
    return db.session.get(HelpRequest, request_id) if request_id is not None else None


def in_queue(queue: Queue, *, active_only: bool = True) -> list[HelpRequest]:
    """A queue's requests, oldest first (first come, first served)."""
    query = select(HelpRequest).where(HelpRequest.queue == queue.value)
    if active_only:
        query = query.where(HelpRequest.status.in_([status.value for status in ACTIVE_STATUSES]))
    return list(db.session.scalars(query.order_by(HelpRequest.id).limit(500)))


def opened_by(staff: Staff) -> list[HelpRequest]:
    """An employee's own requests, newest first."""
    query = select(HelpRequest).where(HelpRequest.opened_by_key == staff.key)
    return list(db.session.scalars(query.order_by(HelpRequest.id.desc()).limit(200)))


def every_request(*, active_only: bool = False) -> list[HelpRequest]:
    query = select(HelpRequest)
    if active_only:
        query = query.where(HelpRequest.status.in_([status.value for status in ACTIVE_STATUSES]))
    return list(db.session.scalars(query.order_by(HelpRequest.id.desc()).limit(500)))


def next_pickup(settings: Mapping[str, Any], now: datetime) -> datetime:
    """When help-desk staff will next be at work to pick a request up (``now`` during hours)."""
    return SupportHours.from_settings(settings).next_pickup(now)
