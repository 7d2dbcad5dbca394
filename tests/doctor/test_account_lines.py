"""`selfservice check --account`: the directory's lock says which kind it is."""

from __future__ import annotations

import pytest

from selfservice.directory.interfaces import Account, AccountKind
from selfservice.doctor.account import describe_account


@pytest.mark.parametrize(
    ("disabled", "by_admin", "said"),
    [
        (False, False, "active"),
        (True, False, "locked after failed sign-ins (a reset ends it)"),
        (True, True, "disabled by an administrator (self-service refuses it)"),
    ],
)
def test_the_directory_lock_line_tells_a_lockout_from_an_administrators_disable(
    disabled: bool, by_admin: bool, said: str
) -> None:
    account = Account(
        key="k1",
        login="s1000001",
        kind=AccountKind.STUDENT,
        display_name="Ana Lopez",
        disabled=disabled,
        disabled_by_admin=by_admin,
    )
    lines = describe_account(account, "s1000001", None)
    [line] = [line for line in lines if line.startswith("directory lock")]
    assert line.split(None, 2)[2] == said
