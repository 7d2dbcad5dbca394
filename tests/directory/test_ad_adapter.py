"""What only the Active Directory adapter does: objectGUID keys, unicodePwd, pwdLastSet,
lockoutTime, nested groups, AD's error codes.

Runs against the real Samba AD DC of tests/samba.py, bound as a service account that
holds only the delegated rights (reset password, write pwdLastSet and lockoutTime).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import ldap3
import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice import config
from selfservice.directory import get_directory
from selfservice.directory.ad import AdDirectory
from selfservice.directory.interfaces import (
    AccountKind,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    PasswordRejected,
    Role,
)
from tests.conftest import AuthActions, post_form
from tests.fixtures.disabling import ad_modify
from tests.fixtures.people import PEOPLE, person
from tests.samba import LOCKOUT_THRESHOLD, SambaDC, group_dn

pytestmark = [pytest.mark.ad, pytest.mark.slow]

UNREACHABLE_SECONDS = 10  # generous: the defaults (3 s connect, 5 s receive) must fail well inside it
NEW_PASSWORD = "Fresh-Meadow-9001"


@pytest.fixture
def directory_with(samba_ad: SambaDC) -> Iterator[Callable[..., AdDirectory]]:
    """Build AdDirectory objects on the test DC with some settings overridden."""
    built: list[AdDirectory] = []

    def build(**overrides: Any) -> AdDirectory:
        built.append(AdDirectory({**config.DEFAULTS, **samba_ad.settings(), **overrides}))
        return built[-1]

    yield build
    for directory in built:
        directory.close()


@pytest.fixture
def black_hole_port() -> Iterator[int]:
    """A port that accepts TCP connections (backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# --- lookups --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login",
    [
        "s1000001",  # sAMAccountName
        "S1000001",  # AD compares case-insensitively
        "s1000001@school.test",  # userPrincipalName
        "1000001",  # employeeID
        "ana.lopez@students.school.test",  # mail
    ],
)
def test_student_is_found_by_each_login_attribute(ad_directory: AdDirectory, login: str) -> None:
    account = ad_directory.find(login)

    assert account is not None
    assert account.login == "s1000001"
    assert account.kind is AccountKind.STUDENT
    assert account.ref == "CN=Ana Lopez,OU=People,DC=school,DC=test"


def test_account_key_is_the_object_guid_and_get_finds_it(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("p2000001")
    assert account is not None

    assert str(uuid.UUID(account.key)) == account.key
    assert ad_directory.get(account.key) == account
    assert ad_directory.get(account.key.upper()) == account
    assert ad_directory.get(str(uuid.uuid4())) is None
    assert ad_directory.get("not-a-guid") is None


def test_a_unique_id_that_is_no_guid_gives_no_account(directory_with: Callable[..., AdDirectory]) -> None:
    """The key is read as an objectGUID: any other attribute gave every account the key ""."""
    attributes = {**config.DEFAULTS["AD_ATTRIBUTES"], "unique_id": "employeeID"}
    directory = directory_with(AD_ATTRIBUTES=attributes)

    assert directory.find("s1000001") is None
    assert directory.find("teacher1") is None


def test_parent_fields_come_from_the_mapped_attributes(ad_directory: AdDirectory) -> None:
    account = ad_directory.find_by("parent_account_number", "A-2000002")

    assert account is not None
    assert (account.login, account.kind, account.email) == ("p2000002", AccountKind.PARENT, None)
    assert (account.parent_pin, account.phone, account.display_name) == ("7390", "555-0102", "David Carter")


def test_every_seed_account_is_found_with_its_fields(ad_directory: AdDirectory) -> None:
    for seed in PEOPLE:
        account = ad_directory.find(seed.login)
        assert account is not None, seed.login
        found = (account.kind.value, account.display_name, account.student_id, account.birth_month_year)
        assert found == (seed.kind, seed.display_name, seed.student_id, seed.birth_month_year)
        assert not account.must_change
        assert not account.disabled


@pytest.mark.parametrize(
    "hostile",
    ["*", "a*)(uid=*", "*)(|(sAMAccountName=*", "s1000001)(objectClass=*", "s1000001*", "\\", "(", "\x00"],
)
def test_filter_injection_matches_nobody(ad_directory: AdDirectory, hostile: str) -> None:
    assert ad_directory.find(hostile) is None
    assert ad_directory.find_by("student_id", hostile) is None
    assert ad_directory.get(hostile) is None
    assert ad_directory.authenticate(hostile, "Correct-Horse-1001") is None


def test_apostrophes_and_accents_are_just_characters(ad_directory: AdDirectory) -> None:
    siobhan = ad_directory.authenticate("o'brien2", person("o'brien2").password)
    assert siobhan is not None
    assert siobhan.display_name == "Siobhan O'Brien"
    assert ad_directory.find("O'Brien") is None  # part of a display name is not a login
    assert ad_directory.find("obrien") != siobhan

    jose = ad_directory.authenticate("jnunez", "Río-Grande-1004")
    assert jose is not None
    assert jose.display_name == "José Núñez"
    assert ad_directory.find("José Núñez") is None
    ad_directory.set_password(jose, "Mañana-Señor-1004")
    assert ad_directory.authenticate("jnunez", "Mañana-Señor-1004") == jose


# --- roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "roles"),
    [
        ("teacher1", {Role.EMPLOYEE}),  # "library" maps to no role
        ("support1", {Role.SUPPORT}),
        ("its1", {Role.ITS}),  # configured as a full group DN
        ("admin1", {Role.ADMIN, Role.EMPLOYEE}),
        ("s1000001", set()),
        ("p2000001", set()),
    ],
)
def test_roles_come_from_group_membership(ad_directory: AdDirectory, login: str, roles: set[Role]) -> None:
    account = ad_directory.find(login)

    assert account is not None
    assert account.roles == roles


