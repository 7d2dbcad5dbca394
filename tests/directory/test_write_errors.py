"""Every error of a password write is classified (issue 11): refused by the directory (nothing
changed, a message naming the rule), not sent (nothing changed: 503), or sent without an
answer (only the directory's record can tell). Each ldap3 exception the adapters can see.
"""

from __future__ import annotations

from typing import Any

import pytest
from ldap3.core import exceptions as ldap_errors

from selfservice import config
from selfservice.directory.interfaces import DirectoryUnavailable, OutcomeUnknown, PasswordRejected
from selfservice.directory.ldap import LdapDirectory, _sent_once
from tests.conftest import person

NOT_SENT = [
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPSocketSendError,
    ldap_errors.LDAPStartTLSError,
    ldap_errors.LDAPSSLConfigurationError,
]
NO_ANSWER = [
    ldap_errors.LDAPSocketReceiveError,
    ldap_errors.LDAPSessionTerminatedByServerError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPMaximumRetriesError,
    ldap_errors.LDAPSocketCloseError,
    ConnectionResetError,
    TimeoutError,
]


def raising(error: type[Exception]) -> Any:
    def write() -> None:
        raise error("simulated by the test")

    return write


@pytest.mark.parametrize("error", NOT_SENT, ids=lambda error: error.__name__)
def test_a_write_that_never_left_is_unavailable(error: type[Exception]) -> None:
    with pytest.raises(DirectoryUnavailable):
        _sent_once(raising(error))


@pytest.mark.parametrize("error", NO_ANSWER, ids=lambda error: error.__name__)
def test_a_write_sent_without_an_answer_is_unknown(error: type[Exception]) -> None:
    with pytest.raises(OutcomeUnknown):
        _sent_once(raising(error))


@pytest.mark.ldap
@pytest.mark.slow
@pytest.mark.parametrize(
    "password", ["Lone-\udcff-Surrogate-9", "Control-\x07-Char-9"], ids=["surrogate", "control"]
)
def test_a_password_ldap3_cannot_send_is_refused_with_a_reason(
    ldap_directory: LdapDirectory, password: str
) -> None:
    """ldap3 2.9.1 raises LDAPSASLPrepError (there is no LDAPInvalidCharactersInPasswordError)."""
    account = ldap_directory.find("s1000001")
    with pytest.raises(PasswordRejected, match="characters that are not allowed"):
        ldap_directory.set_password(account, password)
    assert ldap_directory.authenticate("s1000001", person("s1000001").password) is not None


@pytest.mark.ldap
@pytest.mark.slow
def test_a_server_that_is_down_is_unavailable_for_every_write(
    slapd: Any, ldap_directory: LdapDirectory
) -> None:
    account = ldap_directory.find("s1000001")
    down = LdapDirectory({**config.DEFAULTS, **slapd.settings(), "LDAP_URL": "ldap://127.0.0.1:1"})
    with pytest.raises(DirectoryUnavailable):
        down.set_password(account, "Brass-Tulip-Harbor-28")
    with pytest.raises(DirectoryUnavailable):
        down.change_password(account, person("s1000001").password, "Brass-Tulip-Harbor-28")
    with pytest.raises(DirectoryUnavailable):
        down.password_stamp(account)
