"""Help-desk pages under /helpdesk, and the public reset-link page /reset/<token>."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm

from selfservice.auth.sessions import role_required
from selfservice.directory import get_directory
from selfservice.directory.interfaces import DirectoryUnavailable, Role
from selfservice.helpdesk import links, notify, queues, requests, services
from selfservice.helpdesk.forms import (
    ActionForm,
    AssignForm,
    CloseForm,
    ContactForm,
    EscalateForm,
    NoteForm,
    ParentRequestForm,
    ResetPasswordForm,
    ResolveForm,
    StudentRequestForm,
)
from selfservice.helpdesk.hours import SupportHours
from selfservice.helpdesk.models import ContactMethod, ContactOutcome, HelpRequest, Queue
from selfservice.helpdesk.queues import NotAllowed, Staff
from selfservice.i18n import _, remember_page_language
from selfservice.portal.passwords import AccountDisabled, ChangeUnconfirmed, NewPassword, PolicyViolation
from selfservice.security import get_security, throttling
from selfservice.security.throttling import throttle
from selfservice.site.errors import account_disabled, password_not_changed, password_unconfirmed
from selfservice.timeutil import utcnow
from selfservice.web import base_url, current_origin

blueprint = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")
reset_blueprint = Blueprint("reset", __name__)

STAFF = (Role.EMPLOYEE, Role.SUPPORT, Role.ITS, Role.ADMIN)
WORKERS = (Role.SUPPORT, Role.ITS)
MISMATCH_SCOPE = "account"


@blueprint.app_template_filter("mask_address")
def mask_address(address: str) -> str:
    return notify.mask_address(address)


@blueprint.app_template_filter("district_time")
def district_time(moment: datetime) -> datetime:
    """A stored UTC moment in the district's time zone, for display."""
    return moment.astimezone(ZoneInfo(current_app.config["TIME_ZONE"]))


def _staff() -> Staff:
    return Staff(
        key=current_user.key,
        login=current_user.login,
        display_name=current_user.display_name,
        roles=current_user.roles,
    )


# Throttle: mismatches per employee ------------------------------------------------
# Claimed before the directory is asked, given back when the details matched: a burst
# of parallel requests gets at most the limit's number of checks (issue 14, item 9).

MISMATCH_LIMIT = "HELPDESK_MISMATCH_RATE_LIMIT"


# Where each role works ------------------------------------------------------------


@blueprint.get("/")
@role_required(*STAFF)
def index() -> ResponseReturnValue:
    staff = _staff()
    own_queues = [queue for queue in queues.queues_of(staff) if queues.works_queue(staff, queue)]
    if own_queues:
        return redirect(url_for(".queue", name=own_queues[0].value), code=303)
    if staff.has_role(Role.ADMIN):
        return redirect(url_for(".everything"), code=303)
    return redirect(url_for(".mine"), code=303)


@blueprint.get("/mine")
@role_required(Role.EMPLOYEE)
def mine() -> ResponseReturnValue:
    return _page("helpdesk/mine.html", requests=queues.opened_by(_staff()))


@blueprint.get("/queue/<name>")
@role_required(Role.SUPPORT, Role.ITS, Role.ADMIN)
def queue(name: str) -> ResponseReturnValue:
    try:
        chosen = Queue(name)
    except ValueError:
        abort(404)
    if chosen not in queues.queues_of(_staff()):
        abort(403)
    show_all = request.args.get("show") == "all"
    found = queues.in_queue(chosen, active_only=not show_all)
    return _page("helpdesk/queue.html", queue=chosen, requests=found, show_all=show_all)


@blueprint.get("/all")
@role_required(Role.ADMIN)
def everything() -> ResponseReturnValue:
    active_only = request.args.get("show") == "active"
    return _page("helpdesk/all.html", requests=queues.every_request(active_only=active_only))


# Opening requests -------------------------------------------------------------------


