"""Opening a help request: the employee's details are checked against the directory first.

A student request needs the student ID, name and birth month-year to match; a
parent request needs the account number, PIN and name to match, and an email
address on file (the only place a parent's reset link may go). A mismatch opens
nothing and becomes an audit event naming which fields failed, never their values.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, AccountKind, Directory, Role
from selfservice.extensions import db
from selfservice.helpdesk import notify
from selfservice.helpdesk.models import Action, HelpRequest, RequestEvent, RequestKind, Status
from selfservice.helpdesk.queues import (
    FIRST_QUEUE,
    STAFF_ACCOUNT,
    Staff,
    has_staff_access,
    is_own,
    next_pickup,
    require,
)
from selfservice.i18n_markers import N_
from selfservice.mail.languages import remember_language
from selfservice.timeutil import utcnow

STUDENT_NO_MATCH = N_(
    "These details do not match our records. Check the student ID, the student's name "
    "and the birth month and year, then try again."
)
PARENT_NO_MATCH = N_(
    "These details do not match our records. Check the parent account number, the parent PIN "
    "and the parent's name, then try again."
)
EMPLOYEE_NO_EMAIL = N_(
    "You have no email address on file, and the student's reset link is emailed to the employee "
    "who asks for it. Ask ITS to add your email address to your account, then open the request again."
)
PARENT_NO_EMAIL = N_(
    "This parent has no email address on file, and a reset link can only go to the address on file. "
    "Ask the parent to add an email address on the Parent Information screen, then submit this "
    "request again."
)

_APOSTROPHES = dict.fromkeys(map(ord, "'\u2019\u2018`\u00b4\u02bc"), None)
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2013\u2014.,]+")


OWN_ACCOUNT = N_("You cannot open a help request for your own account. Ask a colleague to open it for you.")
#: What a request keeps of a directory display name (its column's length).
NAME_CHARS: int = HelpRequest.__table__.c.opened_by_name.type.length


class RequestRefused(Exception):
    """The request was not opened. ``message`` is a message id for ``_()``.

    ``mismatch`` is True when the details did not match the directory (these are
    what the per-employee throttle counts).
    """

    def __init__(self, message: str, *, failed: list[str], mismatch: bool) -> None:
        super().__init__(message)
        self.message = message
        self.failed = failed
        self.mismatch = mismatch


@dataclass(frozen=True)
class StudentDetails:
    student_id: str
    name: str
    birth_month_year: str  # MMYYYY, already checked for shape by the form
    note: str = ""


@dataclass(frozen=True)
class ParentDetails:
    contact_name: str
    contact_phone: str
    pin: str = field(repr=False)  # compared, never stored or logged
    account_number: str
    parent_name: str
    parent_phone: str
    note: str = ""
    #: The language the parent told the school they read ("" when not said): their mail
    #: speaks it until they choose one on the portal themselves.
    language: str = ""


def normalise_name(name: str) -> list[str]:
    """Name words, case-, accent-, apostrophe- and spacing-insensitive, in order."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = bare.casefold().translate(_APOSTROPHES)
    return [word for word in _SEPARATORS.split(folded) if word]


def names_match(typed: str, on_file: str | None) -> bool:
    """The same words in any order: "Lopez, Ana" matches "Ana López"."""
    typed_words = normalise_name(typed)
    return bool(typed_words) and sorted(typed_words) == sorted(normalise_name(on_file or ""))


def fit_name(name: str, limit: int = NAME_CHARS) -> str:
    """A directory display name as a request keeps it: spaces collapsed, cut with an ellipsis past ``limit``.

    The directory's name has no length limit; the request's copy is for display only.
    """
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def has_email_on_file(directory: Directory, employee: Staff) -> bool:
    """Whether the employee has an address a student's reset link can be sent to."""
    account = directory.get(employee.key)
    return bool(account and account.email)


def open_student_request(
    directory: Directory,
    employee: Staff,
    details: StudentDetails,
    *,
    origin: Origin,
    settings: Mapping[str, Any],
    form_key: str | None = None,
) -> HelpRequest:
    """Check the details against the directory and open the request; raise RequestRefused."""
    require(employee.has_role(Role.EMPLOYEE))
    existing = _already_opened(form_key, employee)
    if existing is not None:
        return existing
    # A person must be able to receive the student's link; a district system (API) has no
    # mailbox in the directory: ITS then learns it when issuing the link.
    if not employee.external and not has_email_on_file(directory, employee):
        _refuse(
            employee, None, RequestKind.STUDENT, ["employee_email"], origin, EMPLOYEE_NO_EMAIL, mismatch=False
        )
    student = directory.find_by("student_id", details.student_id.strip())
    failed = _student_mismatches(student, details)
    if failed or student is None:
        _refuse(employee, student, RequestKind.STUDENT, failed, origin, STUDENT_NO_MATCH, mismatch=True)
    _refuse_own(directory, employee, student, RequestKind.STUDENT, origin)
    request = HelpRequest(
        kind=RequestKind.STUDENT.value,
        student_id=details.student_id.strip(),
        student_name=details.name.strip(),
        birth_month_year=details.birth_month_year,
        note=details.note.strip() or None,
    )
    return _open(directory, request, employee, student, origin, settings, form_key)


