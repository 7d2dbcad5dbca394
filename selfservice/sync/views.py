"""The admin page of the sync queue: pending and failed writes per target, retry and give up."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from selfservice.admin.forms import ActionForm
from selfservice.auth.sessions import role_required
from selfservice.directory.interfaces import Role
from selfservice.i18n import _
from selfservice.sync import get_sync
from selfservice.sync.cli import sync_group
from selfservice.sync.models import SyncStatus
from selfservice.sync.services import PROBLEMS, give_up, retry_now, target_states, writes
from selfservice.web import current_origin

blueprint = Blueprint("sync", __name__, url_prefix="/admin/sync", cli_group=None)
blueprint.cli.add_command(sync_group)


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    zone = ZoneInfo(current_app.config["TIME_ZONE"])

    def local_time(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else ""

    outcome_names = {
        SyncStatus.MISSING.value: _("No such account there"),
        SyncStatus.REFUSED.value: _("Refused by its password rules"),
        SyncStatus.FAILED.value: _("Unreachable: gave up"),
        SyncStatus.GIVEN_UP.value: _("Given up"),  # by an admin, or held unconfirmed too long
    }
    return {"local_time": local_time, "time_zone": zone.key, "outcome_names": outcome_names}


@blueprint.get("/")
@role_required(Role.ADMIN)
def page() -> ResponseReturnValue:
    return render_template(
        "sync/queue.html",
        states=target_states(get_sync()),
        pending=writes(statuses=(SyncStatus.QUEUED,)),
        problems=writes(statuses=PROBLEMS, limit=50),
        form=ActionForm(),
    )


@blueprint.post("/retry")
@role_required(Role.ADMIN)
def retry() -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Try again."), "error")
        return redirect(url_for("sync.page"), code=303)
    target = request.form.get("target") or None
    if target is not None and get_sync().target(target) is None:
        flash(_("There is no sync target by that name."), "error")
        return redirect(url_for("sync.page"), code=303)
    count = retry_now(target=target, actor=current_user.login, origin=current_origin())
    flash(
        _("%(count)d pending changes will be tried again at the worker's next pass.", count=count), "success"
    )
    return redirect(url_for("sync.page"), code=303)


@blueprint.post("/<int(max=9223372036854775807):write_id>/give-up")
@role_required(Role.ADMIN)
def give_up_write(write_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        flash(_("The form expired. Try again."), "error")
        return redirect(url_for("sync.page"), code=303)
    if give_up(write_id, actor=current_user.login, origin=current_origin()) is None:
        flash(_("That change is no longer pending."), "info")
    else:
        flash(_("Given up: the target will not get this change. The password copy is deleted."), "success")
    return redirect(url_for("sync.page"), code=303)
