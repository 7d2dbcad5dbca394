"""Password synchronization: every change reaches every directory the district runs.

The primary directory (DIRECTORY) is written first and its outcome is what the person
is told. Each sync target (SYNC_TARGETS) gets the change through a durable queue
(models.SyncWrite) that a worker (``selfservice sync run``) drains with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from selfservice.directory.interfaces import Account
from selfservice.sync.crypto import SyncCipher
from selfservice.sync.policy import RulesCache, problems
from selfservice.sync.targets import Target, parse_targets

EXTENSION_KEY = "selfservice.sync"


@dataclass(frozen=True)
class Sync:
    """The sync targets and the queue's cipher, built once from the settings."""

    targets: tuple[Target, ...]
    cipher: SyncCipher
    config: Mapping[str, Any]
    rules: RulesCache

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Sync:
        return cls(tuple(parse_targets(config)), SyncCipher.from_config(config), config, RulesCache())

    def password_problems(self, account: Account, password: str) -> list[str]:
        """What ``password`` lacks to meet the strictest rules of the targets (N_ message ids)."""
        if not self.targets:
            return []
        return problems(password, self.rules.strictest(self.targets, self.config), account)

    def target(self, name: str) -> Target | None:
        return next((target for target in self.targets if target.name == name), None)


def init_app(app: Flask) -> None:
    """Read and check SYNC_TARGETS and the key at start (a ConfigError names the setting)."""
    app.extensions[EXTENSION_KEY] = Sync.from_config(app.config)
    app.context_processor(lambda: {"sync_promise": sync_promise})


def get_sync() -> Sync:
    """The sync targets and cipher of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def sync_promise() -> dict[str, Any] | None:
    """What a person is told after a change: where the password works now, and what follows."""
    sync = get_sync()
    if not sync.targets:
        return None
    return {
        "primary": current_app.config["SYNC_PRIMARY_LABEL"],
        "targets": [target.label for target in sync.targets],
        "minutes": current_app.config["SYNC_PROMISE_MINUTES"],
    }
