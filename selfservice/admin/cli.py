"""Operators' twins of the admin console: unlock, read the audit log, purge, seed a benchmark."""

from __future__ import annotations

import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext

from selfservice.admin import audit_log, purge
from selfservice.admin.audit_log import AuditQuery
from selfservice.admin.timerange import parse_moment
from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.portal.passwords import AccountDisabled
from selfservice.portal.unlock import unlock_account
from selfservice.security import get_security
from selfservice.timeutil import utcnow

CLI_ACTOR = "cli"


@click.command("unlock")
@click.argument("login")
@with_appcontext
def unlock_command(login: str) -> None:
    """Unlock self-service for LOGIN (student ID, username or email) and tell them by mail."""
    account = get_directory().find(login)
    if account is None:
        raise click.ClickException(f"no account found for {login!r}")
    try:
        was_locked = unlock_account(get_directory(), get_security(), account, actor=CLI_ACTOR, origin=SYSTEM)
    except AccountDisabled as exc:
        raise click.ClickException(
            f"{account.login} is disabled by an administrator in the directory; enable it there first"
        ) from exc
    state = "was locked; unlocked" if was_locked else "was not locked; failures cleared"
    click.echo(f"{account.login}: {state}. The account holder can try self-service again now.")


def _since(value: str | None) -> datetime | None:
    """Read --since in the district's time zone (needs the app, so not a click callback)."""
    if not value:
        return None
    try:
        return parse_moment(value, ZoneInfo(current_app.config["TIME_ZONE"]), now=utcnow())
    except (ValueError, OverflowError) as exc:
        raise click.BadParameter(
            "use an ISO date or time (2026-03-01, 2026-03-01T08:30) or Nd / Nh", param_hint="--since"
        ) from exc


def _tag(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value and value not in {tag.value for tag in Tag}:
        names = ", ".join(sorted(tag.value for tag in Tag))
        raise click.BadParameter(f"unknown tag; one of: {names}")
    return value


@click.command("audit")
@click.option("--since", help="ISO date or time, or a span back from now: 7d, 48h.")
@click.option("--tag", callback=_tag, help="Only events with this tag, e.g. account:selfservice:locked.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="CSV (the admin console's export format) instead of a table."
)
@with_appcontext
def audit_command(since: str | None, tag: str | None, as_csv: bool) -> None:
    """Print audit events, newest first, streamed (a year of events does not fill memory)."""
    query = AuditQuery(tags=(tag,) if tag else (), since=_since(since))
    if as_csv:
        for chunk in audit_log.csv_lines(query):
            sys.stdout.write(chunk)
        return
    for row in audit_log.iter_events(query):
        event = dict(zip(audit_log.CSV_COLUMNS, row, strict=True))
        click.echo(
            f"{event['created_at']:%Y-%m-%d %H:%M:%S}Z  {event['tag']:<32} {event['outcome']:<9} "
            f"{event['subject'] or '-':<20} {event['actor'] or '-':<12} {event['ip'] or '-'}"
        )


@click.command("purge")
@click.option(
    "--older-than",
    "older_than",
    type=click.IntRange(min=1, max=36_500),  # a century at most: the cut-off must be a date after year 1
    default=None,
    help="Days to keep (all kinds).",
)
@with_appcontext
def purge_command(older_than: int | None) -> None:
    """Delete what is past retention: audit events and rate-limit breach counts, sent or failed
    mail, settled sync writes and password-change intents, closed help requests.

    Without --older-than each kind keeps RETENTION_DAYS_AUDIT, RETENTION_DAYS_MAIL and
    RETENTION_DAYS_REQUESTS days.
    """
    retention = purge.Retention.from_settings(
        current_app.config, audit_days=older_than, mail_days=older_than, requests_days=older_than
    )
    counts = purge.purge(retention, now=utcnow(), actor=CLI_ACTOR, origin=SYSTEM)
    click.echo(
        f"deleted {counts['audit_events']} audit events (older than {retention.audit_days} days), "
        f"{counts['mail']} mail messages ({retention.mail_days} days), "
        f"{counts['help_requests']} help requests ({retention.requests_days} days), "
        f"{counts['sync_writes']} settled sync writes ({retention.mail_days} days), "
        f"{counts['pending_changes']} settled password-change intents ({retention.mail_days} days), "
        f"{counts['rate_limit_breaches']} rate-limit breach counts ({retention.audit_days} days)"
    )


@click.command("seed-audit")
@click.option("--events", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.option("--seed", type=int, default=5, show_default=True, help="Random seed (same seed, same events).")
@click.option("--force", is_flag=True, help="Run even outside demo, debug and test settings.")
@with_appcontext
def seed_audit_command(events: int, days: int, seed: int, force: bool) -> None:
    """Fill the audit log with made-up events for benchmarks (never on a live site)."""
    from selfservice.admin.seeding import seed_audit

    config = current_app.config
    if not (force or config["DEMO"] or config["DEBUG"] or config["TESTING"]):
        raise click.ClickException("this writes made-up audit events: use --force on a scratch database only")

    started = utcnow()
    written = seed_audit(events, days=days, seed=seed, echo=click.echo)
    click.echo(f"wrote {written} audit events in {(utcnow() - started).total_seconds():.1f} s")


COMMANDS = (unlock_command, audit_command, purge_command, seed_audit_command)
