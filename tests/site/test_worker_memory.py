"""What a web worker holds after start-up and its first dates (issue 17, P5).

Each case runs in a fresh interpreter that builds the app as selfservice.wsgi does (with
the test settings): what this test process imported for other tests does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_settings

#: Build the app, optionally write the dates the pages and notices show, report what is loaded.
WORKER = """
import json, sys
from datetime import UTC, datetime
from selfservice import create_app

settings, languages = json.loads(sys.argv[1]), json.loads(sys.argv[2])
app = create_app(settings)
if languages:
    from flask_babel import force_locale
    from selfservice.helpdesk.hours import SupportHours
    from selfservice.site.context import describe_hours, describe_moment
    with app.test_request_context():
        for language in languages:
            with force_locale(language):
                describe_hours(SupportHours.from_settings(app.config))  # pages, help-desk hours
                describe_moment(datetime(2026, 12, 2, 19, 14, tzinfo=UTC))  # the reset notice
import babel.core, babel.localedata
print(json.dumps({
    "modules": sorted(sys.modules),
    "babel_locales": sorted(babel.localedata._cache),
    "babel_global": babel.core._global_data is not None,
}))
"""


def worker(tmp_path: Path, database_url: str, languages: tuple[str, ...] = ()) -> dict[str, Any]:
    settings = base_settings(database_url, tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(settings), json.dumps(languages)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("database_url", "other"),
    [
        ("sqlite:///{tmp}/worker.sqlite", "postgresql"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "sqlite"),
    ],
    ids=["sqlite", "postgresql"],
)
def test_a_worker_loads_only_its_own_databases_dialect(tmp_path: Path, database_url: str, other: str) -> None:
    """The upserts import their dialect when first run (selfservice.dbtypes.insert_for)."""
    loaded = worker(tmp_path, database_url.format(tmp=tmp_path))["modules"]
    assert f"sqlalchemy.dialects.{other}" not in loaded


def test_a_worker_does_not_load_mail_delivery(tmp_path: Path) -> None:
    """The sync and webhook commands, registered with their blueprints, share selfservice.workers
    with the mail worker, not its delivery module (smtplib, email generation)."""
    loaded = worker(tmp_path, f"sqlite:///{tmp_path}/worker.sqlite")["modules"]
    assert "selfservice.mail.delivery" not in loaded
    assert "smtplib" not in loaded


def test_dates_on_pages_and_in_notices_load_no_babel_locale_data(tmp_path: Path) -> None:
    """Support hours and the reset notice's moment, in every language, from date_names.json
    (selfservice.dates): Babel's locale data (about 2 MB a language) and its global data
    (2 MB) stay unloaded."""
    found = worker(tmp_path, f"sqlite:///{tmp_path}/worker.sqlite", ("en", "es", "ht", "fr"))
    assert found["babel_locales"] == []
    assert found["babel_global"] is False
