"""Delivering the outbox to a real SMTP server: content, outages, retries, giving up."""

from __future__ import annotations

from datetime import timedelta

from selfservice.mail.delivery import claim_due, deliver_due
from selfservice.mail.services import queue_mail
from selfservice.queues import QueueRules
from selfservice.timeutil import utcnow
from tests.mail.helpers import outbox, queue_many


def test_queued_message_arrives_with_its_address_subject_and_both_bodies(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings(MAIL_FROM="Springfield Schools <portal@springfield.example.org>"))
    with app.app_context():
        queue_mail(
            "ana.lopez@example.org",
            "Your password was changed",
            "Your password was changed today.",
            body_html="<p>Your password was <strong>changed</strong> today.</p>",
        )
        result = deliver_due(app.config, worker=worker)
        [row] = outbox()

    assert result.sent == 1
    [received] = smtp_server.mailbox.received
    assert received.rcpt_tos == ["ana.lopez@example.org"]
    assert received.mail_from == "portal@springfield.example.org"
    assert received.message["To"] == "ana.lopez@example.org"
    assert received.message["From"] == "Springfield Schools <portal@springfield.example.org>"
    assert received.message["Subject"] == "Your password was changed"
    assert received.message["Date"]
    assert received.message["Message-ID"].endswith("@springfield.example.org>")
    assert received.text.strip() == "Your password was changed today."
    assert received.html.strip() == "<p>Your password was <strong>changed</strong> today.</p>"
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None
    assert (row.claimed_by, row.claimed_until) == (None, None)


