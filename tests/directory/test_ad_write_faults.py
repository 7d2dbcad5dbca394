"""Invariant 15 on a real Samba AD DC behind the fault proxy (LDAPS: the proxy counts requests).

Each fault is classified by the adapter as what it is, and unicodePwd's own change time
(its replication metadata) tells afterwards whether the write happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from selfservice import config
from selfservice.audit.models import AuditEvent
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.directory.ad import AdDirectory
from selfservice.directory.interfaces import DirectoryUnavailable, OutcomeUnknown
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal.models import PendingChange
from selfservice.security import get_security
from selfservice.security.tokens import Purpose
from tests.conftest import AppFactory, csrf_token, person
from tests.faultproxy import Fault, FaultProxy, nth_request

pytestmark = [pytest.mark.ad, pytest.mark.slow]

NEW_PASSWORD = "Granite-Willow-Signal-84"
LOGIN = "p2000001"


@pytest.fixture
def proxied(samba_ad: Any, ad_directory: AdDirectory, samba_proxy: FaultProxy) -> Iterator[AdDirectory]:
    """An AdDirectory through the proxy, its service connection already open and bound."""
    settings = {**config.DEFAULTS, **samba_ad.settings(), "LDAP_URL": samba_proxy.url("ldaps")}
    directory = AdDirectory({**settings, "LDAP_OPERATION_TIMEOUT_SECONDS": 2})
    directory.ping()
    yield directory
    directory.close()


@pytest.mark.parametrize("fault", [Fault.DROP_REPLY, Fault.DELAY_REPLY], ids=["reply-dropped", "reply-late"])
def test_a_reset_whose_reply_is_lost_is_unknown_and_the_record_shows_it_happened(
    proxied: AdDirectory, samba_proxy: FaultProxy, fault: Fault
) -> None:
    account = proxied.find(LOGIN)
    before = proxied.password_stamp(account)
    samba_proxy.arm(fault, nth_request(2), delay_seconds=3.5)  # 1: the liveness check, 2: the modify
    with pytest.raises(OutcomeUnknown):
        proxied.set_password(account, NEW_PASSWORD)
    assert samba_proxy.fired.is_set()
    after = proxied.password_stamp(account)
    assert after is not None
    assert after != before
    assert proxied.authenticate(LOGIN, NEW_PASSWORD) is not None


def test_the_holders_own_change_whose_reply_is_lost_is_unknown_and_the_record_shows_it(
    proxied: AdDirectory, samba_proxy: FaultProxy
) -> None:
    account = proxied.find(LOGIN)
    before = proxied.password_stamp(account)
    # On the holder's own new connection: 1 ClientHello, 2 the handshake's end, 3 the bind, 4 the modify.
    samba_proxy.arm(Fault.DROP_REPLY, nth_request(4), new_connections_only=True)
    with pytest.raises(OutcomeUnknown):
        proxied.change_password(account, person(LOGIN).password, NEW_PASSWORD)
    assert samba_proxy.fired.is_set()
    assert proxied.password_stamp(account) != before
    assert proxied.authenticate(LOGIN, NEW_PASSWORD) is not None


def test_a_connection_cut_before_the_reset_changes_nothing(
    proxied: AdDirectory, samba_proxy: FaultProxy
) -> None:
    account = proxied.find(LOGIN)
    before = proxied.password_stamp(account)
    samba_proxy.arm(Fault.CUT_BEFORE, nth_request(2))
    with pytest.raises(OutcomeUnknown):  # the request left the portal: only the record can tell
        proxied.set_password(account, NEW_PASSWORD)
    assert proxied.password_stamp(account) == before
    assert proxied.authenticate(LOGIN, person(LOGIN).password) is not None


def test_a_dc_that_cannot_be_reached_is_unavailable_before_anything_is_sent(
    proxied: AdDirectory, samba_proxy: FaultProxy
) -> None:
    account = proxied.find(LOGIN)
    proxied.close()
    samba_proxy.close()
    with pytest.raises(DirectoryUnavailable):
        proxied.set_password(account, NEW_PASSWORD)


def test_must_change_reset_still_has_a_change_time(ad_directory: AdDirectory) -> None:
    """pwdLastSet is 0 after a must-change reset; unicodePwd's metadata still marks the write."""
    account = ad_directory.find(LOGIN)
    before = ad_directory.password_stamp(account)
    ad_directory.set_password(account, NEW_PASSWORD, must_change=True)
    after = ad_directory.password_stamp(account)
    assert after is not None
    assert after != before


# --- the whole recovery on AD: page, directory, audit and notice agree -------------------------


@pytest.fixture
def app(make_app: AppFactory, samba_proxy: FaultProxy) -> Flask:
    return make_app(directory="ad", LDAP_URL=samba_proxy.url("ldaps"), LDAP_OPERATION_TIMEOUT_SECONDS=3)


def test_a_recovery_whose_reply_is_lost_on_ad_is_told_as_changed(app: Flask, samba_proxy: FaultProxy) -> None:
    with app.app_context():
        account = get_directory().find(LOGIN)
        token = get_security().tokens.issue(account.key, Purpose.RECOVERY, timedelta(minutes=10)).value
        db.session.commit()
    client = app.test_client()
    path = f"/forgot/reset/{token}"
    form = {"csrf_token": csrf_token(client, path), "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    # On the open service connection: 1 finds the holder (recovery reads no groups), 2 the
    # password's change time (the intent), 3 the liveness check, 4 the unicodePwd modify.
    samba_proxy.arm(Fault.DROP_REPLY, nth_request(4))
    response = client.post(path, data=form)
    assert samba_proxy.fired.is_set()
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/forgot/done")
    with app.app_context():
        assert get_directory().authenticate(LOGIN, NEW_PASSWORD) is not None
        tags = db.session.scalars(select(AuditEvent.tag).where(AuditEvent.subject == LOGIN)).all()
        notices = db.session.scalars(
            select(OutboxMessage.purpose).where(OutboxMessage.purpose.like("notice:%"))
        )
        assert Tag.PASSWORD_RESET in tags
        assert notices.all() == ["notice:password_reset"]
        assert db.session.scalars(select(PendingChange.state)).all() == ["changed"]
    assert client.get(path).status_code == 410
