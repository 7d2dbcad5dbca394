"""Help-desk mail: the employee's receipts, the reset link, and the optional intake mirror.

Everything goes through the outbox (``queue_mail``) in the caller's transaction.
No message carries a password or a parent PIN (invariant 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import force_locale, get_locale

from selfservice.dates import format_moment
from selfservice.directory.interfaces import Account, Directory
from selfservice.helpdesk.models import HelpRequest, RequestKind
from selfservice.i18n import _
from selfservice.mail.notices import compose, in_language_of
from selfservice.mail.services import queue_mail

LINK_PURPOSE = "helpdesk:reset-link"


def mask_address(address: str) -> str:
    """``t***@school.test``: enough for staff to recognise, not enough to copy."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def employee_address(directory: Directory, request: HelpRequest) -> str | None:
    """The opener's address in the directory now, or as it was when they opened the request."""
    employee = directory.get(request.opened_by_key)
    return (employee.email if employee else None) or request.opened_by_email


def local_time(moment: datetime, zone_name: str) -> str:
    """``moment`` in the district's zone, written in the language the mail is being written in."""
    return format_moment(moment, str(get_locale()), zone_name)


def mail_received(
    request: HelpRequest, address: str | None, pickup: datetime, settings: Mapping[str, Any]
) -> None:
    if not address:
        return
    with in_language_of(request.opened_by_key):  # the employee's language, not the request's
        body = compose(
            "helpdesk_received",
            req=request,
            queue=_(request.queue_value.label),
            pickup=local_time(pickup, settings["TIME_ZONE"]),
        )
        subject = _("%(number)s received: %(what)s", number=request.number, what=_what(request))
        queue_mail(address, subject, body, purpose="helpdesk:received", commit=False)


def mail_resolved(directory: Directory, request: HelpRequest, how: str, *, by_link: bool = False) -> None:
    address = employee_address(directory, request)
    if not address:
        return
    with in_language_of(request.opened_by_key):
        body = compose("helpdesk_resolved", req=request, how=how.strip(), by_link=by_link)
        subject = _("%(number)s resolved: %(what)s", number=request.number, what=_what(request))
        queue_mail(address, subject, body, purpose="helpdesk:resolved", commit=False)


def mail_intake(request: HelpRequest, settings: Mapping[str, Any]) -> None:
    """Mirror a new request to an external service desk, when HELPDESK_INTAKE_EMAIL is set."""
    address = settings.get("HELPDESK_INTAKE_EMAIL")
    if not address:
        return
    with force_locale(settings["DEFAULT_LANGUAGE"]):  # a service desk, not a person: the district's
        body = compose("helpdesk_intake", req=request, queue=_(request.queue_value.label))
        subject = f"[{request.number}] {_what(request)}"
        queue_mail(address, subject, body, purpose="helpdesk:intake", commit=False)


def mail_link(
    request: HelpRequest,
    holder: Account,
    address: str,
    url: str,
    expires_at: datetime,
    zone: str,
    *,
    must_change: bool,
) -> None:
    """The reset link, to the one address invariant 8 allows (chosen by the caller).

    A student's link goes to the employee, in the employee's language; a parent's goes
    to the parent, in the parent's own language, whoever on staff issued it.
    """
    student = request.kind == RequestKind.STUDENT
    template = "helpdesk_link_student" if student else "helpdesk_link_parent"
    with in_language_of(request.opened_by_key if student else holder.key):
        expires = local_time(expires_at, zone)
        context = {
            "req": request,
            "holder": holder,
            "url": url,
            "expires": expires,
            "must_change": must_change,
        }
        body = compose(template, **context)
        subject = _(
            "%(number)s: password reset link for %(name)s", number=request.number, name=holder.display_name
        )
        queue_mail(address, subject, body, purpose=LINK_PURPOSE, commit=False)


def _what(request: HelpRequest) -> str:
    if request.kind == RequestKind.STUDENT:
        return _("student password reset for %(name)s", name=request.subject_name)
    return _("parent password help for %(name)s", name=request.subject_name)