def test_membership_through_a_nested_group_counts(ad_directory: AdDirectory, samba_ad: SambaDC) -> None:
    tier2 = group_dn("help desk tier 2")
    conn = samba_ad.admin_connection()
    try:
        attributes = {"objectClass": ["top", "group"], "member": [samba_ad.dn("teacher1")]}
        assert conn.add(tier2, attributes=attributes), conn.result
        assert conn.modify(group_dn("support"), {"member": [(ldap3.MODIFY_ADD, [tier2])]}), conn.result
        account = ad_directory.find("teacher1")
    finally:
        conn.modify(group_dn("support"), {"member": [(ldap3.MODIFY_DELETE, [tier2])]})
        conn.delete(tier2)
        conn.unbind()

    assert account is not None
    assert account.roles == {Role.EMPLOYEE, Role.SUPPORT}


# --- authentication ---------------------------------------------------------------------


def test_right_password_binds_and_wrong_or_empty_does_not(ad_directory: AdDirectory) -> None:
    account = ad_directory.authenticate("s1000001@school.test", "Correct-Horse-1001")

    assert account is not None
    assert account.login == "s1000001"
    assert ad_directory.authenticate("s1000001", "Correct-Horse-1002") is None
    assert ad_directory.authenticate("s1000001", "") is None
    assert ad_directory.authenticate("", "") is None
    assert ad_directory.authenticate("nobody-here", "Correct-Horse-1001") is None


def test_disabled_account_shows_as_disabled_and_cannot_sign_in(
    ad_directory: AdDirectory, samba_ad: SambaDC
) -> None:
    ad_modify(samba_ad, samba_ad.dn("s1000002"), {"userAccountControl": [(ldap3.MODIFY_REPLACE, ["514"])]})

    account = ad_directory.find("s1000002")
    assert account is not None
    assert account.disabled
    assert account.disabled_by_admin
    assert ad_directory.authenticate("s1000002", "Battery-Staple-1002") is None
    with pytest.raises(DisabledByAdmin):  # told as disabled (the page says whom to contact)
        ad_directory.change_password(account, "Battery-Staple-1002", NEW_PASSWORD)


# --- passwords --------------------------------------------------------------------------


