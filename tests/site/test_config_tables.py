"""Mapping tables (attributes, role groups, second factor) merge with the defaults, key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfservice.config import DEFAULTS, ConfigError, load_settings, validate

SECURE = {
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "sqlite://",
    "BASE_URL": "https://password.district.example",
}


def test_a_partial_attribute_table_keeps_every_other_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'ldap_attributes = { login = "sAMAccount", student_id = "employeeNumber" }\n'
        'role_groups = { support = "Help Desk" }\n'
    )
    settings = load_settings(tmp_path, SECURE)
    validate(settings)
    attributes = settings["LDAP_ATTRIBUTES"]
    assert attributes["login"] == "sAMAccount"
    assert attributes["student_id"] == "employeeNumber"
    assert attributes["kind"] == DEFAULTS["LDAP_ATTRIBUTES"]["kind"]
    assert attributes["birth_month_year"] == DEFAULTS["LDAP_ATTRIBUTES"]["birth_month_year"]
    assert settings["ROLE_GROUPS"] == {**DEFAULTS["ROLE_GROUPS"], "support": "Help Desk"}


def test_the_environment_merges_over_the_file_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('role_groups = { support = "Help Desk" }\n')
    monkeypatch.setenv("SELFSERVICE_ROLE_GROUPS", '{"admin": "Portal Admins"}')
    groups = load_settings(tmp_path, SECURE)["ROLE_GROUPS"]
    assert groups["support"] == "Help Desk"
    assert groups["admin"] == "Portal Admins"
    assert groups["employee"] == "employees"


@pytest.mark.parametrize(
    ("table", "text", "named"),
    [
        ("ldap_attributes", '{ studentid = "x" }', "LDAP_ATTRIBUTES.studentid"),
        ("ad_attributes", '{ mail = "mail" }', "AD_ATTRIBUTES.mail"),
        ("role_groups", '{ teacher = "Staff" }', "ROLE_GROUPS.teacher"),
        ("role_groups", '{ admin = "" }', "ROLE_GROUPS.admin"),
        ("ldap_attributes", '{ login = "" }', "LDAP_ATTRIBUTES.login"),
        ("ldap_attributes", "{ email = 3 }", "LDAP_ATTRIBUTES.email"),
        ("second_factor", '{ parent = "sometimes" }', "SECOND_FACTOR.parent"),
    ],
)
def test_a_wrong_key_or_value_in_a_table_is_refused_naming_it(
    tmp_path: Path, table: str, text: str, named: str
) -> None:
    (tmp_path / "config.toml").write_text(f"{table} = {text}\n")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        validate(load_settings(tmp_path, SECURE))


@pytest.mark.parametrize("pairs", ['[["(", "s\\\\1"]]', '[["([0-9]+)"]]', '["([0-9]+)"]'])
def test_a_malformed_alias_pattern_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pairs: str
) -> None:
    monkeypatch.setenv("SELFSERVICE_RECOVERY_ALIAS_PATTERNS", pairs)
    with pytest.raises(ConfigError, match="RECOVERY_ALIAS_PATTERNS"):
        validate(load_settings(tmp_path, SECURE))


def test_alias_patterns_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSERVICE_RECOVERY_ALIAS_PATTERNS", '[["([0-9]{6})", "stu\\\\1"]]')
    settings = load_settings(tmp_path, SECURE)
    validate(settings)
    assert settings["RECOVERY_ALIAS_PATTERNS"] == [["([0-9]{6})", "stu\\1"]]
