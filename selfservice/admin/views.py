"""Admin pages under /admin: dashboard, logs, unlock and the question bank (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta, get_locale
from flask_login import current_user
from werkzeug.routing import BuildError

from selfservice.admin import audit_log, charts, lockouts, questions, rate_limits
from selfservice.admin import dashboard as figures
from selfservice.admin.audit_log import Cursor, InvalidCursor
from selfservice.admin.cli import COMMANDS
from selfservice.admin.forms import (
    ActionForm,
    AuditFilterForm,
    ConfirmForm,
    LockoutFilterForm,
    QuestionForm,
    RateLimitFilterForm,
)
from selfservice.audit.services import record
from selfservice.audit.tags import Tag
from selfservice.auth.sessions import role_required
from selfservice.dates import format_log_moment
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Role
from selfservice.i18n import _, ngettext
from selfservice.portal.passwords import AccountDisabled
from selfservice.portal.reconcile import unsettled
from selfservice.portal.unlock import DISABLED as UNLOCK_DISABLED
from selfservice.portal.unlock import unlock_account
from selfservice.security import get_security, throttling
from selfservice.timeutil import utcnow
from selfservice.web import current_origin

blueprint = Blueprint("admin", __name__, url_prefix="/admin", cli_group=None)
# The operators' commands also live on app.cli, where Flask's test runner and `flask` look.
for _command in COMMANDS:
    blueprint.cli.add_command(_command)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIME_ZONE"])


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    zone = _zone()

    def local_time(moment: datetime | None) -> str:
        return format_log_moment(moment, str(get_locale()), zone) if moment else ""

    def maybe_url(endpoint: str) -> str | None:
        try:
            return url_for(endpoint)
        except BuildError:  # that area is not installed in this app
            return None

    return {
        "local_time": local_time,
        "time_zone": zone.key,
        "format_age": lambda age: format_timedelta(age, threshold=1.5),
        "maybe_url": maybe_url,
        "lock_until": get_security().lockout.refused_until,
    }


def _cursor() -> Cursor | None:
    text = request.args.get("after")
    return Cursor.decode(text) if text else None


def _refused(template: str, status: int = 400, **context: Any) -> ResponseReturnValue:
    """Re-show a log page with its form's messages instead of results."""
    return render_template(template, refused=True, **context), status


# Dashboard ----------------------------------------------------------------


@blueprint.get("/")
@role_required(Role.ADMIN)
def dashboard() -> ResponseReturnValue:
    overview = figures.overview(utcnow(), _zone())
    return render_template(
        "admin/dashboard.html", overview=overview, charts=charts.dashboard_charts(overview)
    )


# Audit log ----------------------------------------------------------------


def _audit_form() -> AuditFilterForm:
    return AuditFilterForm(formdata=request.args, zone=_zone(), now=utcnow())


@blueprint.get("/audit")
@role_required(Role.ADMIN)
def audit() -> ResponseReturnValue:
    form = _audit_form()
    if not form.validate():
        return _refused("admin/audit.html", form=form)
    try:
        result = audit_log.page(form.to_query(), _cursor())
    except InvalidCursor:
        return _refused("admin/audit.html", form=form, problem=_("That page link is damaged. Start again."))
    return render_template("admin/audit.html", form=form, page=result, args=form.to_query().as_args())


@blueprint.get("/audit/<id:event_id>")
@role_required(Role.ADMIN)
def audit_event(event_id: int) -> ResponseReturnValue:
    event = audit_log.get_event(event_id) or abort(404)
    return render_template("admin/audit_event.html", event=event)


