"""`selfservice check` on the database's migrations and the limiter storage (real SQLite, Redis)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete

from selfservice import create_app
from selfservice.cli import main
from selfservice.config import ConfigError
from selfservice.directory.models import DirectoryAccount
from selfservice.doctor import Verdict
from selfservice.doctor.services import check_limiter
from selfservice.extensions import db
from tests.conftest import base_settings
from tests.fixtures.people import PEOPLE
from tests.site.test_site import closed_port


def test_a_database_never_upgraded_fails_and_says_what_to_run(tmp_path: Path) -> None:
    app = create_app(base_settings(f"sqlite:///{tmp_path / 'fresh.sqlite'}", tmp_path))
    result = app.test_cli_runner().invoke(main, ["check", "--no-settings"])
    assert result.exit_code == 1
    assert (
        "FAIL  database: sqlite database reachable but empty: run `selfservice db upgrade`"
        "  [setting: DATABASE_URL]" in result.output
    )


def test_redis_storage_that_answers_passes() -> None:
    settings = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379", "WEB_WORKERS": 4}
    assert [finding.verdict for finding in check_limiter(settings)] == [Verdict.OK]


def test_redis_storage_that_does_not_answer_fails_naming_the_setting() -> None:
    settings = {"RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{closed_port()}", "WEB_WORKERS": 4}
    [finding] = check_limiter(settings)
    assert finding.verdict is Verdict.FAIL
    assert finding.setting == "RATELIMIT_STORAGE_URI"


@pytest.mark.parametrize(
    "uri",
    ["redisx://portal:S3cret-Redis-pw@127.0.0.1:6379", "rediss+typo://:S3cret-Redis-pw@127.0.0.1:6379/0"],
)
def test_an_unusable_storage_uri_is_refused_naming_the_setting_never_its_password(
    tmp_path: Path, uri: str
) -> None:
    settings = {**base_settings("sqlite://", tmp_path), "RATELIMIT_STORAGE_URI": uri}
    with pytest.raises(ConfigError) as refused:
        create_app(settings)
    assert "RATELIMIT_STORAGE_URI" in str(refused.value)
    assert "S3cret-Redis-pw" not in str(refused.value)
    [finding] = check_limiter({"RATELIMIT_STORAGE_URI": uri, "WEB_WORKERS": 4})
    assert finding.verdict is Verdict.FAIL
    assert "S3cret-Redis-pw" not in finding.line()


def test_memory_storage_with_several_workers_is_refused(tmp_path: Path) -> None:
    [finding] = check_limiter({"RATELIMIT_STORAGE_URI": "memory://", "WEB_WORKERS": 4})
    assert finding.verdict is Verdict.FAIL
    settings = {
        **base_settings("sqlite://", tmp_path),
        "WEB_WORKERS": 4,
        "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
    }
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI is memory:// but WEB_WORKERS is 4"):
        create_app(settings)


def test_the_builtin_directory_reports_its_accounts_and_role_groups(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    output = app.test_cli_runner().invoke(main, ["check", "--no-settings"]).output
    assert f"OK    directory: built-in directory: {len(PEOPLE)} accounts" in output
    assert "OK    role group its: its: 1 member(s)  [setting: ROLE_GROUPS.its]" in output


def test_an_empty_builtin_directory_says_how_to_fill_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    with app.app_context():
        db.session.execute(delete(DirectoryAccount))
        db.session.commit()
    output = app.test_cli_runner().invoke(main, ["check", "--no-settings"]).output
    assert (
        "WARN  directory: built-in directory with no accounts yet: `selfservice accounts import FILE.csv`"
        in output
    )
