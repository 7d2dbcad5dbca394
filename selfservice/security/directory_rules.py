"""The directory's own password rules, read now and then and kept between reads.

Reading them on every page would add a directory search to each request; never reading
them would let the portal promise a shorter password than the directory takes. So they
are read on first need, then again every ``REFRESH_SECONDS``; when the directory does
not answer, the last rules read stay in force and the next try waits ``RETRY_SECONDS``.

Some accounts have rules of their own (AD: a fine-grained policy, PSO, applied to them
or to a group of theirs), which replace the directory's. Which rules apply is asked once
per account and kept ``ACCOUNT_SECONDS``: a password page, its check and the page shown
again after a refusal cost one search between them, not one each. At most
``ACCOUNT_ENTRIES`` accounts are kept (the oldest go first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from selfservice.directory.interfaces import Account, Directory, DirectoryError, PasswordRules

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300
RETRY_SECONDS = 60
ACCOUNT_SECONDS = 60
ACCOUNT_ENTRIES = 1000


class DirectoryRulesCache:
    """``current()`` gives the directory's rules, read at most every REFRESH_SECONDS."""

    def __init__(self, directory: Directory, clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._rules = PasswordRules()
        self._next_read = 0.0
        #: account key -> (monotonic expiry, the account's own rules or None)
        self._accounts: OrderedDict[str, tuple[float, PasswordRules | None]] = OrderedDict()

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

    def for_account(self, account: Account | None) -> PasswordRules:
        """The rules ``account`` is held to: its own where it has some, else :meth:`current`."""
        own = self._own_rules(account) if account is not None and account.ref else None
        return own if own is not None else self.current()

    def _own_rules(self, account: Account) -> PasswordRules | None:
        now = self._clock()
        with self._lock:
            cached = self._accounts.get(account.key)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            own = self._directory.password_rules_for(account)
        except DirectoryError as exc:
            # Never hold a page up: the directory's own rules stand (kept, not retried per call).
            log.info(
                "directory: the rules of %s are unreadable (%s); the directory's own apply",
                account.login,
                exc,
            )
            own = None
        with self._lock:
            self._accounts[account.key] = (now + ACCOUNT_SECONDS, own)
            self._accounts.move_to_end(account.key)
            while len(self._accounts) > ACCOUNT_ENTRIES:
                self._accounts.popitem(last=False)
        return own


def rules_for_pages(rules: PasswordRules, min_length: int) -> dict[str, Any]:
    """What the password pages tell a person: the effective minimum and the directory's other rules."""
    return {
        "min_length": min_length,
        "history": rules.history,
        "complexity": rules.complexity,
        "min_age_hours": -(-rules.min_age_seconds // 3600),  # rounded up: never promise too early
    }
