"""Counters on the limiter's shared storage (Redis in production, memory in the default).

Every limit is a set of fixed windows ("10 per minute;50 per hour") counted per key.
A request is *tested* against every window first and spends a window only when all
of them still have room, so a request refused by one limit spends no other budget
(invariant 14).

When the shared storage stops answering, the portal keeps limiting with a per-process
in-memory store until the storage answers again (flask-limiter's in-memory fallback,
chosen so that a Redis outage never refuses or breaks a sign-in): per-address limits
then hold per worker instead of across workers, and /healthz says "degraded". The
database-backed lockout is unaffected.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long after a storage failure the shared storage is tried again.
RETRY_SHARED_SECONDS = 5.0
#: A storage that does not answer within this is treated as down (Redis socket options).
STORAGE_TIMEOUT_SECONDS = 0.5


class RateLimited(Exception):
    """A limit refused: ``resets_in`` seconds until it has room again (a 429 with Retry-After)."""

    def __init__(self, limit: str, resets_in: int, *, scope: str = "ip") -> None:
        super().__init__(f"{limit}: retry in {resets_in} s")
        self.limit = limit
        self.resets_in = resets_in
        #: "ip" (this connection) or "account" (this account, from any connection).
        self.scope = scope


class Limiter:
    """Fixed-window counters keyed by purpose, with an in-memory fallback."""

    def __init__(self) -> None:
        self.prefix = "selfservice"
        self.shared: Storage = MemoryStorage()
        self.fallback = MemoryStorage()
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._parsed: dict[str, list[RateLimitItem]] = {}

    def init_app(self, app: Any) -> None:
        uri = app.config["RATELIMIT_STORAGE_URI"]
        options: dict[str, Any] = {}
        if uri.startswith(("redis://", "rediss://")):
            options = {
                "socket_timeout": STORAGE_TIMEOUT_SECONDS,
                "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
            }
        self.shared = storage_from_string(uri, **options)  # type: ignore[assignment]
        self.fallback = MemoryStorage()
        self.prefix = app.config["RATELIMIT_KEY_PREFIX"]
        self._down_until = 0.0
        app.extensions["selfservice.limiter"] = self

    # Limits -----------------------------------------------------------------------

    def parse(self, text: str) -> list[RateLimitItem]:
        """The windows of a limit setting, cached (settings do not change while running)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = list(parse_many(text))
        return parsed

    def hit(self, windows: Sequence[RateLimitItem], *key: str) -> int | None:
        """Spend one of every window for ``key``; None when allowed, else seconds until room."""
        keys = [self._key(window, key) for window in windows]
        for window, name in zip(windows, keys, strict=True):
            if self._run(lambda s, n=name: s.get(n)) >= window.amount:
                return self._wait(name)
        for window, name in zip(windows, keys, strict=True):
            count = self._run(lambda s, n=name, w=window: s.incr(n, w.get_expiry()))
            if count > window.amount:  # a parallel request took the last one
                return self._wait(name)
        return None

    def exhausted(self, windows: Sequence[RateLimitItem], *key: str) -> int | None:
        """Seconds until ``key`` has room again when a window is full (nothing is spent), else None."""
        for window in windows:
            name = self._key(window, key)
            if self._run(lambda s, n=name: s.get(n)) >= window.amount:
                return self._wait(name)
        return None

    def give_back(self, windows: Sequence[RateLimitItem], *key: str) -> None:
        """Return one hit (a claim that turned out not to count)."""
        for window in windows:
            name = self._key(window, key)
            self._run(lambda s, n=name, w=window: s.incr(n, w.get_expiry(), amount=-1))

    def used(self, windows: Sequence[RateLimitItem], *key: str) -> int:
        """The largest count of any window for ``key`` (for tests and reports)."""
        names = [self._key(window, key) for window in windows]
        return max((self._run(lambda s, n=name: s.get(n)) for name in names), default=0)

    # Storage health ---------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while the shared storage is down and the in-memory fallback counts."""
        return time.monotonic() < self._down_until

    def check(self) -> str:
        """ "ok", or "degraded" when the shared storage does not answer (the fallback does)."""
        try:
            healthy = bool(self.shared.check())
        except Exception:  # noqa: BLE001 - a backend may raise anything when down
            healthy = False
        if healthy:
            self._down_until = 0.0
        return "ok" if healthy else "degraded"

    def reset(self) -> None:
        """Forget every count (tests: the memory storage is per process)."""
        for storage in (self.shared, self.fallback):
            try:
                storage.reset()
            except Exception:  # noqa: BLE001 - a down storage has nothing to forget now
                log.warning("limiter storage could not be reset")

    # Internals --------------------------------------------------------------------

    def _key(self, window: RateLimitItem, key: Sequence[str]) -> str:
        return window.key_for(self.prefix, *key)

    def _wait(self, name: str) -> int:
        expiry = self._run(lambda s: s.get_expiry(name))
        return max(1, math.ceil(expiry - time.time()))

    def _run(self, operation: Callable[[Storage], T]) -> T:
        if not self.degraded:
            try:
                return operation(self.shared)
            except Exception as exc:  # noqa: BLE001 - redis, network, timeouts: all mean "down"
                with self._lock:
                    if not self.degraded:
                        log.warning("limiter storage down, counting in memory: %s", type(exc).__name__)
                    self._down_until = time.monotonic() + RETRY_SHARED_SECONDS
        return operation(self.fallback)