@blueprint.route("/new/student", methods=["GET", "POST"])
@role_required(Role.EMPLOYEE)
def new_student() -> ResponseReturnValue:
    form = StudentRequestForm(form_key=secrets.token_urlsafe(16))
    if form.validate_on_submit():
        details = requests.StudentDetails(
            student_id=form.student_id.data,
            name=form.student_name.data,
            birth_month_year=form.birth_month_year.data,
            note=form.note.data or "",
        )
        return _open(form, requests.open_student_request, details)
    no_email = not requests.has_email_on_file(get_directory(), _staff())
    return _page(
        "helpdesk/new_student.html", status=400 if form.errors else 200, form=form, no_email=no_email
    )


@blueprint.route("/new/parent", methods=["GET", "POST"])
@role_required(Role.EMPLOYEE)
def new_parent() -> ResponseReturnValue:
    form = ParentRequestForm(form_key=secrets.token_urlsafe(16))
    if form.validate_on_submit():
        details = requests.ParentDetails(
            contact_name=form.contact_name.data,
            contact_phone=form.contact_phone.data,
            pin=form.pin.data,
            account_number=form.account_number.data,
            parent_name=form.parent_name.data,
            parent_phone=form.parent_phone.data,
            note=form.note.data or "",
            language=form.parent_language.data or "",
        )
        return _open(form, requests.open_parent_request, details)
    return _page("helpdesk/new_parent.html", status=400 if form.errors else 200, form=form)


def _open(form: FlaskForm, opener: Callable[..., HelpRequest], details: Any) -> ResponseReturnValue:
    template = (
        "helpdesk/new_student.html" if isinstance(form, StudentRequestForm) else "helpdesk/new_parent.html"
    )
    staff, config = _staff(), current_app.config
    throttling.claim(config, MISMATCH_LIMIT, MISMATCH_SCOPE, staff.key, request.endpoint or "helpdesk")
    mismatch = False
    try:
        opened = opener(
            get_directory(),
            staff,
            details,
            origin=current_origin(),
            settings=config,
            form_key=form.form_key.data or None,
        )
    except requests.RequestRefused as refused:
        mismatch = refused.mismatch
        return _page(template, status=400, form=form, refusal=_(refused.message))
    finally:
        if not mismatch:  # only details that did not match the directory keep their claim
            throttling.give_back(config, MISMATCH_LIMIT, MISMATCH_SCOPE, staff.key)
    flash(_("Request %(number)s received.", number=opened.number), "success")
    return redirect(url_for(".detail", number=opened.number), code=303)


# One request ----------------------------------------------------------------------------


@blueprint.get("/requests/<number>")
@role_required(*STAFF)
def detail(number: str) -> ResponseReturnValue:
    return _detail(_viewable(number))


@blueprint.post("/requests/<number>/take")
@role_required(*WORKERS)
def take(number: str) -> ResponseReturnValue:
    return _act(
        number, queues.can_work, ActionForm, lambda req, form: services.take(req, _staff(), **_common(form))
    )


@blueprint.post("/requests/<number>/assign")
@role_required(*WORKERS)
def assign(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: AssignForm) -> None:
        services.assign(get_directory(), req, _staff(), form.assign_login.data, **_common(form))

    return _act(number, queues.can_work, AssignForm, run, _("The request is assigned."))


@blueprint.post("/requests/<number>/note")
@role_required(Role.EMPLOYEE, *WORKERS)
def note(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: NoteForm) -> None:
        services.add_note(req, _staff(), form.note_text.data, **_common(form))

    return _act(number, queues.can_note, NoteForm, run, _("The note is added."))


@blueprint.post("/requests/<number>/contact")
@role_required(Role.SUPPORT)
def contact(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: ContactForm) -> None:
        method, outcome = ContactMethod(form.contact_method.data), ContactOutcome(form.contact_outcome.data)
        services.record_contact(req, _staff(), method, outcome, form.contact_note.data or "", **_common(form))

    return _act(number, queues.can_work_parent_support, ContactForm, run, _("The contact is recorded."))


