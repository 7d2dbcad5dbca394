"""Counters on the limiter's shared storage (Redis in production, memory in the default).

Every limit is a set of fixed windows ("10 per minute;50 per hour") counted per key.
A request is *tested* against every window first and spends a window only when all
of them still have room, so a request refused by one limit spends no other budget
(invariant 14). On Redis the test, the spending and, on a refusal, the wait are one
Lua script: one round trip a hit, allowed or refused, and atomic, so parallel requests
never spend past a full window. Other storages do the same in steps under a lock (the
memory store is per process anyway).

A hit made with ``remember_refusal`` (the per-address limits, which nothing gives back)
that Redis refuses is remembered in the process until the full window ends: the same
key's next requests are refused without a round trip, as Redis would refuse them (a
refusal spends nothing, so the window stays full until it expires).

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
from typing import Any, TypeVar, cast

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage, storage_from_string

from selfservice.config import ConfigError, mask_url

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long after a storage failure the shared storage is tried again.
RETRY_SHARED_SECONDS = 5.0
#: A storage that does not answer within this is treated as down (Redis socket options).
STORAGE_TIMEOUT_SECONDS = 0.5
#: Refusals remembered per process at most (past it, the ended ones are dropped, then all).
REMEMBERED_REFUSALS = 1024

#: KEYS: the windows' keys; ARGV: each window's amount and expiry (seconds), in turn.
#: -1 when every window had room and one of each was spent, else the full window's PTTL (ms).
HIT_SCRIPT = """
for i, key in ipairs(KEYS) do
    if tonumber(redis.call('get', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
        return math.max(redis.call('pttl', key), 0)
    end
end
for i, key in ipairs(KEYS) do
    if redis.call('incr', key) == 1 then
        redis.call('expire', key, ARGV[2 * i])
    end
end
return -1
"""


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
        self._hit_lock = threading.Lock()
        self._parsed: dict[str, list[RateLimitItem]] = {}
        self._script: Callable[..., Any] | None = None
        self._refused: dict[tuple[str, ...], float] = {}  # remembered refusals: keys -> until (monotonic)

    def init_app(self, app: Any) -> None:
        uri = app.config["RATELIMIT_STORAGE_URI"]
        options: dict[str, Any] = {}
        if uri.startswith(("redis://", "rediss://")):
            options = {
                "socket_timeout": STORAGE_TIMEOUT_SECONDS,
                "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
            }
        try:
            self.shared = storage_from_string(uri, **options)  # type: ignore[assignment]
        except (ConfigurationError, ValueError) as exc:
            # Not chained: the storage's own message and traceback spell the URI, password and all.
            raise ConfigError(
                f"RATELIMIT_STORAGE_URI cannot be used: {without_password_in(str(exc), uri)}"
            ) from None
        self._script = hit_script(self.shared)
        self.fallback = MemoryStorage()
        self.prefix = app.config["RATELIMIT_KEY_PREFIX"]
        self._down_until = 0.0
        self._refused = {}
        app.extensions["selfservice.limiter"] = self

    # Limits -----------------------------------------------------------------------

    def parse(self, text: str) -> list[RateLimitItem]:
        """The windows of a limit setting, cached (settings do not change while running)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = list(parse_many(text))
        return parsed

    def hit(self, windows: Sequence[RateLimitItem], *key: str, remember_refusal: bool = False) -> int | None:
        """Spend one of every window for ``key``; None when allowed, else seconds until room.

        ``remember_refusal``: only for keys nothing gives back (see the module's docstring).
        """
        names = tuple(self._key(window, key) for window in windows)
        if remember_refusal and (until := self._refused.get(names)) is not None:
            left = until - time.monotonic()
            if left > 0:
                return max(1, math.ceil(left))
            self._refused.pop(names, None)
        remember = names if remember_refusal else None
        return self._run(lambda storage: self._hit(storage, windows, names, remember))

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
        self._refused.clear()
        for storage in (self.shared, self.fallback):
            try:
                storage.reset()
            except Exception:  # noqa: BLE001 - a down storage has nothing to forget now
                log.warning("limiter storage could not be reset")

    # Internals --------------------------------------------------------------------

    def _key(self, window: RateLimitItem, key: Sequence[str]) -> str:
        return window.key_for(self.prefix, *key)

    def _wait(self, name: str) -> int:
        return self._run(lambda storage: wait_seconds(storage, name))

    def _hit(
        self,
        storage: Storage,
        windows: Sequence[RateLimitItem],
        names: tuple[str, ...],
        remember: tuple[str, ...] | None,
    ) -> int | None:
        if storage is self.shared and self._script is not None:
            return self._hit_redis(self._script, windows, names, remember)
        with self._hit_lock:  # test, then spend: no other thread of this process in between
            for window, name in zip(windows, names, strict=True):
                if storage.get(name) >= window.amount:
                    return wait_seconds(storage, name)
            for window, name in zip(windows, names, strict=True):
                if storage.incr(name, window.get_expiry()) > window.amount:  # another process took it
                    return wait_seconds(storage, name)
        return None

    def _hit_redis(
        self,
        script: Callable[..., Any],
        windows: Sequence[RateLimitItem],
        names: tuple[str, ...],
        remember: tuple[str, ...] | None,
    ) -> int | None:
        shared = cast(RedisStorage, self.shared)
        keys = [shared.prefixed_key(name) for name in names]
        arguments = [value for window in windows for value in (window.amount, window.get_expiry())]
        milliseconds = int(script(keys=keys, args=arguments))
        if milliseconds < 0:
            return None
        if remember is not None:
            self._remember(remember, time.monotonic() + milliseconds / 1000)
        return max(1, math.ceil(milliseconds / 1000))

    def _remember(self, names: tuple[str, ...], until: float) -> None:
        if len(self._refused) >= REMEMBERED_REFUSALS:
            now = time.monotonic()
            self._refused = {key: end for key, end in self._refused.items() if end > now}
            if len(self._refused) >= REMEMBERED_REFUSALS:
                self._refused.clear()
        self._refused[names] = until

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


def hit_script(storage: Storage) -> Callable[..., Any] | None:
    """:data:`HIT_SCRIPT` on a single Redis server (or Sentinel's master), else None: a cluster
    may keep one key's windows on different nodes."""
    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return storage.get_connection().register_script(HIT_SCRIPT)  # type: ignore[no-any-return]
    return None


def wait_seconds(storage: Storage, name: str) -> int:
    """Seconds until the window ``name`` has room again (at least 1)."""
    return max(1, math.ceil(storage.get_expiry(name) - time.time()))


def without_password_in(text: str, uri: str) -> str:
    """``text`` (an error about ``uri``) with the URI's credentials hidden."""
    return text.replace(uri, mask_url(uri))
