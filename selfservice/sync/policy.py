"""One policy: a new password must also meet the rules of every sync target.

Each target's rules are what its adapter's ``password_rules()`` reads (AD: the domain's
policy; OpenLDAP: its ppolicy entries; builtin: none beyond the portal's own), kept for
RULES_CACHE_SECONDS, so a password the primary accepts is not refused by a target for
its length or complexity. The password pages state the strictest of the primary's and
every target's rules (``Security.password_rules_for_pages``). History and minimum age
cannot be checked ahead: a target that refuses for them is reported as ``refused``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from selfservice.directory import build_directory
from selfservice.directory.interfaces import Account, Directory, DirectoryError, PasswordRules
from selfservice.i18n_markers import N_
from selfservice.security.passwords import CONTAINS_LOGIN, TOO_SHORT
from selfservice.sync.targets import Target, target_settings

log = logging.getLogger(__name__)

RULES_CACHE_SECONDS = 600
NEEDS_THREE_KINDS = N_("Use at least three of these: capital letters, lowercase letters, digits and symbols.")


def strictest(rules: Iterable[PasswordRules]) -> PasswordRules:
    """The rules that satisfy every one of ``rules`` (longest minimum and history, any complexity)."""
    found = list(rules)
    return PasswordRules(
        min_length=max((rule.min_length for rule in found), default=0),
        history=max((rule.history for rule in found), default=0),
        complexity=any(rule.complexity for rule in found),
        min_age_seconds=max((rule.min_age_seconds for rule in found), default=0),
        quality_check=any(rule.quality_check for rule in found),
        source="; ".join(rule.source for rule in found if rule.source),
    )


def problems(password: str, rules: PasswordRules, account: Account) -> list[str]:
    """What ``password`` lacks to meet ``rules`` (user-facing messages, as N_ ids)."""
    found = []
    if len(password) < rules.min_length:
        found.append(TOO_SHORT)
    if rules.complexity:
        kinds = [
            any(char.isupper() for char in password),
            any(char.islower() for char in password),
            any(char.isdigit() for char in password),
            any(not char.isalnum() for char in password),
            any(
                char.isalpha() and not (char.isupper() or char.islower()) for char in password
            ),  # AD's fifth kind
        ]
        if sum(kinds) < 3:
            found.append(NEEDS_THREE_KINDS)
        if len(account.login) >= 3 and account.login.lower() in password.lower():
            found.append(CONTAINS_LOGIN)
    return found


def read_rules(target: Target, directory: Directory) -> PasswordRules:
    """The target's rules as its adapter reads them (the builtin directory has none of its own)."""
    del target  # each adapter knows its own kind of policy
    return directory.password_rules()


class RulesCache:
    """Each target's rules, read at most every RULES_CACHE_SECONDS (failures too: never hold a page)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[float, PasswordRules]] = {}

    def strictest(self, targets: Iterable[Target], config: Mapping[str, Any]) -> PasswordRules:
        return strictest(self._get(target, config) for target in targets)

    def _get(self, target: Target, config: Mapping[str, Any]) -> PasswordRules:
        with self._lock:
            cached = self._rules.get(target.name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        rules = self._read(target, config, cached[1] if cached else PasswordRules())
        with self._lock:
            self._rules[target.name] = (time.monotonic() + RULES_CACHE_SECONDS, rules)
        return rules

    @staticmethod
    def _read(target: Target, config: Mapping[str, Any], fallback: PasswordRules) -> PasswordRules:
        from ldap3.core.exceptions import LDAPException  # only a site with sync targets loads ldap3 here

        # Read while a person waits for the page: never longer than a few seconds.
        directory = build_directory(
            {
                **target_settings(target, config),
                "LDAP_CONNECT_TIMEOUT_SECONDS": 2,
                "LDAP_OPERATION_TIMEOUT_SECONDS": 3,
            }
        )
        try:
            return read_rules(target, directory)
        except (DirectoryError, LDAPException) as exc:  # keep what we knew; the queue reports a refusal later
            log.warning("sync target %s: password rules unreadable: %s", target.name, type(exc).__name__)
            return fallback
        finally:
            close = getattr(directory, "close", None)
            if close is not None:
                close()
