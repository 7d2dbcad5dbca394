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
from flask_babel import get_locale

from selfservice.i18n import _, ngettext
from selfservice.sync.crypto import SyncCipher
from selfservice.sync.policy import RulesCache
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
    """What a person is told after a change: where the password works now, and what follows.

    Only the primary has the new password when the page is shown (the targets are written
    by the sync worker after it), so that is what ``now`` says; ``later`` names the targets
    and the promised delay; ``unconfirmed`` is for a change not known to be made yet.
    """
    sync = get_sync()
    if not sync.targets:
        return None
    config = current_app.config
    language = str(get_locale())
    primary = (
        config["SYNC_PRIMARY_LABEL_BY_LANGUAGE"].get(language)
        or config["SYNC_PRIMARY_LABEL"]
        or _("the Student and Parent Portals")
    )
    labels = [target.label_in(language) for target in sync.targets]
    targets = spoken_list(labels)
    minutes = ngettext("%(num)d minute", "%(num)d minutes", config["SYNC_PROMISE_MINUTES"])
    later = ngettext(
        "%(systems)s follows within %(minutes)s.",
        "%(systems)s follow within %(minutes)s.",
        len(labels),
        systems=targets,
        minutes=minutes,
    )
    return {
        "now": _("Your new password works now for %(systems)s.", systems=primary),
        "later": later[:1].upper() + later[1:],
        "unconfirmed": _(
            "If the change went through, the new password also reaches %(systems)s once we have confirmed it.",  # noqa: E501
            systems=targets,
        ),
        "targets": labels,
    }


def spoken_list(names: list[str]) -> str:
    """``["A", "B", "C"]`` -> "A, B and C", with the page's word for "and"."""
    if len(names) < 2:
        return "".join(names)
    return _("%(first)s and %(last)s", first=", ".join(names[:-1]), last=names[-1])
