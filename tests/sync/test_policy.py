"""One policy: a password the primary would take but a target would refuse is refused up front."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal.passwords import NewPassword, ensure_acceptable
from selfservice.security import get_security
from selfservice.sync import get_sync
from selfservice.sync.models import SyncWrite
from selfservice.sync.policy import problems, read_rules, strictest
from selfservice.sync.targets import build_adapter
from tests.conftest import AuthActions, person, post_form
from tests.sync.conftest import BUILTIN_TARGET, ad_target

pytestmark = [pytest.mark.ad, pytest.mark.slow]


def test_each_targets_rules_are_read_from_the_target(make_sync_app: Any, samba_ad: Any, slapd: Any) -> None:
    ldap_settings = {key: value for key, value in slapd.settings().items() if key.startswith("LDAP_")}
    ldap_target = {"name": "ldap", "kind": "openldap", "settings": ldap_settings}
    app = make_sync_app(targets=[ad_target(samba_ad), BUILTIN_TARGET, ldap_target])
    found = {}
    with app.app_context():
        for target in get_sync().targets:
            directory = build_adapter(target, app.config)
            found[target.name] = read_rules(target, directory)
            getattr(directory, "close", lambda: None)()

    def checked(rules: Any) -> tuple[int, bool]:
        return rules.min_length, rules.complexity

    assert checked(found["ad"]) == (7, True)  # Samba's defaults
    assert found["ad"].history == 24
    assert checked(found["ldap"]) == (8, False)  # tests/ldap/base.ldif's ppolicy
    assert checked(found["library"]) == (0, False)
    both = strictest(found.values())
    assert (both.min_length, both.history, both.complexity) == (8, 24, True)


def test_a_password_a_target_would_refuse_is_refused_before_any_write(
    make_sync_app: Any, ad_directory: Any
) -> None:
    app = make_sync_app()
    client = app.test_client()
    AuthActions(client).login("p2000001")
    simple = "lowercaseonlyforeverandever"  # long and unguessable enough for the portal, not for AD
    form = {"current_password": person("p2000001").password, "new_password": simple, "confirm": simple}

    response = post_form(client, "/password", form)

    assert response.status_code == 400
    assert "Use at least three of these: capital letters" in response.get_data(as_text=True)
    with app.app_context():
        assert get_directory().authenticate("p2000001", person("p2000001").password) is not None
        # What the portal checks before a write (the primary's and every target's rules) takes a strong one.
        account = get_directory().find("p2000001")
        strong = "Lantern-Orchard-58"
        ensure_acceptable(get_security(), account, NewPassword(strong, strong))  # raises PolicyViolation
        assert problems(strong, get_security().directory_password_rules(account), account) == []


def test_a_targets_longer_minimum_is_shown_and_enforced_before_any_write(
    make_sync_app: Any, ad_min_length_16: None
) -> None:
    app = make_sync_app()
    client = app.test_client()
    AuthActions(client).login("p2000001")

    page = client.get("/password").get_data(as_text=True)

    assert 'data-min-length="16"' in page
    assert "At least 16 characters." in page
    assert "It cannot be one of the last 24 passwords used." in page  # AD's history, not slapd's 3
    assert "Use characters of at least three kinds" in page  # AD's complexity

    fifteen = "Lantern-Orch-58"  # meets the primary's 8 and AD's complexity, not AD's 16
    form = {"current_password": person("p2000001").password, "new_password": fifteen, "confirm": fifteen}
    response = post_form(client, "/password", form)

    assert response.status_code == 400
    assert "This password is too short." in response.get_data(as_text=True)
    with app.app_context():
        assert get_directory().authenticate("p2000001", person("p2000001").password) is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncWrite)) == 0
