"""Sync fixtures: the primary slapd with two targets, the Samba AD DC and the builtin directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ldap3
import pytest
from flask import Flask

from selfservice.directory.builtin import BuiltinDirectory
from tests.conftest import seed_builtin
from tests.samba import BASE_DN as AD_BASE_DN
from tests.sync.proxy import FaultProxy

BUILTIN_TARGET = {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]}


def ad_target(samba_ad: Any, url: str | None = None, **options: Any) -> dict[str, Any]:
    """A target table for the test DC, matched by student ID (employeeID) and then by login."""
    settings = {key: value for key, value in samba_ad.settings().items() if key.startswith("LDAP_")}
    if url:
        settings["LDAP_URL"] = url
    return {
        "name": "ad",
        "label": "Windows and Chromebook sign-in",
        "kind": "ad",
        "match": ["student_id", "login"],
        "settings": settings,
        **options,
    }


@pytest.fixture
def ad_proxy(samba_ad: Any) -> Iterator[FaultProxy]:
    """A proxy to the DC's LDAPS port that a test can stop and start."""
    proxy = FaultProxy((samba_ad.address, 636))
    proxy.start()
    yield proxy
    proxy.stop()


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
