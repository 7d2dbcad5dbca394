"""Two gunicorn instances on one PostgreSQL and one Redis behave as one portal.

An attacker alternating between them gets no extra guesses, a token used on one is
dead on the other, and everything both record lands in one audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from selfservice import create_app
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from tests.conftest import FAST_HASHING, seed_builtin
from tests.deploy.instances import Client, Instances, production_environment, scratch_postgres, start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ATTACKER_IP = "198.51.100.23"


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Instances]:
    for database_url in scratch_postgres():
        environment = production_environment(
            database_url, tmp_path, SIGN_IN_RATE_LIMIT="4 per minute", RECOVERY_RATE_LIMIT="100 per minute"
        )
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
                          **FAST_HASHING})
        with app.app_context():
            upgrade()
            seed_builtin(app.extensions["selfservice.directory"])
            db.session.remove()
            db.engine.dispose()
        for urls in start_gunicorn(environment, count=2):
            yield Instances(urls=urls, database_url=database_url, environment=environment)


def audit_count(instances: Instances, tag: Tag) -> int:
    app = create_app({"TESTING": True, "DATABASE_URL": instances.database_url})
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.tag == tag))
        db.session.remove()
        db.engine.dispose()
    return int(count or 0)


def test_per_ip_limit_holds_across_instances(instances: Instances) -> None:
    attacker = Client(client_ip=ATTACKER_IP)
    first, second = instances.urls
    statuses = [
        attacker.post(url, "/login", {"login": "s1000001", "password": f"guess-{n}"}).status
        for n, url in enumerate([first, second, first, second])
    ]
    assert statuses == [400, 400, 400, 400]
    refused = attacker.post(second, "/login", {"login": "s1000001", "password": "guess-5"})
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert Client(client_ip="203.0.113.50").post(first, "/login", {"login": "s1000001", "password": "x"}).status == 400
    assert audit_count(instances, Tag.LOGIN_FAILURE) == 5
    assert audit_count(instances, Tag.RATE_LIMIT_BREACH) == 1


def test_both_instances_report_healthy_with_redis(instances: Instances) -> None:
    for url in instances.urls:
        response = Client(client_ip="203.0.113.7").get(url, "/healthz")
        assert response.status == 200
        assert '"limiter":"ok"' in response.text.replace(" ", "")
