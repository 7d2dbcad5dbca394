"""AD fine-grained password policies (PSOs): a person under one is told, and held to, its rules.

Each test creates its PSO with samba-tool on the shared Samba DC and deletes it after. The
domain's own policy (seeded: at least 7 characters, complexity) is looser than the PSOs
here, so a page stating the domain's rules to someone under a PSO would promise too little.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import ldap3
import pytest
from flask import Flask

from selfservice import config
from selfservice.directory import get_directory
from selfservice.directory.ad import AdDirectory
from selfservice.directory.interfaces import PasswordRules
from tests.conftest import AppFactory, AuthActions, person, post_form
from tests.portal.test_write_faults import recovery_token
from tests.samba import SambaDC

pytestmark = pytest.mark.slow

#: 12 characters of four kinds: enough for the domain (7) and the portal (8), short for the PSO (16).
DOMAIN_LONG_ENOUGH = "Qz7#vKp!wR2m"
PSO_LONG_ENOUGH = "Qz7#vKp!wR2m-Ludo"


@pytest.fixture
def student_pso(samba_ad: SambaDC, ad_directory: AdDirectory) -> Iterator[str]:
    options = ("--min-pwd-length=16", "--history-length=5", "--complexity=on", "--min-pwd-age=0")
    with samba_ad.password_settings("students-strict", "s1000001", *options) as dn:
        yield dn


@pytest.fixture
def employees_pso(samba_ad: SambaDC, ad_directory: AdDirectory) -> Iterator[str]:
    options = ("--min-pwd-length=14", "--history-length=10", "--complexity=on", "--min-pwd-age=0")
    with samba_ad.password_settings("employees-strict", "employees", *options) as dn:
        yield dn


def signed_in(app: Flask, login: str) -> Any:
    client = app.test_client()
    AuthActions(client).login(login, person(login).password)
    return client


def change(client: Any, new: str, login: str = "s1000001") -> Any:
    fields = {"current_password": person(login).password, "new_password": new, "confirm": new}
    return post_form(client, "/password", fields)


def test_the_adapter_reads_the_resultant_pso(ad_directory: AdDirectory, student_pso: str) -> None:
    account = ad_directory.find("s1000001")
    assert account is not None
    rules = ad_directory.password_rules_for(account)
    assert rules == PasswordRules(
        min_length=16, history=5, complexity=True, min_age_seconds=0, source=student_pso
    )
    other = ad_directory.find("s1000002")
    assert other is not None
    assert ad_directory.password_rules_for(other) is None  # the domain's policy applies


def test_the_change_page_states_the_pso_minimum(make_app: AppFactory, student_pso: str) -> None:
    page = signed_in(make_app(directory="ad"), "s1000001").get("/password").get_data(as_text=True)
    assert "At least 16 characters" in page
    assert 'data-min-length="16"' in page
    assert "It cannot be one of the last 5 passwords used." in page


def test_the_reset_page_states_the_pso_minimum(make_app: AppFactory, student_pso: str) -> None:
    app = make_app(directory="ad")
    page = app.test_client().get(f"/forgot/reset/{recovery_token(app, 's1000001')}").get_data(as_text=True)
    assert "At least 16 characters" in page
    assert 'data-min-length="16"' in page


def test_a_password_long_enough_for_the_domain_but_short_for_the_pso_is_refused_before_the_write(
    make_app: AppFactory, student_pso: str, samba_ad: SambaDC
) -> None:
    app = make_app(directory="ad")
    before = _password_written(samba_ad, "s1000001")
    response = change(signed_in(app, "s1000001"), DOMAIN_LONG_ENOUGH)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This password is too short." in page  # the portal's rules message
    assert "The new password is too short. Choose a longer one." not in page  # not AD's refusal
    assert _password_written(samba_ad, "s1000001") == before  # nothing was sent to AD


def test_a_reset_long_enough_for_the_domain_but_short_for_the_pso_is_refused(
    make_app: AppFactory, student_pso: str
) -> None:
    app = make_app(directory="ad")
    token = recovery_token(app, "s1000001")
    fields = {"new_password": DOMAIN_LONG_ENOUGH, "confirm": DOMAIN_LONG_ENOUGH}
    response = post_form(app.test_client(), f"/forgot/reset/{token}", fields)
    assert response.status_code == 400
    assert "This password is too short." in response.get_data(as_text=True)
    fields = {"new_password": PSO_LONG_ENOUGH, "confirm": PSO_LONG_ENOUGH}
    assert post_form(app.test_client(), f"/forgot/reset/{token}", fields).status_code == 303


def test_a_user_without_a_pso_still_gets_the_domain_rules(make_app: AppFactory, student_pso: str) -> None:
    client = signed_in(make_app(directory="ad"), "s1000002")
    page = client.get("/password").get_data(as_text=True)
    assert "At least 8 characters" in page  # the portal's 8 over the domain's 7
    assert "It cannot be one of the last 24 passwords used." in page
    assert change(client, DOMAIN_LONG_ENOUGH, login="s1000002").status_code == 303


def test_a_pso_applied_to_a_group_holds_its_members(make_app: AppFactory, employees_pso: str) -> None:
    client = signed_in(make_app(directory="ad"), "teacher1")  # in employees
    page = client.get("/password").get_data(as_text=True)
    assert "At least 14 characters" in page
    assert "It cannot be one of the last 10 passwords used." in page
    response = change(client, DOMAIN_LONG_ENOUGH, login="teacher1")
    assert response.status_code == 400
    assert "This password is too short." in response.get_data(as_text=True)
    assert "At least 8 characters" in signed_in(make_app(directory="ad"), "support1").get(
        "/password"
    ).get_data(as_text=True)


def test_a_service_account_that_cannot_read_psos_keeps_the_domain_policy_and_logs_it(
    samba_ad: SambaDC, student_pso: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain domain user (no read right on the Password Settings Container) as the service account."""
    settings = {
        **config.DEFAULTS,
        **samba_ad.settings(),
        "LDAP_BIND_DN": samba_ad.dn("support1"),
        "LDAP_BIND_PASSWORD": person("support1").password,
    }
    directory = AdDirectory(settings)
    try:
        account = directory.find("s1000001")
        assert account is not None
        with caplog.at_level(logging.INFO, logger="selfservice.directory.ad"):
            assert directory.password_rules_for(account) is None
        assert any(
            record.levelno == logging.INFO and "domain policy" in record.getMessage()
            for record in caplog.records
        ), caplog.text
    finally:
        directory.close()


