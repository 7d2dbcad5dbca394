"""/admin/api-clients: admins issue, list and revoke the tokens of the district's other systems."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from selfservice.api import clients
from selfservice.api.cli import COMMANDS
from selfservice.api.clients import SCOPE_LABELS, Scope
from selfservice.api.forms import ApiClientForm, RevokeForm
from selfservice.api.models import ApiClient
from selfservice.auth.sessions import role_required
from selfservice.directory.interfaces import Role
from selfservice.extensions import db
from selfservice.i18n import _
from selfservice.timeutil import utcnow
from selfservice.web import current_origin

blueprint = Blueprint("api_admin", __name__, url_prefix="/admin/api-clients", cli_group=None)
# The commands also live on app.cli, where Flask's test runner and `flask` look.
for _command in COMMANDS:
    blueprint.cli.add_command(_command)


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    zone = ZoneInfo(current_app.config["TIME_ZONE"])

    def local_time(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if moment else ""

    return {
        "local_time": local_time,
        "scope_label": lambda scope: _(SCOPE_LABELS[Scope(scope)]),
        "now": utcnow(),
    }


@blueprint.route("/", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def index() -> ResponseReturnValue:
    form = ApiClientForm()
    if not form.is_submitted():
        form.rate_limit.data = current_app.config["API_DEFAULT_RATE_LIMIT"]
    issued = None
    if form.validate_on_submit():
        try:
            issued = clients.create_client(
                form.name.data,
                form.scopes.data or [],
                rate_limit=form.rate_limit.data,
                expires_in_days=form.expires_in_days.data,
                actor=current_user.login,
                origin=current_origin(),
            )
        except clients.ClientRefused as refused:
            for name, message in refused.errors.items():
                form[name].errors = [_(message)]
    status = 400 if form.errors else 200
    # The token is shown once, in this answer to the POST; it is never stored or put in a URL.
    return render_template(
        "admin/api_clients.html", form=form, issued=issued, every=clients.all_clients(), revoke=RevokeForm()
    ), status


@blueprint.post("/<id(maximum=2147483647):client_id>/revoke")  # an INTEGER column
@role_required(Role.ADMIN)
def revoke(client_id: int) -> ResponseReturnValue:
    client = db.session.get(ApiClient, client_id) or abort(404)
    if RevokeForm().validate_on_submit() and clients.revoke(
        client, actor=current_user.login, origin=current_origin()
    ):
        flash(_("The token of %(name)s no longer works.", name=client.name), "success")
    return redirect(url_for(".index"), code=303)
