"""`selfservice --help` and `init` need no configuration; the demo starts fresh and matches the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from selfservice.config import load_settings, validate
from selfservice.demo import DEMO_ACCOUNTS, DEMO_DATABASE, demo_settings

ROOT = Path(__file__).resolve().parents[2]


def bare_environment(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    env["SELFSERVICE_INSTANCE_PATH"] = str(instance)
    return env


def selfservice(*arguments: str, instance: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfservice.cli", *arguments],
        env=bare_environment(instance),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command_without_any_configuration(tmp_path: Path) -> None:
    result = selfservice("--help", instance=tmp_path)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    for command in ("accounts", "check", "db", "demo", "deliver-mail", "init", "purge", "unlock", "run"):
        assert f"  {command} " in result.stdout, command


@pytest.mark.parametrize("directory", ["builtin", "openldap", "ad"])
def test_init_writes_a_commented_config_with_a_fresh_secret_and_says_where(
    tmp_path: Path, directory: str
) -> None:
    url = "https://password.district.example"
    result = selfservice("init", "--directory", directory, "--base-url", url, instance=tmp_path)
    target = tmp_path / "config.toml"
    assert result.returncode == 0, result.stderr
    assert f"Wrote {target}" in result.stdout
    text = target.read_text()
    assert text.count("\n# ") > 5
    data = tomllib.loads(text)
    assert data["directory"] == directory
    assert len(data["secret_key"]) >= 32
    assert data["base_url"] == url
    validate(load_settings(tmp_path))  # a production start accepts it as written
    assert target.stat().st_mode & 0o077 == 0


def test_init_never_replaces_a_config_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('district_name = "Mine"\n')
    result = selfservice("init", instance=tmp_path)
    assert result.returncode != 0
    assert "exists already" in result.stderr
    assert (tmp_path / "config.toml").read_text() == 'district_name = "Mine"\n'


def test_the_demo_starts_from_a_fresh_database_unless_kept(tmp_path: Path) -> None:
    database = tmp_path / DEMO_DATABASE
    database.write_text("last run")
    demo_settings(tmp_path, keep=True)
    assert database.exists()
    settings = demo_settings(tmp_path)
    assert not database.exists()
    assert settings["DATABASE_URL"] == f"sqlite:///{database}"


def test_the_demo_accounts_match_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for account in DEMO_ACCOUNTS:
        if account.birth_month_year:
            born = f"{account.birth_month_year[:2]}/{account.birth_month_year[2:]}"
            row = re.search(rf"^\| `{account.login}` \|.*$", readme, re.MULTILINE)
            assert row, account.login
            assert f"born {born}" in row.group(0), account.login


def test_both_scripts_share_one_editable_install_and_the_readme_instance_folder() -> None:
    env = (ROOT / "scripts" / "_env.sh").read_text()
    assert "SELFSERVICE_INSTANCE_PATH=${SELFSERVICE_INSTANCE_PATH:-$PWD/instance}" in env
    for script in ("demo", "test"):
        text = (ROOT / "scripts" / script).read_text()
        assert "ensure_installed" in text
        assert "pip install" not in text