def test_a_page_and_its_refusal_cost_one_search_for_the_pso(
    make_app: AppFactory, student_pso: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured: the searches the portal sends for the rules of one person's page and its refusal."""
    app = make_app(directory="ad")
    client = signed_in(app, "s1000001")
    client.get("/password")  # the domain's and the PSO's rules are cached from here on
    searches: list[tuple[str, Any]] = []
    real_search = ldap3.Connection.search

    def counted(
        connection: ldap3.Connection, base: str, search_filter: str, *args: Any, **kwargs: Any
    ) -> Any:
        searches.append((base, kwargs.get("attributes")))
        return real_search(connection, base, search_filter, *args, **kwargs)

    monkeypatch.setattr(ldap3.Connection, "search", counted)
    assert change(client, DOMAIN_LONG_ENOUGH).status_code == 400  # the check, then the page again
    pso_reads = [base for base, attributes in searches if attributes and "msDS-ResultantPSO" in attributes]
    assert len(pso_reads) <= 1, searches
    with app.app_context():
        get_directory().close()


def _password_written(samba_ad: SambaDC, login: str) -> str:
    """pwdLastSet as AD holds it: any password write changes it."""
    connection = samba_ad.admin_connection()
    try:
        connection.search(samba_ad.dn(login), "(objectClass=*)", ldap3.BASE, attributes=["pwdLastSet"])
        return str(connection.response[0]["raw_attributes"]["pwdLastSet"][0])
    finally:
        connection.unbind()


def test_a_pso_complexity_rule_is_checked_by_the_portal_before_the_write(
    make_app: AppFactory, student_pso: str, samba_ad: SambaDC
) -> None:
    """Long and hard to guess, but of one kind of character: AD's complexity rule refuses it."""
    before = _password_written(samba_ad, "s1000001")
    response = change(signed_in(make_app(directory="ad"), "s1000001"), "lanternorchardvelvetcanyonquill")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Use at least three of these: capital letters, lowercase letters, digits and symbols." in page
    assert "The new password is too simple" not in page
    assert _password_written(samba_ad, "s1000001") == before
