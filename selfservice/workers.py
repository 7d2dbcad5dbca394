"""What the long-running workers share (mail, sync, webhooks): a name, a stop flag, signals.

Apart from the mail delivery module (and its smtplib), so that the sync and webhook commands,
which web workers import with their blueprints, do not load mail delivery (issue 17, P5).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(Protocol):
    def is_set(self) -> bool: ...


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
