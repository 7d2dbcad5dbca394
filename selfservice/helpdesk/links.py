"""One-time reset links: ITS issues them, the account holder uses one to set their own password.

Invariants 7 and 8: staff start the reset but never choose or see the password, nor
the link. A student's link is mailed to the employee who opened the request (the
district procedure); a parent's link only to the parent's address on file in the
directory, read at the moment the link is issued. No form ever supplies an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, Directory, Role
from selfservice.extensions import db
from selfservice.helpdesk import notify
from selfservice.helpdesk.models import (
    ACTIVE_STATUSES,
    Action,
    HelpRequest,
    RequestKind,
    ResetLink,
    Status,
)
from selfservice.helpdesk.queues import (
    STAFF_ACCOUNT,
    Staff,
    can_work_its,
    has_staff_access,
    is_own,
    opened_it,
    reaches,
    require,
)
from selfservice.helpdesk.services import ActionRefused, add_event, audit, transition, void_links
from selfservice.i18n_markers import N_
from selfservice.portal.passwords import How, NewPassword, Spend, apply_new_password, refuse_if_disabled
from selfservice.security import Security
from selfservice.security.models import TokenNonce
from selfservice.security.tokens import Purpose, TokenRefused
from selfservice.timeutil import utcnow

EMPLOYEE_NO_EMAIL = N_(
    "The employee who opened this request has no email address in the directory, so the link "
    "cannot be sent. Ask them to have an address added, then issue the link."
)
EMPLOYEE_GONE = N_(
    "The employee who opened this request is no longer an active employee in the directory, so the "
    "student's link cannot go to them. Ask a colleague to open a new request for the student."
)
PARENT_NO_EMAIL = N_(
    "This parent no longer has an email address on file, so the link cannot be sent. Ask the parent "
    "to add one on the Parent Information screen, then issue the link."
)
HOLDER_GONE = N_("The account holder is no longer in the directory.")
HOLDER_DISABLED = N_(
    "An administrator disabled this account in the directory, so a reset link cannot help: the "
    "account must be enabled again first. Ask a directory administrator."
)
OPENER_ISSUES = N_(
    "You opened this request, so a colleague in ITS must issue its link: whoever opens a request "
    "never issues its link."
)
ISSUER_RECEIVES = N_(
    "This link would be sent to your own address or account, so a colleague in ITS must issue it."
)
OPENER_RECEIVES = N_(
    "The parent's address on file is now the address of the employee who opened this request, and "
    "a parent's link never goes to whoever opened the request. Ask the parent to check the address "
    "on the Parent Information screen."
)

#: The audit event's ``reason`` for each refusal of a link.
REFUSAL_REASONS = {
    OPENER_ISSUES: "opener-issues",
    ISSUER_RECEIVES: "issuer-receives",
    OPENER_RECEIVES: "opener-receives",
    STAFF_ACCOUNT: "staff-account",
    HOLDER_GONE: "holder-gone",
    HOLDER_DISABLED: "holder-disabled",
    EMPLOYEE_GONE: "employee-gone",
    EMPLOYEE_NO_EMAIL: "employee-no-email",
    PARENT_NO_EMAIL: "parent-no-email",
}


class LinkRefused(Exception):
    """The reset link is forged, used, expired, replaced or void."""


@dataclass(frozen=True)
class IssuedLink:
    sent_to_masked: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkTarget:
    """What a valid link lets its holder do: set the password of ``holder``."""

    link: ResetLink
    holder: Account


def issue_reset_link(
    directory: Directory,
    security: Security,
    request: HelpRequest,
    staff: Staff,
    *,
    revision: int | None,
    origin: Origin,
    settings: Mapping[str, Any],
    base_url: str,
) -> IssuedLink:
    """Mail a single-use link to the one allowed recipient; earlier links of the request stop working.

    A refusal (ActionRefused) is an audit event naming why (invariant 12).
    """
    require(can_work_its(staff, request))
    try:
        holder, recipient, address = _allowed_link(directory, request, staff)
    except ActionRefused as refused:
        record(
            Tag.RESET_LINK_ISSUE_REFUSED,
            outcome="refused",
            origin=origin,
            actor=staff.login,
            subject=request.subject_login,
            subject_key=request.subject_key,
            details={"request": request.number, "reason": REFUSAL_REASONS.get(refused.message, "other")},
        )
        raise
    transition(
        request,
        revision=revision,
        allowed=ACTIVE_STATUSES,
        status=Status.IN_PROGRESS.value,
        assignee=func.coalesce(HelpRequest.assignee, staff.login),
    )
    void_links(request, utcnow())
    hours = settings["RESET_LINK_HOURS_STUDENT" if recipient == "employee" else "RESET_LINK_HOURS_PARENT"]
    token = security.tokens.issue(holder.key, Purpose.ASSISTED_RESET, timedelta(hours=hours))
    db.session.add(
        ResetLink(
            nonce=token.nonce,
            request_id=request.id,
            account_key=holder.key,
            recipient=recipient,
            sent_to=address,
            issued_by=staff.login,
            expires_at=token.expires_at,
        )
    )
    masked = notify.mask_address(address)
    add_event(request, staff.login, Action.LINK_ISSUED, recipient=recipient, sent_to=masked)
    audit(Tag.RESET_LINK_ISSUED, request, staff, origin, recipient=recipient, sent_to=masked, hours=hours)
    url = f"{base_url.rstrip('/')}/reset/{token.value}"
    notify.mail_link(
        request,
        holder,
        address,
        url,
        token.expires_at,
        settings["TIME_ZONE"],
        must_change=must_change_supported(directory),
    )
    db.session.commit()
    return IssuedLink(sent_to_masked=masked, expires_at=token.expires_at)


def _allowed_link(directory: Directory, request: HelpRequest, staff: Staff) -> tuple[Account, str, str]:
    """The holder and where their link may go, ("employee" | "parent", address); else ActionRefused."""
    if opened_it(staff, request):
        raise ActionRefused(OPENER_ISSUES)
    holder = directory.get(request.subject_key)
    if holder is None:
        raise ActionRefused(HOLDER_GONE)
    if holder.disabled_by_admin:  # the link's page would refuse it: say why now
        raise ActionRefused(HOLDER_DISABLED)
    if has_staff_access(holder):  # given a staff role since the request was opened
        raise ActionRefused(STAFF_ACCOUNT)
    recipient, address = _recipient(directory, request, holder)
    if is_own(directory, staff, holder, address):
        raise ActionRefused(ISSUER_RECEIVES)
    # Checked when the request was opened, and again now: the address on file may have changed since.
    if recipient == "parent" and reaches(directory, request.opened_by_key, holder, address):
        raise ActionRefused(OPENER_RECEIVES)
    return holder, recipient, address


def _recipient(directory: Directory, request: HelpRequest, holder: Account) -> tuple[str, str]:
    """("employee" | "parent", address), read from the directory now; never from a form."""
    if request.kind == RequestKind.STUDENT:
        employee = directory.get(request.opened_by_key)
        if employee is not None and (employee.disabled_by_admin or not employee.has_role(Role.EMPLOYEE)):
            raise ActionRefused(EMPLOYEE_GONE)  # left, or moved on, since opening it
        if employee is None or not employee.email:
            raise ActionRefused(EMPLOYEE_NO_EMAIL)
        return "employee", employee.email
    if not holder.email:
        raise ActionRefused(PARENT_NO_EMAIL)
    return "parent", holder.email


def link_is_live(link: ResetLink, now: datetime | None = None) -> bool:
    """Still usable: not used, replaced, expired, or voided by a password change."""
    now = now or utcnow()
    if not link.is_live(now):
        return False
    nonce = db.session.get(TokenNonce, link.nonce, populate_existing=True)
    return nonce is not None and nonce.used_at is None


def open_link(directory: Directory, security: Security, token: str, origin: Origin) -> LinkTarget:
    """Check a link without using it up (to show its form); raise LinkRefused.

    AccountDisabled (audited) when an administrator disabled the holder: the link stays unused.
    """
    try:
        claim = security.tokens.peek(token, Purpose.ASSISTED_RESET)
    except TokenRefused as exc:
        raise LinkRefused() from exc
    link = db.session.get(ResetLink, claim.nonce)
    if link is None or link.account_key != claim.account_key or not link_is_live(link):
        raise LinkRefused()
    holder = directory.get(claim.account_key)
    if holder is None:
        raise LinkRefused()
    refuse_if_disabled(holder, How.ASSISTED, origin)
    return LinkTarget(link=link, holder=holder)


def use_link(
    directory: Directory,
    security: Security,
    token: str,
    new: NewPassword,
    *,
    origin: Origin,
) -> HelpRequest | None:
    """The holder sets their own password; the request resolves itself and the employee is told.

    The link is claimed by the change's intent and spent (request resolved, employee told)
    in the same transaction as the change's audit event, once the change is known. Raises
    LinkRefused, AccountDisabled, PolicyViolation or DirectoryUnavailable (the link stays usable), or
    ChangeUnconfirmed (settled later by the sweeper).
    """
    target = open_link(directory, security, token, origin)
    try:
        apply_new_password(
            directory,
            security,
            target.holder,
            new,
            how=How.ASSISTED,
            origin=origin,
            must_change=must_change_supported(directory),
            spend=Spend(token, Purpose.ASSISTED_RESET, request_id=target.link.request_id),
        )
    except TokenRefused as exc:  # a parallel submit claimed it first
        raise LinkRefused() from exc
    return db.session.get(HelpRequest, target.link.request_id)


def must_change_supported(directory: Directory) -> bool:
    """Whether the directory can force a change at next sign-in (builtin, OpenLDAP ppolicy, AD do).

    Set so that a password the employee may have seen (a student's link goes to them)
    does not outlive the student's next sign-in.
    """
    return bool(getattr(directory, "supports_must_change", True))


def resolve_by_link(directory: Directory, nonce: str, holder: Account, origin: Origin) -> None:
    """The link's change happened: mark it used and resolve its request (the caller commits)."""
    now = utcnow()
    link = db.session.get(ResetLink, nonce)
    request = db.session.get(HelpRequest, link.request_id, populate_existing=True) if link else None
    if link is None or request is None:  # deleted by retention while the link was out
        return
    # Conditional, and never a rollback: this runs inside the change's own transaction. If
    # staff resolved or closed the request a moment ago, there is nothing left to resolve.
    resolved_now = (
        db.session.execute(
            update(HelpRequest)
            .where(HelpRequest.id == request.id, HelpRequest.status.in_([s.value for s in ACTIVE_STATUSES]))
            .values(
                revision=HelpRequest.revision + 1,
                updated_at=now,
                status=Status.RESOLVED.value,
                resolved_at=now,
            ),
            execution_options={"synchronize_session": False},
        ).rowcount
        == 1
    )  # type: ignore[attr-defined]
    db.session.expire(request)
    db.session.execute(
        update(ResetLink).where(ResetLink.nonce == nonce, ResetLink.used_at.is_(None)).values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    # A link ITS sent a moment ago, after this change voided the account's tokens: the UPDATE
    # above waited for its transaction (the request's row), so it is visible now. It dies too.
    void_links(request, now)
    add_event(request, holder.login, Action.LINK_USED)
    record(
        Tag.RESET_LINK_USED,
        origin=origin,
        actor=holder.login,
        subject=holder.login,
        subject_key=holder.key,
        details={"request": request.number},
        commit=False,
    )
    if resolved_now:
        add_event(request, holder.login, Action.RESOLVED)
        record(
            Tag.HELP_REQUEST_RESOLVED,
            origin=origin,
            actor=holder.login,
            subject=holder.login,
            subject_key=holder.key,
            details={"request": request.number, "how": "link"},
            commit=False,
        )
        notify.mail_resolved(directory, request, how="", by_link=True)


def record_refusal(origin: Origin) -> None:
    """A used, expired, replaced or forged link was tried."""
    record(Tag.RESET_LINK_REFUSED, outcome="refused", origin=origin, details={"purpose": "assisted-reset"})
