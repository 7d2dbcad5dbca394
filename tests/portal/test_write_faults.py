"""Invariant 15 on a real slapd behind a fault proxy: whatever happens to the password write,
what the page says, the directory's state, the audit log and the notice in the outbox agree,
and a token or link is spent only when the change is known to have happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ldap3
import pytest
from flask import Flask
from sqlalchemy import select

from selfservice.activation.models import ParentActivation
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal.models import PendingChange
from selfservice.portal.pending import Outcome
from selfservice.portal.reconcile import reconcile
from selfservice.security import get_security
from selfservice.security.tokens import Purpose
from tests.activation.helpers import mailed_code, submit_letter
from tests.conftest import AppFactory, AuthActions, person, post_form
from tests.faultproxy import EXTENDED_REQUEST, MODIFY_REQUEST, Fault, FaultProxy, ldap_request
from tests.helpdesk.helpers import (
    act,
    browser,
    link_mails,
    open_request,
    opened_number,
    request_row,
    token_of,
)

pytestmark = [pytest.mark.ldap, pytest.mark.slow]

NEW_PASSWORD = "Harbor-Violet-Compass-73"
PASSWORD_WRITE = ldap_request(EXTENDED_REQUEST)  # RFC 3062 Password Modify


@pytest.fixture
def app(make_app: AppFactory, slapd_proxy: FaultProxy) -> Flask:
    """The portal on slapd through the proxy; a lost reply is given up on after two seconds."""
    return make_app(directory="openldap", LDAP_URL=slapd_proxy.url(), LDAP_OPERATION_TIMEOUT_SECONDS=2)


@dataclass
class Record:
    """Everything that says whether the password changed."""

    new_password_works: bool
    old_password_works: bool
    audit_tags: list[str]
    notices: list[str]
    intents: list[str]


def record_of(app: Flask, login: str, new: str = NEW_PASSWORD, directory: Any = None) -> Record:
    """What everything says; ``directory`` reads slapd directly when the proxy is gone."""
    with app.app_context():
        directory = directory or get_directory()
        events = db.session.scalars(select(AuditEvent.tag).where(AuditEvent.subject == login)).all()
        mail = db.session.scalars(select(OutboxMessage.purpose).where(OutboxMessage.purpose.like("notice:%")))
        return Record(
            new_password_works=directory.authenticate(login, new) is not None,
            old_password_works=directory.authenticate(login, person(login).password) is not None,
            audit_tags=sorted(events),
            notices=sorted(mail.all()),
            intents=list(db.session.scalars(select(PendingChange.state).order_by(PendingChange.id))),
        )


def recovery_token(app: Flask, login: str) -> str:
    with app.app_context():
        account = get_directory().find(login)
        token = get_security().tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10))
        db.session.commit()
        return token.value


def reset(app: Flask, token: str, password: str = NEW_PASSWORD) -> Any:
    path = f"/forgot/reset/{token}"
    return post_form(app.test_client(), path, {"new_password": password, "confirm": password})


# --- the reply is lost after slapd applied the write -------------------------------------------


@pytest.mark.parametrize("fault", [Fault.DROP_REPLY, Fault.DELAY_REPLY], ids=["reply-dropped", "reply-late"])
def test_a_reset_whose_reply_is_lost_is_told_as_changed_audited_and_noticed(
    app: Flask, slapd_proxy: FaultProxy, fault: Fault
) -> None:
    token = recovery_token(app, "p2000001")
    slapd_proxy.arm(fault, PASSWORD_WRITE, delay_seconds=3.5)
    response = reset(app, token)
    assert slapd_proxy.fired.is_set()
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/forgot/done")
    state = record_of(app, "p2000001")
    assert state.new_password_works
    assert not state.old_password_works
    assert Tag.PASSWORD_RESET in state.audit_tags
    assert Tag.PASSWORD_CHANGE_FAILED not in state.audit_tags
    assert state.notices == ["notice:password_reset"]
    assert state.intents == ["changed"]
    assert app.test_client().get(f"/forgot/reset/{token}").status_code == 410  # spent: it worked


def test_a_signed_in_change_whose_reply_is_lost_is_told_as_changed(
    app: Flask, slapd_proxy: FaultProxy
) -> None:
    client = app.test_client()
    AuthActions(client).login("p2000001")
    slapd_proxy.arm(Fault.DROP_REPLY, PASSWORD_WRITE)
    data = {"current_password": person("p2000001").password, "new_password": NEW_PASSWORD}
    response = post_form(client, "/password", {**data, "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/password/done")
    state = record_of(app, "p2000001")
    assert state.new_password_works
    assert Tag.PASSWORD_CHANGED in state.audit_tags
    assert state.notices == ["notice:password_changed"]


def test_a_link_whose_reply_is_lost_resolves_the_request_and_sets_must_change(
    app: Flask, slapd_proxy: FaultProxy, slapd: Any
) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    token = token_of(link_mails(app)[-1])
    slapd_proxy.arm(Fault.DROP_REPLY, PASSWORD_WRITE)
    holder = app.test_client()
    response = post_form(
        holder, f"/reset/{token}", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, form_path="/"
    )
    assert response.status_code == 200
    assert "The new password is set" in response.get_data(as_text=True)
    state = record_of(app, "s1000001")
    assert state.new_password_works
    assert Tag.PASSWORD_RESET in state.audit_tags
    assert Tag.RESET_LINK_USED in state.audit_tags
    assert state.notices == ["notice:password_reset"]
    assert request_row(app, number).status == "resolved"
    assert _pwd_reset(slapd, "s1000001") == "TRUE"
    assert app.test_client().get(f"/reset/{token}").status_code == 410


def test_a_must_change_step_lost_after_the_reset_still_tells_the_truth(
    app: Flask, slapd_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """Measured: slapd gone between the write and the must-change step said "not changed"."""
    token = recovery_token(app, "p2000001")
    slapd_proxy.arm(Fault.CUT_BEFORE, ldap_request(MODIFY_REQUEST), times=2)  # the step and its retry
    response = reset(app, token)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/forgot/done")
    state = record_of(app, "p2000001")
    assert state.new_password_works
    assert Tag.PASSWORD_RESET in state.audit_tags
    assert Tag.PASSWORD_CHANGE_FAILED not in state.audit_tags
    assert state.notices == ["notice:password_reset"]
    assert "must-change flag was not written" in caplog.text


def test_a_change_nobody_can_confirm_yet_is_told_so_and_settled_by_the_sweeper(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any
) -> None:
    """The reply is lost and slapd stays out of reach: "we could not confirm", then the sweeper."""
    token = recovery_token(app, "p2000001")
    slapd_proxy.arm(Fault.PASS, PASSWORD_WRITE, after_forward=slapd_proxy.close)  # gone with the reply
    response = reset(app, token)
    assert response.status_code == 202
    assert "We could not confirm the change" in response.get_data(as_text=True)
    state = record_of(app, "p2000001", directory=ldap_directory)
    assert Tag.PASSWORD_CHANGE_UNCONFIRMED in state.audit_tags
    assert Tag.PASSWORD_RESET not in state.audit_tags
    assert state.notices == []
    assert state.intents == ["unknown"]
    with app.app_context():  # later, with slapd reachable again
        sweep = reconcile(ldap_directory, get_security(), older_than=timedelta(0))
    assert sweep.counts[Outcome.CHANGED] == 1
    state = record_of(app, "p2000001", directory=ldap_directory)
    assert state.new_password_works
    assert Tag.PASSWORD_RESET in state.audit_tags
    assert state.notices == ["notice:password_reset"]
    assert state.intents == ["changed"]


def test_an_activation_whose_write_nobody_can_confirm_is_told_so(
    app: Flask, slapd_proxy: FaultProxy, ldap_directory: Any
) -> None:
    """A parent's first password, the reply lost and slapd out of reach: the truth, not a 500."""
    client = app.test_client()
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    slapd_proxy.arm(Fault.PASS, PASSWORD_WRITE, after_forward=slapd_proxy.close)
    response = post_form(
        client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 202
    assert "We could not confirm the change" in response.get_data(as_text=True)
    assert record_of(app, "p2000001", directory=ldap_directory).intents == ["unknown"]
    with app.app_context():  # later, with slapd reachable again
        sweep = reconcile(ldap_directory, get_security(), older_than=timedelta(0))
        assert sweep.counts[Outcome.CHANGED] == 1
        assert db.session.get(ParentActivation, ldap_directory.find("p2000001").key) is not None
    state = record_of(app, "p2000001", directory=ldap_directory)
    assert state.new_password_works
    assert "account:activation:complete" in state.audit_tags
    assert state.notices == ["notice:account_activated"]


# --- the write never reaches slapd ------------------------------------------------------------


def test_a_connection_cut_before_the_write_changes_nothing_and_the_token_still_works(
    app: Flask, slapd_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    token = recovery_token(app, "p2000001")
    slapd_proxy.arm(Fault.CUT_BEFORE, PASSWORD_WRITE)
    response = reset(app, token)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Your password was not changed" in response.get_data(as_text=True)
    state = record_of(app, "p2000001")
    assert not state.new_password_works
    assert state.old_password_works
    assert Tag.PASSWORD_RESET not in state.audit_tags
    assert Tag.PASSWORD_CHANGE_FAILED in state.audit_tags
    assert state.notices == []
    assert state.intents == ["not-changed"]
    assert "no answer to a password write" in caplog.text
    assert token not in caplog.text  # the failure is logged, its token is not
    # "Try again" works with the same token, and then it is spent.
    assert reset(app, token).headers["Location"].endswith("/forgot/done")
    assert record_of(app, "p2000001").intents == ["not-changed", "changed"]


def test_an_activation_whose_write_never_reached_slapd_says_so_and_the_step_still_works(
    app: Flask, slapd_proxy: FaultProxy
) -> None:
    client = app.test_client()
    submit_letter(client)
    post_form(client, "/activate/code", {"code": mailed_code(app)})
    slapd_proxy.arm(Fault.CUT_BEFORE, PASSWORD_WRITE)
    password = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = post_form(client, "/activate/password", password)
    assert response.status_code == 503
    assert "Your password was not changed" in response.get_data(as_text=True)
    assert record_of(app, "p2000001").intents == ["not-changed"]
    again = post_form(client, "/activate/password", password)
    assert again.headers["Location"].endswith("/activate/questions")
    assert record_of(app, "p2000001").new_password_works


def test_a_password_ppolicy_refuses_keeps_the_recovery_usable(app: Flask, slapd: Any) -> None:
    token = recovery_token(app, "p2000001")
    # The page was opened before the rule changed: the portal's cached copy of the directory's
    # rules lets the password through, and the directory itself refuses it.
    assert app.test_client().get(f"/forgot/reset/{token}").status_code == 200
    with _ppolicy_minimum(slapd, 30):
        refused = reset(app, token)
        assert refused.status_code == 400
        assert "too short" in refused.get_data(as_text=True)
    state = record_of(app, "p2000001")
    assert state.old_password_works
    assert state.notices == []
    assert state.intents == ["not-changed"]
    assert reset(app, token).headers["Location"].endswith("/forgot/done")  # no questions again


# --- helpers ---------------------------------------------------------------------------------


def _pwd_reset(slapd: Any, login: str) -> str | None:
    conn = slapd.root_connection()
    try:
        conn.search(slapd.dn(login), "(objectClass=*)", ldap3.BASE, attributes=["pwdReset"])
        values = conn.entries[0].entry_attributes_as_dict.get("pwdReset") or [None]
        return str(values[0]).upper() if values[0] is not None else None
    finally:
        conn.unbind()


@contextlib.contextmanager
def _ppolicy_minimum(slapd: Any, length: int) -> Iterator[None]:
    """Raise slapd's ppolicy pwdMinLength for the block, then put the seed's 8 back."""
    _set_ppolicy_minimum(slapd, length)
    try:
        yield
    finally:
        _set_ppolicy_minimum(slapd, 8)


def _set_ppolicy_minimum(slapd: Any, length: int) -> None:
    conn = slapd.root_connection()
    try:
        change = {"pwdMinLength": [(ldap3.MODIFY_REPLACE, [str(length)])]}
        assert conn.modify(f"cn=default,ou=policies,{slapd.base_dn}", change)
    finally:
        conn.unbind()