@blueprint.post("/requests/<number>/escalate")
@role_required(Role.SUPPORT)
def escalate(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: EscalateForm) -> None:
        services.escalate(req, _staff(), form.escalate_reason.data, **_common(form))

    return _act(
        number,
        queues.can_work_parent_support,
        EscalateForm,
        run,
        _("The request is escalated to ITS Parent Accounts."),
    )


@blueprint.post("/requests/<number>/resolve")
@role_required(*WORKERS)
def resolve(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: ResolveForm) -> None:
        services.resolve(get_directory(), req, _staff(), form.resolve_note.data, **_common(form))

    return _act(
        number,
        queues.can_work,
        ResolveForm,
        run,
        _("The request is resolved. The employee who opened it is told."),
    )


@blueprint.post("/requests/<number>/close")
@role_required(*WORKERS)
def close(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: CloseForm) -> None:
        services.close(req, _staff(), form.close_note.data or "", **_common(form))

    return _act(number, queues.can_work, CloseForm, run, _("The request is closed."))


@blueprint.post("/requests/<number>/reset-link")
@role_required(Role.ITS)
def reset_link(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: ActionForm) -> str:
        issued = links.issue_reset_link(
            get_directory(),
            get_security(),
            req,
            _staff(),
            settings=current_app.config,
            base_url=base_url(),
            **_common(form),
        )
        return _("Link sent to %(address)s.", address=issued.sent_to_masked)

    return _act(number, queues.can_work_its, ActionForm, run)


@blueprint.post("/requests/<number>/unlock")
@role_required(Role.ITS)
def unlock(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: ActionForm) -> str:
        was_locked = services.unlock(get_directory(), get_security(), req, _staff(), **_common(form))
        if was_locked:
            return _("Self-service is unlocked. The account holder can try again now.")
        return _("Self-service was not locked; any failed attempts are forgotten.")

    return _act(number, queues.can_work_its, ActionForm, run)


@blueprint.post("/requests/<number>/clear-enrollment")
@role_required(Role.ITS)
def clear_enrollment(number: str) -> ResponseReturnValue:
    def run(req: HelpRequest, form: ActionForm) -> str:
        if services.clear_holder_enrollment(get_directory(), req, _staff(), **_common(form)):
            return _("The security questions are cleared. The account holder will set them up again.")
        return _("The account holder had no security questions set up.")

    return _act(number, queues.can_work_its, ActionForm, run)


def _common(form: ActionForm) -> dict[str, Any]:
    return {"revision": form.revision_value, "origin": current_origin()}


def _act(
    number: str,
    may: Callable[[Staff, HelpRequest], bool],
    form_class: type[ActionForm],
    run: Callable[[HelpRequest, Any], str | None],
    done: str = "",
) -> ResponseReturnValue:
    """Run one action from the request page: its rules live in the service ``run`` calls."""
    req = _viewable(number)
    if not may(_staff(), req):
        abort(403)
    form = form_class()
    if not form.validate_on_submit():
        return _detail(req, status=400, forms={form_class: form})
    try:
        message = run(req, form) or done or _("Done.")
    except NotAllowed:
        abort(403)
    except services.StaleRequest:
        flash(_(services.STALE), "info")
    except services.ActionRefused as refused:
        return _detail(req, status=409, problem=_(refused.message, **refused.values))
    else:
        flash(message, "success")
    return redirect(url_for(".detail", number=req.number), code=303)


def _viewable(number: str) -> HelpRequest:
    req = queues.find_request(number)
    if req is None:
        abort(404)
    if not queues.can_view(_staff(), req):
        abort(403)
    return req


