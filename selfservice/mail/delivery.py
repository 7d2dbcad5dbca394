"""Delivery of the outbox over SMTP: claim what is due, send it, record what happened.

Several workers (processes or hosts) may run at once and none sends a message twice.
A worker claims a batch in one short transaction: ``SELECT ... FOR UPDATE SKIP LOCKED``
picks rows no other worker holds (PostgreSQL; SQLite has no row locks and ignores it),
then a conditional UPDATE per row takes a lease (``claimed_by``, ``claimed_until``) and
its row count says who won, which is all SQLite needs since it serialises writers.
Sending happens outside any transaction; each outcome is committed right after it.
A crashed worker's lease lapses and another worker picks its messages up.

What can still happen: a worker that dies between the relay accepting a message and the
database recording it will have that message sent again once the lease lapses. The
Message-ID stays the same on every attempt, so mail systems can tell it is one message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import Charset
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from selfservice.extensions import db
from selfservice.mail.models import MailStatus, OutboxMessage
from selfservice.mail.smtp import Outcome, Relay, SmtpSettings, describe
from selfservice.timeutil import utcnow
from selfservice.workers import Stop, StopFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRules:
    max_attempts: int
    retry_base_seconds: int
    retry_max_seconds: int
    batch_size: int
    claim_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliveryRules:
        return cls(
            max_attempts=max(1, config["MAIL_MAX_ATTEMPTS"]),
            retry_base_seconds=max(0, config["MAIL_RETRY_BASE_SECONDS"]),
            retry_max_seconds=max(0, config["MAIL_RETRY_MAX_SECONDS"]),
            batch_size=max(1, config["MAIL_BATCH_SIZE"]),
            claim_seconds=max(1, config["MAIL_CLAIM_SECONDS"]),
        )

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff: base, 2 x base, 4 x base ... capped at the maximum."""
        seconds = self.retry_base_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.retry_max_seconds))


@dataclass(frozen=True)
class Claimed:
    """What a worker read of one message in the claim transaction."""

    id: int
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    attempts: int
    created_at: datetime

    @classmethod
    def of(cls, row: OutboxMessage) -> Claimed:
        return cls(
            row.id, row.to_address, row.subject, row.body_text, row.body_html, row.attempts, row.created_at
        )


@dataclass
class PassResult:
    """What one pass over the outbox did."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    released: int = 0
    relay_error: str | None = None

    @property
    def handled(self) -> int:
        return self.sent + self.retry + self.failed

    def add(self, other: PassResult) -> None:
        self.sent += other.sent
        self.retry += other.retry
        self.failed += other.failed
        self.released += other.released
        self.relay_error = other.relay_error or self.relay_error

    def summary(self) -> str:
        text = f"sent {self.sent}, failed {self.failed}, retry {self.retry}"
        if self.released:
            text += f", released {self.released}"
        if self.relay_error:
            text += f" (relay unavailable: {self.relay_error})"
        return text


# --- claiming ------------------------------------------------------------------------


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        OutboxMessage.status == MailStatus.QUEUED.value,
        OutboxMessage.next_attempt_at <= now,
        sa.or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
    )


def claim_due(worker: str, now: datetime, rules: DeliveryRules) -> list[Claimed]:
    """Lease up to a batch of due messages to ``worker``; empty only when none is left."""
    while candidates := _candidates(now, rules):
        until = now + timedelta(seconds=rules.claim_seconds)
        won = [
            message_id
            for message_id in candidates
            if _update(
                sa.and_(OutboxMessage.id == message_id, _due(now)), claimed_by=worker, claimed_until=until
            )
        ]
        rows = db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.id.in_(won))
            .order_by(OutboxMessage.id)
            .execution_options(populate_existing=True)
        ).all()
        claimed = [Claimed.of(row) for row in rows]
        db.session.commit()
        if claimed:
            return claimed
        # Another worker won every row we saw (SQLite: no SKIP LOCKED); look again.
    db.session.commit()
    return []


def _candidates(now: datetime, rules: DeliveryRules) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage.id)
            .where(_due(now))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(rules.batch_size)
            .with_for_update(skip_locked=True)
        )
    )


def _update(condition: sa.ColumnElement[bool], **values: Any) -> bool:
    """Update the one row matching ``condition``; False when no row matched any more."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# --- recording outcomes ----------------------------------------------------------------


