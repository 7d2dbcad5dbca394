"""Change password: the signed-in holder, who knows the current password, picks a new one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selfservice.audit.services import Origin
from selfservice.auth.services import claim_password_check
from selfservice.directory.interfaces import Account, Directory
from selfservice.portal.password_age import changeable_from, too_soon_message
from selfservice.portal.passwords import How, NewPassword, PolicyViolation, apply_new_password
from selfservice.security import Security
from selfservice.security.passwords import MISMATCH
from selfservice.timeutil import utcnow


def change_password(
    directory: Directory,
    security: Security,
    account: Account,
    *,
    current_password: str,
    new: NewPassword,
    origin: Origin,
    settings: Mapping[str, Any],
) -> None:
    """Write ``new`` after the policy; raise PolicyViolation, InvalidCredentials or RateLimited.

    The current password is a guess like a sign-in's: the account's limit is claimed first.
    """
    claim_password_check(settings, account, origin, "portal.change_password")
    until = changeable_from(directory, security, account, utcnow())
    if until is not None:
        raise PolicyViolation([too_soon_message(until, settings["TIME_ZONE"])])
    apply_new_password(
        directory, security, account, new, how=How.CHANGE, origin=origin, current_password=current_password
    )


def split_problems(problems: list[str]) -> tuple[list[str], list[str]]:
    """Policy problems for the new-password field, and those for the confirmation field."""
    return [p for p in problems if p != MISMATCH], [p for p in problems if p == MISMATCH]
