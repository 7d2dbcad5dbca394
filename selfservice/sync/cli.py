"""`selfservice sync run|status|retry|give-up`: the sync worker and the operators' view of its queue."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from selfservice.sync import get_sync
from selfservice.sync.models import SyncStatus
from selfservice.sync.services import give_up, retry_now, target_states
from selfservice.sync.worker import SyncPassResult, run_worker, sync_due
from selfservice.timeutil import utcnow
from selfservice.workers import StopFlag, max_seconds_option, stopped_by_signals, worker_name


@click.group("sync")
def sync_group() -> None:
    """Password synchronization to the SYNC_TARGETS directories."""


@sync_group.command("run")
@click.option("--once", is_flag=True, help="Apply what is due now, then exit.")
@max_seconds_option
@with_appcontext
def run_command(once: bool, max_seconds: float | None) -> None:
    """Apply queued password changes to every target, with retries; several workers may run at once."""
    config, sync = current_app.config, get_sync()
    worker = worker_name()
    if not sync.targets:
        # Writes left for targets no longer configured are settled (and their passwords deleted).
        result = sync_due(config, sync, worker=worker)
        click.echo(f"SYNC_TARGETS is empty: nothing to synchronize ({result.summary()}).")
        return
    if once:
        click.echo(f"sync: {sync_due(config, sync, worker=worker).summary()}")
        return
    stop = StopFlag()
    poll = config["SYNC_POLL_SECONDS"]
    click.echo(f"sync worker {worker} started: polling every {poll} s, stop with SIGTERM or Ctrl-C")
    with stopped_by_signals(stop):
        totals = run_worker(
            config, sync, worker=worker, stop=stop, poll_seconds=poll, max_seconds=max_seconds, report=_report
        )
    click.echo(f"sync worker {worker} stopped: {totals.summary()}")


def _report(result: SyncPassResult) -> None:
    click.echo(f"sync: {result.summary()}")


@sync_group.command("status")
@with_appcontext
def status_command() -> None:
    """Per target: writes pending, done and not delivered. Exit status 1 when a write is overdue."""
    promise = timedelta(minutes=current_app.config["SYNC_PROMISE_MINUTES"])
    states = target_states(get_sync(), overdue_before=utcnow() - promise)
    if not states:
        click.echo("No sync targets are configured and the queue is empty.")
        return
    for state in states:
        counts = ", ".join(f"{status.value} {state.counts[status.value]}" for status in SyncStatus)
        since = state.oldest_queued
        oldest = f"; oldest pending since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        late = f"; {state.overdue} overdue" if state.overdue else ""
        click.echo(f"{state.name} ({state.kind}): {counts}{oldest}{late}")
    if any(state.overdue for state in states):
        raise SystemExit(1)


@sync_group.command("retry")
@click.option("--target", default=None, help="Only this target's writes (by name).")
@with_appcontext
def retry_command(target: str | None) -> None:
    """Make every pending write due now (after a target that was down is back)."""
    if target and get_sync().target(target) is None:
        raise click.BadParameter(f"no sync target is named {target!r}", param_hint="--target")
    count = retry_now(target=target, actor="cli")
    click.echo(f"{count} pending writes are due now; `selfservice sync run --once` applies them.")


@sync_group.command("give-up")
@click.argument("write_id", type=click.IntRange(min=1))
@with_appcontext
def give_up_command(write_id: int) -> None:
    """Stop trying one pending write (its encrypted password is deleted)."""
    if give_up(write_id, actor="cli") is None:
        raise click.ClickException(f"write {write_id} is not pending")
    click.echo(f"write {write_id}: given up")
