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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.charset import Charset
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from selfservice.extensions import db
from selfservice.mail.models import MailStatus, OutboxMessage
from selfservice.mail.smtp import Outcome, Relay, SmtpSettings, describe
from selfservice.queues import LeasedQueue, QueueRules
from selfservice.timeutil import utcnow
from selfservice.workers import Stop, StopFlag, run_passes

log = logging.getLogger(__name__)


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

    def worth_reporting(self) -> bool:
        return bool(self.handled or self.released)

    def merge(self, other: PassResult) -> None:
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


# --- claiming and recording outcomes ------------------------------------------------------

OUTBOX = LeasedQueue(OutboxMessage)


def claim_due(worker: str, now: datetime, rules: QueueRules) -> list[Claimed]:
    """Lease up to a batch of due messages to ``worker``; empty only when none is left."""
    return OUTBOX.claim(worker, now, rules, Claimed.of)


def _record_sent(message: Claimed, now: datetime) -> None:
    OUTBOX.finish(
        message.id, MailStatus.SENT.value, attempts=message.attempts + 1, sent_at=now, last_error=None
    )
    db.session.commit()


def _record_failure(
    message: Claimed, worker: str, error: str, now: datetime, rules: QueueRules, *, permanent: bool = False
) -> MailStatus:
    """Count a failed attempt: queue it again after the backoff, or give up."""
    attempts = message.attempts + 1
    status = MailStatus.FAILED if permanent or attempts >= rules.max_attempts else MailStatus.QUEUED
    held = OUTBOX.retry(message.id, worker, attempts, error, now, rules, status=status.value)
    db.session.commit()
    if not held:
        log.warning("outbox message %s: lease lapsed before its failure was recorded", message.id)
    return status


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
    rules = QueueRules.from_config(config, "MAIL")
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
    rules: QueueRules,
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
                OUTBOX.release((message.id for message in batch[index:]), worker)
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
    return run_passes(
        lambda: deliver_due(config, worker=worker, stop=stop),
        PassResult,
        name="mail",
        stop=stop,
        poll_seconds=poll_seconds,
        max_seconds=max_seconds,
        report=report,
        before_pass=before_pass,
    )
