"""The `selfservice` command: Flask's own commands plus the portal's."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from flask_migrate import upgrade
from flask_migrate.cli import db as db_group
from werkzeug.serving import run_simple

from selfservice import create_app
from selfservice.accounts.cli import accounts_group
from selfservice.admin.cli import COMMANDS as ADMIN_COMMANDS
from selfservice.api.cli import COMMANDS as API_COMMANDS
from selfservice.config import ConfigError, masked
from selfservice.mail.cli import deliver_mail_command
from selfservice.portal.cli import reconcile_command
from selfservice.sync import get_sync
from selfservice.sync.cli import sync_group
from selfservice.sync.services import check_targets


def _create_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


class PortalGroup(FlaskGroup):
    """Flask's group, whose --help lists every command even when the settings cannot load."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except click.ClickException:
            self._load_plugin_commands()
            return sorted(click.Group.list_commands(self, ctx))
        return super().list_commands(ctx)


@click.group(cls=PortalGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """selfservice: self-service password portal for a school district."""


@main.command("check")
@click.option("--account", "login", default=None, help="Show how the portal sees this account.")
@click.option("--settings/--no-settings", default=True, help="Print the effective settings first.")
@with_appcontext
def check_command(login: str | None, settings: bool) -> None:
    """Prove the setup on the live services: one line per check, non-zero exit on any failure."""
    from selfservice import resource_dir
    from selfservice.directory import get_directory
    from selfservice.doctor import diagnose, failed
    from selfservice.extensions import db

    if settings:
        for key, value in masked(current_app.config).items():
            click.echo(f"{key} = {value!r}")
        click.echo("")
    findings = diagnose(current_app.config, get_directory(), db.engine, resource_dir("migrations"))
    findings += check_targets(get_sync(), current_app.config)
    for finding in findings:
        click.echo(finding.line())
    if login is not None:
        _show_account(login)
    if failed(findings):
        click.echo("\nselfservice check: FAILED (fix the lines marked FAIL, then run it again)")
        sys.exit(1)
    click.echo("\nselfservice check: OK")


def _show_account(login: str) -> None:
    from selfservice.directory import get_directory
    from selfservice.directory.interfaces import DirectoryError
    from selfservice.doctor.account import describe_account
    from selfservice.security import get_security

    click.echo(f"\naccount {login!r}:")
    try:
        account = get_directory().find(login)
    except DirectoryError as exc:
        click.echo(f"  cannot look it up: {exc}")
        return
    locked_until = get_security().lockout.locked_until(account.key) if account else None
    for line in describe_account(account, login, locked_until):
        click.echo(f"  {line}")


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
@click.option("--keep", is_flag=True, help="Keep the last run's demo database instead of starting fresh.")
def demo_command(host: str, port: int, instance_path: Path | None, keep: bool) -> None:
    """Start the demo afresh (demo.sqlite in the instance folder), seed the demo accounts and serve."""
    from selfservice.demo import DEMO_PASSWORD, demo_settings, seed_demo

    app = create_app(demo_settings(instance_path or instance_folder(), keep=keep))
    with app.app_context():
        upgrade()
        accounts = seed_demo()
    click.echo(f"selfservice demo on http://{host}:{port}/  (mail: http://{host}:{port}/demo/mail)")
    click.echo(f"Every demo account uses the password: {DEMO_PASSWORD}")
    for account in accounts:
        click.echo(f"  {account.login:<10} {account.kind.value:<8} {account.display_name}  {_roles(account)}")
    # app.run() refuses to start inside a `flask` CLI command; serve directly instead.
    run_simple(host, port, app, threaded=True)


@main.command("serve", with_appcontext=False, context_settings={"ignore_unknown_options": True})
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="Address gunicorn listens on.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: the WEB_WORKERS setting); WEB_WORKERS follows, so the two agree.",
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per worker.")
@click.option(
    "--compile-only",
    is_flag=True,
    help="Write the workers' bytecode and exit (after each install or upgrade, as the install's owner).",
)
@click.argument("gunicorn_options", nargs=-1, type=click.UNPROCESSED)
def serve_command(
    bind: str, workers: int | None, threads: int | None, compile_only: bool, gunicorn_options: tuple[str, ...]
) -> None:
    """Serve the portal with gunicorn as production should (options after -- go to gunicorn)."""
    from importlib.util import find_spec

    from selfservice.config import load_settings
    from selfservice.serving import gunicorn_argv, optimize_level, precompile, worker_environment

    if workers is None:
        try:
            workers = int(load_settings(instance_folder())["WEB_WORKERS"])
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from exc
    environment = worker_environment(os.environ, workers)
    unwritable = precompile(optimize_level(environment))
    for folder in unwritable:
        click.echo(
            f"warning: {folder} is not writable, so workers compile its modules at each start "
            "(more memory); run 'selfservice serve --compile-only' once as its owner",
            err=True,
        )
    if compile_only:
        if unwritable:
            raise click.ClickException("some folders could not be compiled")
        click.echo("bytecode written")
        return
    if find_spec("gunicorn") is None:
        raise click.ClickException("gunicorn is not installed: pip install 'selfservice[server]'")
    argv = gunicorn_argv(bind, workers, threads=threads, extra=gunicorn_options)
    os.execve(argv[0], argv, environment)  # noqa: S606 - gunicorn replaces this process, as systemd expects


def _roles(account: Any) -> str:
    return ", ".join(sorted(role.value for role in account.roles))


@main.command("init", with_appcontext=False)
@click.option(
    "--directory",
    type=click.Choice(["builtin", "openldap", "ad"]),
    default="builtin",
    show_default=True,
    help="Where passwords live.",
)
@click.option(
    "--instance",
    "instance_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instance folder (default: SELFSERVICE_INSTANCE_PATH, else the app's instance folder).",
)
@click.option("--base-url", default="", help="The portal's public https:// address (BASE_URL).")
@click.option("--force", is_flag=True, help="Replace an existing config.toml.")
def init_command(directory: str, instance_path: Path | None, base_url: str, force: bool) -> None:
    """Write a commented instance config.toml with a fresh secret key, and say where."""
    from selfservice.instance_config import config_text

    folder = instance_path or instance_folder()
    target = folder / "config.toml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists already (--force replaces it)")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(config_text(directory, base_url=base_url), encoding="utf-8")
    target.chmod(0o600)  # it holds the secret key
    click.echo(f"Wrote {target}")
    if not base_url:
        click.echo("Set base_url in it (or pass --base-url): production refuses to start without it.")
    click.echo("Edit it, then run `selfservice db upgrade` and `selfservice check`.")


def instance_folder() -> Path:
    """The instance folder the app would use: SELFSERVICE_INSTANCE_PATH, else Flask's default."""
    configured = os.environ.get("SELFSERVICE_INSTANCE_PATH")
    return Path(configured).resolve() if configured else Path(Flask("selfservice").instance_path)


main.add_command(deliver_mail_command)
main.add_command(reconcile_command)
main.add_command(accounts_group)
main.add_command(db_group)
main.add_command(sync_group)
for _command in (*ADMIN_COMMANDS, *API_COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":
    main()
