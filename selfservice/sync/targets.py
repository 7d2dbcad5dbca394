"""Sync targets: the directories besides the primary that get every password change.

Each target is one table of the SYNC_TARGETS setting::

    [[sync_targets]]
    name = "ad"                                  # short id: queue rows, audit events, commands
    label = "Windows and Chromebook sign-in"     # what the account holder is told (default: from name)
    label_by_language = { es = "Inicio de sesión de Windows y Chromebook" }
    kind = "ad"                                  # openldap, ad or builtin
    match = ["student_id", "login"]              # primary fields that find the account there
    must_change = "follow"                       # follow the primary write, "never" or "always"
    unlock = true                                # also clear a lockout in the target
    [sync_targets.settings]                      # the target's own connection settings
    LDAP_URL = "ldaps://dc1.school.test"
    AD_ATTRIBUTES = { student_id = "employeeID" }

A target's settings start from the defaults (never from the primary's connection), so a
target cannot write to the primary by accident. Attribute tables merge with the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from selfservice.config import DEFAULTS, ConfigError
from selfservice.directory import build_directory
from selfservice.directory.interfaces import LOOKUP_FIELDS, Account, Directory

TARGET_KINDS = ("builtin", "openldap", "ad")
MUST_CHANGE_RULES = ("follow", "never", "always")
#: Connection and schema settings a target never inherits from the primary.
OWN_SETTINGS = tuple(key for key in DEFAULTS if key.startswith(("LDAP_", "AD_")))
ATTRIBUTE_TABLES = ("LDAP_ATTRIBUTES", "AD_ATTRIBUTES")
KNOWN_KEYS = frozenset(
    {"name", "label", "label_by_language", "kind", "match", "must_change", "unlock", "settings"}
)


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    kind: str
    match: tuple[str, ...]
    must_change: str = "follow"
    unlock: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    label_by_language: Mapping[str, str] = field(default_factory=dict)

    def label_in(self, language: str) -> str:
        """What the account holder is told this target is, in ``language`` when the settings say."""
        return self.label_by_language.get(language) or self.label

    def wants_must_change(self, primary_must_change: bool) -> bool:
        """Whether the target's copy of the password must be changed at next sign-in."""
        if self.must_change == "follow":
            return primary_must_change
        return self.must_change == "always"

    def lookups(self, account: Account) -> dict[str, str]:
        """The values of the match fields the primary account has, in the order tried."""
        found = {name: getattr(account, name) for name in self.match}
        return {name: str(value) for name, value in found.items() if value}


def parse_targets(config: Mapping[str, Any]) -> list[Target]:
    """The SYNC_TARGETS setting as targets; ConfigError names what is wrong."""
    raw = config.get("SYNC_TARGETS") or []
    if not isinstance(raw, list):
        raise ConfigError("SYNC_TARGETS must be a list of tables")
    targets = [_target(index, table) for index, table in enumerate(raw)]
    names = [target.name for target in targets]
    if len(set(names)) != len(names):
        raise ConfigError(f"SYNC_TARGETS: every target needs its own name, got {names}")
    return targets


def _target(index: int, table: Any) -> Target:
    where = f"SYNC_TARGETS[{index}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    name = str(table.get("name") or "").strip()
    if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 32:
        raise ConfigError(f"{where}.name must be a short word (letters, digits, - or _), got {name!r}")
    kind = table.get("kind")
    if kind not in TARGET_KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(TARGET_KINDS)}, got {kind!r}")
    match = table.get("match", ["login"])
    match = [match] if isinstance(match, str) else match
    if not match or not isinstance(match, list) or any(item not in LOOKUP_FIELDS for item in match):
        raise ConfigError(f"{where}.match must list fields of {', '.join(LOOKUP_FIELDS)}, got {match!r}")
    must_change = table.get("must_change", "follow")
    if must_change not in MUST_CHANGE_RULES:
        raise ConfigError(f"{where}.must_change must be one of {', '.join(MUST_CHANGE_RULES)}")
    unlock = table.get("unlock", True)
    settings = table.get("settings", {})
    if not isinstance(unlock, bool) or not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: unlock must be true or false and settings a table")
    label = str(table.get("label") or default_label(name))
    by_language = table.get("label_by_language", {})
    if not isinstance(by_language, Mapping) or not all(
        isinstance(text, str) for text in by_language.values()
    ):
        raise ConfigError(f"{where}.label_by_language must be a table of language code = text")
    return Target(name, label, kind, tuple(match), must_change, unlock, dict(settings), dict(by_language))


def default_label(name: str) -> str:
    """A label from a target's short name: ``ad`` -> "AD", ``google_workspace`` -> "Google workspace"."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return words.upper() if len(words) <= 3 else words[:1].upper() + words[1:]


def target_settings(target: Target, config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the target's adapter is built from."""
    own = {key.upper(): value for key, value in target.settings.items()}
    for table in ATTRIBUTE_TABLES:
        if table in own:
            own[table] = {**DEFAULTS[table], **own[table]}
    return {
        **config,
        **{key: DEFAULTS[key] for key in OWN_SETTINGS},
        **own,
        "DIRECTORY": target.kind,
    }


def build_adapter(target: Target, config: Mapping[str, Any]) -> Directory:
    """A directory adapter for ``target``, with its own connection settings."""
    return build_directory(target_settings(target, config))


class NoSingleMatch(Exception):
    """A match field finds an entry in the target, but not one account it can use."""


def find_in_target(directory: Directory, lookups: Mapping[str, str]) -> Account | None:
    """The target's account: the first match field that finds exactly one; None when none does.

    A field that finds several entries (or one the adapter cannot use) ends the search with
    NoSingleMatch: the next field, a weaker one, might name somebody else.
    """
    for name, value in lookups.items():
        account = directory.find_by(name, value)
        if account is not None:
            return account
        found = directory.count_by(name, value)
        if found > 1:
            raise NoSingleMatch(f"several accounts in the target match {name}")
        if found:
            raise NoSingleMatch(f"the entry in the target that matches {name} has no unique id")
    return None
