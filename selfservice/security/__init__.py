"""Answer hashing, tokens, password policy, lockout and throttling, with the app's accessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context

from selfservice.directory import EXTENSION_KEY as DIRECTORY_KEY
from selfservice.directory.interfaces import Account, PasswordRules
from selfservice.security.answers import AnswerHasher, AnswerRules, answer_rules_from_settings
from selfservice.security.directory_rules import DirectoryRulesCache, rules_for_pages
from selfservice.security.lockout import LockoutPolicy, LockoutService
from selfservice.security.passwords import PasswordPolicy, policy_from_settings, raised_to
from selfservice.security.tokens import TokenService
from selfservice.security.work import WorkGate

EXTENSION_KEY = "selfservice.security"


@dataclass
class Security:
    """The security services of one app, built once from its settings."""

    hasher: AnswerHasher
    tokens: TokenService
    lockout: LockoutService
    password_policy: PasswordPolicy
    answer_rules: AnswerRules
    work: WorkGate
    directory_rules: DirectoryRulesCache | None = None

    def directory_password_rules(self, account: Account | None = None) -> PasswordRules:
        """The strictest of the primary directory's rules and every sync target's (each cached).

        With ``account``, the primary's are the ones it holds that account to (AD: its PSO).
        """
        primary = self.directory_rules.for_account(account) if self.directory_rules else PasswordRules()
        from selfservice.sync import EXTENSION_KEY as SYNC_KEY  # sync builds on this package
        from selfservice.sync.policy import strictest

        sync = current_app.extensions.get(SYNC_KEY) if has_app_context() else None
        if sync is None or not sync.targets:
            return primary
        return strictest([primary, sync.rules.strictest(sync.targets, sync.config)])

    def password_rules_for_pages(self, account: Account | None = None) -> dict[str, Any]:
        """The rules the password pages state (``password_rules`` in templates), for ``account`` if known."""
        rules = self.directory_password_rules(account)
        return rules_for_pages(rules, raised_to(self.password_policy, rules).min_length)


def init_app(app: Flask) -> None:
    from selfservice.extensions import limiter

    settings = app.config
    app.extensions[EXTENSION_KEY] = Security(
        hasher=AnswerHasher(
            memory_cost=settings["ARGON2_MEMORY_KIB"],
            time_cost=settings["ARGON2_TIME_COST"],
            parallelism=settings["ARGON2_PARALLELISM"],
            max_blocks=settings["ARGON2_MAX_CONCURRENT"],
        ),
        tokens=TokenService(settings["SECRET_KEY"]),
        lockout=LockoutService(LockoutPolicy.from_settings(settings)),
        password_policy=policy_from_settings(settings),
        answer_rules=answer_rules_from_settings(settings),
        directory_rules=DirectoryRulesCache(app.extensions[DIRECTORY_KEY]),
        work=WorkGate.from_settings(limiter, settings),
    )
    app.context_processor(lambda: {"password_rules": _LazyRules()})


class _LazyRules:
    """Reads the rules only when a template uses them (most pages ask for no password)."""

    def __getattr__(self, name: str) -> Any:
        rules = get_security().password_rules_for_pages() if not name.startswith("_") else {}
        if name not in rules:
            raise AttributeError(name)
        return rules[name]


def get_security() -> Security:
    """The security services of the current app."""
    return current_app.extensions[EXTENSION_KEY]
