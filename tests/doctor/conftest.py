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


@pytest.fixture
def policy_min_age_one_hour(slapd: Slapd) -> Iterator[None]:
    connection = slapd.root_connection()
    connection.modify(POLICY_DN, {"pwdMinAge": [(ldap3.MODIFY_REPLACE, ["3600"])]})
    yield
    connection.modify(POLICY_DN, {"pwdMinAge": [(ldap3.MODIFY_REPLACE, ["0"])]})
    connection.unbind()


@pytest.fixture
def domain_min_age_one_day(samba_ad: SambaDC) -> Iterator[None]:
    """AD's default minimum age: one day (in AD's negative 100 ns steps)."""
    connection = samba_ad.admin_connection()
    connection.modify(AD_BASE_DN, {"minPwdAge": [(ldap3.MODIFY_REPLACE, ["-864000000000"])]})
    yield
    connection.modify(AD_BASE_DN, {"minPwdAge": [(ldap3.MODIFY_REPLACE, ["0"])]})
    connection.unbind()
