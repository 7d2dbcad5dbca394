"""The API on two gunicorn instances sharing one PostgreSQL and one Redis behaves as one API.

A client's rate limit is one budget whichever instance is called, and a token revoked
stops working on every instance at once (no instance keeps its own idea of the token).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade

from selfservice import create_app
from selfservice.api.clients import create_client, find_client, revoke
from selfservice.audit.services import SYSTEM
from selfservice.extensions import db
from tests.api.helpers import EVERY_SCOPE
from tests.conftest import FAST_HASHING, seed_builtin
from tests.deploy.instances import Instances, production_environment, start_gunicorn
from tests.deploy.test_two_instances import in_database
from tests.scratch import scratch_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STATUS = "/api/v1/accounts/p2000001/status"


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Instances]:
    with scratch_postgres("selfservice_instances") as database_url:
        environment = production_environment(database_url, tmp_path)
        app = create_app(
            {"TESTING": True, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path), **FAST_HASHING}
        )
        with app.app_context():
            upgrade()
            seed_builtin(app.extensions["selfservice.directory"])
            db.session.remove()
            db.engine.dispose()
        for urls in start_gunicorn(environment, count=2):
            yield Instances(urls=urls, database_url=database_url, environment=environment)


def issue(instances: Instances, name: str, rate_limit: str) -> str:
    def create(app):  # type: ignore[no-untyped-def]
        return create_client(
            name, EVERY_SCOPE, rate_limit=rate_limit, expires_in_days=None, actor="admin1", origin=SYSTEM
        ).token

    return in_database(instances, create)


def call(base: str, token: str, ip: str = "203.0.113.90") -> int:
    request = urllib.request.Request(base + STATUS, method="GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("X-Forwarded-For", ip)
    request.add_header("X-Forwarded-Proto", "https")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_clients_rate_limit_holds_across_instances(instances: Instances) -> None:
    first, second = instances.urls
    token = issue(instances, "sis", "4 per minute")
    assert [call(url, token) for url in [first, second, first, second]] == [200, 200, 200, 200]
    assert call(first, token) == 429
    assert call(second, token) == 429
    # Another client's budget is its own.
    other = issue(instances, "lms", "4 per minute")
    assert call(second, other) == 200


def test_a_token_revoked_is_refused_on_both_instances(instances: Instances) -> None:
    first, second = instances.urls
    token = issue(instances, "sis", "100 per minute")
    assert call(first, token) == 200
    assert call(second, token) == 200  # both instances have seen the live token

    def revoke_it(app):  # type: ignore[no-untyped-def]
        return revoke(find_client("sis"), actor="admin1", origin=SYSTEM)

    assert in_database(instances, revoke_it)
    assert call(second, token) == 401
    assert call(first, token) == 401
