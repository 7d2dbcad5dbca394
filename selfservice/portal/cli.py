"""`selfservice reconcile`: settle password changes whose outcome was never recorded."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from selfservice.directory import get_directory
from selfservice.portal.reconcile import reconcile
from selfservice.security import get_security


@click.command("reconcile")
@click.option(
    "--older-than-minutes",
    type=click.FloatRange(min=0),
    default=None,
    help="Settle open changes started at least this long ago (default: RECONCILE_AFTER_MINUTES).",
)
@with_appcontext
def reconcile_command(older_than_minutes: float | None) -> None:
    """Settle open password changes from the directory's own record of each password's last change."""
    minutes = (
        current_app.config["RECONCILE_AFTER_MINUTES"] if older_than_minutes is None else older_than_minutes
    )
    sweep = reconcile(get_directory(), get_security(), older_than=timedelta(minutes=minutes))
    click.echo(f"password changes: {sweep.summary()}")
