"""What only the OpenLDAP adapter does: ppolicy, groups, escaping, timeouts.

Runs against the real slapd of tests/slapd.py; the behaviour every adapter shares
is covered by the cross-adapter contract suite.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.support import Translations

import selfservice
from selfservice import config
from selfservice.directory.interfaces import (
    AccountKind,
    DirectoryUnavailable,
    InvalidCredentials,
    PasswordRejected,
    PasswordUnchanged,
    Role,
)
from selfservice.directory.ldap import LdapDirectory
from tests.fixtures.disabling import PERMANENT_LOCK, failure_lock_time, ldap_lock
from tests.fixtures.people import PEOPLE, person
from tests.fixtures.referral import referral_elsewhere
from tests.scratch import free_port
from tests.slapd import Slapd

TRANSLATIONS = Path(selfservice.__file__).parent / "translations"

pytestmark = [pytest.mark.ldap, pytest.mark.slow]

UNREACHABLE_SECONDS = 10  # generous: the defaults (3 s connect, 5 s receive) must fail well inside it
NEW_PASSWORD = "Fresh-Meadow-9001"


@pytest.fixture
def directory_with(slapd: Slapd) -> Iterator[Callable[..., LdapDirectory]]:
    """Build LdapDirectory objects on the test slapd with some settings overridden."""
    built: list[LdapDirectory] = []

    def build(**overrides: Any) -> LdapDirectory:
        built.append(LdapDirectory({**config.DEFAULTS, **slapd.settings(), **overrides}))
        return built[-1]

    yield build
    for directory in built:
        directory.close()


def unreachable_directory(url: str) -> LdapDirectory:
    """Default timeouts, a server that is not there."""
    settings = {**config.DEFAULTS, "LDAP_URL": url, "LDAP_BASE_DN": "dc=school,dc=test"}
    settings |= {"LDAP_BIND_DN": "cn=selfservice,ou=services,dc=school,dc=test", "LDAP_BIND_PASSWORD": "x"}
    return LdapDirectory(settings)


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def black_hole_port() -> Iterator[int]:
    """A port that accepts TCP connections (backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# --- lookups ------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["s1000001", "1000001", "ana.lopez@students.school.test"])
def test_student_is_found_by_login_student_id_or_email(ldap_directory: LdapDirectory, login: str) -> None:
    account = ldap_directory.find(login)

    assert account is not None
    assert account.login == "s1000001"
    assert account.kind is AccountKind.STUDENT
    assert account.ref == "uid=s1000001,ou=people,dc=school,dc=test"


def test_account_key_is_entry_uuid_and_get_finds_it(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("p2000001")
    assert account is not None

    assert len(account.key) == 36
    assert account.key.count("-") == 4
    assert ldap_directory.get(account.key) == account
    assert ldap_directory.get("not-a-uuid") is None


def test_parent_fields_come_from_the_school_schema(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find_by("parent_account_number", "A-2000002")

    assert account is not None
    assert (account.login, account.kind, account.email) == ("p2000002", AccountKind.PARENT, None)
    assert (account.parent_pin, account.phone) == ("7390", "555-0102")


def test_lookup_by_unknown_field_is_a_programming_error(ldap_directory: LdapDirectory) -> None:
    with pytest.raises(ValueError, match="display_name"):
        ldap_directory.find_by("display_name", "Ana Lopez")


def test_ambiguous_lookup_finds_nobody(directory_with: Callable[..., LdapDirectory]) -> None:
    attributes = {**config.DEFAULTS["LDAP_ATTRIBUTES"], "email": "schoolAccountKind"}
    directory = directory_with(LDAP_ATTRIBUTES=attributes)

    assert directory.find_by("email", "student") is None
    assert directory.count_by("email", "student") == 2  # a sync target stops there (never the next field)


@pytest.fixture
def non_ascii_logins(slapd: Slapd) -> Iterator[None]:
    """Two people whose logins case-folding changes beyond LDAP's own case matching."""
    connection = slapd.root_connection()
    dns = []
    for uid in ("straße", "İlker"):
        dns.append(f"uid={uid},ou=people,dc=school,dc=test")
        attributes = {"uid": uid, "cn": uid, "sn": uid, "userPassword": "Lantern-Orchard-7731"}
        assert connection.add(dns[-1], ["inetOrgPerson"], attributes), connection.result
    yield
    for dn in dns:
        connection.delete(dn)
    connection.unbind()


@pytest.mark.parametrize("typed", ["straße", "İlker", " İlker "])
def test_a_login_case_folding_changes_is_still_found(
    ldap_directory: LdapDirectory, non_ascii_logins: None, typed: str
) -> None:
    """casefold() makes ß "ss" and İ "i̇"; slapd's case-insensitive match does neither, so these
    people could not sign in or recover at all."""
    account = ldap_directory.find(typed)

    assert account is not None
    assert account.login == typed.strip()
    assert ldap_directory.authenticate(typed, "Lantern-Orchard-7731") == account


def test_an_entry_without_its_unique_id_is_no_account(directory_with: Callable[..., LdapDirectory]) -> None:
    """A unique_id mapped to an attribute only some entries hold: those entries get no key.

    Before, each came back with the key "", so every such account shared one enrollment,
    one lockout and one set of sessions (staff and parents here have no student ID).
    """
    attributes = {**config.DEFAULTS["LDAP_ATTRIBUTES"], "unique_id": "schoolStudentId"}
    directory = directory_with(LDAP_ATTRIBUTES=attributes)

    assert directory.find("s1000001").key == "1000001"  # type: ignore[union-attr]
    assert directory.find("teacher1") is None
    assert directory.find_by("email", "teacher1@school.test") is None
    assert directory.authenticate("teacher1", person("teacher1").password) is None
    assert directory.get("") is None


@pytest.mark.parametrize(
    "hostile",
    [
        "*",
        "a*)(uid=*",
        "*)(|(uid=*",
        "s1000001)(uid=*",
        "s1000001*",
        "\\",
        "(",
        ")",
        "\x00",
        "O'Brien*",
        "*'*",
    ],
)
def test_filter_injection_matches_nobody(ldap_directory: LdapDirectory, hostile: str) -> None:
    assert ldap_directory.find(hostile) is None
    assert ldap_directory.find_by("student_id", hostile) is None
    assert ldap_directory.get(hostile) is None
    assert ldap_directory.authenticate(hostile, "Correct-Horse-1001") is None


def test_apostrophe_in_a_login_is_just_a_character(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("o'brien2")

    assert account is not None
    assert account.display_name == "Siobhan O'Brien"
    assert ldap_directory.authenticate("o'brien2", person("o'brien2").password) == account
    assert ldap_directory.find("obrien") != account


def test_non_ascii_name_and_password_round_trip(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.authenticate("jnunez", "Río-Grande-1004")

    assert account is not None
    assert account.display_name == "José Núñez"
    assert ldap_directory.find("José Núñez") is None  # display name is not a login field
    ldap_directory.set_password(account, "Mañana-Señor-1004")
    assert ldap_directory.authenticate("jnunez", "Mañana-Señor-1004") == account


def test_a_referral_never_takes_the_service_password_elsewhere(
    directory_with: Callable[..., LdapDirectory], slapd: Slapd
) -> None:
    """ldap3 chases referrals by default, to any host, binding with the same DN and password.

    Before, the service account's password went in clear to the host the referral named.
    """
    with referral_elsewhere(slapd) as (dn, elsewhere):
        directory = directory_with(LDAP_BASE_DN=dn, LDAP_OPERATION_TIMEOUT_SECONDS=2)

        assert directory.find("s1000001") is None
        with pytest.raises(TimeoutError):
            elsewhere.accept()[0].close()


# --- roles --------------------------------------------------------------------------


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
def test_roles_come_from_group_membership(
    ldap_directory: LdapDirectory, login: str, roles: set[Role]
) -> None:
    account = ldap_directory.find(login)

    assert account is not None
    assert account.roles == roles


def test_every_seed_account_is_found_with_its_kind(ldap_directory: LdapDirectory) -> None:
    for seed in PEOPLE:
        account = ldap_directory.find(seed.login)
        assert account is not None, seed.login
        assert (account.kind.value, account.display_name) == (seed.kind, seed.display_name)


# --- authentication and passwords ---------------------------------------------------


def test_empty_or_wrong_password_never_authenticates(ldap_directory: LdapDirectory) -> None:
    assert ldap_directory.authenticate("s1000001", "") is None
    assert ldap_directory.authenticate("s1000001", "Correct-Horse-1002") is None
    assert ldap_directory.authenticate("", "") is None


def test_reset_with_must_change_sets_pwd_reset_and_plain_reset_clears_it(
    ldap_directory: LdapDirectory,
) -> None:
    account = ldap_directory.find("s1000002")
    assert account is not None
    assert not account.must_change

    ldap_directory.set_password(account, NEW_PASSWORD, must_change=True)
    forced = ldap_directory.get(account.key)
    assert forced is not None
    assert forced.must_change
    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is not None

    ldap_directory.set_password(account, "Other-Meadow-9002")
    cleared = ldap_directory.get(account.key)
    assert cleared is not None
    assert not cleared.must_change


def test_holder_changing_their_password_clears_must_change(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("s1000002")
    assert account is not None
    ldap_directory.set_password(account, NEW_PASSWORD, must_change=True)

    ldap_directory.change_password(account, NEW_PASSWORD, "Holder-Chosen-9003")

    changed = ldap_directory.authenticate("s1000002", "Holder-Chosen-9003")
    assert changed is not None
    assert not changed.must_change
    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is None


def test_change_with_wrong_old_password_is_invalid_credentials(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("p2000001")
    assert account is not None

    with pytest.raises(InvalidCredentials):
        ldap_directory.change_password(account, "Not-The-Password-1", NEW_PASSWORD)
    with pytest.raises(InvalidCredentials):
        ldap_directory.change_password(account, "", NEW_PASSWORD)


def test_too_short_password_is_refused_with_a_reason(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("s1000001")
    assert account is not None

    with pytest.raises(PasswordRejected) as refused:
        ldap_directory.change_password(account, "Correct-Horse-1001", "Sh0rt")

    assert "too short" in refused.value.reason
    assert ldap_directory.authenticate("s1000001", "Correct-Horse-1001") is not None


def test_recent_password_is_refused_with_a_reason(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("s1000001")
    assert account is not None
    ldap_directory.change_password(account, "Correct-Horse-1001", NEW_PASSWORD)

    with pytest.raises(PasswordRejected) as refused:
        ldap_directory.change_password(account, NEW_PASSWORD, "Correct-Horse-1001")

    assert "used recently" in refused.value.reason


def test_a_reset_to_the_current_password_is_refused_as_unchanged(ldap_directory: LdapDirectory) -> None:
    """ppolicy's "not being changed": a refusal for a person, "already there" for the sync worker."""
    account = ldap_directory.find("s1000001")
    assert account is not None
    ldap_directory.set_password(account, NEW_PASSWORD)

    with pytest.raises(PasswordUnchanged) as refused:
        ldap_directory.set_password(account, NEW_PASSWORD)

    assert refused.value.reason == "The new password must be different from the current one."
    assert isinstance(refused.value, PasswordRejected)


def test_empty_new_password_is_refused(ldap_directory: LdapDirectory) -> None:
    account = ldap_directory.find("s1000001")
    assert account is not None

    with pytest.raises(PasswordRejected) as refused:
        ldap_directory.set_password(account, "")
    assert ldap_directory.authenticate("s1000001", "Correct-Horse-1001") is not None
    # The reason reaches the page through gettext: it is in every catalog.
    for language in ("es", "fr", "ht"):
        catalog = Translations.load(str(TRANSLATIONS), [language])
        assert catalog.gettext(refused.value.reason) != refused.value.reason, language


def test_directory_lock_shows_as_disabled_and_unlock_clears_it(
    ldap_directory: LdapDirectory, slapd: Slapd
) -> None:
    ldap_lock(slapd, "p2000002", failure_lock_time())
    account = ldap_directory.find("p2000002")
    assert account is not None
    assert account.disabled
    assert ldap_directory.authenticate("p2000002", "Quiet-Harbor-2002") is None

    ldap_directory.unlock(account)
    ldap_directory.unlock(account)  # already unlocked: nothing to do

    unlocked = ldap_directory.authenticate("p2000002", "Quiet-Harbor-2002")
    assert unlocked is not None
    assert not unlocked.disabled


def test_a_reset_ends_a_ppolicy_lock_unless_told_to_keep_it(
    ldap_directory: LdapDirectory, slapd: Slapd
) -> None:
    """ppolicy itself removes pwdAccountLockedTime on a reset; ``unlock=False`` writes a failure lock back."""
    ldap_lock(slapd, "p2000002", failure_lock_time())
    ldap_lock(slapd, "s1000002", failure_lock_time())

    ldap_directory.set_password(ldap_directory.find("p2000002"), NEW_PASSWORD, unlock=False)
    ldap_directory.set_password(ldap_directory.find("s1000002"), NEW_PASSWORD)

    kept = ldap_directory.find("p2000002")
    assert kept is not None
    assert kept.disabled
    assert ldap_directory.authenticate("p2000002", NEW_PASSWORD) is None
    ldap_directory.unlock(kept)
    assert ldap_directory.authenticate("p2000002", NEW_PASSWORD) is not None  # the password was set
    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is not None  # the default: unlocked


def test_a_failure_lock_is_not_an_administrators_disable_and_a_reset_lifts_it(
    ldap_directory: LdapDirectory, slapd: Slapd
) -> None:
    """ppolicy's lock after failed binds carries a real time; only 000001010000Z is an administrator's."""
    ldap_lock(slapd, "s1000002", failure_lock_time())
    locked = ldap_directory.find("s1000002")
    assert locked is not None
    assert locked.disabled  # no sign-in while it holds
    assert not locked.disabled_by_admin

    ldap_directory.set_password(locked, NEW_PASSWORD)

    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is not None


def test_a_reset_never_lifts_an_administrators_permanent_lock(
    ldap_directory: LdapDirectory, slapd: Slapd
) -> None:
    """A primary's reset (unlock=True) writes the permanent lock back after ppolicy removed it."""
    ldap_lock(slapd, "s1000002", PERMANENT_LOCK)
    ldap_directory.set_password(ldap_directory.find("s1000002"), NEW_PASSWORD)

    kept = ldap_directory.find("s1000002")
    assert kept is not None
    assert kept.disabled_by_admin
    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is None
    ldap_lock(slapd, "s1000002", failure_lock_time())  # what is left once an administrator enables it
    ldap_directory.unlock(kept)
    assert ldap_directory.authenticate("s1000002", NEW_PASSWORD) is not None  # the password was set


def test_unlock_never_lifts_an_administrators_permanent_lock(
    ldap_directory: LdapDirectory, slapd: Slapd
) -> None:
    """unlock ends a failure lock (help desk, admin console, CLI, a sync target's unlock); a disable stays."""
    ldap_lock(slapd, "p2000002", PERMANENT_LOCK)
    ldap_directory.unlock(ldap_directory.find("p2000002"))

    still = ldap_directory.find("p2000002")
    assert still is not None
    assert still.disabled_by_admin
    assert ldap_directory.authenticate("p2000002", "Quiet-Harbor-2002") is None


# --- connections ----------------------------------------------------------------------


def test_plain_ldap_url_without_start_tls_answers(
    slapd: Slapd, directory_with: Callable[..., LdapDirectory]
) -> None:
    directory = directory_with(LDAP_URL=f"{slapd.url}/", LDAP_START_TLS=False)

    directory.ping()
    assert directory.find("teacher1") is not None


def test_service_connection_is_reopened_after_it_drops(ldap_directory: LdapDirectory) -> None:
    ldap_directory.ping()
    ldap_directory._connection.socket.close()  # type: ignore[union-attr]  # the server "went away"

    assert ldap_directory.find("teacher1") is not None


def test_wrong_service_password_is_directory_unavailable(
    directory_with: Callable[..., LdapDirectory],
) -> None:
    directory = directory_with(LDAP_BIND_PASSWORD="Wrong-Service-Secret")

    with pytest.raises(DirectoryUnavailable, match="service account"):
        directory.ping()
    with pytest.raises(DirectoryUnavailable):
        directory.find("s1000001")


def test_closed_port_fails_fast(closed_port: int) -> None:
    directory = unreachable_directory(f"ldap://127.0.0.1:{closed_port}")

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        directory.ping()
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate("s1000001", "Correct-Horse-1001")
    assert time.monotonic() - started < UNREACHABLE_SECONDS


def test_server_that_never_answers_times_out(black_hole_port: int) -> None:
    directory = unreachable_directory(f"ldap://127.0.0.1:{black_hole_port}")

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        directory.find("s1000001")
    assert time.monotonic() - started < UNREACHABLE_SECONDS


def test_start_tls_refused_by_the_server_is_unavailable_not_plaintext(
    directory_with: Callable[..., LdapDirectory],
) -> None:
    directory = directory_with(LDAP_START_TLS=True)  # the test slapd has no certificate

    with pytest.raises(DirectoryUnavailable):
        directory.ping()
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate("s1000001", "Correct-Horse-1001")
