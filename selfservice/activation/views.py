"""/activate: a parent claims the Parent Portal account from the letter, in one flow.

Letter details -> code from the mail -> a password -> security questions -> done.
The browser keeps only the step reached, the account key sealed (as /forgot does) and,
after the code, the one-time token of the next step; each step refuses to run out of
order, or twice.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, ngettext

from selfservice.activation import services
from selfservice.activation.forms import ActivationForm
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Account, DirectoryUnavailable
from selfservice.extensions import limiter
from selfservice.i18n import _, remember_page_language
from selfservice.portal import change, enrollment
from selfservice.portal.forms import RecoveryPasswordForm, VerificationCodeForm, enrollment_form
from selfservice.portal.passwords import AccountDisabled, ChangeUnconfirmed, NewPassword, PolicyViolation
from selfservice.portal.recovery import Attempt, seal, unseal
from selfservice.security import get_security
from selfservice.security.throttling import throttle
from selfservice.security.tokens import TokenRefused
from selfservice.site.errors import account_disabled, password_not_changed, password_unconfirmed
from selfservice.web import current_origin

blueprint = Blueprint("activation", __name__, url_prefix="/activate")

STATE_KEY = "activation"
CODE, PASSWORD, QUESTIONS = "code", "password", "questions"
HELP_PAGES = {
    services.Outcome.LOCKED: "locked",
    services.Outcome.LIMITED: "limited",
    services.Outcome.NO_EMAIL: "no-email",
    services.Outcome.ALREADY_ACTIVE: "already-active",
    services.Outcome.TOO_MANY_CODES: "too-many-codes",
}


@blueprint.route("", methods=["GET", "POST"])
@throttle("ACTIVATION_RATE_LIMIT")
def start() -> ResponseReturnValue:
    form = ActivationForm()
    if form.validate_on_submit():
        session.pop(STATE_KEY, None)
        details = services.Details(form.account_number.data, form.pin.data, form.parent_name.data)
        config = current_app.config
        limits = services.Limits.from_settings(limiter, config)
        started = services.start(get_directory(), get_security(), config, limits, details, current_origin())
        if started.outcome is services.Outcome.CODE_SENT and started.account_key:
            _remember(started.account_key, CODE)
            return redirect(url_for(".code"), code=303)
        if started.outcome is services.Outcome.NO_MATCH:
            form.form_errors.append(_no_match())
        else:
            return render_template("activation/help.html", reason=HELP_PAGES[started.outcome])
    return render_template("activation/start.html", form=form), 400 if form.errors else 200


def _no_match() -> str:
    return _(
        "These details do not match our records. Check the account number, the PIN and your name "
        "exactly as they are on the letter, then try again."
    )


@blueprint.route("/code", methods=["GET", "POST"])
@throttle("ACTIVATION_RATE_LIMIT")
def code() -> ResponseReturnValue:
    account = _account_at(CODE)
    if account is None:
        return redirect(url_for(".start"), code=303)
    form = VerificationCodeForm()
    if form.validate_on_submit():
        outcome, tries_left = services.check_code(
            current_app.config, account, form.code.data, current_origin()
        )
        if outcome is services.CodeOutcome.RIGHT:
            remember_page_language(account.key)  # the activation notice goes out in this language
            _remember(account.key, PASSWORD, services.step_token(get_security(), current_app.config, account))
            return redirect(url_for(".password"), code=303)
        if outcome is services.CodeOutcome.SPENT:
            session.pop(STATE_KEY, None)
            return render_template("activation/help.html", reason="code-spent")
        form.code.errors.append(
            ngettext(
                "That code is not right. You have %(num)d try left.",
                "That code is not right. You have %(num)d tries left.",
                tries_left,
            )
        )
    return render_template("activation/code.html", form=form), 400 if form.errors else 200


@blueprint.route("/password", methods=["GET", "POST"])
@throttle("ACTIVATION_RATE_LIMIT")
def password() -> ResponseReturnValue:
    account = _account_at(PASSWORD)
    if account is None:
        return redirect(url_for(".start"), code=303)
    form = RecoveryPasswordForm()
    if form.validate_on_submit():
        new = NewPassword(form.new_password.data, form.confirm.data)
        security, attribute = get_security(), current_app.config["ACTIVATION_DIRECTORY_ATTRIBUTE"]
        try:
            services.set_password(
                get_directory(), security, account, new, current_origin(), token=_token(), attribute=attribute
            )
        except TokenRefused:  # a copy of this step went first
            return _start_over()
        except AccountDisabled:
            return account_disabled(account.kind.value)
        except DirectoryUnavailable:  # nothing was written: the step (and its token) still works
            return password_not_changed(url_for(".password"))
        except ChangeUnconfirmed:  # the sweeper settles it; if nothing changed, the step works again
            return password_unconfirmed(url_for(".password"))
        except PolicyViolation as refused:
            on_new, on_confirm = change.split_problems(refused.problems)
            form.new_password.errors.extend(_(problem) for problem in on_new)
            form.confirm.errors.extend(_(problem) for problem in on_confirm)
        else:
            _remember(account.key, QUESTIONS, services.step_token(security, current_app.config, account))
            return redirect(url_for(".questions"), code=303)
    rules = get_security().password_rules_for_pages(account)
    page = render_template("activation/password.html", form=form, account=account, password_rules=rules)
    return page, 400 if form.errors else 200


@blueprint.route("/questions", methods=["GET", "POST"])
@throttle("ACTIVATION_RATE_LIMIT")
def questions() -> ResponseReturnValue:
    account = _account_at(QUESTIONS)
    if account is None:
        return redirect(url_for(".start"), code=303)
    offered = enrollment.active_questions(str(get_locale()))
    form = enrollment_form(current_app.config["ENROLL_QUESTION_COUNT"], offered)
    if form.validate_on_submit():
        security = get_security()
        if not services.take_step(security, account, _token()):  # a copy of this step went first
            return _start_over()
        try:
            enrollment.enroll(
                account, form.choices(), current_password_for_rules=None, origin=current_origin()
            )
        except enrollment.EnrollmentRefused as refused:
            _show_refusal(form, refused)
            fresh = services.step_token(security, current_app.config, account)  # the same step, a new token
            session[STATE_KEY] = {**session[STATE_KEY], "token": fresh}
        else:
            services.record_enrolled(account, current_origin())
            session.pop(STATE_KEY, None)
            return redirect(url_for(".done"), code=303)
    return render_template(
        "activation/questions.html", form=form, account=account
    ), 400 if form.errors else 200


@blueprint.get("/done")
def done() -> ResponseReturnValue:
    return render_template("activation/done.html")


def _show_refusal(form: Any, refused: enrollment.EnrollmentRefused) -> None:
    slots = form.slots()
    for slot, message in refused.questions.items():
        slots[slot][0].errors.append(_(message))
    for slot, message in refused.answers.items():
        slots[slot][1].errors.append(_(message))
    form.form_errors.extend(_(message) for message in refused.general)


# --- the step reached, kept in the session ----------------------------------------------------


def _remember(account_key: str, stage: str, token: str = "") -> None:
    sealed = seal(current_app.config, Attempt(lookup=secrets.token_urlsafe(12), subject=account_key))
    session[STATE_KEY] = {**sealed, "stage": stage, "since": time.time(), "token": token}


def _token() -> str:
    return str((session.get(STATE_KEY) or {}).get("token") or "")


def _start_over() -> ResponseReturnValue:
    session.pop(STATE_KEY, None)
    return redirect(url_for(".start"), code=303)


def _account_at(stage: str) -> Account | None:
    """The account whose activation is at ``stage`` in this browser, while the flow is fresh.

    After the code, the step's token must still be live: a cookie copied from an earlier
    visit, or kept past a password change, opens nothing.
    """
    state = session.get(STATE_KEY)
    if not isinstance(state, dict) or state.get("stage") != stage:
        return None
    if time.time() - float(state.get("since", 0)) > current_app.config["ACTIVATION_MINUTES"] * 60:
        session.pop(STATE_KEY, None)
        return None
    attempt = unseal(current_app.config, state)
    account = get_directory().get(attempt.subject) if attempt else None
    if account is not None and stage != CODE and not services.step_is_live(get_security(), account, _token()):
        session.pop(STATE_KEY, None)
        return None
    return account
