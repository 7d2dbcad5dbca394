"""Directory password rules changed for one test, then put back (slapd ppolicy, Samba domain policy)."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest

from tests.samba import BASE_DN as AD_BASE_DN
from tests.samba import SambaDC
from tests.slapd import BASE_DN, Slapd

POLICY_DN = f"cn=default,ou=policies,{BASE_DN}"


@pytest.fixture
def policy_min_length_10(slapd: Slapd) -> Iterator[None]:
    connection = slapd.root_connection()
    connection.modify(POLICY_DN, {"pwdMinLength": [(ldap3.MODIFY_REPLACE, ["10"])]})
    yield
    connection.modify(POLICY_DN, {"pwdMinLength": [(ldap3.MODIFY_REPLACE, ["8"])]})
    connection.unbind()


@pytest.fixture
def domain_min_length_10(samba_ad: SambaDC) -> Iterator[None]:
    connection = samba_ad.admin_connection()
    before = connection.search(AD_BASE_DN, "(objectClass=*)", ldap3.BASE, attributes=["minPwdLength"])
    assert before
    old = str(connection.entries[0].minPwdLength.value)
    connection.modify(AD_BASE_DN, {"minPwdLength": [(ldap3.MODIFY_REPLACE, ["10"])]})
    yield
    connection.modify(AD_BASE_DN, {"minPwdLength": [(ldap3.MODIFY_REPLACE, [old])]})
    connection.unbind()
