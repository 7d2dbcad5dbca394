"""One contract, every directory adapter: what the portal relies on, checked on each.

The builtin adapter runs on the test database; the OpenLDAP adapter on a real slapd.
(The Active Directory adapter joins through the same ``directory`` fixture.)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from selfservice.directory.builtin import BuiltinDirectory, NewAccount
from selfservice.directory.interfaces import (
    AccountKind,
    Directory,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    Role,
)
from tests.fixtures.disabling import disable_by_admin
from tests.fixtures.people import PEOPLE, person
from tests.scratch import free_port as closed_port

ADAPTERS = [
    pytest.param("builtin", id="builtin"),
    pytest.param("openldap", id="openldap", marks=[pytest.mark.ldap, pytest.mark.slow]),
    pytest.param("ad", id="ad", marks=[pytest.mark.ad, pytest.mark.slow]),
]
NEW_PASSWORD = "Lantern-Orchard-7731"


@pytest.fixture(params=ADAPTERS)
def directory(request: pytest.FixtureRequest, app: Flask) -> Iterator[Directory]:
    if request.param == "builtin":
        with app.app_context():
            yield app.extensions["selfservice.directory"]
    else:
        yield request.getfixturevalue({"openldap": "ldap_directory", "ad": "ad_directory"}[request.param])


def test_every_adapter_satisfies_the_protocol(directory: Directory) -> None:
    assert isinstance(directory, Directory)


@pytest.mark.parametrize("login", ["s1000001", "1000001", "ana.lopez@students.school.test", "S1000001"])
def test_find_by_each_login_field(directory: Directory, login: str) -> None:
    account = directory.find(login)
    assert account is not None
    assert (account.login, account.display_name, account.kind) == (
        "s1000001",
        "Ana Lopez",
        AccountKind.STUDENT,
    )
    assert account.student_id == "1000001"
    assert account.birth_month_year == person("s1000001").birth_month_year


def test_find_by_a_single_field(directory: Directory) -> None:
    parent = directory.find_by("parent_account_number", person("p2000001").parent_account_number or "")
    assert parent is not None
    assert parent.kind == AccountKind.PARENT
    assert parent.email == person("p2000001").email
    assert parent.parent_pin == person("p2000001").parent_pin
    assert directory.find_by("student_id", "1000002").login == "s1000002"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="userPassword"):
        directory.find_by("userPassword", "x")


def test_count_by_says_how_many_entries_hold_a_value(directory: Directory) -> None:
    assert directory.count_by("student_id", "1000001") == 1
    assert directory.count_by("student_id", "9999999") == 0
    assert directory.count_by("login", "") == 0


def test_key_is_stable_and_fetches_the_account(directory: Directory) -> None:
    account = directory.find("s1000002")
    assert account is not None
    again = directory.get(account.key)
    assert again is not None
    assert again.login == "s1000002"
    assert account.key != account.login
    assert directory.get("00000000-0000-0000-0000-000000000000") is None


def test_parent_without_email_has_none(directory: Directory) -> None:
    parent = directory.find("p2000002")
    assert parent is not None
    assert parent.email is None
    assert parent.kind == AccountKind.PARENT


@pytest.mark.parametrize(
    ("login", "roles"),
    [
        ("teacher1", {Role.EMPLOYEE}),
        ("support1", {Role.SUPPORT}),
        ("its1", {Role.ITS}),
        ("admin1", {Role.ADMIN, Role.EMPLOYEE}),
        ("s1000001", set()),
    ],
)
def test_roles_come_from_group_membership(directory: Directory, login: str, roles: set[Role]) -> None:
    account = directory.find(login)
    assert account is not None
    assert set(account.roles) == roles


@pytest.mark.parametrize("login", ["admin1", "its1", "s1000001"])
def test_a_lookup_without_roles_is_the_same_account_with_none(directory: Directory, login: str) -> None:
    """Recovery never looks at roles: its lookups skip them (one LDAP group search less)."""
    full = directory.find(login)
    assert full is not None
    found, got = directory.find(login, with_roles=False), directory.get(full.key, with_roles=False)
    assert found == got == dataclasses.replace(full, roles=frozenset())
    assert directory.get(full.key) == full  # the default still reads them


def test_bind_succeeds_with_the_right_password_only(directory: Directory) -> None:
    ana = person("s1000001")
    assert directory.authenticate(ana.login, ana.password) is not None
    assert directory.authenticate(ana.login, ana.password + "x") is None
    assert directory.authenticate(ana.login, "") is None
    assert directory.authenticate("nobody-at-all", ana.password) is None


def test_set_password_then_the_new_binds_and_the_old_fails(directory: Directory) -> None:
    ben = person("s1000002")
    account = directory.find(ben.login)
    assert account is not None
    directory.set_password(account, NEW_PASSWORD)
    assert directory.authenticate(ben.login, NEW_PASSWORD) is not None
    assert directory.authenticate(ben.login, ben.password) is None


def test_an_administrators_disable_is_told_apart_and_outlives_a_reset(
    directory: Directory, app: Flask, request: pytest.FixtureRequest
) -> None:
    """Disabled by an administrator: ``disabled`` and ``disabled_by_admin``; a primary's reset keeps it."""
    assert not directory.find("s1000002").disabled_by_admin  # type: ignore[union-attr]
    disable_by_admin(request, app, "s1000002", kind=directory.name)
    account = directory.find("s1000002")
    assert account is not None
    assert account.disabled
    assert account.disabled_by_admin

    directory.set_password(account, NEW_PASSWORD)  # the default, a primary's: unlock=True

    after = directory.get(account.key)
    assert after is not None
    assert after.disabled_by_admin
    assert directory.authenticate("s1000002", NEW_PASSWORD) is None