@blueprint.get("/audit.csv")
@role_required(Role.ADMIN)
def audit_csv() -> ResponseReturnValue:
    form = _audit_form()
    if not form.validate():
        return _refused("admin/audit.html", form=form)
    query = form.to_query()
    record(Tag.AUDIT_EXPORTED, origin=current_origin(), actor=current_user.login, details=query.as_args())
    filename = f"audit-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(
        stream_with_context(audit_log.csv_lines(query)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# Lockouts -----------------------------------------------------------------


@blueprint.get("/lockouts")
@role_required(Role.ADMIN)
def lockouts_page() -> ResponseReturnValue:
    form = LockoutFilterForm(formdata=request.args, zone=_zone(), now=utcnow())
    locked = lockouts.locked_now(get_security().lockout)
    if not form.validate():
        return _refused("admin/lockouts.html", form=form, locked=locked)
    login = (form.login.data or "").strip() or None
    try:
        history = lockouts.history(
            login,
            form.moment(form.since, end_of_day=False),
            form.moment(form.until, end_of_day=True),
            _cursor(),
        )
    except InvalidCursor:
        return _refused(
            "admin/lockouts.html",
            form=form,
            locked=locked,
            problem=_("That page link is damaged. Start again."),
        )
    args = {name: value for name, value in request.args.items() if name != "after" and value}
    return render_template("admin/lockouts.html", form=form, locked=locked, history=history, args=args)


@blueprint.route("/lockouts/<account_key>/unlock", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def unlock(account_key: str) -> ResponseReturnValue:
    lock = lockouts.find_locked(get_security().lockout, account_key)
    if lock is None:
        flash(_("That account is not locked out of self-service now."), "info")
        return redirect(url_for("admin.lockouts_page"), code=303)
    form = ConfirmForm(message=_("Tick the box to confirm that you want to unlock this account."))
    if form.validate_on_submit():
        account = get_directory().get(account_key) or abort(404)
        try:
            lifted = unlock_account(
                get_directory(),
                get_security(),
                account,
                actor=current_user.login,
                origin=current_origin(),
                only_if_locked=True,
            )
        except AccountDisabled:
            flash(_(UNLOCK_DISABLED), "error")
            return render_template("admin/unlock.html", lock=lock, form=form), 409
        if not lifted:  # another admin (or the holder's new password) lifted it a moment ago
            flash(_("That account is not locked out of self-service now."), "info")
            return redirect(url_for("admin.lockouts_page"), code=303)
        flash(
            _("Self-service is unlocked for %(login)s: they can try again now.", login=account.login),
            "success",
        )
        return redirect(url_for("admin.lockouts_page"), code=303)
    return render_template("admin/unlock.html", lock=lock, form=form), 400 if form.errors else 200


# Rate limits --------------------------------------------------------------


@blueprint.get("/rate-limits")
@role_required(Role.ADMIN)
def rate_limits_page() -> ResponseReturnValue:
    now, zone = utcnow(), _zone()
    form = RateLimitFilterForm(formdata=request.args, zone=zone, now=now)
    if not form.validate():
        return _refused("admin/rate_limits.html", form=form)
    since, until = form.time_range()
    ip = (form.ip.data or "").strip() or None
    throttling.flush_breaches()  # this worker's latest counts, so the page is current
    try:
        report = rate_limits.breach_report(since, until, zone, ip=ip, cursor=_cursor())
    except InvalidCursor:
        return _refused(
            "admin/rate_limits.html", form=form, problem=_("That page link is damaged. Start again.")
        )
    args = {name: value for name, value in request.args.items() if name != "after" and value}
    return render_template(
        "admin/rate_limits.html",
        form=form,
        report=report,
        chart=charts.breach_chart(report.over_time, report.bucketing, zone),
        since=since,
        until=until,
        args=args,
    )


# Question bank ------------------------------------------------------------


@blueprint.get("/questions")
@role_required(Role.ADMIN)
def questions_page() -> ResponseReturnValue:
    bank = questions.bank()
    return render_template("admin/questions.html", bank=bank, usage=questions.usage(), action=ActionForm())


@blueprint.route("/questions/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new_question() -> ResponseReturnValue:
    form = QuestionForm()
    if form.validate_on_submit():
        questions.add_question(
            form.cleaned_text(), form.translations(), actor=current_user.login, origin=current_origin()
        )
        flash(_("The question was added at the end of the list."), "success")
        return redirect(url_for("admin.questions_page"), code=303)
    return render_template("admin/question_form.html", form=form, question=None), 400 if form.errors else 200


@blueprint.route("/questions/<id(maximum=2147483647):question_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_question(question_id: int) -> ResponseReturnValue:
    question = questions.get_question(question_id) or abort(404)
    form = QuestionForm.for_question(question)
    if form.validate_on_submit():
        changed = questions.edit_question(
            question,
            form.cleaned_text(),
            form.translations(),
            actor=current_user.login,
            origin=current_origin(),
        )
        flash(_("The question was saved.") if changed else _("Nothing was changed."), "success")
        return redirect(url_for("admin.questions_page"), code=303)
    return _question_page(question, form, ConfirmForm())


def _question_page(
    question: Any, form: QuestionForm, retire_form: ConfirmForm, status: int | None = None
) -> ResponseReturnValue:
    status = status or (400 if form.errors or retire_form.errors else 200)
    in_use = questions.usage([question.id]).get(question.id, 0)
    return render_template(
        "admin/question_form.html", form=form, question=question, retire_form=retire_form, in_use=in_use
    ), status


@blueprint.post("/questions/<id(maximum=2147483647):question_id>/retire")
@role_required(Role.ADMIN)
def retire_question(question_id: int) -> ResponseReturnValue:
    question = questions.get_question(question_id) or abort(404)
    retire_form = ConfirmForm(message=_("Tick the box to confirm that you want to retire this question."))
    if not retire_form.validate_on_submit():
        return _question_page(question, QuestionForm.for_question(question, formdata=None), retire_form)
    needed = current_app.config["ENROLL_QUESTION_COUNT"]
    try:
        questions.set_active(
            question, False, actor=current_user.login, origin=current_origin(), keep_offered=needed
        )
    except questions.TooFewQuestions:
        retire_form.confirm.errors.append(
            ngettext(
                "Enrollment asks for %(num)d question: keep at least that many offered. "
                "Add or reactivate a question before you retire this one.",
                "Enrollment asks for %(num)d questions: keep at least that many offered. "
                "Add or reactivate a question before you retire this one.",
                needed,
            )
        )
        return _question_page(question, QuestionForm.for_question(question, formdata=None), retire_form, 409)
    flash(_("The question is retired: it is no longer offered, and existing answers still work."), "success")
    return redirect(url_for("admin.questions_page"), code=303)


@blueprint.post("/questions/<id(maximum=2147483647):question_id>/reactivate")
@role_required(Role.ADMIN)
def reactivate_question(question_id: int) -> ResponseReturnValue:
    question = questions.get_question(question_id) or abort(404)
    if ActionForm().validate_on_submit():
        questions.set_active(question, True, actor=current_user.login, origin=current_origin())
        flash(_("The question is offered again."), "success")
    return redirect(url_for("admin.questions_page"), code=303)


@blueprint.post("/questions/<id(maximum=2147483647):question_id>/move")
@role_required(Role.ADMIN)
def move_question(question_id: int) -> ResponseReturnValue:
    question = questions.get_question(question_id) or abort(404)
    steps = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if steps is None or not ActionForm().validate_on_submit():
        abort(400)
    if questions.move(question, steps, actor=current_user.login, origin=current_origin()):
        flash(_("The question was moved."), "success")
    return redirect(url_for("admin.questions_page", _anchor=f"question-{question.id}"), code=303)


# Password changes left open ------------------------------------------------


@blueprint.get("/password-changes")
@role_required(Role.ADMIN)
def password_changes_page() -> ResponseReturnValue:
    """Changes whose outcome is not known yet: the sweeper's backlog, for staff to look at."""
    minutes = current_app.config["RECONCILE_AFTER_MINUTES"]
    return render_template("admin/password_changes.html", changes=unsettled(), minutes=minutes)
