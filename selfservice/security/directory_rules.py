"""The directory's own password rules, read now and then and kept between reads.

Reading them on every page would add a directory search to each request; never reading
them would let the portal promise a shorter password than the directory takes. So they
are read on first need, then again every ``REFRESH_SECONDS``; when the directory does
not answer, the last rules read stay in force and the next try waits ``RETRY_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from selfservice.directory.interfaces import Directory, DirectoryError, PasswordRules

REFRESH_SECONDS = 300
RETRY_SECONDS = 60


class DirectoryRulesCache:
    """``current()`` gives the directory's rules, read at most every REFRESH_SECONDS."""

    def __init__(self, directory: Directory, clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._rules = PasswordRules()
        self._next_read = 0.0

    def current(self) -> PasswordRules:
        with self._lock:
            now = self._clock()
            if now < self._next_read:
                return self._rules
            try:
                self._rules = self._directory.password_rules()
                self._next_read = now + REFRESH_SECONDS
            except DirectoryError:
                self._next_read = now + RETRY_SECONDS
            return self._rules


def rules_for_pages(rules: PasswordRules, min_length: int) -> dict[str, Any]:
    """What the password pages tell a person: the effective minimum and the directory's other rules."""
    return {
        "min_length": min_length,
        "history": rules.history,
        "complexity": rules.complexity,
        "min_age_hours": -(-rules.min_age_seconds // 3600),  # rounded up: never promise too early
    }
