"""`selfservice check` on a real Samba AD DC: each misconfiguration fails with its cause and setting."""

from __future__ import annotations

from typing import Any

import pytest

from selfservice.cli import main
from tests.doctor.test_check_ldap import check, fail_lines
from tests.samba import BASE_DN, SambaDC


def test_a_right_setup_passes_and_reads_the_domain_policy(make_app) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="ad"))
    assert result.exit_code == 0, result.output
    for expected in (
        "OK    directory bind: bound as CN=selfservice",
        "OK    people base DN: DC=school,DC=test exists",
        "OK    attribute unique_id: objectGUID on ",
        "OK    role group employee: CN=employees,OU=Groups,DC=school,DC=test: 2 direct member(s)",
        "OK    write rights: can write pwdLastSet, lockoutTime",
        "INFO  password policy: DC=school,DC=test: at least 7 characters, history 24, complexity required",
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
            {"LDAP_BIND_DN": f"CN=nobody,OU=Services,{BASE_DN}"},
            "directory bind: invalid credentials",
            "LDAP_BIND_DN, LDAP_BIND_PASSWORD",
        ),
        ({"LDAP_BASE_DN": f"OU=Pupils,{BASE_DN}"}, "people base DN: 'OU=Pupils,", "LDAP_BASE_DN"),
        ({"LDAP_GROUP_BASE_DN": f"OU=Teams,{BASE_DN}"}, "group base DN: 'OU=Teams,", "LDAP_GROUP_BASE_DN"),
        (
            {"ROLE_GROUPS": {"admin": "Portal Admins"}},
            "role group admin: no group 'Portal Admins'",
            "ROLE_GROUPS.admin",
        ),
        (
            {"AD_ATTRIBUTES": {"kind": "schoolAccountKind"}},
            "attribute kind: 'schoolAccountKind' is not in the server's schema",
            "AD_ATTRIBUTES.kind",
        ),
    ],
)
def test_each_misconfiguration_fails_naming_cause_and_setting(
    make_app, overrides: dict[str, Any], cause: str, setting: str
) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="ad", **overrides))
    assert result.exit_code == 1, result.output
    assert any(cause in line and f"[setting: {setting}]" in line for line in fail_lines(result.output)), (
        result.output
    )


def test_plain_ldap_to_ad_fails_as_unencrypted(make_app, samba_ad: SambaDC) -> None:  # type: ignore[no-untyped-def]
    result = check(make_app(directory="ad", LDAP_URL=f"ldap://{samba_ad.address}:389"))
    assert result.exit_code == 1
    assert fail_lines(result.output) == [
        "FAIL  directory encryption: Active Directory takes passwords only over an encrypted connection"
        "  [setting: LDAP_URL (ldaps://) or LDAP_START_TLS]"
    ]
    assert "directory bind" not in result.output  # the service password never went out in clear


def test_a_trusted_certificate_is_required_when_validation_is_on(make_app) -> None:  # type: ignore[no-untyped-def]
    """Samba's self-signed certificate is trusted by nobody: the line says so and names the CA setting."""
    result = check(make_app(directory="ad", LDAP_VALIDATE_CERT=True))
    assert result.exit_code == 1
    assert any(
        "directory TLS: TLS handshake failed" in line and "LDAP_CA_FILE" in line
        for line in fail_lines(result.output)
    ), result.output


def test_the_domain_minimum_of_10_is_named(make_app, domain_min_length_10) -> None:  # type: ignore[no-untyped-def]
    result = make_app(directory="ad").test_cli_runner().invoke(main, ["check", "--no-settings"])
    assert "at least 10 characters" in result.output
    assert "password length: the portal asks for 10 characters" in result.output
