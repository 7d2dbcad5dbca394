"""Sign in and sign out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from selfservice.auth import services
from selfservice.auth.forms import SignInForm
from selfservice.auth.sessions import end_session, start_session
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Account
from selfservice.i18n import _
from selfservice.portal.enrollment import invite_to_enroll
from selfservice.security.throttling import throttle
from selfservice.web import current_origin, is_safe_next

blueprint = Blueprint("auth", __name__)


@blueprint.route("/login", methods=["GET", "POST"])
@throttle("SIGN_IN_RATE_LIMIT")
def login() -> ResponseReturnValue:
    form = SignInForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        config, origin = current_app.config, current_origin()
        account = services.sign_in(get_directory(), config, form.login.data, form.password.data, origin)
        if account is not None:
            start_session(account)
            return redirect(_landing(account, form.next.data), code=303)
        form.password.errors.append(_("That login and password do not match our records."))
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


def _landing(account: Account, target: str | None) -> str:
    """Where a fresh sign-in goes: a forced change first, then the page asked for, then enrollment."""
    if account.must_change:
        flash(_("Your password was reset. Please choose a new password now."), "info")
        return url_for("portal.change_password")
    if is_safe_next(target):
        return str(target)
    if invite_to_enroll(account):
        flash(_("Welcome! Please set up your security questions now."), "info")
        return url_for("portal.enroll")
    return url_for("site.home")


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    services.sign_out(current_user.login, current_origin())
    end_session()
    flash(_("You are signed out."), "info")
    return redirect(url_for("site.home"), code=303)
