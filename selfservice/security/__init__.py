"""Answer hashing, tokens, password policy, lockout and throttling, with the app's accessor."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from selfservice.security.answers import AnswerHasher, AnswerRules, answer_rules_from_settings
from selfservice.security.lockout import LockoutPolicy, LockoutService
from selfservice.security.passwords import PasswordPolicy, policy_from_settings
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


def init_app(app: Flask) -> None:
    from selfservice.extensions import limiter

    settings = app.config
    app.extensions[EXTENSION_KEY] = Security(
        hasher=AnswerHasher(
            memory_cost=settings["ARGON2_MEMORY_KIB"],
            time_cost=settings["ARGON2_TIME_COST"],
            parallelism=settings["ARGON2_PARALLELISM"],
        ),
        tokens=TokenService(settings["SECRET_KEY"]),
        lockout=LockoutService(LockoutPolicy.from_settings(settings)),
        password_policy=policy_from_settings(settings),
        answer_rules=answer_rules_from_settings(settings),
        work=WorkGate.from_settings(limiter, settings),
    )


def get_security() -> Security:
    """The security services of the current app."""
    return current_app.extensions[EXTENSION_KEY]
