"""`selfservice check` on a real slapd: each misconfiguration fails with its cause and setting."""

from __future__ import annotations

from typing import Any

import pytest

from selfservice.cli import main
from tests.conftest import person
from tests.fixtures.referral import referral_elsewhere
from tests.site.test_site import closed_port
from tests.slapd import BASE_DN, Slapd


def check(app: Any, *arguments: str) -> Any:
    return app.test_cli_runner().invoke(main, ["check", "--no-settings", *arguments])


def fail_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


def test_a_right_setup_passes_with_one_line_per_check(make_app) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap"))
    assert result.exit_code == 0, result.output
    for expected in (
        "OK    database: ",
        "OK    directory connection: 127.0.0.1:",
        "OK    directory bind: bound as cn=selfservice",
        "OK    people base DN: dc=school,dc=test exists",
        "OK    group base DN: ou=groups,dc=school,dc=test exists",
        "OK    attribute student_id: schoolStudentId on ",
        "OK    role group its: cn=its,ou=groups,dc=school,dc=test: 1 direct member(s)",
        "INFO  password policy: cn=default,ou=policies,dc=school,dc=test: at least 8 characters, history 3",
    ):
        assert expected in result.output
    assert not fail_lines(result.output)


@pytest.mark.parametrize(
    ("overrides", "cause", "setting"),
    [
        (
            {"LDAP_BIND_PASSWORD": "wrong"},
            "directory bind: invalid credentials",
            "LDAP_BIND_DN, LDAP_BIND_PASSWORD",
        ),
        (
            {"LDAP_BIND_DN": f"cn=nobody,{BASE_DN}"},
            "directory bind: invalid credentials",
            "LDAP_BIND_DN, LDAP_BIND_PASSWORD",
        ),
        ({"LDAP_START_TLS": True}, "directory TLS:", "LDAP_START_TLS"),
        ({"LDAP_BASE_DN": f"ou=pupils,{BASE_DN}"}, "people base DN: 'ou=pupils,", "LDAP_BASE_DN"),
        ({"LDAP_GROUP_BASE_DN": f"ou=teams,{BASE_DN}"}, "group base DN: 'ou=teams,", "LDAP_GROUP_BASE_DN"),
        (
            {"ROLE_GROUPS": {"support": "Help Desk"}},
            "role group support: no group 'Help Desk'",
            "ROLE_GROUPS.support",
        ),
        (
            {"LDAP_ATTRIBUTES": {"student_id": "districtStudentNumber"}},
            "attribute student_id: 'districtStudentNumber' is not in the server's schema",
            "LDAP_ATTRIBUTES.student_id",
        ),
        (  # only students hold one: every other account would share the key ""
            {"LDAP_ATTRIBUTES": {"unique_id": "schoolStudentId"}},
            "attribute unique_id: schoolStudentId on 5 of ",
            "LDAP_ATTRIBUTES.unique_id",
        ),
        ({"LDAP_USER_FILTER": "(objectClass=organizationalRole)"}, "accounts: no entry", "LDAP_USER_FILTER"),
        ({"LDAP_USER_FILTER": "(objectClass=posixAccount)"}, "accounts: the filter", "LDAP_USER_FILTER"),
    ],
)
def test_each_misconfiguration_fails_naming_cause_and_setting(
    make_app, overrides: dict[str, Any], cause: str, setting: str
) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap", **overrides))
    assert result.exit_code == 1, result.output
    assert any(cause in line and f"[setting: {setting}]" in line for line in fail_lines(result.output)), (
        result.output
    )
    assert "selfservice check: FAILED" in result.output


def test_a_referral_at_the_base_dn_is_not_followed(make_app, slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    """ldap3 would chase it, binding as the service account at the host the referral names."""
    with referral_elsewhere(slapd) as (dn, elsewhere):
        result = check(make_app(directory="openldap", LDAP_BASE_DN=dn, LDAP_OPERATION_TIMEOUT_SECONDS=2))

        assert "FAIL  people base DN: 'ou=elsewhere,dc=school,dc=test' does not exist" in result.output
        with pytest.raises(TimeoutError):
            elsewhere.accept()[0].close()


def test_a_server_that_is_down_is_not_called_wrong_credentials(make_app) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    result = check(make_app(directory="openldap", LDAP_URL=f"ldap://127.0.0.1:{port}"))
    assert result.exit_code == 1
    assert fail_lines(result.output) == [
        f"FAIL  directory connection: nothing answers at 127.0.0.1:{port} (Connection refused)"
        "  [setting: LDAP_URL]"
    ]


def test_the_default_attribute_names_on_a_schema_without_them_fail(make_app, slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    """A district schema without the school* attributes: every default that is not there is named."""
    renamed = {"kind": "districtRole", "birth_month_year": "districtBirth", "parent_pin": "districtPin"}
    result = check(make_app(directory="openldap", LDAP_ATTRIBUTES=renamed))
    assert result.exit_code == 1
    for field in renamed:
        assert f"[setting: LDAP_ATTRIBUTES.{field}]" in "\n".join(fail_lines(result.output))


def test_the_directory_minimum_above_the_portal_one_is_reported(make_app, policy_min_length_10) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap"))
    assert (
        "password policy: cn=default,ou=policies,dc=school,dc=test: at least 10 characters" in result.output
    )
    assert "password length: the portal asks for 10 characters" in result.output


def test_check_account_shows_how_the_portal_sees_a_student(make_app) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap"), "--account", "s1000001")
    assert result.exit_code == 0, result.output
    lines = result.output.split("account 's1000001':", 1)[1]
    assert "kind                   student" in lines
    assert "student ID             1000001" in lines
    assert "birth month/year" in lines
    assert "must change password   no" in lines


def test_a_refused_bind_never_shows_the_password(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(directory="openldap", LDAP_BIND_PASSWORD="Wrong-Secret-987")
    result = app.test_cli_runner().invoke(main, ["check"])  # with the settings printed too
    assert result.exit_code == 1
    assert "LDAP_BIND_PASSWORD = '********'" in result.output
    assert "Wrong-Secret-987" not in result.output


def test_check_account_shows_a_parent_without_the_pin(make_app) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap"), "--account", "p2000001")
    assert "parent account number  A-2000001" in result.output
    assert "parent PIN             set" in result.output
    pin = person("p2000001").parent_pin or ""
    shown = [
        line for line in result.output.splitlines() if not line.strip().startswith(("key", "OK", "INFO"))
    ]
    assert not [line for line in shown if pin in line]  # (a random entryUUID could hold the digits)


def test_check_account_for_nobody_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="openldap"), "--account", "nobody-here")
    assert "no single account found for 'nobody-here'" in result.output
