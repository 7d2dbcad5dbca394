"""`selfservice api-client create|list|revoke` and `selfservice deliver-webhooks`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from selfservice.api import clients, webhooks
from selfservice.api.clients import Scope
from selfservice.audit.services import SYSTEM
from selfservice.i18n import _
from selfservice.workers import StopFlag, max_seconds_option, run_passes, stopped_by_signals, worker_name

CLI_ACTOR = "cli"

api_client_group = AppGroup("api-client", help="Tokens for the district's other systems (see docs/api.md).")


@api_client_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([scope.value for scope in Scope]),
    help="What the client may do; repeat for several.",
)
@click.option(
    "--rate-limit",
    default=None,
    help='Calls allowed, e.g. "120 per minute" (default: API_DEFAULT_RATE_LIMIT).',
)
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None, help="Default: never.")
@with_appcontext
def create_command(
    name: str, scopes: tuple[str, ...], rate_limit: str | None, expires_in_days: int | None
) -> None:
    """Create client NAME and print its token (shown this once only)."""
    try:
        issued = clients.create_client(
            name,
            list(scopes),
            rate_limit=rate_limit or current_app.config["API_DEFAULT_RATE_LIMIT"],
            expires_in_days=expires_in_days,
            actor=CLI_ACTOR,
            origin=SYSTEM,
        )
    except clients.ClientRefused as refused:
        raise click.ClickException(
            "; ".join(f"{field}: {_(message)}" for field, message in refused.errors.items())
        ) from None
    click.echo(f"API client {issued.client.name} created. Its token (shown once, keep it secret):")
    click.echo(issued.token)


@api_client_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every client: scopes, rate limit, expiry, last use and whether it is revoked."""
    from selfservice.timeutil import utcnow

    now = utcnow()
    for client in clients.all_clients():
        state = "revoked" if client.revoked_at else ("active" if client.is_live(now) else "expired")
        last = client.last_used_at.isoformat(timespec="seconds") if client.last_used_at else "never used"
        expires = client.expires_at.isoformat(timespec="seconds") if client.expires_at else "never"
        click.echo(
            f"{client.name}\t{state}\t{','.join(client.scopes)}\t{client.rate_limit}\t"
            f"expires {expires}\tlast used {last}\t{client.token_hint}…"
        )


@api_client_group.command("revoke")
@click.argument("name")
@with_appcontext
def revoke_command(name: str) -> None:
    """Stop client NAME's token from working, at once."""
    client = clients.find_client(name)
    if client is None:
        raise click.ClickException(f"no API client named {name!r}")
    if clients.revoke(client, actor=CLI_ACTOR, origin=SYSTEM):
        click.echo(f"API client {client.name}: token revoked.")
    else:
        click.echo(f"API client {client.name} was already revoked.")


@click.command("deliver-webhooks")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@max_seconds_option
@with_appcontext
def deliver_webhooks_command(once: bool, max_seconds: float | None) -> None:
    """POST the queued webhook deliveries, with retries and backoff; several workers may run at once."""
    config = current_app.config
    if not config["WEBHOOK_URLS"]:
        click.echo("WEBHOOK_URLS is not set: nothing to deliver.")
        return
    worker = worker_name()
    if once:
        click.echo(f"webhooks: {webhooks.deliver_due(config, worker=worker).summary()}")
        return
    stop = StopFlag()
    poll = config["WEBHOOK_POLL_SECONDS"]
    click.echo(f"webhook worker {worker} started: polling every {poll} s")
    with stopped_by_signals(stop):
        run_passes(
            lambda: webhooks.deliver_due(config, worker=worker, stop=stop),
            webhooks.PassResult,
            name="webhook",
            stop=stop,
            poll_seconds=poll,
            max_seconds=max_seconds,
            report=lambda result: click.echo(f"webhooks: {result.summary()}"),
        )
    click.echo(f"webhook worker {worker} stopped")


COMMANDS = (api_client_group, deliver_webhooks_command)
