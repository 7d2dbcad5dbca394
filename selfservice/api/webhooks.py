"""Webhooks: a signed POST to each configured URL whenever a help request's status changes.

Queued in the change's own transaction: an ``after_flush`` hook sees each new timeline
row, reads the request's status as the change left it, and when that status differs
from the last one announced for the request, inserts one ``webhook_delivery`` row per
URL (unique per URL and event, so an event is never queued twice). The worker
(``selfservice deliver-webhooks``) leases due rows as the mail outbox does
(selfservice/queues.py), POSTs them outside any transaction, and records the outcome:
2xx is sent; anything else is retried with exponential backoff until
WEBHOOK_MAX_ATTEMPTS, then marked failed.

Signature: ``X-Selfservice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<body>")>``. Receivers recompute it, compare in constant time and refuse old
timestamps. As with mail, a worker that dies after the receiver accepted a POST but
before recording it sends that delivery again once the lease lapses: the body and
``X-Selfservice-Delivery`` are the same on every attempt, so the receiver can tell.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from selfservice.api.models import DeliveryStatus, WebhookDelivery
from selfservice.api.services import describe_event, describe_request
from selfservice.config import ConfigError
from selfservice.extensions import db
from selfservice.helpdesk.models import HelpRequest, RequestEvent
from selfservice.queues import LeasedQueue, QueueRules
from selfservice.timeutil import utcnow
from selfservice.workers import Stop

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Selfservice-Signature"
DELIVERY_HEADER = "X-Selfservice-Delivery"
USER_AGENT = "selfservice-webhooks/1"


# --- queueing, in the transaction of the change --------------------------------------------


def _queue_status_changes(session: Session, _flush_context: Any) -> None:
    if not has_app_context():
        return
    urls = current_app.config["WEBHOOK_URLS"]
    events = [item for item in session.new if isinstance(item, RequestEvent)]
    if not urls or not events:
        return
    connection = session.connection()
    rows = []
    announced: dict[int, str | None] = {}
    for change in sorted(events, key=lambda item: item.id):
        payload = _payload(connection, change)
        status = payload["status"]
        if change.request_id not in announced:
            announced[change.request_id] = _last_announced(connection, change.request_id)
        if status == announced[change.request_id]:
            continue  # a note, a contact, a second assignment: the status stayed as it was
        announced[change.request_id] = status
        rows.extend(
            {
                "url": url,
                "event_id": change.id,
                "request_id": change.request_id,
                "request_status": status,
                "payload": payload,
            }
            for url in urls
        )
    if rows:
        now = utcnow()
        defaults = {
            "status": DeliveryStatus.QUEUED.value,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        connection.execute(sa.insert(WebhookDelivery).values([{**row, **defaults} for row in rows]))


def _last_announced(connection: sa.Connection, request_id: int) -> str | None:
    return connection.scalar(
        sa.select(WebhookDelivery.request_status)
        .where(WebhookDelivery.request_id == request_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(1)
    )


def _payload(connection: sa.Connection, change: RequestEvent) -> dict[str, Any]:
    """What the receiver gets: the request as it stands after this change, and the change."""
    row = connection.execute(
        sa.select(HelpRequest.__table__).where(HelpRequest.id == change.request_id)
    ).one()
    request = SimpleNamespace(**row._mapping)
    described = describe_request(request)  # type: ignore[arg-type]
    return {
        "id": change.id,
        "type": "request.status",
        "status": described["status"],
        "request": described,
        "event": describe_event(change, described["number"]),
    }


# --- signing ------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body)
    return abs(now - timestamp) <= tolerance_seconds and hmac.compare_digest(expected, header)


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRules:
    secret: str
    timeout_seconds: int
    queue: QueueRules

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebhookRules:
        return cls(
            secret=config["WEBHOOK_SECRET"],
            timeout_seconds=max(1, config["WEBHOOK_TIMEOUT_SECONDS"]),
            queue=QueueRules.from_config(config, "WEBHOOK"),
        )


@dataclass(frozen=True)
class Claimed:
    id: int
    url: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class PassResult:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    released: int = 0

    def summary(self) -> str:
        text = f"sent {self.sent}, failed {self.failed}, retry {self.retry}"
        return text + (f", released {self.released}" if self.released else "")

    def worth_reporting(self) -> bool:
        return bool(self.sent or self.retry or self.failed or self.released)

    def merge(self, other: PassResult) -> None:
        self.sent += other.sent
        self.retry += other.retry
        self.failed += other.failed
        self.released += other.released


DELIVERIES = LeasedQueue(WebhookDelivery)


def claim_due(worker: str, now: datetime, rules: WebhookRules) -> list[Claimed]:
    """Lease up to a batch of due deliveries to ``worker`` (selfservice/queues.py)."""
    return DELIVERIES.claim(
        worker, now, rules.queue, lambda row: Claimed(row.id, row.url, row.payload, row.attempts)
    )


def post(delivery: Claimed, rules: WebhookRules) -> str | None:
    """POST one delivery; None when the receiver answered 2xx, else what went wrong."""
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery.id),
        SIGNATURE_HEADER: sign(rules.secret, int(time.time()), body),
    }
    request = urllib.request.Request(delivery.url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=rules.timeout_seconds) as response:  # noqa: S310
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable, bad URL
        return f"{type(exc).__name__}: {exc}"


def deliver_due(
    config: Mapping[str, Any], *, worker: str, now: datetime | None = None, stop: Stop | None = None
) -> PassResult:
    """One pass: POST every delivery due at ``now``, batch by batch, until none is left."""
    rules = WebhookRules.from_config(config)
    now = now or utcnow()
    result = PassResult()
    while not (stop and stop.is_set()) and (batch := claim_due(worker, now, rules)):
        # No POST starts unless it can end (timeout) before the lease lapses, so no other
        # worker can take a delivery this one is still sending.
        deadline = time.monotonic() + rules.queue.claim_seconds - 2 * rules.timeout_seconds
        for index, delivery in enumerate(batch):
            if (stop and stop.is_set()) or time.monotonic() > deadline:
                DELIVERIES.release((left.id for left in batch[index:]), worker)
                result.released += len(batch) - index
                return result
            _record(delivery, worker, post(delivery, rules), rules, result)
    return result


def _record(
    delivery: Claimed, worker: str, error: str | None, rules: WebhookRules, result: PassResult
) -> None:
    now = utcnow()
    attempts = delivery.attempts + 1
    if error is None:
        DELIVERIES.finish(
            delivery.id, DeliveryStatus.SENT.value, attempts=attempts, sent_at=now, last_error=None
        )
        result.sent += 1
    else:
        gives_up = attempts >= rules.queue.max_attempts
        status = DeliveryStatus.FAILED if gives_up else DeliveryStatus.QUEUED
        DELIVERIES.retry(delivery.id, worker, attempts, error, now, rules.queue, status=status.value)
        if gives_up:
            result.failed += 1
        else:
            result.retry += 1
        log.warning("webhook delivery %s to %s not delivered: %s", delivery.id, delivery.url, error)
    db.session.commit()


# --- settings --------------------------------------------------------------------------------


def check_settings(config: Mapping[str, Any]) -> None:
    """Refuse webhook URLs that are not http(s), or URLs without a signing secret."""
    for url in config["WEBHOOK_URLS"]:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"WEBHOOK_URLS: {url!r} is not an http:// or https:// URL")
    if config["WEBHOOK_URLS"] and len(config["WEBHOOK_SECRET"]) < 32:
        raise ConfigError(
            "WEBHOOK_SECRET must be a random value of at least 32 characters when WEBHOOK_URLS is set"
        )


_listening = False


def init_app(app: Flask) -> None:
    global _listening
    check_settings(app.config)
    if not _listening:  # one listener for every app in the process; it reads the current app's URLs
        event.listen(Session, "after_flush", _queue_status_changes)
        _listening = True
