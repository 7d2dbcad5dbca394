"""Operators' commands: read the audit log, purge past retention."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from flask import Flask

from selfservice.admin.audit_log import CSV_COLUMNS
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.helpdesk.models import HelpRequest, RequestEvent
from selfservice.mail.models import OutboxMessage
from selfservice.portal.models import PendingChange
from selfservice.security.models import RateLimitBreach
from selfservice.sync.models import SyncWrite
from selfservice.timeutil import utcnow
from tests.admin.conftest import add_event


def test_audit_prints_the_newest_events_first(app: Flask, runner: Any) -> None:
    now = utcnow()
    with app.app_context():
        add_event(Tag.LOCKED, when=now - timedelta(days=3), outcome="locked", subject="s1000002")
        add_event(Tag.LOGIN_SUCCESS, when=now - timedelta(hours=1), subject="s1000001")
    result = runner.invoke(args=["audit"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "auth:session:login" in lines[0]
    assert "account:selfservice:locked" in lines[1]


def test_audit_filters_by_tag_and_since_and_writes_csv(app: Flask, runner: Any) -> None:
    now = utcnow()
    with app.app_context():
        add_event(Tag.LOCKED, when=now - timedelta(days=3), outcome="locked", subject="s1000002")
        add_event(Tag.LOCKED, when=now - timedelta(days=30), outcome="locked", subject="s1000001")
        add_event(Tag.LOGIN_SUCCESS, when=now, subject="s1000001")
    result = runner.invoke(args=["audit", "--since", "7d", "--tag", "account:selfservice:locked", "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[5] for row in rows[1:]] == ["s1000002"]


def test_audit_refuses_an_unknown_tag_or_date(runner: Any) -> None:
    assert runner.invoke(args=["audit", "--tag", "nope"]).exit_code == 2
    assert runner.invoke(args=["audit", "--since", "last tuesday"]).exit_code == 2


def test_purge_deletes_only_what_is_past_retention(app: Flask, runner: Any) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=100), now - timedelta(days=5)
    with app.app_context():
        add_event(Tag.LOGIN_SUCCESS, when=old, subject="s1000001")
        add_event(Tag.LOGIN_SUCCESS, when=recent, subject="s1000001")
        for status, when in [("sent", old), ("failed", old), ("queued", old), ("sent", recent)]:
            db.session.add(
                OutboxMessage(
                    to_address="a@example.test", subject="s", body_text="b", status=status, created_at=when
                )
            )
        for status in ("closed", "resolved", "open"):
            request = _help_request(status, old)
            db.session.add(request)
            db.session.flush()
            db.session.add(RequestEvent(request_id=request.id, actor="its1", action="opened", created_at=old))
        for status, settled in [("done", old), ("refused", old), ("done", recent), ("queued", None)]:
            db.session.add(
                SyncWrite(
                    change_id=status[:8] + "x" * 24,
                    target="ad",
                    account_key="k-1000001",
                    account_login="s1000001",
                    how="change",
                    status=status,
                    created_at=old,
                    settled_at=settled,
                )
            )
        db.session.commit()

    result = runner.invoke(args=["purge", "--older-than", "30"])

    assert result.exit_code == 0, result.output
    assert "deleted 1 audit events" in result.output
    with app.app_context():
        kept = sorted((e.tag, e.created_at > now - timedelta(days=30)) for e in db.session.query(AuditEvent))
        assert kept == [("admin:retention:purge", True), ("auth:session:login", True)]
        purge_event = db.session.query(AuditEvent).filter_by(tag=str(Tag.RETENTION_PURGED)).one()
        assert purge_event.details["deleted"] == {
            "audit_events": 1,
            "mail": 2,
            "webhooks": 0,
            "help_requests": 2,
            "expired_sessions": 0,
            "sync_writes": 2,
            "pending_changes": 0,
            "rate_limit_breaches": 0,
        }
        assert purge_event.actor == "cli"
        assert sorted(m.status for m in db.session.query(OutboxMessage)) == ["queued", "sent"]
        assert [r.status for r in db.session.query(HelpRequest)] == ["open"]
        assert db.session.query(RequestEvent).count() == 1  # the open request's timeline stays
        # A write settled lately and one still pending stay, however old the change.
        assert sorted(w.status for w in db.session.query(SyncWrite)) == ["done", "queued"]


def test_purge_deletes_settled_password_change_intents_past_retention(app: Flask, runner: Any) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=100), now - timedelta(days=5)
    with app.app_context():
        for state, settled in [
            ("changed", old),
            ("not-changed", old),
            ("changed", recent),
            ("unknown", None),
        ]:
            db.session.add(
                PendingChange(
                    account_key="k-1000001",
                    login="s1000001",
                    how="recovery",
                    state=state,
                    started_at=old,
                    settled_at=settled,
                )
            )
        db.session.commit()

    result = runner.invoke(args=["purge", "--older-than", "30"])

    assert result.exit_code == 0, result.output
    assert "2 settled password-change intents (30 days)" in result.output
    with app.app_context():
        # Settled lately, or still open for the sweeper however old: kept.
        assert sorted(intent.state for intent in db.session.query(PendingChange)) == ["changed", "unknown"]
        purge_event = db.session.query(AuditEvent).filter_by(tag=str(Tag.RETENTION_PURGED)).one()
        assert purge_event.details["deleted"]["pending_changes"] == 2


def test_purge_defaults_come_from_the_retention_settings(make_app: Any) -> None:
    app = make_app(RETENTION_DAYS_AUDIT=10, RETENTION_DAYS_MAIL=10, RETENTION_DAYS_REQUESTS=10)
    with app.app_context():
        add_event(Tag.LOGIN_SUCCESS, when=utcnow() - timedelta(days=11), subject="s1000001")
        add_event(Tag.LOGIN_SUCCESS, when=utcnow() - timedelta(days=9), subject="s1000001")
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 audit events (older than 10 days)" in result.output


def test_purge_deletes_rate_limit_breaches_with_the_audit_events(make_app: Any) -> None:
    """Breaches name an IP address or a login: they are the refusals' audit, kept as long as it."""
    app = make_app(RETENTION_DAYS_AUDIT=30, RETENTION_DAYS_MAIL=400, RETENTION_DAYS_REQUESTS=400)
    now = utcnow().replace(second=0, microsecond=0)
    with app.app_context():
        for ip, days in [("203.0.113.5", 31), ("203.0.113.5", 29), ("198.51.100.9", 100)]:
            db.session.add(
                RateLimitBreach(
                    minute=now - timedelta(days=days),
                    scope="ip",
                    key=ip,
                    limit_name="SIGN_IN_RATE_LIMIT",
                    endpoint="auth.login",
                    count=3,
                )
            )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "2 rate-limit breach counts (30 days)" in result.output
    with app.app_context():
        kept = [(row.key, row.minute) for row in db.session.query(RateLimitBreach)]
        assert kept == [("203.0.113.5", now - timedelta(days=29))]
        purge_event = db.session.query(AuditEvent).filter_by(tag=str(Tag.RETENTION_PURGED)).one()
        assert purge_event.details["deleted"]["rate_limit_breaches"] == 2


def _help_request(status: str, when: Any) -> HelpRequest:
    return HelpRequest(
        kind="student",
        queue="its-student",
        status=status,
        created_at=when,
        updated_at=when,
        closed_at=when if status == "closed" else None,
        resolved_at=when if status == "resolved" else None,
        opened_by_login="teacher1",
        opened_by_key="k-teacher1",
        opened_by_name="Tina Teacher",
        subject_key="k-s1000001",
        subject_login="s1000001",
        subject_name="Ana Lopez",
    )


def test_purge_refuses_a_retention_no_date_can_hold(runner: Any) -> None:
    result = runner.invoke(args=["purge", "--older-than", "99999999999"])
    assert result.exit_code == 2, repr(result.exception)
    assert "--older-than" in result.output