def test_a_reset_that_refuses_disabled_accounts_writes_nothing_to_one_disabled_since_it_was_read(
    directory: Directory, app: Flask, request: pytest.FixtureRequest
) -> None:
    """The portal's own writes: the account was read enabled; the adapter checks where it writes."""
    read_enabled = directory.find("s1000002")
    assert read_enabled is not None
    assert not read_enabled.disabled_by_admin
    stamp_before = directory.password_stamp(read_enabled)
    disable_by_admin(request, app, "s1000002", kind=directory.name)

    with pytest.raises(DisabledByAdmin):
        directory.set_password(read_enabled, NEW_PASSWORD, refuse_disabled=True)

    after = directory.get(read_enabled.key)
    assert after is not None
    assert after.disabled_by_admin
    assert directory.password_stamp(read_enabled) == stamp_before


def test_must_change_flag_is_set_and_cleared(directory: Directory) -> None:
    account = directory.find("s1000002")
    assert account is not None
    assert not account.must_change
    directory.set_password(account, NEW_PASSWORD, must_change=True)
    assert directory.find("s1000002").must_change  # type: ignore[union-attr]
    directory.change_password(account, NEW_PASSWORD, "Meadow-Copper-5512")
    assert not directory.find("s1000002").must_change  # type: ignore[union-attr]


def test_own_change_needs_the_current_password(directory: Directory) -> None:
    ben = person("s1000002")
    account = directory.find(ben.login)
    assert account is not None
    with pytest.raises(InvalidCredentials):
        directory.change_password(account, "not-the-password", NEW_PASSWORD)
    directory.change_password(account, ben.password, NEW_PASSWORD)
    assert directory.authenticate(ben.login, NEW_PASSWORD) is not None


@pytest.mark.parametrize(
    "password",
    ["Café²-Meadow-9031", "ﬁne-Meadow-Pass-9031", "No\u00a0Break-Meadow-9031"],
    ids=["superscript", "ligature", "no-break-space"],
)
def test_a_password_is_checked_as_it_was_written(directory: Directory, password: str) -> None:
    """Characters SASLprep would change (², ﬁ, a no-break space) must not part the bind from the write.

    ldap3 applies SASLprep to a simple bind's password; AD keeps unicodePwd exactly as written.
    """
    account = directory.find("s1000002")
    assert account is not None
    directory.set_password(account, password)
    assert directory.authenticate("s1000002", password) is not None
    directory.change_password(account, password, NEW_PASSWORD)
    assert directory.authenticate("s1000002", NEW_PASSWORD) is not None


