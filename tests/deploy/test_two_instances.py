"""Two gunicorn instances on one PostgreSQL and one Redis behave as one portal.

An attacker alternating between them gets no extra guesses, a token used on one is
dead on the other, and everything both record lands in one audit log.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from selfservice import create_app
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.portal.models import RecoveryChallenge
from selfservice.security.models import Lockout, RateLimitBreach
from tests.conftest import FAST_HASHING, person, seed_builtin
from tests.deploy.instances import (
    Client,
    Instances,
    Response,
    production_environment,
    start_gunicorn,
)
from tests.portal.test_recovery import NEW_PASSWORD, WRONG, enroll, enrolled_answers
from tests.scratch import scratch_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ATTACKER_IP = "198.51.100.23"


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Instances]:
    with scratch_postgres("selfservice_instances") as database_url:
        environment = production_environment(
            database_url, tmp_path, SIGN_IN_RATE_LIMIT="4 per minute", RECOVERY_RATE_LIMIT="100 per minute"
        )
        app = create_app(
            {"TESTING": True, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path), **FAST_HASHING}
        )
        with app.app_context():
            upgrade()
            seed_builtin(app.extensions["selfservice.directory"])
        enroll(app, "s1000001")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        for urls in start_gunicorn(environment, count=2):
            yield Instances(urls=urls, database_url=database_url, environment=environment)


def in_database(instances: Instances, query):  # type: ignore[no-untyped-def]
    app = create_app({"TESTING": True, "DATABASE_URL": instances.database_url, **FAST_HASHING})
    with app.app_context():
        try:
            return query(app)
        finally:
            db.session.remove()
            db.engine.dispose()


def audit_count(instances: Instances, tag: Tag) -> int:
    statement = select(func.count()).select_from(AuditEvent).where(AuditEvent.tag == tag)
    return int(in_database(instances, lambda app: db.session.scalar(statement)) or 0)


def answer_pinned_questions(client: Client, url: str, instances: Instances, *, right: bool) -> Response:
    """Give the login on ``url``, then answer the questions pinned for it."""
    assert client.post(url, "/forgot", {"login": "s1000001"}).status == 303
    question_ids = in_database(
        instances, lambda app: db.session.scalars(select(RecoveryChallenge)).one().question_ids
    )
    known = in_database(instances, lambda app: enrolled_answers(app, "s1000001"))
    data = {f"answer_{n}": known[qid] if right else WRONG for n, qid in enumerate(question_ids, start=1)}
    return client.post(url, "/forgot/questions", data)


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
    assert (
        Client(client_ip="203.0.113.50").post(first, "/login", {"login": "s1000002", "password": "x"}).status
        == 400
    )
    assert audit_count(instances, Tag.LOGIN_FAILURE) == 5
    assert audit_count(instances, Tag.RATE_LIMIT_BREACH) == 0  # counted, not a row each
    assert breach_count(instances) == 1


def breach_count(instances: Instances) -> int:
    """Refusals the workers counted; each writes its counts every couple of seconds."""
    statement = select(func.coalesce(func.sum(RateLimitBreach.count), 0))
    deadline = time.monotonic() + 10
    while True:
        found = int(in_database(instances, lambda app: db.session.scalar(statement)) or 0)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_both_instances_report_healthy_with_redis(instances: Instances) -> None:
    for url in instances.urls:
        response = Client(client_ip="203.0.113.7").get(url, "/healthz")
        assert response.status == 200
        assert '"limiter":"ok"' in response.text.replace(" ", "")


def test_alternating_instances_gives_no_extra_guesses(instances: Instances) -> None:
    attacker = Client(client_ip=ATTACKER_IP)
    for n in range(6):
        response = answer_pinned_questions(attacker, instances.urls[n % 2], instances, right=False)
        assert response.status == 303
        assert response.headers["Location"].endswith("/forgot/help")
    lock = in_database(instances, lambda app: db.session.scalars(select(Lockout)).one())
    assert lock.failures == 5
    assert lock.locked_until is not None
    assert audit_count(instances, Tag.LOCKED) == 1
    # Even the right answers, on the other instance, are refused while the lock holds.
    refused = answer_pinned_questions(attacker, instances.urls[1], instances, right=True)
    assert refused.headers["Location"].endswith("/forgot/help")


def test_a_token_used_on_one_instance_is_dead_on_the_other(instances: Instances) -> None:
    first, second = instances.urls
    student = Client(client_ip="203.0.113.80")
    verified = answer_pinned_questions(student, first, instances, right=True)
    reset_path = urllib.parse.urlsplit(verified.headers["Location"]).path
    assert reset_path.startswith("/forgot/reset/")
    form = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert student.post(first, reset_path, form).status == 303
    replay = Client(client_ip="203.0.113.81")
    assert replay.post(second, reset_path, form).status == 410
    assert (
        in_database(
            instances,
            lambda app: app.extensions["selfservice.directory"].authenticate("s1000001", NEW_PASSWORD),
        )
        is not None
    )
    assert (
        in_database(
            instances,
            lambda app: app.extensions["selfservice.directory"].authenticate(
                "s1000001", person("s1000001").password
            ),
        )
        is None
    )
    assert audit_count(instances, Tag.PASSWORD_RESET) == 1