def _detail(
    req: HelpRequest, *, status: int = 200, forms: dict[type, FlaskForm] | None = None, problem: str = ""
) -> ResponseReturnValue:
    staff = _staff()
    given = forms or {}
    prefill = {"revision": str(req.revision)}
    form_of = {name: given.get(cls) or cls(formdata=None, data=prefill) for name, cls in _FORM_NAMES.items()}
    can_work = queues.can_work(staff, req)
    allowed = {
        "work": can_work and req.is_active,
        "note": queues.can_note(staff, req) and req.status != "closed",
        "support": queues.can_work_parent_support(staff, req) and req.status in ("open", "in-progress"),
        "its": queues.can_work_its(staff, req) and req.is_active,
        "close": can_work and req.status == "resolved",
    }
    now = utcnow()
    link_rows = [(link, links.link_is_live(link, now)) for link in req.links]
    return _page(
        "helpdesk/detail.html",
        status=status,
        req=req,
        forms=form_of,
        allowed=allowed,
        link_rows=link_rows,
        has_live_link=any(live for _link, live in link_rows),
        problem=problem,
    )


_FORM_NAMES = {
    "action": ActionForm,
    "assign": AssignForm,
    "note": NoteForm,
    "contact": ContactForm,
    "escalate": EscalateForm,
    "resolve": ResolveForm,
    "close": CloseForm,
}


def _page(template: str, *, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Every help-desk page: the staff member's areas and when staff pick requests up."""
    staff = _staff()
    hours = SupportHours.from_settings(current_app.config)
    now = utcnow()
    context.setdefault("refusal", "")
    return (
        render_template(
            template,
            staff=staff,
            areas=_areas(staff),
            hours=hours,
            open_now=hours.is_open(now),
            pickup=hours.next_pickup(now),
            **context,
        ),
        status,
    )


def _areas(staff: Staff) -> list[tuple[str, str]]:
    found = []
    if staff.has_role(Role.EMPLOYEE):
        found += [
            (url_for(".mine"), _("My requests")),
            (url_for(".new_student"), _("New student request")),
            (url_for(".new_parent"), _("New parent request")),
        ]
    found += [(url_for(".queue", name=queue.value), _(queue.label)) for queue in queues.queues_of(staff)]
    if staff.has_role(Role.ADMIN):
        found.append((url_for(".everything"), _("All requests")))
    return found


# The account holder's page: /reset/<token> ----------------------------------------------


@reset_blueprint.route("/reset/<token>", methods=["GET", "POST"])
@throttle("PASSWORD_RATE_LIMIT")
def reset_password(token: str) -> ResponseReturnValue:
    directory, security = get_directory(), get_security()
    try:
        target = links.open_link(directory, security, token, current_origin())
    except links.LinkRefused:
        return _link_refused()
    except AccountDisabled:
        return account_disabled()
    form = ResetPasswordForm()
    if form.validate_on_submit():
        new = NewPassword(form.new_password.data, form.confirm.data)
        remember_page_language(target.holder.key)  # the holder's page: their notice speaks its language
        try:
            links.use_link(directory, security, token, new, origin=current_origin())
        except links.LinkRefused:
            return _link_refused()
        except AccountDisabled:
            return account_disabled(target.holder.kind.value)
        except DirectoryUnavailable:
            return password_not_changed(url_for(".reset_password", token=token))
        except ChangeUnconfirmed:
            return password_unconfirmed(url_for(".reset_password", token=token))
        except PolicyViolation as violation:
            form.new_password.errors = [*form.new_password.errors, *(_(p) for p in violation.problems)]
        else:
            must_change = links.must_change_supported(directory)
            return render_template("helpdesk/reset_done.html", holder=target.holder, must_change=must_change)
    page = render_template(
        "helpdesk/reset.html",
        form=form,
        holder=target.holder,
        expires=target.link.expires_at,
        password_rules=security.password_rules_for_pages(target.holder),
    )
    return page, 400 if form.errors else 200


def _link_refused() -> ResponseReturnValue:
    links.record_refusal(current_origin())
    return render_template("helpdesk/reset_refused.html"), 410
