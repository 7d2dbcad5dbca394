"""Webhooks received by a real HTTP server in the test process: signed, retried, never twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.api import webhooks
from selfservice.api.models import DeliveryStatus, WebhookDelivery
from selfservice.extensions import db
from selfservice.timeutil import utcnow
from tests.api.helpers import STUDENT, Api, issue
from tests.scratch import free_port
from tests.site.test_outages import on_every_connection, read_only, writable

SECRET = "webhook-secret-for-tests-0123456789abcdef"


class Receiver:
    """The external desk's endpoint: records each POST's headers and body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None
        #: Seconds each answer takes (a slow desk).
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/selfservice"

    def start(self) -> None:
        received, receiver = self.received, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(free_port())
    yield found
    found.stop()


@pytest.fixture
def hooked_app(make_app: Any, receiver: Receiver) -> Flask:
    return make_app(WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET, WEBHOOK_RETRY_BASE_SECONDS=30)


def deliver(app: Flask, *, later_seconds: int = 0) -> webhooks.PassResult:
    with app.app_context():
        now = utcnow() + timedelta(seconds=later_seconds)
        return webhooks.deliver_due(app.config, worker="test-worker", now=now)


def deliveries(app: Flask) -> list[WebhookDelivery]:
    with app.app_context():
        return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_status_change_is_posted_signed_to_the_desk(hooked_app: Flask, receiver: Receiver) -> None:
    receiver.start()
    api = Api(hooked_app.test_client(), issue(hooked_app))
    number = api.post("/requests", STUDENT).json["number"]
    api.post(f"/requests/{number}/notes", {"text": "a note changes no status"})
    api.post(f"/requests/{number}/close", {"text": "closed at the desk"})
    assert deliver(hooked_app).sent == 3
    statuses = [json.loads(body)["status"] for _headers, body in receiver.received]
    assert statuses == ["open", "resolved", "closed"]
    headers, body = receiver.received[0]
    assert json.loads(body)["request"]["number"] == number
    assert webhooks.verify(SECRET, headers["X-Selfservice-Signature"], body, now=time.time())
    assert not webhooks.verify("another-secret", headers["X-Selfservice-Signature"], body, now=time.time())
    assert not webhooks.verify(SECRET, headers["X-Selfservice-Signature"], body, now=time.time() + 3600)
    assert not webhooks.verify(SECRET, headers["X-Selfservice-Signature"], body + b" ", now=time.time())


def test_a_desk_that_was_down_gets_the_post_after_the_backoff_and_only_once(
    hooked_app: Flask, receiver: Receiver
) -> None:
    api = Api(hooked_app.test_client(), issue(hooked_app))
    api.post("/requests", STUDENT)
    first = deliver(hooked_app)  # nobody listens on the port yet
    assert (first.sent, first.retry) == (0, 1)
    [queued] = deliveries(hooked_app)
    assert queued.status == DeliveryStatus.QUEUED
    assert queued.attempts == 1
    assert "Connection refused" in queued.last_error or "URLError" in queued.last_error
    receiver.start()
    assert deliver(hooked_app).sent == 0  # not due before the backoff
    assert deliver(hooked_app, later_seconds=31).sent == 1
    assert deliver(hooked_app, later_seconds=3600).sent == 0
    assert len(receiver.received) == 1
    assert deliveries(hooked_app)[0].status == DeliveryStatus.SENT


def test_a_desk_that_never_answers_is_given_up_on(make_app: Any, receiver: Receiver) -> None:
    app = make_app(
        WEBHOOK_URLS=[receiver.url],
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_MAX_ATTEMPTS=2,
        WEBHOOK_RETRY_BASE_SECONDS=0,
    )
    Api(app.test_client(), issue(app)).post("/requests", STUDENT)
    deliver(app)
    assert deliver(app).failed == 1
    assert deliveries(app)[0].status == DeliveryStatus.FAILED


def test_without_webhook_urls_nothing_is_queued(app: Flask, client: FlaskClient) -> None:
    Api(client, issue(app)).post("/requests", STUDENT)
    assert deliveries(app) == []


def test_the_worker_command_delivers_once(hooked_app: Flask, receiver: Receiver) -> None:
    receiver.start()
    Api(hooked_app.test_client(), issue(hooked_app)).post("/requests", STUDENT)
    result = hooked_app.test_cli_runner().invoke(args=["deliver-webhooks", "--once"])
    assert "sent 1" in result.output
    assert len(receiver.received) == 1


def test_webhook_urls_without_a_secret_refuse_to_start(make_app: Any) -> None:
    from selfservice.config import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        make_app(WEBHOOK_URLS=["https://desk.example.test/hook"])
    with pytest.raises(ConfigError, match="WEBHOOK_URLS"):
        make_app(WEBHOOK_URLS=["ftp://desk.example.test/hook"], WEBHOOK_SECRET=SECRET)


