"""Sync fixtures: the primary slapd with two targets, the Samba AD DC and the builtin directory;
the builtin primary with the session slapd as an OpenLDAP target; the district slapd as a target
with its own schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ldap3
import pytest
from flask import Flask

from selfservice.directory.builtin import BuiltinDirectory
from tests.conftest import seed_builtin
from tests.doctor import district
from tests.samba import BASE_DN as AD_BASE_DN
from tests.slapd import Slapd

BUILTIN_TARGET = {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]}


def ad_target(samba_ad: Any, url: str | None = None, **options: Any) -> dict[str, Any]:
    """A target table for the test DC, matched by student ID (employeeID) and then by login."""
    return _target(samba_ad, url, "ad", "Windows and Chromebook sign-in", "ad", options)


def _target(
    server: Any, url: str | None, name: str, label: str, kind: str, options: dict[str, Any]
) -> dict[str, Any]:
    """A target table on ``server``'s LDAP settings (``url`` instead of its own), by student ID then login."""
    settings = {key: value for key, value in server.settings().items() if key.startswith("LDAP_")}
    if url:
        settings["LDAP_URL"] = url
    return {
        "name": name,
        "label": label,
        "kind": kind,
        "match": ["student_id", "login"],
        "settings": settings,
        **options,
    }


@pytest.fixture
def ad_min_length_16(samba_ad: Any) -> Iterator[None]:
    """The DC's domain asks for 16 characters (longer than the primary's 8) for one test."""
    connection = samba_ad.admin_connection()
    assert connection.search(AD_BASE_DN, "(objectClass=*)", ldap3.BASE, attributes=["minPwdLength"])
    old = str(connection.entries[0].minPwdLength.value)
    connection.modify(AD_BASE_DN, {"minPwdLength": [(ldap3.MODIFY_REPLACE, ["16"])]})
    yield
    connection.modify(AD_BASE_DN, {"minPwdLength": [(ldap3.MODIFY_REPLACE, [old])]})
    connection.unbind()


SyncAppFactory = Callable[..., Flask]


@pytest.fixture
def make_sync_app(make_app: Any, samba_ad: Any, ad_directory: Any) -> SyncAppFactory:
    """An app on the primary slapd whose targets are the DC (maybe behind a proxy) and builtin."""

    def factory(
        ad_url: str | None = None, targets: list[dict[str, Any]] | None = None, **overrides: Any
    ) -> Flask:
        chosen = targets if targets is not None else [ad_target(samba_ad, ad_url), BUILTIN_TARGET]
        app = make_app(directory="openldap", SYNC_TARGETS=chosen, **overrides)
        with app.app_context():
            seed_builtin(BuiltinDirectory(app.config))
        return app

    return factory


# --- an OpenLDAP target ------------------------------------------------------------------


def openldap_target(slapd: Slapd, url: str | None = None, **options: Any) -> dict[str, Any]:
    """A target table for the session slapd (what the school portals read), by student ID then login."""
    return _target(slapd, url, "portals", "School portals", "openldap", options)


@pytest.fixture
def make_ldap_target_app(make_app: Any, slapd: Slapd, ldap_directory: Any) -> Iterator[SyncAppFactory]:
    """An app on the builtin directory whose target is the session slapd (seed state restored)."""

    def factory(targets: list[dict[str, Any]] | None = None, **overrides: Any) -> Flask:
        chosen = targets if targets is not None else [openldap_target(slapd)]
        return make_app(directory="builtin", SYNC_TARGETS=chosen, **overrides)

    yield factory
    slapd.restore_seed()  # the next test that reads the slapd without restoring finds the seed


#: Accounts added to the district slapd for one test (its seed stays as the doctor tests expect):
#: Ana Lopez under another login with the primary's student ID, a parent with the primary's
#: login, and someone else who has Ana's primary login.
LAKESIDE_ACCOUNTS = {
    "ana.lopez": {"lakesideRole": "student", "lakesideStudentNumber": "1000001", "cn": "Ana Lopez"},
    "p2000001": {"lakesideRole": "parent", "lakesideFamilyAccount": "9000001", "cn": "Maria Lopez"},
    "s1000001": {"lakesideRole": "student", "lakesideStudentNumber": "7999999", "cn": "Sam Other"},
}


def district_target(district_slapd: Slapd, **options: Any) -> dict[str, Any]:
    """A target table for the district slapd: its own base DN, service account and attribute names."""
    settings = {
        key: value
        for key, value in district.district_settings(district_slapd.url).items()
        if key.startswith("LDAP_")
    }
    return {
        "name": "lakeside",
        "label": "Lakeside portals",
        "kind": "openldap",
        "match": ["student_id", "login"],
        "settings": settings,
        **options,
    }


def lakeside_dn(login: str) -> str:
    return f"uid={login},{district.PEOPLE}"


@pytest.fixture
def lakeside_accounts(district_slapd: Slapd) -> Iterator[dict[str, dict[str, str]]]:
    """LAKESIDE_ACCOUNTS in the district slapd for one test, removed after it."""
    connection = district_slapd.root_connection()
    for login, attributes in LAKESIDE_ACCOUNTS.items():
        entry = {
            "objectClass": ["inetOrgPerson", "lakesidePerson"],
            "uid": login,
            "sn": attributes["cn"].split()[-1],
            "userPassword": district.PASSWORD,
            **attributes,
        }
        assert connection.add(lakeside_dn(login), attributes=entry), connection.result
    yield LAKESIDE_ACCOUNTS
    for login in LAKESIDE_ACCOUNTS:
        connection.delete(lakeside_dn(login))
    connection.unbind()
