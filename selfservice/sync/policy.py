"""One policy: a new password must also meet the rules of every sync target.

Read from each target (AD: the domain's ``minPwdLength`` and complexity bit of
``pwdProperties``; OpenLDAP: the ``pwdMinLength`` of its ppolicy entries) and kept for
RULES_CACHE_SECONDS, so a password the primary accepts is not refused by a target for
its length or complexity. History and minimum age cannot be checked ahead: a target
that refuses for them is reported as ``refused``.

Kept apart on purpose: when the directory adapters offer ``password_rules()``, this
module's ``read_rules`` becomes a call to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from selfservice.directory import build_directory
from selfservice.directory.interfaces import Account, Directory, DirectoryError
from selfservice.directory.ldap import LdapDirectory, _entries, _first
from selfservice.i18n_markers import N_
from selfservice.security.passwords import CONTAINS_LOGIN, TOO_SHORT
from selfservice.sync.targets import Target, target_settings

log = logging.getLogger(__name__)

RULES_CACHE_SECONDS = 600
#: AD's pwdProperties bit DOMAIN_PASSWORD_COMPLEX.
DOMAIN_PASSWORD_COMPLEX = 0x1
NEEDS_THREE_KINDS = N_("Use at least three of these: capital letters, lowercase letters, digits and symbols.")


@dataclass(frozen=True)
class TargetRules:
    """The part of a target's password rules that can be checked before writing."""

    min_length: int = 0
    complexity: bool = False


def strictest(rules: Iterable[TargetRules]) -> TargetRules:
    """The rules that satisfy every one of ``rules``."""
    found = list(rules)
    return TargetRules(
        min_length=max((rule.min_length for rule in found), default=0),
        complexity=any(rule.complexity for rule in found),
    )


def problems(password: str, rules: TargetRules, account: Account) -> list[str]:
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
        ]
        if sum(kinds) < 3:
            found.append(NEEDS_THREE_KINDS)
        if len(account.login) >= 3 and account.login.lower() in password.lower():
            found.append(CONTAINS_LOGIN)
    return found


def read_rules(target: Target, directory: Directory) -> TargetRules:
    """The target's rules as its service account can read them."""
    if target.kind == "builtin" or not isinstance(directory, LdapDirectory):
        return TargetRules()  # the portal's own policy is the builtin directory's
    settings: Mapping[str, Any] = directory._settings
    if target.kind == "ad":
        return directory._as_service(lambda connection: _ad_rules(connection, settings["LDAP_BASE_DN"]))
    return directory._as_service(lambda connection: _ppolicy_rules(connection, settings["LDAP_BASE_DN"]))


def _ad_rules(connection: ldap3.Connection, base_dn: str) -> TargetRules:
    domain = ",".join(f"{name}={value}" for name, value, _ in parse_dn(base_dn) if name.lower() == "dc")
    connection.search(domain, "(objectClass=*)", ldap3.BASE, attributes=["minPwdLength", "pwdProperties"])
    entries = _entries(connection)
    if not entries:
        return TargetRules()
    return TargetRules(
        min_length=_number(_first(entries[0], "minPwdLength")),
        complexity=bool(_number(_first(entries[0], "pwdProperties")) & DOMAIN_PASSWORD_COMPLEX),
    )


def _ppolicy_rules(connection: ldap3.Connection, base_dn: str) -> TargetRules:
    connection.search(base_dn, "(objectClass=pwdPolicy)", ldap3.SUBTREE, attributes=["pwdMinLength"])
    lengths = [_number(_first(entry, "pwdMinLength")) for entry in _entries(connection)]
    return TargetRules(min_length=max(lengths, default=0))


def _number(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class RulesCache:
    """Each target's rules, read at most every RULES_CACHE_SECONDS (failures too: never hold a page)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[float, TargetRules]] = {}

    def strictest(self, targets: Iterable[Target], config: Mapping[str, Any]) -> TargetRules:
        return strictest(self._get(target, config) for target in targets)

    def _get(self, target: Target, config: Mapping[str, Any]) -> TargetRules:
        with self._lock:
            cached = self._rules.get(target.name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        rules = self._read(target, config, cached[1] if cached else TargetRules())
        with self._lock:
            self._rules[target.name] = (time.monotonic() + RULES_CACHE_SECONDS, rules)
        return rules

    @staticmethod
    def _read(target: Target, config: Mapping[str, Any], fallback: TargetRules) -> TargetRules:
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
