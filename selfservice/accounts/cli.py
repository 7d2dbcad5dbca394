"""`selfservice accounts ...`: the built-in directory's accounts from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from selfservice.accounts.imports import (
    ImportRefused,
    check_utf8,
    count_rows,
    import_accounts,
    read_rows,
)
from selfservice.audit.services import SYSTEM, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import end_sessions
from selfservice.directory.models import DirectoryAccount
from selfservice.extensions import db

#: How many refused rows the report prints before summing up the rest.
SHOWN_REFUSALS = 50


@click.group("accounts")
def accounts_group() -> None:
    """Accounts of the built-in directory (DIRECTORY = builtin)."""


@accounts_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report, but change nothing.")
@with_appcontext
def import_command(csv_file: Path, dry_run: bool) -> None:
    """Create or update accounts from a CSV export (login, kind, names, IDs, email, groups...)."""
    _require_builtin()
    with csv_file.open("rb") as raw, csv_file.open(encoding="utf-8-sig", newline="") as handle:
        try:
            check_utf8(raw)
            total = count_rows(handle)
            handle.seek(0)
            _header, rows = read_rows(handle)
        except ImportRefused as refused:
            raise click.ClickException(f"{csv_file}: {refused}") from refused
        if sys.stdout.isatty():
            with click.progressbar(length=max(total, 0), label="Importing", file=sys.stderr) as bar:
                report = import_accounts(rows, current_app.config, dry_run=dry_run, progress=bar.update)
        else:
            report = import_accounts(rows, current_app.config, dry_run=dry_run)
    what = "would be" if dry_run else "were"
    click.echo(
        f"{report.rows} rows: {report.created} {what} created, {report.updated} {what} updated, "
        f"{report.unchanged} unchanged, {len(report.refused)} refused"
    )
    for refusal in report.refused[:SHOWN_REFUSALS]:
        click.echo(f"  line {refusal.line} ({refusal.login or 'no login'}): {refusal.reason}")
    if len(report.refused) > SHOWN_REFUSALS:
        click.echo(f"  ... and {len(report.refused) - SHOWN_REFUSALS} more refused rows")
    if report.refused:
        sys.exit(1)


@accounts_group.command("disable")
@click.argument("login")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@with_appcontext
def disable_command(login: str, enable: bool) -> None:
    """Disable an account: it can no longer sign in or reset its password, and is signed out now."""
    account = _set_flag(login, "disabled", not enable, Tag.ACCOUNT_DISABLED)
    click.echo(f"{account.login}: {'disabled' if account.disabled else 'enabled'}")


@accounts_group.command("set-must-change")
@click.argument("login")
@click.option("--clear", is_flag=True, help="Clear the flag instead.")
@with_appcontext
def must_change_command(login: str, clear: bool) -> None:
    """Make an account change its password at its next sign-in."""
    account = _set_flag(login, "must_change", not clear, Tag.MUST_CHANGE_SET)
    click.echo(
        f"{account.login}: {'must change the password' if account.must_change else 'no change required'}"
    )


def _set_flag(login: str, flag: str, value: bool, tag: Tag) -> DirectoryAccount:
    """Set one of the account's flags, audited, in one transaction; disabling also signs it out."""
    account = _account(login)
    setattr(account, flag, value)
    if flag == "disabled" and value:  # not at the next session recheck: out at once
        end_sessions(account.id, commit=False)
    record(
        tag, origin=SYSTEM, subject=account.login, subject_key=account.id, details={flag: value}, commit=False
    )
    db.session.commit()
    return account


def _require_builtin() -> None:
    if current_app.config["DIRECTORY"] not in {"builtin", "demo"}:
        raise click.ClickException(
            f"DIRECTORY is {current_app.config['DIRECTORY']!r}: accounts live in that directory, "
            "manage them there (these commands are for the built-in directory)"
        )


def _account(login: str) -> DirectoryAccount:
    _require_builtin()
    account = db.session.scalar(
        select(DirectoryAccount).where(func.lower(DirectoryAccount.login) == login.lower())
    )
    if account is None:
        raise click.ClickException(f"no built-in account with the login {login!r}")
    return account
