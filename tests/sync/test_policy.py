"""One policy: a password the primary would take but a target would refuse is refused up front."""

from __future__ import annotations

from typing import Any

import pytest

from selfservice.directory import get_directory
from selfservice.sync import get_sync
from selfservice.sync.policy import TargetRules, read_rules, strictest
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

    assert found["ad"] == TargetRules(min_length=7, complexity=True)  # Samba's defaults
    assert found["ldap"] == TargetRules(min_length=8)  # tests/ldap/base.ldif's ppolicy
    assert found["library"] == TargetRules()
    assert strictest(found.values()) == TargetRules(min_length=8, complexity=True)


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
        assert get_sync().password_problems(get_directory().find("p2000001"), "Lantern-Orchard-58") == []