@pytest.mark.parametrize(
    "typed", ["Tab\tPass-9031", "Mixed-مرحبا-9031"], ids=["control-character", "mixed-direction"]
)
def test_a_typed_password_sasl_prep_refuses_is_just_wrong(directory: Directory, typed: str) -> None:
    """ldap3 raised LDAPSASLPrepError out of the bind: a 500 at sign-in (invariant 13)."""
    account = directory.find("s1000002")
    assert account is not None
    assert directory.authenticate("s1000002", typed) is None
    with pytest.raises(InvalidCredentials):
        directory.change_password(account, typed, NEW_PASSWORD)
    assert directory.authenticate("s1000002", person("s1000002").password) is not None


@pytest.mark.parametrize("typed", ["Émile.Zoë", "  Émile.Zoë ", "Straße"])
def test_a_builtin_login_with_capital_or_folded_letters_is_found_as_typed(app: Flask, typed: str) -> None:
    """SQLite's lower() folds ASCII only, and casefold() turns ß into "ss": the row's own
    spelling was never asked for, so these people could not sign in typing their login as given."""
    with app.app_context():
        directory: BuiltinDirectory = app.extensions["selfservice.directory"]
        for login in ("Émile.Zoë", "Straße"):
            directory.create(NewAccount(login, NEW_PASSWORD, AccountKind.STAFF, login))

        account = directory.find(typed)

        assert account is not None
        assert account.login == typed.strip()
        assert directory.authenticate(typed, NEW_PASSWORD) == account


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("obrien", "Sean O'Brien"),
        ("o'brien2", "Siobhan O'Brien"),
        ("jnunez", "José Núñez"),
        ("1000004", "José Núñez"),
    ],
)
def test_tricky_names_are_found(directory: Directory, login: str, expected: str) -> None:
    account = directory.find(login)
    assert account is not None
    assert account.display_name == expected


def test_non_ascii_password_binds(directory: Directory) -> None:
    jose = person("jnunez")
    assert directory.authenticate("jnunez", jose.password) is not None


@pytest.mark.parametrize(
    "hostile", ["a*)(uid=*", "*", "s1000001)(|(uid=*", "José Núñez", "O'Brien", "\\2a", "\x00"]
)
def test_filter_metacharacters_neither_inject_nor_crash(directory: Directory, hostile: str) -> None:
    assert directory.find(hostile) is None
    assert directory.find_by("student_id", hostile) is None
    assert directory.authenticate(hostile, "anything") is None


def test_unknown_login_is_none(directory: Directory) -> None:
    assert directory.find("s9999999") is None


@pytest.fixture(params=["builtin", pytest.param("openldap", marks=pytest.mark.ldap)])
def unreachable_directory(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Directory]:
    """Each adapter pointed at a port where nothing listens."""
    from selfservice import create_app
    from selfservice.config import DEFAULTS
    from selfservice.directory.ldap import LdapDirectory

    port = closed_port()
    if request.param == "openldap":
        yield LdapDirectory(
            {
                **DEFAULTS,
                "LDAP_URL": f"ldap://127.0.0.1:{port}",
                "LDAP_BASE_DN": "dc=x",
                "LDAP_BIND_DN": "cn=x,dc=x",
                "LDAP_BIND_PASSWORD": "pw",
                "LDAP_CONNECT_TIMEOUT_SECONDS": 2,
            }
        )
        return
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": f"postgresql+psycopg://x@127.0.0.1:{port}/none",
        }
    )
    with app.app_context():
        yield BuiltinDirectory(app.config)


def test_an_unreachable_directory_fails_fast_and_clearly(unreachable_directory: Directory) -> None:
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        unreachable_directory.find("s1000001")
    with pytest.raises(DirectoryUnavailable):
        unreachable_directory.ping()
    assert time.monotonic() - started < 15  # "within a few seconds", with room for a loaded machine


def test_seed_covers_every_kind() -> None:
    assert {p.kind for p in PEOPLE} == {"student", "parent", "staff"}
