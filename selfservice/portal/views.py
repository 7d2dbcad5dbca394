"""Self-service pages: /enroll, /forgot, /password."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, abort, current_app, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_login import current_user, login_required

from selfservice.auth.sessions import start_session
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Account, DirectoryUnavailable, InvalidCredentials
from selfservice.i18n import _, ngettext, remember_page_language
from selfservice.portal import change, enrollment, recovery
from selfservice.portal.forms import (
    ChangePasswordForm,
    EnrollmentForm,
    ForgotForm,
    RecoveryPasswordForm,
    VerificationCodeForm,
    enrollment_form,
    question_label,
    recovery_answers_form,
)
from selfservice.portal.passwords import AccountDisabled, ChangeUnconfirmed, NewPassword, PolicyViolation
from selfservice.security import get_security
from selfservice.security.throttling import throttle
from selfservice.security.tokens import TokenRefused
from selfservice.site.errors import account_disabled, password_not_changed, password_unconfirmed
from selfservice.site.pages import render_shared
from selfservice.web import current_origin

blueprint = Blueprint("portal", __name__)


# Enrollment and change password -------------------------------------------------


def _signed_in_account(*, with_roles: bool = True) -> Account:
    """The signed-in holder as the directory knows them now (email, name)."""
    account = get_directory().get(current_user.key, with_roles=with_roles)
    if account is None:
        abort(403)
    return account


@blueprint.route("/enroll", methods=["GET", "POST"])
@login_required
@throttle("PASSWORD_RATE_LIMIT")
def enroll() -> ResponseReturnValue:
    account = _signed_in_account()
    questions = enrollment.active_questions(str(get_locale()))
    form = enrollment_form(current_app.config["ENROLL_QUESTION_COUNT"], questions)
    ask_password = enrollment.reauth_required(current_user.signed_in_at, current_app.config["REAUTH_MINUTES"])
    if form.validate_on_submit() and _identity_confirmed(form, account, ask_password):
        try:
            enrollment.enroll(
                account,
                form.choices(),
                current_password_for_rules=form.current_password.data or None,
                origin=current_origin(),
            )
        except enrollment.EnrollmentRefused as refused:
            _show_refusal(form, refused)
        else:
            flash(_("Your security questions are saved."), "success")
            return redirect(url_for("site.home"), code=303)
    status = enrollment.enrollment_status(account.key)
    page = render_template("portal/enroll.html", form=form, status=status, ask_password=ask_password)
    return page, 400 if form.errors else 200


def _identity_confirmed(form: EnrollmentForm, account: Account, ask_password: bool) -> bool:
    """After REAUTH_MINUTES, changing answers takes the current password, checked at the directory."""
    if not ask_password:
        return True
    password = form.current_password.data or ""
    if not password:
        form.current_password.errors.append(_("Enter your current password to confirm it is you."))
        return False
    if not enrollment.confirm_password(
        get_directory(), current_app.config, account, password, current_origin()
    ):
        form.current_password.errors.append(_("That is not your current password."))
        return False
    return True


def _show_refusal(form: EnrollmentForm, refused: enrollment.EnrollmentRefused) -> None:
    for slot, (select, answer) in enumerate(form.slots()):
        if slot in refused.questions:
            select.errors.append(_(refused.questions[slot]))
        if slot in refused.answers:
            answer.errors.append(_(refused.answers[slot]))
    form.form_errors.extend(_(message) for message in refused.general)


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
@throttle("PASSWORD_RATE_LIMIT")
def change_password() -> ResponseReturnValue:
    form = ChangePasswordForm()
    submitted = form.validate_on_submit()
    # The rules shown and checked are the ones the directory holds this account to (AD: a PSO);
    # its roles are needed only for the new session after a change.
    account = _signed_in_account(with_roles=submitted)
    if submitted:
        try:
            change.change_password(
                get_directory(),
                get_security(),
                account,
                current_password=form.current_password.data,
                new=NewPassword(form.new_password.data, form.confirm.data),
                origin=current_origin(),
                settings=current_app.config,
            )
        except AccountDisabled:
            return account_disabled()
        except DirectoryUnavailable:
            return password_not_changed(url_for("portal.change_password"))
        except ChangeUnconfirmed:
            return password_unconfirmed()
        except InvalidCredentials:
            form.current_password.errors.append(_("That is not your current password."))
        except PolicyViolation as refused:
            on_new, on_confirm = change.split_problems(refused.problems)
            form.new_password.errors.extend(_(problem) for problem in on_new)
            form.confirm.errors.extend(_(problem) for problem in on_confirm)
        else:
            # They just proved the password: keep them signed in, on a new session id, the
            # change done (every other session of the account ended with the change).
            start_session(replace(account, must_change=False), signed_in_at=current_user.signed_in_at)
            session["password_changed"] = True
            return redirect(url_for("portal.password_done"), code=303)
    rules = get_security().password_rules_for_pages(account)
    return render_template(
        "portal/password.html", form=form, password_rules=rules
    ), 400 if form.errors else 200


@blueprint.get("/password/done")
@login_required
def password_done() -> ResponseReturnValue:
    if not session.pop("password_changed", False):
        return redirect(url_for("portal.change_password"), code=303)
    return render_template("portal/password_done.html")


# Forgotten password -------------------------------------------------------------
# The browser keeps only the challenge's lookup HMAC, the sealed subject key (a real
# account's or a decoy's, alike) and the stage: no login, never an answer.

RECOVERY_KEY = "recovery"
HELP_KEY = "recovery_help"


def _attempt(stage: recovery.Stage) -> recovery.Attempt | None:
    state = session.get(RECOVERY_KEY) or {}
    if state.get("stage") != stage.value:
        return None
    return recovery.unseal(current_app.config, state)


def _go(step: recovery.Step, attempt: recovery.Attempt) -> ResponseReturnValue:
    """Remember the next stage and send the person there."""
    session.pop(HELP_KEY, None)
    session.pop(RECOVERY_KEY, None)
    if step.stage is recovery.Stage.HELP:
        session[HELP_KEY] = {
            "reason": step.reason.value if step.reason else None,
            "kind": step.kind.value if step.kind else None,
        }
        if step.reason is recovery.HelpReason.NOT_VERIFIED:
            _keep(attempt, recovery.Stage.QUESTIONS)  # "Try again" leads back to the same questions
        return redirect(url_for("portal.forgot_help"), code=303)
    if step.stage is recovery.Stage.RESET:
        return redirect(url_for("portal.forgot_reset", token=step.token), code=303)
    if step.stage is recovery.Stage.START:
        flash(_("Your questions expired. Please start again."), "info")
        return redirect(url_for("portal.forgot"), code=303)
    _keep(attempt, step.stage)
    return redirect(url_for(f"portal.forgot_{step.stage.value}"), code=303)


def _keep(attempt: recovery.Attempt, stage: recovery.Stage) -> None:
    session[RECOVERY_KEY] = {**recovery.seal(current_app.config, attempt), "stage": stage.value}


@blueprint.route("/forgot", methods=["GET", "POST"])
@throttle("RECOVERY_RATE_LIMIT")
def forgot() -> ResponseReturnValue:
    form = ForgotForm()
    if form.validate_on_submit():
        attempt = recovery.start(get_directory(), current_app.config, form.login.data, current_origin())
        return _go(recovery.Step(recovery.Stage.QUESTIONS), attempt)
    if form.errors:
        return render_template("portal/forgot.html", form=form), 400
    return render_shared("portal/forgot.html", form=form)  # the same page for every anonymous visitor


@blueprint.route("/forgot/questions", methods=["GET", "POST"])
@throttle("RECOVERY_RATE_LIMIT")
def forgot_questions() -> ResponseReturnValue:
    attempt = _attempt(recovery.Stage.QUESTIONS)
    if attempt is None:
        return redirect(url_for("portal.forgot"), code=303)
    questions = recovery.pinned_questions(attempt)
    if not questions:
        return _go(recovery.Step(recovery.Stage.START), attempt)
    language = str(get_locale())
    form = recovery_answers_form(
        [question_label(q.text_in(language), q.language_in(language), language) for q in questions]
    )
    if form.validate_on_submit():
        config, origin = current_app.config, current_origin()
        step = recovery.answer(get_directory(), get_security(), config, attempt, form.answers(), origin)
        return _go(step, attempt)
    return render_template("portal/forgot_questions.html", form=form), 400 if form.errors else 200


@blueprint.route("/forgot/code", methods=["GET", "POST"])
@throttle("RECOVERY_RATE_LIMIT")
def forgot_code() -> ResponseReturnValue:
    attempt = _attempt(recovery.Stage.CODE)
    if attempt is None:
        return redirect(url_for("portal.forgot"), code=303)
    form = VerificationCodeForm()
    if form.validate_on_submit():
        config, origin = current_app.config, current_origin()
        step = recovery.check_code(get_directory(), get_security(), config, attempt, form.code.data, origin)
        if step.stage is not recovery.Stage.CODE:
            return _go(step, attempt)
        form.code.errors.append(
            ngettext(
                "That code is not right. You have %(num)d try left.",
                "That code is not right. You have %(num)d tries left.",
                step.tries_left or 0,
            )
        )
    return render_template("portal/forgot_code.html", form=form), 400 if form.errors else 200


@blueprint.route("/forgot/reset/<token>", methods=["GET", "POST"])
@throttle("RECOVERY_RATE_LIMIT")
def forgot_reset(token: str) -> ResponseReturnValue:
    form = RecoveryPasswordForm()
    directory, security, origin = get_directory(), get_security(), current_origin()
    try:
        account = recovery.open_reset(directory, security, token, origin)
        if form.validate_on_submit():
            new = NewPassword(form.new_password.data, form.confirm.data)
            remember_page_language(account.key)  # the reset notice goes out in this language
            recovery.reset_password(directory, security, account, token, new, origin)
            return redirect(url_for("portal.forgot_done"), code=303)
    except TokenRefused:
        return render_template("portal/forgot_link_refused.html"), 410
    except AccountDisabled:
        return account_disabled()
    except DirectoryUnavailable:
        return password_not_changed(url_for("portal.forgot_reset", token=token))
    except ChangeUnconfirmed:
        return password_unconfirmed(url_for("portal.forgot_reset", token=token))
    except PolicyViolation as refused:
        on_new, on_confirm = change.split_problems(refused.problems)
        form.new_password.errors.extend(_(problem) for problem in on_new)
        form.confirm.errors.extend(_(problem) for problem in on_confirm)
    rules = security.password_rules_for_pages(account)
    page = render_template("portal/forgot_reset.html", form=form, account=account, password_rules=rules)
    return page, 400 if form.errors else 200


@blueprint.get("/forgot/done")
def forgot_done() -> ResponseReturnValue:
    return render_template("portal/forgot_done.html")


@blueprint.get("/forgot/help")
def forgot_help() -> ResponseReturnValue:
    """What to do next. Before the answers were right it never depends on the login (invariant 4)."""
    state = session.get(HELP_KEY) or {}
    if state.get("reason") == recovery.HelpReason.DISABLED.value:
        return render_template("site/account_disabled.html", kind=state.get("kind"))
    return render_template(
        "portal/forgot_help.html",
        reason=state.get("reason"),
        kind=state.get("kind"),
        can_retry=_attempt(recovery.Stage.QUESTIONS) is not None,
    )
