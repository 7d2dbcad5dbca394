"""The `selfservice` command: Flask's own commands plus the portal's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from selfservice import create_app
from selfservice.admin.cli import COMMANDS as ADMIN_COMMANDS
from selfservice.api.cli import COMMANDS as API_COMMANDS
from selfservice.config import ConfigError, masked
from selfservice.mail.cli import deliver_mail_command
from selfservice.site.services import check_database, check_directory


def _create_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """selfservice: self-service password portal for a school district."""


@main.command("check")
@with_appcontext
def check_command() -> None:
    """Print the effective settings (secrets masked) and test the database and directory."""
    for key, value in masked(current_app.config).items():
        click.echo(f"{key} = {value!r}")
    verdicts = {"database": check_database(), "directory": check_directory()}
    click.echo("")
    for part, state in verdicts.items():
        click.echo(f"{part}: {'OK' if state == 'ok' else 'FAILED (' + state + ')'}")
    if any(state != "ok" for state in verdicts.values()):
        sys.exit(1)


@main.command("demo", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--instance",
    "instance_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo database (default: the app's instance folder).",
)
def demo_command(host: str, port: int, instance_path: Path | None) -> None:
    """Create the demo database, seed the demo accounts and serve the portal."""
    from selfservice.demo import DEMO_PASSWORD, demo_settings, seed_demo

    app = create_app(demo_settings(instance_path))
    with app.app_context():
        upgrade()
        accounts = seed_demo()
    click.echo(f"selfservice demo on http://{host}:{port}/  (mail: http://{host}:{port}/demo/mail)")
    click.echo(f"Every demo account uses the password: {DEMO_PASSWORD}")
    for account in accounts:
        click.echo(f"  {account.login:<10} {account.kind.value:<8} {account.display_name}  {_roles(account)}")
    # app.run() refuses to start inside a `flask` CLI command; serve directly instead.
    run_simple(host, port, app, threaded=True)


def _roles(account: Any) -> str:
    return ", ".join(sorted(role.value for role in account.roles))


main.add_command(deliver_mail_command)
for _command in (*ADMIN_COMMANDS, *API_COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":
    main()