def _record_sent(message: Claimed, now: datetime) -> None:
    # Recorded whatever became of the lease: the relay has the message, so it must
    # never be sent again, even if a slow send outlived the lease.
    _update(
        sa.and_(OutboxMessage.id == message.id, OutboxMessage.status == MailStatus.QUEUED.value),
        status=MailStatus.SENT.value,
        attempts=message.attempts + 1,
        sent_at=now,
        last_error=None,
        claimed_by=None,
        claimed_until=None,
    )
    db.session.commit()


def _record_failure(
    message: Claimed, worker: str, error: str, now: datetime, rules: DeliveryRules, *, permanent: bool = False
) -> MailStatus:
    """Count a failed attempt: queue it again after the backoff, or give up."""
    attempts = message.attempts + 1
    gives_up = permanent or attempts >= rules.max_attempts
    status = MailStatus.FAILED if gives_up else MailStatus.QUEUED
    held = _update(
        sa.and_(OutboxMessage.id == message.id, OutboxMessage.claimed_by == worker),
        status=status.value,
        attempts=attempts,
        next_attempt_at=now + rules.retry_delay(attempts),
        last_error=error[:500],
        claimed_by=None,
        claimed_until=None,
    )
    db.session.commit()
    if not held:
        log.warning("outbox message %s: lease lapsed before its failure was recorded", message.id)
    return status


def release(messages: Sequence[Claimed], worker: str) -> None:
    """Give back leases on messages this worker will not try (stopping, lease nearly over)."""
    for message in messages:
        _update(
            sa.and_(OutboxMessage.id == message.id, OutboxMessage.claimed_by == worker),
            claimed_by=None,
            claimed_until=None,
        )
    db.session.commit()


ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To"})
#: RFC 5322 atext: a word of these needs no encoding in a display name.
ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
UTF8 = Charset("utf-8")
ENCODED_WORD_BYTES = 39  # base64 of 39 bytes plus "=?utf-8?b??=" is 64 characters
MAX_HEADER_LINE = 76


# --- the message ------------------------------------------------------------------------


def build_message(message: Claimed, mail_from: str) -> EmailMessage:
    """The MIME message: plain text, plus an HTML alternative when there is one."""
    email = EmailMessage()
    set_header(email, "From", mail_from)
    set_header(email, "To", message.to_address)
    set_header(email, "Subject", message.subject)
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message_id(message, mail_from)
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def set_header(email: EmailMessage, name: str, value: str) -> None:
    """Set a header so that accented words keep the spaces between them in every reader.

    Some Python versions fold a header into adjacent encoded words with the space between
    them outside both ("José Núñez" read back as "JoséNúñez"). Non-ASCII values are encoded
    here instead, every space inside an encoded word, and stored as they are.
    """
    if value.isascii():
        email[name] = value
        return
    if name in ADDRESS_HEADERS:
        display_name, address = parseaddr(value)
        if not (display_name and address.isascii()):
            email[name] = value  # an internationalised address: the policy's own encoding
            return
        email.set_raw(name, _folded([*_phrase(display_name), f"<{address}>"], len(name) + 2))
        return
    email.set_raw(name, Header(value, "utf-8", header_name=name).encode(linesep="\n"))


def _phrase(display_name: str) -> list[str]:
    """A display name as atoms and encoded words, never two encoded words side by side.

    Readers disagree on the space between two adjacent encoded words in a name (RFC 2047
    drops it, Python's parser keeps it), so each run of accented words becomes one encoded
    word with its spaces inside, and plain words stay plain.
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in display_name.split():
        if ATOM.fullmatch(word):
            tokens.extend(_encoded_words(run))
            run = []
            tokens.append(word)
        else:
            run.append(word)
    tokens.extend(_encoded_words(run))
    return tokens


def _encoded_words(words: list[str]) -> list[str]:
    """``words`` as few encoded words as fit RFC 2047's 75 characters (spaces inside them)."""
    chunks: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate.encode()) > ENCODED_WORD_BYTES:
            chunks.append(current + " ")
            current = word
        else:
            current = candidate
    if current:
        chunks.append(current)
    return [UTF8.header_encode(chunk) for chunk in chunks]


