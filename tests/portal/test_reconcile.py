"""The sweeper settles password changes left open, and the admin page lists what it has not."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.cli import main
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.helpdesk.models import ResetLink
from selfservice.mail.models import OutboxMessage
from selfservice.portal import pending
from selfservice.portal.models import PendingChange
from selfservice.portal.reconcile import reconcile
from selfservice.security import get_security
from selfservice.security.tokens import Purpose
from selfservice.timeutil import utcnow
from tests.conftest import AppFactory, AuthActions, person
from tests.helpdesk.helpers import (
    act,
    browser,
    link_mails,
    open_request,
    opened_number,
    request_row,
    token_of,
)

LOGIN = "p2000001"
NEW_PASSWORD = "Saffron-Beacon-Orchard-61"


def interrupted_reset(app: Flask, *, written: bool) -> str:
    """What a worker killed mid-reset leaves: the token claimed, the intent open, maybe the write done."""
    with app.app_context():
        directory, security = get_directory(), get_security()
        account = directory.find(LOGIN)
        token = security.tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10))
        db.session.commit()
        intent = pending.open_intent(
            directory, account, how=pending.How.RECOVERY, origin=Origin(ip="192.0.2.7")
        )
        intent.token_nonce = security.tokens.consume(token.value, Purpose.RECOVERY, commit=False).nonce
        db.session.commit()
        if written:
            directory.set_password(account, NEW_PASSWORD)
        return token.value


def sweep(app: Flask, minutes: float = 0) -> str:
    result = app.test_cli_runner().invoke(main, ["reconcile", "--older-than-minutes", str(minutes)])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def facts(app: Flask) -> tuple[list[str], list[str], list[str]]:
    with app.app_context():
        tags = db.session.scalars(select(AuditEvent.tag).where(AuditEvent.subject == LOGIN)).all()
        mail = db.session.scalars(select(OutboxMessage.purpose).where(OutboxMessage.purpose.like("notice:%")))
        states = db.session.scalars(select(PendingChange.state).order_by(PendingChange.id)).all()
        return sorted(tags), mail.all(), list(states)


def test_a_change_that_happened_is_recorded_and_noticed_by_the_sweeper(app: Flask) -> None:
    token = interrupted_reset(app, written=True)
    assert facts(app) == ([], [], ["pending"])
    assert sweep(app) == "password changes: 1 changed, 0 not-changed, 0 unknown"
    tags, notices, states = facts(app)
    assert tags == [Tag.PASSWORD_RESET]
    assert notices == ["notice:password_reset"]
    assert states == ["changed"]
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.tag == Tag.PASSWORD_RESET))
        assert event.details == {"how": "recovery", "settled_by": "reconcile"}
        assert event.ip == "192.0.2.7"  # where the change came from, not the sweeper
    assert app.test_client().get(f"/forgot/reset/{token}").status_code == 410
    assert sweep(app) == "password changes: 0 changed, 0 not-changed, 0 unknown"  # settled once


def test_a_change_that_never_happened_gives_the_token_back(app: Flask) -> None:
    token = interrupted_reset(app, written=False)
    assert app.test_client().get(f"/forgot/reset/{token}").status_code == 410  # claimed meanwhile
    assert sweep(app) == "password changes: 0 changed, 1 not-changed, 0 unknown"
    assert facts(app) == ([], [], ["not-changed"])
    assert app.test_client().get(f"/forgot/reset/{token}").status_code == 200


def test_a_link_whose_worker_died_is_resolved_by_the_sweeper(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    token = token_of(link_mails(app)[-1])
    with app.app_context():  # what a worker killed mid-write leaves: intent, link claimed, password set
        directory, security = get_directory(), get_security()
        holder = directory.find("s1000001")
        link = db.session.scalars(select(ResetLink)).one()
        intent = pending.open_intent(
            directory,
            holder,
            how=pending.How.ASSISTED,
            origin=Origin(),
            must_change=True,
            request_id=link.request_id,
        )
        intent.token_nonce = security.tokens.consume(token, Purpose.ASSISTED_RESET, commit=False).nonce
        db.session.commit()
        directory.set_password(holder, NEW_PASSWORD, must_change=False)  # died before the flag step
    assert request_row(app, number).status == "in-progress"
    assert sweep(app) == "password changes: 1 changed, 0 not-changed, 0 unknown"
    assert request_row(app, number).status == "resolved"
    with app.app_context():
        assert get_directory().find("s1000001").must_change  # what the link's change meant
        tags = db.session.scalars(select(AuditEvent.tag).where(AuditEvent.subject == "s1000001")).all()
        assert {Tag.PASSWORD_RESET, Tag.RESET_LINK_USED, Tag.HELP_REQUEST_RESOLVED} <= set(tags)
    assert app.test_client().get(f"/reset/{token}").status_code == 410


def test_the_sweeper_leaves_changes_younger_than_the_setting(make_app: AppFactory) -> None:
    app = make_app(RECONCILE_AFTER_MINUTES=5)
    interrupted_reset(app, written=True)
    assert sweep(app, minutes=5) == "password changes: 0 changed, 0 not-changed, 0 unknown"
    with app.app_context():
        later = reconcile(
            get_directory(),
            get_security(),
            older_than=timedelta(minutes=5),
            now=utcnow() + timedelta(minutes=6),
        )
    assert later.counts[pending.Outcome.CHANGED] == 1


def test_admins_see_the_unsettled_changes(app: Flask) -> None:
    interrupted_reset(app, written=False)
    client = app.test_client()
    AuthActions(client).login("admin1", person("admin1").password)
    page = client.get("/admin/password-changes")
    assert page.status_code == 200
    assert LOGIN in page.get_data(as_text=True)
    sweep(app)
    assert "Every password change is settled." in client.get("/admin/password-changes").get_data(as_text=True)


def test_only_admins_see_the_unsettled_changes(app: Flask) -> None:
    client = app.test_client()
    AuthActions(client).login("its1")
    assert client.get("/admin/password-changes").status_code == 403
