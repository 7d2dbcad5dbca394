"""Sign in (with the staff second factor where it is required) and sign out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from selfservice.auth import second_factor, services, store
from selfservice.auth.forms import SecondFactorForm, SecondFactorSetupForm, SignInForm
from selfservice.auth.sessions import end_session, start_session
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Account
from selfservice.i18n import _, remember_page_language
from selfservice.portal.enrollment import invite_to_enroll
from selfservice.security.throttling import throttle
from selfservice.timeutil import utcnow
from selfservice.web import current_origin, safe_next

blueprint = Blueprint("auth", __name__)

#: A password proved, the second factor not yet: kept this long, for this many wrong codes.
PENDING_KEY = store.PENDING_KEY
PENDING_SECONDS = 300
PENDING_MAX_TRIES = 5


@blueprint.route("/login", methods=["GET", "POST"])
@throttle("SIGN_IN_RATE_LIMIT")
def login() -> ResponseReturnValue:
    form = SignInForm(next=safe_next(request.args.get("next"), default=""))
    if form.validate_on_submit():
        config, origin = current_app.config, current_origin()
        account = services.sign_in(get_directory(), config, form.login.data, form.password.data, origin)
        if account is not None:
            if _needs_second_factor(account):
                return _hold(account, form.next.data)
            start_session(account)
            remember_page_language(account.key)
            return redirect(_landing(account, form.next.data), code=303)
        form.password.errors.append(_("That login and password do not match our records."))
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


def _landing(account: Account, target: str | None) -> str:
    """Where a fresh sign-in goes: a forced change first, then the page asked for, then enrollment."""
    if account.must_change:
        flash(_("Your password was reset. Please choose a new password now."), "info")
        return url_for("portal.change_password")
    if safe_next(target, default=""):
        return safe_next(target)
    if invite_to_enroll(account):
        flash(_("Welcome! Please set up your security questions now."), "info")
        return url_for("portal.enroll")
    return url_for("site.home")


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    services.sign_out(current_user.login, current_origin(), account_key=current_user.key)
    end_session()
    flash(_("You are signed out."), "info")
    return redirect(url_for("site.home"), code=303)


# Staff second factor ---------------------------------------------------------------


def _needs_second_factor(account: Account) -> bool:
    return second_factor.required_for(current_app.config, account.roles) or second_factor.enrolled(
        account.key
    )


def _hold(account: Account, target: str | None) -> ResponseReturnValue:
    """Password proved: keep only who it was (on a new session id) until the code is given."""
    end_session()
    session[PENDING_KEY] = {
        "key": account.key,
        "login": account.login,
        "at": utcnow().timestamp(),
        "next": safe_next(target, default=""),
        "tries": 0,
    }
    endpoint = (
        "auth.second_factor_page" if second_factor.enrolled(account.key) else "auth.second_factor_setup"
    )
    return redirect(url_for(endpoint), code=303)


def _pending() -> dict[str, Any] | None:
    pending = session.get(PENDING_KEY)
    if not pending or utcnow().timestamp() - pending["at"] > PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    return dict(pending)


def _finish(pending: dict[str, Any]) -> Account | None:
    """Start the real session for the account as the directory has it now."""
    account = get_directory().get(pending["key"])
    if account is None or account.disabled:
        return None
    start_session(account)
    return account


def _start_again() -> ResponseReturnValue:
    session.pop(PENDING_KEY, None)
    flash(_("Please sign in again."), "info")
    return redirect(url_for("auth.login"), code=303)


@blueprint.route("/login/second-factor", methods=["GET", "POST"])
@throttle("SIGN_IN_RATE_LIMIT")
def second_factor_page() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        return _start_again()
    if not second_factor.enrolled(pending["key"]):
        return redirect(url_for("auth.second_factor_setup"), code=303)
    form = SecondFactorForm()
    if form.validate_on_submit():
        if second_factor.verify(pending["key"], pending["login"], form.code.data, current_origin()):
            account = _finish(pending)
            if account is None:
                return _start_again()
            return redirect(_landing(account, pending["next"]), code=303)
        pending["tries"] += 1
        if pending["tries"] >= PENDING_MAX_TRIES:
            return _start_again()
        session[PENDING_KEY] = pending
        form.code.errors.append(_("That code is not right. Check the time on your phone and try again."))
    return render_template("auth/second_factor.html", form=form), 400 if form.errors else 200


@blueprint.route("/login/second-factor/setup", methods=["GET", "POST"])
@throttle("SIGN_IN_RATE_LIMIT")
def second_factor_setup() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        return _start_again()
    key, login = pending["key"], pending["login"]
    if second_factor.enrolled(key):
        return redirect(url_for("auth.second_factor_page"), code=303)
    issuer = current_app.config["DISTRICT_NAME"]
    enrollment = second_factor.pending_enrollment(key, login, issuer) or second_factor.begin_enrollment(
        key, login, issuer
    )
    form = SecondFactorSetupForm()
    if form.validate_on_submit():
        holder = get_directory().get(key)
        codes = second_factor.confirm_enrollment(key, login, form.code.data, current_origin(), holder)
        if codes is not None:
            account = _finish(pending)
            if account is None:
                return _start_again()
            target = _landing(account, pending["next"])
            return render_template("auth/recovery_codes.html", codes=codes, target=target)
        form.code.errors.append(_("That code is not right. Check the time on your phone and try again."))
    page = render_template("auth/second_factor_setup.html", form=form, enrollment=enrollment)
    return page, 400 if form.errors else 200