def _folded(tokens: list[str], used: int) -> str:
    """Tokens joined by spaces, folded before a line would pass 76 characters."""
    lines = [""]
    for token in tokens:
        line = lines[-1]
        if line and used + len(line) + 1 + len(token) > MAX_HEADER_LINE:
            lines.append(token)
            used = 1
        else:
            lines[-1] = f"{line} {token}" if line else token
    return "\n ".join(lines)


def message_id(message: Claimed, mail_from: str) -> str:
    """The same on every attempt, so a repeat after a crash is recognisably one message."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<outbox.{message.id}.{message.created_at:%Y%m%d%H%M%S%f}@{domain}>"


# --- one pass ------------------------------------------------------------------------


def _attempt(relay: Relay, message: Claimed) -> tuple[Outcome, str]:
    try:
        email = build_message(message, relay.settings.mail_from)
    except ValueError as exc:  # a header that can never be sent (e.g. a line break in it)
        return Outcome.REFUSED, describe(exc, relay.settings)
    return relay.attempt(email, message.to_address)


def deliver_due(
    config: Mapping[str, Any], *, worker: str, now: datetime | None = None, stop: Stop | None = None
) -> PassResult:
    """One pass: send every message due at ``now``, batch by batch, until none is left.

    When the relay cannot be reached, the pass ends: every message of the batch is
    queued again with the error and a backoff, and nothing is lost.
    """
    settings = SmtpSettings.from_config(config)
    rules = DeliveryRules.from_config(config)
    now = now or utcnow()
    result = PassResult()
    while not (stop and stop.is_set()) and not result.relay_error:
        batch = claim_due(worker, now, rules)
        if not batch:
            break
        _deliver_batch(batch, settings, rules, worker, now, result, stop)
    return result


def _deliver_batch(
    batch: list[Claimed],
    settings: SmtpSettings,
    rules: DeliveryRules,
    worker: str,
    now: datetime,
    result: PassResult,
    stop: Stop | None,
) -> None:
    # Stop sending well before the lease lapses, so no other worker can take a
    # message this one is still sending.
    deadline = time.monotonic() + rules.claim_seconds - 2 * settings.timeout_seconds
    relay = Relay(settings)
    try:
        for index, message in enumerate(batch):
            if (stop and stop.is_set()) or time.monotonic() > deadline:
                release(batch[index:], worker)
                result.released += len(batch) - index
                return
            outcome, error = _attempt(relay, message)
            if outcome is Outcome.RELAY_DOWN:
                result.relay_error = error
                for pending in batch[index:]:
                    _count(result, _record_failure(pending, worker, error, now, rules))
                log.warning("mail relay unavailable: %s", error)
                return
            if outcome is Outcome.SENT:
                _record_sent(message, now)
                result.sent += 1
                log.info("outbox message %s sent", message.id)
                continue
            status = _record_failure(message, worker, error, now, rules, permanent=outcome is Outcome.REFUSED)
            _count(result, status)
            log.warning("outbox message %s not sent (%s): %s", message.id, status, error)
    finally:
        relay.close()


def _count(result: PassResult, status: MailStatus) -> None:
    if status is MailStatus.FAILED:
        result.failed += 1
    else:
        result.retry += 1


# --- the long-running worker ---------------------------------------------------------------


def run_worker(
    config: Mapping[str, Any],
    *,
    worker: str,
    stop: StopFlag,
    poll_seconds: float,
    max_seconds: float | None = None,
    report: Callable[[PassResult], None] = lambda result: None,
    before_pass: Callable[[], None] = lambda: None,
) -> PassResult:
    """Pass after pass until ``stop`` is set (or ``max_seconds`` passed); the totals.

    ``before_pass`` runs first in every pass (the password-change sweeper), so the mail
    it queues goes out in the same pass.
    """
    started = time.monotonic()
    totals = PassResult()
    while not stop.is_set():
        try:
            before_pass()
            result = deliver_due(config, worker=worker, stop=stop)
        except OperationalError as exc:  # the database is away: try again at the next poll
            db.session.rollback()
            log.warning("mail worker: database unavailable: %s", exc.orig)
            result = PassResult()
        totals.add(result)
        if result.handled or result.released:
            report(result)
        left = poll_seconds
        if max_seconds is not None:
            left = min(left, max_seconds - (time.monotonic() - started))
            if left <= 0:
                break
        stop.wait(left)
    return totals
