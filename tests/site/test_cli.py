"""The `selfservice` command: help, check, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from selfservice.cli import main
from tests.scratch import free_port
from tests.site.test_site import closed_port


def test_help_lists_the_portal_commands(runner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "db", "check", "run"):
        assert f"  {command} " in result.output


def test_check_prints_masked_settings_and_verdicts(runner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "SECRET_KEY = '********'" in result.output
    assert "test-secret-key" not in result.output
    assert "OK    database: " in result.output
    assert "OK    directory: built-in directory" in result.output
    assert "selfservice check: OK" in result.output


def test_check_fails_with_a_clear_verdict_when_the_directory_is_down(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(
        directory="openldap",
        LDAP_URL=f"ldap://127.0.0.1:{closed_port()}",
        LDAP_BASE_DN="dc=x",
        LDAP_BIND_DN="cn=x,dc=x",
        LDAP_BIND_PASSWORD="pw",
        LDAP_CONNECT_TIMEOUT_SECONDS=1,
    )
    result = app.test_cli_runner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert "FAIL  directory connection: nothing answers" in result.output
    assert "OK    database: " in result.output


def test_production_start_without_a_secret_names_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    env["SELFSERVICE_INSTANCE_PATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "selfservice.cli", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def wait_for(url: str, timeout_seconds: float = 30) -> bytes:
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_demo(command: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*command, "demo", "--port", str(port), "--instance", str(tmp_path / "inst")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        home = wait_for(f"http://127.0.0.1:{port}/").decode()
        for path in ("/forgot", "/password", "/enroll", "/helpdesk/"):
            assert f'href="{path}"' in home
        health = json.loads(wait_for(f"http://127.0.0.1:{port}/healthz"))
        assert health["status"] == "ok"
        assert "Demo mailbox" in wait_for(f"http://127.0.0.1:{port}/demo/mail").decode()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    for login in ("s1000001", "s1000002", "p2000001", "p2000002", "teacher1", "support1", "its1", "admin1"):
        assert login in output
    assert "password: Portal-Demo-2026" in output


@pytest.mark.slow
def test_demo_serves_the_portal_and_prints_the_accounts(tmp_path: Path) -> None:
    run_demo([sys.executable, "-m", "selfservice.cli"], tmp_path)


@pytest.mark.slow
def test_plain_pip_install_carries_templates_static_and_migrations(tmp_path: Path) -> None:
    """A non-editable install serves pages from any working directory.

    The caller's PYTHONPATH is left out of every step: with it, Python would import the
    source tree instead of the install, and the test would prove nothing (or fail for it).
    """
    root = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SELFSERVICE_")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=plain)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(root)], check=True, timeout=900, env=plain)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import selfservice; print(selfservice.PACKAGE_DIR)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=plain,
    ).stdout.strip()
    assert Path(site).is_relative_to(venv), site  # the install, not the source tree
    for folder in ("templates", "static", "migrations"):
        assert (Path(site) / folder).is_dir(), folder
    run_demo([str(venv / "bin" / "selfservice")], tmp_path, plain)
