"""Settings: defaults < instance/config.toml < SELFSERVICE_* environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfservice import create_app
from selfservice.config import ConfigError, load_settings, masked, validate

SECURE = {"SECRET_KEY": "x" * 40, "DATABASE_URL": "sqlite://", "BASE_URL": "https://password.school.test"}


def test_environment_overrides_file_which_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(
        'district_name = "From File"\nlockout_minutes = 45\nsupport_opens = "08:00"\n'
    )
    monkeypatch.setenv("SELFSERVICE_LOCKOUT_MINUTES", "60")
    settings = load_settings(tmp_path)
    assert settings["DISTRICT_NAME"] == "From File"
    assert settings["LOCKOUT_MINUTES"] == 60
    assert settings["SUPPORT_OPENS"] == "08:00"
    assert settings["LOCKOUT_MAX_FAILURES"] == 5


def test_explicit_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSERVICE_LOCKOUT_MINUTES", "60")
    assert load_settings(tmp_path, {"LOCKOUT_MINUTES": 5})["LOCKOUT_MINUTES"] == 5


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("DEMO", "yes", True),
        ("SESSION_COOKIE_SECURE", "false", False),
        ("LOCKOUT_MAX_FAILURES", "7", 7),
        ("LOGIN_FIELDS", "login, email", ["login", "email"]),
        ("LOGIN_FIELDS", '["student_id"]', ["student_id"]),
        (
            "ROLE_GROUPS",
            '{"admin": "cn=admins,dc=x"}',
            {"employee": "employees", "support": "support", "its": "its", "admin": "cn=admins,dc=x"},
        ),
    ],
)
def test_environment_values_take_the_type_of_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, raw: str, expected: object
) -> None:
    monkeypatch.setenv(f"SELFSERVICE_{name}", raw)
    assert load_settings(tmp_path)[name] == expected


@pytest.mark.parametrize(
    ("name", "raw"), [("LOCKOUT_MINUTES", "soon"), ("DEMO", "maybe"), ("ROLE_GROUPS", "[1]")]
)
def test_unreadable_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(f"SELFSERVICE_{name}", raw)
    with pytest.raises(ConfigError, match=f"SELFSERVICE_{name}"):
        load_settings(tmp_path)


def test_broken_config_file_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("district_name = \n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE"),
        ({"DIRECTORY": "demo"}, "DIRECTORY"),
        ({"DIRECTORY": "novell"}, "DIRECTORY"),
        ({"LOCKOUT_MINUTES": "30"}, "LOCKOUT_MINUTES"),
        ({"BASE_URL": ""}, "BASE_URL"),
        ({"BASE_URL": "password.school.test"}, "BASE_URL"),
        ({"BASE_URL": "javascript:alert(1)"}, "BASE_URL"),
        ({"TRUSTED_NETWORKS": ["10.0.0.0/33"]}, "TRUSTED_NETWORKS"),
        ({"SIGN_IN_ACCOUNT_RATE_LIMIT": "five a minute"}, "SIGN_IN_ACCOUNT_RATE_LIMIT"),
        ({"ARGON2_MAX_CONCURRENT": 0}, "ARGON2_MAX_CONCURRENT"),
    ],
)
def test_production_refuses_insecure_or_malformed_settings(
    tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        create_app({**SECURE, "INSTANCE_PATH": str(tmp_path), **overrides})


@pytest.mark.parametrize("relaxed", ["DEMO", "DEBUG"])
def test_demo_and_debug_may_run_without_secure_cookies(tmp_path: Path, relaxed: str) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": "sqlite://",
            relaxed: True,
            "SESSION_COOKIE_SECURE": False,
            "SECRET_KEY": "",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_secure_settings_start(tmp_path: Path) -> None:
    app = create_app({**SECURE, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_masked_settings_hide_secrets_and_database_password(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        {
            "SECRET_KEY": "s3cret-value",
            "LDAP_BIND_PASSWORD": "bindpw",
            "SMTP_PASSWORD": "",
            "DATABASE_URL": "postgresql+psycopg://portal:dbpw@db.example/portal",
        },
    )
    shown = masked(settings)
    text = repr(shown)
    assert "s3cret-value" not in text
    assert "bindpw" not in text
    assert "dbpw" not in text
    assert shown["DATABASE_URL"] == "postgresql+psycopg://portal:********@db.example/portal"
    assert shown["SMTP_PASSWORD"] == ""


def test_validate_accepts_the_defaults_in_tests() -> None:
    validate({**load_settings(Path("/nonexistent")), "TESTING": True})


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECOND_FACTOR": {"student": "of", "parent": "if-available", "staff": "off"}}, "SECOND_FACTOR"),
        ({"SECOND_FACTOR": {"students": "off"}}, "SECOND_FACTOR"),
        ({"SECOND_FACTOR": {"parent": "Required"}}, "SECOND_FACTOR"),
        ({"STAFF_SECOND_FACTOR": {"admin": "if-available"}}, "STAFF_SECOND_FACTOR"),
        ({"STAFF_SECOND_FACTOR": {"teacher": "off"}}, "STAFF_SECOND_FACTOR"),
        ({"ROLE_GROUPS": {"superuser": "admins"}}, "ROLE_GROUPS"),
        ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY"),
        ({"DEFAULT_LANGUAGE": "fr-XX"}, "DEFAULT_LANGUAGE"),
        # More questions asked than enrolled: real accounts would be asked fewer than decoys (invariant 4).
        ({"RECOVERY_QUESTION_COUNT": 6}, "RECOVERY_QUESTION_COUNT"),
        ({"RECOVERY_QUESTION_COUNT": 0}, "RECOVERY_QUESTION_COUNT"),
        ({"ENROLL_QUESTION_COUNT": 0, "RECOVERY_QUESTION_COUNT": 0}, "ENROLL_QUESTION_COUNT"),
    ],
)
@pytest.mark.parametrize("mode", ["TESTING", "DEMO", "PRODUCTION"])
def test_settings_with_a_fixed_set_of_values_are_checked_at_start_in_every_mode(
    tmp_path: Path, overrides: dict[str, object], named: str, mode: str
) -> None:
    """An unknown value is refused at start, never read as "off" (issue 14 item 13)."""
    relaxed = {} if mode == "PRODUCTION" else {mode: True}
    with pytest.raises(ConfigError, match=named):
        create_app({**SECURE, "INSTANCE_PATH": str(tmp_path), **relaxed, **overrides})
