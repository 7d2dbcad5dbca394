"""`selfservice deliver-mail`: send the outbox, once or as a long-running worker."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from selfservice.config import ConfigError
from selfservice.mail.delivery import PassResult, deliver_due, run_worker
from selfservice.mail.smtp import SmtpSettings
from selfservice.portal.reconcile import run_configured_sweep
from selfservice.workers import StopFlag, max_seconds_option, stopped_by_signals, worker_name


@click.command("deliver-mail")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (status 1 if the relay is down).")
@max_seconds_option
@with_appcontext
def deliver_mail_command(once: bool, max_seconds: float | None) -> None:
    """Send the outbox over SMTP, with retries and backoff; several workers may run at once."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        click.echo(
            "SMTP_HOST is not set: the outbox is not delivered "
            "(in demo mode, read the mail at /demo/mail). Nothing to do."
        )
        return
    try:
        SmtpSettings.from_config(config)
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    worker = worker_name()
    if once:
        result = deliver_due(config, worker=worker)
        click.echo(f"mail: {result.summary()}")
        if result.relay_error:
            raise SystemExit(1)
        return
    stop = StopFlag()
    poll = config["MAIL_POLL_SECONDS"]
    click.echo(f"mail worker {worker} started: polling every {poll} s, stop with SIGTERM or Ctrl-C")
    with stopped_by_signals(stop):
        totals = run_worker(
            config,
            worker=worker,
            stop=stop,
            poll_seconds=poll,
            max_seconds=max_seconds,
            report=_report,
            before_pass=_sweep_password_changes,
        )
    click.echo(f"mail worker {worker} stopped: {totals.summary()}")


def _sweep_password_changes() -> None:
    """Settle password changes left open (lost reply, killed worker): their notices go out now."""
    sweep = run_configured_sweep()
    if sum(sweep.counts.values()):
        click.echo(f"password changes settled: {sweep.summary()}")


def _report(result: PassResult) -> None:
    click.echo(f"mail: {result.summary()}")