def open_parent_request(
    directory: Directory,
    employee: Staff,
    details: ParentDetails,
    *,
    origin: Origin,
    settings: Mapping[str, Any],
    form_key: str | None = None,
) -> HelpRequest:
    """Check account number, PIN and name, and that an email is on file; open the request."""
    require(employee.has_role(Role.EMPLOYEE))
    existing = _already_opened(form_key, employee)
    if existing is not None:
        return existing
    parent = directory.find_by("parent_account_number", details.account_number.strip())
    failed = _parent_mismatches(parent, details)
    if failed or parent is None:
        _refuse(employee, parent, RequestKind.PARENT, failed, origin, PARENT_NO_MATCH, mismatch=True)
    if not parent.email:
        _refuse(employee, parent, RequestKind.PARENT, ["email"], origin, PARENT_NO_EMAIL, mismatch=False)
    _refuse_own(directory, employee, parent, RequestKind.PARENT, origin)
    request = HelpRequest(
        kind=RequestKind.PARENT.value,
        contact_name=details.contact_name.strip(),
        contact_phone=details.contact_phone.strip(),
        parent_account_number=details.account_number.strip(),
        parent_name=details.parent_name.strip(),
        parent_phone=details.parent_phone.strip(),
        pin_matched=True,
        note=details.note.strip() or None,
    )
    opened = _open(directory, request, employee, parent, origin, settings, form_key)
    remember_language(parent.key, details.language, settings["LANGUAGES"], replace=False)
    return opened


def _student_mismatches(student: Account | None, details: StudentDetails) -> list[str]:
    if student is None or student.kind is not AccountKind.STUDENT:
        return ["student_id"]
    failed = []
    if not names_match(details.name, student.display_name):
        failed.append("name")
    if not student.birth_month_year or student.birth_month_year.strip() != details.birth_month_year:
        failed.append("birth_month_year")
    return failed


def _parent_mismatches(parent: Account | None, details: ParentDetails) -> list[str]:
    if parent is None or parent.kind is not AccountKind.PARENT:
        return ["account_number"]
    failed = []
    on_file = (parent.parent_pin or "").strip().encode()
    # Constant-time, and an empty PIN on file never matches.
    if not (on_file and hmac.compare_digest(details.pin.strip().encode(), on_file)):
        failed.append("pin")
    if not names_match(details.parent_name, parent.display_name):
        failed.append("parent_name")
    return failed


def _refuse_own(
    directory: Directory, employee: Staff, holder: Account, kind: RequestKind, origin: Origin
) -> None:
    """Invariant 18: nobody opens a request for their own account (or one mailing their address),
    nor for an account with a staff role."""
    if is_own(directory, employee, holder):
        _refuse(
            employee, holder, kind, ["own-account"], origin, OWN_ACCOUNT, mismatch=False, reason="own-account"
        )
    if has_staff_access(holder):
        _refuse(
            employee,
            holder,
            kind,
            ["staff-account"],
            origin,
            STAFF_ACCOUNT,
            mismatch=False,
            reason="staff-account",
        )


def _refuse(
    employee: Staff,
    holder: Account | None,
    kind: RequestKind,
    failed: list[str],
    origin: Origin,
    message: str,
    *,
    mismatch: bool,
    reason: str | None = None,
) -> NoReturn:
    record(
        Tag.HELP_REQUEST_REFUSED,
        outcome="refused",
        origin=origin,
        actor=employee.login,
        subject=holder.login if holder else None,
        subject_key=holder.key if holder else None,
        details={
            "kind": kind.value,
            "failed": failed,
            "reason": reason or ("mismatch" if mismatch else "no-email"),
        },
    )
    raise RequestRefused(message, failed=failed, mismatch=mismatch)


def _already_opened(form_key: str | None, employee: Staff) -> HelpRequest | None:
    """The request this very form already opened (a double submit), if any."""
    if not form_key:
        return None
    query = select(HelpRequest).where(
        HelpRequest.form_key == form_key, HelpRequest.opened_by_key == employee.key
    )
    return db.session.scalar(query)


def _open(
    directory: Directory,
    request: HelpRequest,
    employee: Staff,
    holder: Account,
    origin: Origin,
    settings: Mapping[str, Any],
    form_key: str | None,
) -> HelpRequest:
    now = utcnow()
    employee_account = directory.get(employee.key)
    request.queue = FIRST_QUEUE[RequestKind(request.kind)].value
    request.status = Status.OPEN.value
    request.form_key = form_key or None
    request.created_at = request.updated_at = now
    request.opened_by_login, request.opened_by_key = employee.login, employee.key
    request.opened_by_name = fit_name(employee.display_name)
    request.opened_by_email = employee_account.email if employee_account else None
    request.subject_key, request.subject_login = holder.key, holder.login
    request.subject_name = fit_name(holder.display_name)
    try:
        db.session.add(request)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # the same form, submitted twice at once: the other one won
        existing = _already_opened(form_key, employee)
        if existing is None:
            raise
        return existing
    request.events.append(RequestEvent(actor=employee.login, action=Action.OPENED.value, text=request.note))
    record(
        Tag.HELP_REQUEST_OPENED,
        origin=origin,
        actor=employee.login,
        subject=holder.login,
        subject_key=holder.key,
        details={"request": request.number, "kind": request.kind, "queue": request.queue},
        commit=False,
    )
    notify.mail_received(request, request.opened_by_email, next_pickup(settings, now), settings)
    notify.mail_intake(request, settings)
    db.session.commit()
    return request
