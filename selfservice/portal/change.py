"""Change password: the signed-in holder, who knows the current password, picks a new one."""

from __future__ import annotations

from selfservice.audit.services import Origin
from selfservice.directory.interfaces import Account, Directory
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import Security
from selfservice.security.passwords import MISMATCH


def change_password(
    directory: Directory,
    security: Security,
    account: Account,
    *,
    current_password: str,
    new: NewPassword,
    origin: Origin,
) -> None:
    """Write ``new`` after the policy; raise PolicyViolation or InvalidCredentials."""
    apply_new_password(
        directory, security, account, new, how=How.CHANGE, origin=origin, current_password=current_password
    )


def split_problems(problems: list[str]) -> tuple[list[str], list[str]]:
    """Policy problems for the new-password field, and those for the confirmation field."""
    return [p for p in problems if p != MISMATCH], [p for p in problems if p == MISMATCH]
