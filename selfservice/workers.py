"""What the long-running workers share (mail, sync, webhooks): a name, a stop flag, signals, the loop.

Apart from the mail delivery module (and its smtplib), so that the sync and webhook commands,
which web workers import with their blueprints, do not load mail delivery (issue 17, P5).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol, TypeVar

import click

from selfservice.dbtypes import DATABASE_UNAVAILABLE
from selfservice.extensions import db

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: The long-running commands' ``--max-seconds`` (deliver-mail, sync run, deliver-webhooks).
max_seconds_option = click.option(
    "--max-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop the worker after this many seconds (at the first pause after it).",
)


class Stop(Protocol):
    def is_set(self) -> bool: ...


class PassTotals(Protocol):
    """What one pass of a worker did; passes add up."""

    def merge(self, other: Any) -> None: ...

    def worth_reporting(self) -> bool: ...


Totals = TypeVar("Totals", bound=PassTotals)


def worker_name() -> str:
    """A name for this worker, unique across hosts and restarts: host:pid:random."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class StopFlag:
    """Set from a signal handler or another thread; waits in short naps to notice it.

    Deliberately not a threading.Event: setting one inside a signal handler can
    deadlock on the lock the interrupted code holds.
    """

    NAP_SECONDS = 0.2

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._set and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self.NAP_SECONDS))


@contextmanager
def stopped_by_signals(stop: StopFlag) -> Iterator[None]:
    """SIGTERM and SIGINT finish the item in hand, then stop; the old handlers come back after."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_passes(
    one_pass: Callable[[], Totals],
    nothing: Callable[[], Totals],
    *,
    name: str,
    stop: StopFlag,
    poll_seconds: float,
    max_seconds: float | None = None,
    report: Callable[[Totals], None] = lambda result: None,
    before_pass: Callable[[], None] = lambda: None,
) -> Totals:
    """Pass after pass until ``stop`` is set (or ``max_seconds`` passed); the totals.

    A database that is away or read-only ends a pass, not the worker: it tries again at the
    next poll.
    ``before_pass`` runs first in every pass; ``nothing()`` is an empty pass.
    """
    started = time.monotonic()
    totals = nothing()
    while not stop.is_set():
        try:
            before_pass()
            result = one_pass()
        except DATABASE_UNAVAILABLE as exc:
            db.session.rollback()
            log.warning("%s worker: database unavailable: %s", name, exc.orig)
            result = nothing()
        totals.merge(result)
        if result.worth_reporting():
            report(result)
        left = poll_seconds
        if max_seconds is not None:
            left = min(left, max_seconds - (time.monotonic() - started))
            if left <= 0:
                break
        stop.wait(left)
    return totals