def test_a_text_message_also_goes_as_html_in_the_district_layout(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_mail("maria.lopez@example.org", "Your security questions were updated", "They were updated.")
        deliver_due(app.config, worker=worker)

    [received] = smtp_server.mailbox.received
    assert received.message.is_multipart()
    assert received.text.strip() == "They were updated."
    assert "They were updated." in received.html
    assert "Springfield Schools" in received.html


def test_an_empty_html_body_sends_plain_text_only(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_mail("maria.lopez@example.org", "Plain", "Only text.", body_html="")
        deliver_due(app.config, worker=worker)

    [received] = smtp_server.mailbox.received
    assert received.html is None
    assert not received.message.is_multipart()
    assert received.text.strip() == "Only text."


def test_mail_queued_while_the_relay_is_down_waits_and_all_of_it_arrives_once_it_is_back(
    make_app, stopped_smtp_server, worker
):
    app = make_app(**stopped_smtp_server.settings(MAIL_RETRY_BASE_SECONDS=60))
    with app.app_context():
        queue_many(7)
        now = utcnow()
        down = deliver_due(app.config, worker=worker, now=now)
        after_one = outbox()
        still_down = deliver_due(app.config, worker=worker, now=now + timedelta(hours=2))
        after_two = outbox()
        stopped_smtp_server.start()
        back = deliver_due(app.config, worker=worker, now=now + timedelta(hours=4))
        again = deliver_due(app.config, worker=worker, now=now + timedelta(days=1))
        finally_ = outbox()

    assert (down.sent, down.retry, down.failed) == (0, 7, 0)
    assert "ConnectionRefusedError" in down.relay_error
    for row in after_one:
        assert (row.status, row.attempts) == ("queued", 1)
        assert "ConnectionRefusedError" in row.last_error
        assert row.next_attempt_at == now + timedelta(seconds=60)
    assert still_down.retry == 7
    assert {(row.status, row.attempts) for row in after_two} == {("queued", 2)}
    assert {row.next_attempt_at for row in after_two} == {now + timedelta(hours=2, seconds=120)}

    assert (back.sent, again.sent) == (7, 0)
    assert {row.status for row in finally_} == {"sent"}
    assert sorted(smtp_server_subjects(stopped_smtp_server)) == [f"Notice {n}" for n in range(1, 8)]
    assert set(stopped_smtp_server.mailbox.message_ids().values()) == {1}


def smtp_server_subjects(server) -> list[str]:
    return list(server.mailbox.subjects().elements())


def test_a_message_is_not_retried_before_its_backoff_is_over(make_app, stopped_smtp_server, worker):
    app = make_app(**stopped_smtp_server.settings(MAIL_RETRY_BASE_SECONDS=60))
    with app.app_context():
        queue_many(1)
        now = utcnow()
        deliver_due(app.config, worker=worker, now=now)
        stopped_smtp_server.start()
        early = deliver_due(app.config, worker=worker, now=now + timedelta(seconds=30))
        due = deliver_due(app.config, worker=worker, now=now + timedelta(seconds=61))

    assert (early.sent, due.sent) == (0, 1)


def test_backoff_doubles_up_to_its_ceiling():
    rules = QueueRules(
        max_attempts=12, retry_base_seconds=60, retry_max_seconds=3600, batch_size=20, claim_seconds=600
    )
    delays = [rules.retry_delay(attempt).total_seconds() for attempt in range(1, 10)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_delivery_gives_up_after_the_last_attempt_and_never_sends_it_later(
    make_app, stopped_smtp_server, worker
):
    app = make_app(**stopped_smtp_server.settings(MAIL_MAX_ATTEMPTS=3))
    with app.app_context():
        queue_many(2)
        now = utcnow()
        for hours in (0, 2, 4):
            deliver_due(app.config, worker=worker, now=now + timedelta(hours=hours))
        given_up = outbox()
        stopped_smtp_server.start()
        later = deliver_due(app.config, worker=worker, now=now + timedelta(days=2))

    assert {(row.status, row.attempts) for row in given_up} == {("failed", 3)}
    assert all("ConnectionRefusedError" in row.last_error for row in given_up)
    assert later.sent == 0
    assert stopped_smtp_server.mailbox.received == []


def test_refused_recipient_fails_at_once_a_busy_one_is_retried_and_the_rest_go(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_mail("refused@example.org", "To a refused address", "Body.")
        queue_mail("busy@example.org", "To a busy mailbox", "Body.")
        queue_mail("ana.lopez@example.org", "To a good address", "Body.")
        result = deliver_due(app.config, worker=worker)
        refused, busy, good = outbox()

    assert (result.sent, result.retry, result.failed) == (1, 1, 1)
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "550" in refused.last_error
    assert (busy.status, busy.attempts) == ("queued", 1)
    assert "451" in busy.last_error
    assert good.status == "sent"
    assert [item.message["Subject"] for item in smtp_server.mailbox.received] == ["To a good address"]


def test_a_message_that_cannot_be_built_fails_without_stopping_the_others(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        queue_mail("ana.lopez@example.org", "Broken\r\nBcc: someone@example.net", "Body.")
        queue_mail("ana.lopez@example.org", "Fine", "Body.")
        result = deliver_due(app.config, worker=worker)
        broken, fine = outbox()

    assert (result.sent, result.failed) == (1, 1)
    assert (broken.status, fine.status) == ("failed", "sent")
    assert [item.rcpt_tos for item in smtp_server.mailbox.received] == [["ana.lopez@example.org"]]


def test_an_international_address_a_relay_cannot_take_fails_alone_and_the_rest_go(
    make_app, ascii_smtp_server, worker
):
    app = make_app(**ascii_smtp_server.settings())
    with app.app_context():
        queue_mail("josé@exämple.org", "To an international address", "Body.")
        queue_mail("ana.lopez@example.org", "To a good address", "Body.")
        result = deliver_due(app.config, worker=worker)
        international, good = outbox()

    # The relay is up: only the message it cannot take fails, and it spends no one else's attempts.
    assert result.relay_error is None
    assert (result.sent, result.failed) == (1, 1)
    assert (international.status, international.attempts) == ("failed", 1)
    assert "SMTPUTF8" in international.last_error
    assert (good.status, good.attempts) == ("sent", 1)
    assert [item.rcpt_tos for item in ascii_smtp_server.mailbox.received] == [["ana.lopez@example.org"]]


def test_a_crashed_workers_claim_lapses_and_another_worker_sends_its_mail_once(make_app, smtp_server, worker):
    app = make_app(**smtp_server.settings(MAIL_CLAIM_SECONDS=600))
    with app.app_context():
        queue_many(3)
        now = utcnow()
        crashed = claim_due("crashed-worker", now, QueueRules.from_config(app.config, "MAIL"))
        during_lease = deliver_due(app.config, worker=worker, now=now + timedelta(seconds=599))
        after_lease = deliver_due(app.config, worker=worker, now=now + timedelta(seconds=601))
        rows = outbox()

    assert len(crashed) == 3
    assert (during_lease.sent, after_lease.sent) == (0, 3)
    assert {row.status for row in rows} == {"sent"}
    assert set(smtp_server.mailbox.message_ids().values()) == {1}
