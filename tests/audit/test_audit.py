"""Audit events: one writer, secrets redacted by key, append-only from the app's side."""

from __future__ import annotations

import pytest
from flask import Flask

from selfservice.audit.models import AuditEvent, AuditTampering
from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.mail.models import MailStatus
from selfservice.mail.services import queue_mail, recent_messages


def test_an_event_keeps_who_what_where_and_how_it_ended(app: Flask) -> None:
    with app.app_context():
        event = record(
            Tag.LOGIN_FAILURE,
            outcome="failure",
            origin=Origin(ip="203.0.113.9", user_agent="Firefox"),
            actor="teacher1",
            subject="s1000001",
            details={"attempt": 2},
        )
        stored = db.session.get(AuditEvent, event.id)
        assert stored is not None
        assert (stored.tag, stored.outcome, stored.actor, stored.subject) == (
            "auth:session:login-failed",
            "failure",
            "teacher1",
            "s1000001",
        )
        assert (stored.ip, stored.user_agent, stored.details) == ("203.0.113.9", "Firefox", {"attempt": 2})
        assert stored.created_at.tzinfo is not None


def test_every_tag_is_shaped_source_subject_action() -> None:
    for tag in Tag:
        source, subject, action = tag.value.split(":")
        assert source
        assert subject
        assert action


@pytest.mark.parametrize(
    "key", ["password", "new_password", "answer", "answers", "token", "code", "parent_pin"]
)
def test_secret_details_are_redacted(app: Flask, key: str) -> None:
    with app.app_context():
        event = record(Tag.PASSWORD_RESET, details={key: "hunter2-secret", "how": "recovery"})
        assert event.details == {key: "[redacted]", "how": "recovery"}


def test_audit_events_cannot_be_changed_or_deleted_through_the_app(app: Flask) -> None:
    with app.app_context():
        event = record(Tag.LOGOUT, actor="s1000001")
        event.outcome = "tampered"
        with pytest.raises(AuditTampering):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(AuditEvent, event.id))
        with pytest.raises(AuditTampering):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(AuditEvent, event.id).outcome == "success"


def test_queued_mail_waits_in_the_outbox(app: Flask) -> None:
    with app.app_context():
        queue_mail("ana@example.test", "Hello", "Body text")
        [message] = recent_messages()
        assert (message.to_address, message.subject, message.status) == (
            "ana@example.test",
            "Hello",
            MailStatus.QUEUED,
        )


def test_mail_goes_as_text_plus_escaped_html_with_clickable_links(app: Flask) -> None:
    with app.test_request_context(headers={"Accept-Language": "es"}):
        body = "Hello <Ana>,\n\nOpen https://portal.example/reset/abc to continue.\n\n-- \nSpringfield"
        message = queue_mail("ana@example.test", "Reset", body)
        html = message.body_html or ""
        assert message.body_text == body
        assert "&lt;Ana&gt;" in html
        assert "<Ana>" not in html
        assert '<a href="https://portal.example/reset/abc"' in html
        assert 'lang="es"' in html
        assert "Springfield Schools" in html