def test_two_workers_never_claim_the_same_delivery(hooked_app: Flask) -> None:
    Api(hooked_app.test_client(), issue(hooked_app)).post("/requests", STUDENT)
    with hooked_app.app_context():
        rules = webhooks.WebhookRules.from_config(hooked_app.config)
        now = utcnow()
        first = webhooks.claim_due("worker-a", now, rules)
        second = webhooks.claim_due("worker-b", now, rules)
        assert len(first) == 1
        assert second == []
        later = webhooks.claim_due("worker-b", now + timedelta(seconds=rules.queue.claim_seconds + 1), rules)
        assert [claimed.id for claimed in later] == [first[0].id]  # a crashed worker's claim lapses


def test_purge_removes_old_delivered_webhooks_and_keeps_queued_ones(
    hooked_app: Flask, receiver: Receiver
) -> None:
    from selfservice.admin.purge import Retention, purge
    from selfservice.audit.services import SYSTEM

    api = Api(hooked_app.test_client(), issue(hooked_app))
    api.post("/requests", STUDENT)
    receiver.start()
    deliver(hooked_app)
    receiver.stop()
    api.post(
        "/requests",
        {**STUDENT, "student_id": "1000002", "student_name": "Ben Carter", "birth_month_year": "112011"},
    )
    with hooked_app.app_context():
        later = utcnow() + timedelta(days=hooked_app.config["RETENTION_DAYS_MAIL"] + 1)
        counts = purge(Retention.from_settings(hooked_app.config), now=later, actor="test", origin=SYSTEM)
    assert counts["webhooks"] == 1
    assert [row.status for row in deliveries(hooked_app)] == [DeliveryStatus.QUEUED]


def test_only_changes_of_status_are_announced(hooked_app: Flask) -> None:
    from selfservice.audit.services import SYSTEM
    from selfservice.directory.interfaces import Role
    from selfservice.helpdesk import services as desk
    from selfservice.helpdesk.models import HelpRequest
    from selfservice.helpdesk.queues import Staff

    api = Api(hooked_app.test_client(), issue(hooked_app))
    number = api.post("/requests", STUDENT).json["number"]
    its = Staff(key="its-key", login="its1", display_name="Ivan Tech", roles=frozenset({Role.ITS}))
    with hooked_app.app_context():
        request = db.session.scalar(select(HelpRequest))
        desk.take(request, its, revision=None, origin=SYSTEM)  # open -> in progress
        desk.take(request, its, revision=None, origin=SYSTEM)  # still in progress
        desk.add_note(request, its, "called the family", revision=None, origin=SYSTEM)
    assert [row.request_status for row in deliveries(hooked_app)] == ["open", "in-progress"]
    assert all(row.payload["request"]["number"] == number for row in deliveries(hooked_app))


def test_the_worker_outlives_a_database_that_refuses_writes(
    hooked_app: Flask, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.start()
    Api(hooked_app.test_client(), issue(hooked_app)).post("/requests", STUDENT)
    on_every_connection(hooked_app, read_only)  # claiming a delivery is a write
    result = hooked_app.test_cli_runner().invoke(args=["deliver-webhooks", "--max-seconds", "0.5"])
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output
    assert any(
        record.getMessage().startswith("webhook worker: database unavailable") for record in caplog.records
    )
    assert receiver.received == []
    on_every_connection(hooked_app, writable)  # the database takes writes again
    assert deliver(hooked_app).sent == 1  # nothing was lost
    assert len(receiver.received) == 1


def test_a_slow_desk_gets_no_post_after_the_lease_would_lapse(make_app: Any, receiver: Receiver) -> None:
    # A lease of 3 s and a 1 s timeout: the worker may start a POST only in its first second,
    # so another worker taking the rest after the lease can never send one twice.
    app = make_app(
        WEBHOOK_URLS=[receiver.url],
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_CLAIM_SECONDS=3,
        WEBHOOK_TIMEOUT_SECONDS=1,
    )
    receiver.delay = 0.6
    receiver.start()
    api = Api(app.test_client(), issue(app))
    for _ in range(3):
        api.post("/requests", STUDENT)
    first = deliver(app)
    # Two POSTs take 1.2 s, past the deadline: the third is never started (on a slow machine,
    # the second may not start either).
    assert 1 <= first.sent <= 2
    assert first.released == 3 - first.sent
    assert len(receiver.received) == first.sent
    left = [row for row in deliveries(app) if row.status == DeliveryStatus.QUEUED.value]
    assert [(row.claimed_by, row.attempts) for row in left] == [(None, 0)] * first.released  # given back
    receiver.delay = 0.0
    assert deliver(app).sent == first.released
    assert len(receiver.received) == 3


def test_the_long_running_worker_delivers_what_arrives(hooked_app: Flask, receiver: Receiver) -> None:
    receiver.start()
    Api(hooked_app.test_client(), issue(hooked_app)).post("/requests", STUDENT)
    result = hooked_app.test_cli_runner().invoke(args=["deliver-webhooks", "--max-seconds", "0.5"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    assert "stopped" in result.output
    assert len(receiver.received) == 1