def test_admin_reset_replaces_the_password(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("p2000001")
    assert account is not None

    ad_directory.set_password(account, NEW_PASSWORD)

    assert ad_directory.authenticate("p2000001", NEW_PASSWORD) == account
    assert ad_directory.authenticate("p2000001", "Purple-Falcon-2001") is None


def test_reset_with_must_change_sets_pwd_last_set_to_zero_and_plain_reset_clears_it(
    ad_directory: AdDirectory,
) -> None:
    account = ad_directory.find("s1000002")
    assert account is not None

    ad_directory.set_password(account, NEW_PASSWORD, must_change=True)
    forced = ad_directory.get(account.key)
    assert forced is not None
    assert forced.must_change
    # AD refuses the bind (data 773), yet the password is right: the holder may sign in to change it.
    signed_in = ad_directory.authenticate("s1000002", NEW_PASSWORD)
    assert signed_in is not None
    assert signed_in.must_change
    assert ad_directory.authenticate("s1000002", "Battery-Staple-1002") is None

    ad_directory.set_password(account, "Other-Meadow-9002")
    cleared = ad_directory.get(account.key)
    assert cleared is not None
    assert not cleared.must_change


def test_holder_changes_their_own_password(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("teacher1")
    assert account is not None

    ad_directory.change_password(account, "Chalk-Board-3001", NEW_PASSWORD)

    assert ad_directory.authenticate("teacher1", NEW_PASSWORD) == account
    assert ad_directory.authenticate("teacher1", "Chalk-Board-3001") is None


def test_holder_who_must_change_can_change_and_the_flag_clears(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("s1000002")
    assert account is not None
    ad_directory.set_password(account, NEW_PASSWORD, must_change=True)

    ad_directory.change_password(account, NEW_PASSWORD, "Holder-Chosen-9003")

    changed = ad_directory.authenticate("s1000002", "Holder-Chosen-9003")
    assert changed is not None
    assert not changed.must_change
    assert ad_directory.authenticate("s1000002", NEW_PASSWORD) is None


def test_change_with_wrong_old_password_is_invalid_credentials(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("p2000001")
    assert account is not None

    with pytest.raises(InvalidCredentials):
        ad_directory.change_password(account, "Not-The-Password-1", NEW_PASSWORD)
    with pytest.raises(InvalidCredentials):
        ad_directory.change_password(account, "", NEW_PASSWORD)
    assert ad_directory.authenticate("p2000001", "Purple-Falcon-2001") is not None


@pytest.mark.parametrize(
    ("new_password", "reason"),
    [
        ("Sh0r!", "too short"),
        ("lowercaseonly", "too simple"),
        ("NoDigitsOrSymbols", "too simple"),
    ],
)
def test_password_the_domain_policy_refuses_is_rejected_with_a_reason(
    ad_directory: AdDirectory, new_password: str, reason: str
) -> None:
    account = ad_directory.find("s1000001")
    assert account is not None

    with pytest.raises(PasswordRejected) as refused:
        ad_directory.change_password(account, "Correct-Horse-1001", new_password)
    with pytest.raises(PasswordRejected):
        ad_directory.set_password(account, new_password)

    assert reason in refused.value.reason
    assert ad_directory.authenticate("s1000001", "Correct-Horse-1001") is not None


def test_recent_password_is_refused_with_a_reason(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("s1000001")
    assert account is not None
    ad_directory.change_password(account, "Correct-Horse-1001", NEW_PASSWORD)

    with pytest.raises(PasswordRejected) as refused:
        ad_directory.change_password(account, NEW_PASSWORD, "Correct-Horse-1001")

    assert "used recently" in refused.value.reason
    assert ad_directory.authenticate("s1000001", NEW_PASSWORD) is not None


def test_empty_new_password_is_refused(ad_directory: AdDirectory) -> None:
    account = ad_directory.find("s1000001")
    assert account is not None

    with pytest.raises(PasswordRejected):
        ad_directory.set_password(account, "")
    with pytest.raises(PasswordRejected):
        ad_directory.change_password(account, "Correct-Horse-1001", "")
    assert ad_directory.authenticate("s1000001", "Correct-Horse-1001") is not None


def test_passwords_never_go_over_plain_ldap(directory_with: Callable[..., AdDirectory]) -> None:
    directory = directory_with(LDAP_URL="ldap://127.0.0.1:9", LDAP_START_TLS=False)
    account = ad_account(directory_with, "s1000001")

    for attempt in (
        lambda: directory.set_password(account, NEW_PASSWORD),
        lambda: directory.change_password(account, "Correct-Horse-1001", NEW_PASSWORD),
        lambda: directory.authenticate("s1000001", "Correct-Horse-1001"),
    ):
        with pytest.raises(DirectoryUnavailable, match="ldaps://"):
            attempt()


def test_the_service_account_never_binds_over_plain_ldap(directory_with: Callable[..., AdDirectory]) -> None:
    """Lookups bind the service account too: before, its password went out in clear on ldap://."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(1)
        url = f"ldap://127.0.0.1:{listener.getsockname()[1]}"
        directory = directory_with(LDAP_URL=url, LDAP_START_TLS=False, LDAP_OPERATION_TIMEOUT_SECONDS=1)

        for attempt in (lambda: directory.find("s1000001"), directory.ping):
            with pytest.raises(DirectoryUnavailable, match="ldaps://"):
                attempt()
        with pytest.raises(TimeoutError):
            listener.accept()[0].close()


def ad_account(directory_with: Callable[..., AdDirectory], login: str) -> Any:
    account = directory_with().find(login)
    assert account is not None
    return account


# --- lockout ----------------------------------------------------------------------------


def test_directory_lockout_shows_as_disabled_and_unlock_clears_it(ad_directory: AdDirectory) -> None:
    for _ in range(LOCKOUT_THRESHOLD):
        assert ad_directory.authenticate("p2000002", "Wrong-Guess-0000") is None
    locked = ad_directory.find("p2000002")
    assert locked is not None
    assert locked.disabled
    assert not locked.disabled_by_admin  # a lockout is the directory's, not an administrator's
    assert ad_directory.authenticate("p2000002", "Quiet-Harbor-2002") is None
    with pytest.raises(PasswordRejected, match="locked"):
        ad_directory.change_password(locked, "Quiet-Harbor-2002", NEW_PASSWORD)

    ad_directory.unlock(locked)
    ad_directory.unlock(locked)  # already unlocked: nothing to do

    unlocked = ad_directory.authenticate("p2000002", "Quiet-Harbor-2002")
    assert unlocked is not None
    assert not unlocked.disabled


def test_admin_reset_also_ends_a_lockout(ad_directory: AdDirectory) -> None:
    for _ in range(LOCKOUT_THRESHOLD):
        ad_directory.authenticate("p2000002", "Wrong-Guess-0000")
    account = ad_directory.find("p2000002")
    assert account is not None
    assert account.disabled

    ad_directory.set_password(account, NEW_PASSWORD)

    assert ad_directory.authenticate("p2000002", NEW_PASSWORD) is not None


# --- connections ------------------------------------------------------------------------


def test_start_tls_on_the_plain_port_works_too(
    samba_ad: SambaDC, directory_with: Callable[..., AdDirectory]
) -> None:
    directory = directory_with(LDAP_URL=f"ldap://{samba_ad.address}:389", LDAP_START_TLS=True)
    account = directory.find("teacher1")
    assert account is not None

    directory.change_password(account, "Chalk-Board-3001", NEW_PASSWORD)
    assert directory.authenticate("teacher1", NEW_PASSWORD) == account


def test_wrong_service_password_is_directory_unavailable(
    directory_with: Callable[..., AdDirectory],
) -> None:
    directory = directory_with(LDAP_BIND_PASSWORD="Wrong-Service-Secret")

    with pytest.raises(DirectoryUnavailable, match="service account"):
        directory.ping()
    with pytest.raises(DirectoryUnavailable):
        directory.find("s1000001")


def test_unreachable_server_is_directory_unavailable_quickly(
    directory_with: Callable[..., AdDirectory], black_hole_port: int
) -> None:
    defaults = {"LDAP_CONNECT_TIMEOUT_SECONDS": 3, "LDAP_OPERATION_TIMEOUT_SECONDS": 5}
    closed = directory_with(LDAP_URL="ldaps://127.0.0.1:9", **defaults)  # discard port: refused
    silent = directory_with(LDAP_URL=f"ldaps://127.0.0.1:{black_hole_port}", **defaults)

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        closed.ping()
    with pytest.raises(DirectoryUnavailable):
        closed.authenticate("s1000001", "Correct-Horse-1001")
    with pytest.raises(DirectoryUnavailable):
        silent.find("s1000001")
    assert time.monotonic() - started < UNREACHABLE_SECONDS


# --- the portal on Active Directory ----------------------------------------------------------


def change_in_portal(client: FlaskClient, current: str, new: str) -> Any:
    return post_form(client, "/password", {"current_password": current, "new_password": new, "confirm": new})


def test_staff_member_signs_in_and_changes_their_password_through_the_portal(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(directory="ad")
    client = app.test_client()

    assert AuthActions(client).login("teacher1@school.test", "Chalk-Board-3001").status_code == 303
    assert "Signed in as Tina Teacher" in client.get("/").get_data(as_text=True)
    assert change_in_portal(client, "Chalk-Board-3001", NEW_PASSWORD).status_code == 303

    with app.app_context():
        directory = get_directory()
        assert directory.authenticate("teacher1", NEW_PASSWORD) is not None
        assert directory.authenticate("teacher1", "Chalk-Board-3001") is None


def test_portal_shows_the_domain_history_refusal_as_a_form_error(make_app: Callable[..., Flask]) -> None:
    app = make_app(directory="ad")
    client = app.test_client()
    AuthActions(client).login("s1000001")
    assert change_in_portal(client, "Correct-Horse-1001", NEW_PASSWORD).status_code == 303

    response = change_in_portal(client, NEW_PASSWORD, "Correct-Horse-1001")

    assert response.status_code == 400
    assert "That password was used recently." in response.get_data(as_text=True)
