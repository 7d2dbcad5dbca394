"""The docs' worked example on a real slapd: a district's own schema, groups with spaces, ppolicy 10/3."""

from __future__ import annotations

from typing import Any

from tests.conftest import AuthActions
from tests.doctor.district import PASSWORD, district_settings
from tests.doctor.test_check_ldap import check, fail_lines
from tests.slapd import Slapd


def district_app(make_app: Any, slapd: Slapd, **overrides: Any) -> Any:
    return make_app(directory="openldap", **{**district_settings(slapd.url), **overrides})


def test_the_worked_example_mapping_passes_every_check(make_app, district_slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    result = check(district_app(make_app, district_slapd))
    assert result.exit_code == 0, result.output
    for expected in (
        "OK    role group support: cn=Help Desk,ou=Groups,dc=lakeside,dc=k12: 1 direct member(s)",
        "OK    role group employee: cn=All Staff,ou=Groups,dc=lakeside,dc=k12: 2 direct member(s)",
        "OK    attribute student_id: lakesideStudentNumber on 1 of 4 sampled accounts",
        "INFO  account kinds: 1 parent, 2 staff, 1 student",
        "INFO  password policy: cn=default,ou=Policies,dc=lakeside,dc=k12: at least 10 characters, history 3",
        "INFO  password length: the portal asks for 10 characters",
    ):
        assert expected in result.output


def test_the_defaults_on_that_schema_fail_naming_each_setting(make_app, district_slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    """Only the connection settings: the README's defaults find nobody's kind, IDs or groups."""
    settings = district_settings(district_slapd.url)
    del settings["LDAP_ATTRIBUTES"], settings["ROLE_GROUPS"]
    result = check(make_app(directory="openldap", **settings))
    assert result.exit_code == 1
    failed = "\n".join(fail_lines(result.output))
    for setting in (
        "LDAP_ATTRIBUTES.kind",
        "LDAP_ATTRIBUTES.student_id",
        "LDAP_ATTRIBUTES.birth_month_year",
        "ROLE_GROUPS.employee",
        "ROLE_GROUPS.support",
    ):
        assert f"[setting: {setting}]" in failed


def test_a_student_is_seen_with_kind_and_birth_month(make_app, district_slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    result = check(district_app(make_app, district_slapd), "--account", "7000001")
    account = result.output.split("account '7000001':", 1)[1]
    assert "name                   José Núñez" in account
    assert "kind                   student" in account
    assert "birth month/year       11/2011 (112011)" in account


def test_the_staff_roles_come_from_groups_with_spaces(make_app, district_slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    result = check(district_app(make_app, district_slapd), "--account", "h9000002")
    assert "roles                  admin, employee, its, support" in result.output


def test_the_change_page_asks_for_the_directorys_10_characters(make_app, district_slapd: Slapd) -> None:  # type: ignore[no-untyped-def]
    client = district_app(make_app, district_slapd).test_client()
    assert AuthActions(client).login("s7000001", PASSWORD).status_code == 303
    page = client.get("/password").get_data(as_text=True)
    assert "At least 10 characters" in page
    assert "It cannot be one of the last 3 passwords used." in page
