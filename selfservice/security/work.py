"""The argon2 work gate: the one budget all clients share, and a bound per process.

Answer checks are the portal's expensive work (m=19 MiB, t=2 per verify). The gate
counts an answer check against ``GLOBAL_RATE_LIMIT`` only when it is about to run,
after the per-address limit and the account's lockout have let it through, so a
refused request spends none of it and one address can take at most its per-address
share (invariant 14). ``ARGON2_MAX_CONCURRENT`` checks run at once per worker
(each holds its argon2 memory); the rest wait up to ``ARGON2_WAIT_SECONDS``, then get a
503 with Retry-After instead of exhausting the worker's memory. The memory itself comes
from ``selfservice/argon2_pool.py``, which keeps and lends the same number of blocks to
every argon2 call, gated or not (password hashes, sign-ins).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from selfservice.limiter import Limiter

RETRY_AFTER_SECONDS = 5


class Busy(Exception):
    """No argon2 work can start now; nothing was counted against the person."""

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"busy, retry in {retry_after} s")
        self.retry_after = retry_after


class WorkGate:
    def __init__(self, limiter: Limiter, budget: str, max_concurrent: int, wait_seconds: float) -> None:
        self.limiter = limiter
        self.budget = budget
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(max_concurrent)

    @classmethod
    def from_settings(cls, limiter: Limiter, settings: Mapping[str, Any]) -> WorkGate:
        return cls(
            limiter,
            settings["GLOBAL_RATE_LIMIT"],
            settings["ARGON2_MAX_CONCURRENT"],
            settings["ARGON2_WAIT_SECONDS"],
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Run one answer check: counted in the shared budget, bounded per process; else Busy."""
        windows = self.limiter.parse(self.budget)
        wait = self.limiter.hit(windows, "work", "argon2")
        if wait:
            raise Busy(wait)
        if not self._slots.acquire(timeout=self.wait_seconds):
            self.limiter.give_back(windows, "work", "argon2")
            raise Busy()
        try:
            yield
        finally:
            self._slots.release()
