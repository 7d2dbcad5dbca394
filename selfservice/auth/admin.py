"""Admin pages for one account's sign-in: end every session, reset the second factor."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from selfservice.auth import second_factor, services, store
from selfservice.auth.sessions import role_required
from selfservice.directory import get_directory
from selfservice.directory.interfaces import Account, Role
from selfservice.i18n import _, _l, ngettext
from selfservice.web import current_origin

blueprint = Blueprint("accounts", __name__, url_prefix="/admin/accounts")

#: Account keys are the directory's unique ids: UUIDs, GUIDs or builtin row ids.
ACCOUNT_KEY = re.compile(r"[A-Za-z0-9-]{1,64}")


class LookupForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    login = StringField(
        _l("Student ID, username or email"),
        validators=[Optional(), Length(max=254)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )


class ActionForm(FlaskForm):
    """A bare POST button: just the CSRF token."""


@blueprint.get("/")
@role_required(Role.ADMIN)
def lookup() -> ResponseReturnValue:
    form = LookupForm(formdata=request.args)
    if not form.validate():
        return render_template("admin/accounts.html", form=form, account=None, searched=False), 400
    login = (form.login.data or "").strip()
    account = get_directory().find(login) if login else None
    facts = _facts(account) if account else {}
    page = render_template(
        "admin/accounts.html", form=form, account=account, searched=bool(login), action=ActionForm(), **facts
    )
    return page


def _facts(account: Account) -> dict[str, object]:
    return {
        "sessions": store.live_session_count(account.key),
        "factor_enrolled": second_factor.enrolled(account.key),
        "codes_left": second_factor.recovery_codes_left(account.key),
    }


def _account(account_key: str) -> Account:
    if not ACCOUNT_KEY.fullmatch(account_key):
        abort(404)
    return get_directory().get(account_key) or abort(404)


@blueprint.post("/<account_key>/end-sessions")
@role_required(Role.ADMIN)
def end_sessions(account_key: str) -> ResponseReturnValue:
    account = _account(account_key)
    if not ActionForm().validate_on_submit():
        abort(400)
    ended = services.end_every_session(
        account.key, account.login, actor=current_user.login, origin=current_origin()
    )
    flash(
        ngettext(
            "%(num)d session of %(login)s ended.",
            "%(num)d sessions of %(login)s ended.",
            ended,
            login=account.login,
        ),
        "success",
    )
    return redirect(url_for(".lookup", login=account.login), code=303)


@blueprint.post("/<account_key>/reset-second-factor")
@role_required(Role.ADMIN)
def reset_second_factor(account_key: str) -> ResponseReturnValue:
    account = _account(account_key)
    if not ActionForm().validate_on_submit():
        abort(400)
    if account.key == current_user.key:
        flash(_("Another administrator must reset your own second factor."), "error")
        return redirect(url_for(".lookup", login=account.login), code=303)
    second_factor.reset(
        account.key, account.login, actor=current_user.login, origin=current_origin(), holder=account
    )
    flash(
        _(
            "The second factor of %(login)s is reset: they set it up again at their next sign-in.",
            login=account.login,
        ),
        "success",
    )
    return redirect(url_for(".lookup", login=account.login), code=303)
