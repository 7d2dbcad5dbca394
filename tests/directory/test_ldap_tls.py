"""LDAPS and StartTLS with the certificate verified, against a real slapd serving TLS with a
certificate for 127.0.0.1 from a test CA (tests/slapd.py ``slapd_tls``).

A connection the portal cannot verify (another CA, no CA but the system's, a name the
certificate does not carry) is refused before the service account's password is sent:
the adapter says the directory is unavailable, a page answers 503, and
``selfservice check`` names the TLS settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from selfservice import config
from selfservice.cli import main
from selfservice.directory.interfaces import DirectoryUnavailable
from selfservice.directory.ldap import LdapDirectory
from tests.conftest import AppFactory, post_form
from tests.fixtures.certificates import make_ca
from tests.fixtures.people import person
from tests.slapd import Slapd

pytestmark = [pytest.mark.ldap, pytest.mark.slow]

STUDENT = person("s1000001")
MODES = [pytest.param(True, id="starttls"), pytest.param(False, id="ldaps")]


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that did not issue the test slapd's certificate."""
    return str(make_ca(tmp_path_factory.mktemp("other-ca"), "Some Other CA").file)


def by_name(settings: dict[str, Any]) -> dict[str, Any]:
    """The same server reached as ``localhost``: a name its certificate (127.0.0.1 only) lacks."""
    return {**settings, "LDAP_URL": settings["LDAP_URL"].replace("127.0.0.1", "localhost")}


def unverifiable(slapd_tls: Slapd, other_ca: str, *, start_tls: bool, wrong: str) -> dict[str, Any]:
    """Settings under which the TLS slapd's certificate does not verify: ``wrong`` says why."""
    settings = slapd_tls.tls_settings(start_tls=start_tls)
    return by_name(settings) if wrong == "wrong-hostname" else {**settings, "LDAP_CA_FILE": other_ca}


@pytest.fixture
def tls_directory(slapd_tls: Slapd) -> Iterator[Callable[..., LdapDirectory]]:
    """LdapDirectory objects on the TLS slapd, verifying, with some settings overridden."""
    built: list[LdapDirectory] = []

    def build(start_tls: bool, **overrides: Any) -> LdapDirectory:
        settings = {**config.DEFAULTS, **slapd_tls.tls_settings(start_tls=start_tls), **overrides}
        built.append(LdapDirectory(settings))
        return built[-1]

    yield build
    for directory in built:
        directory.close()


# --- the adapter ----------------------------------------------------------------------------


@pytest.mark.parametrize("start_tls", MODES)
def test_verified_tls_connection_to_the_directory_works(
    tls_directory: Callable[..., LdapDirectory], start_tls: bool
) -> None:
    directory = tls_directory(start_tls)

    directory.ping()
    account = directory.find(STUDENT.login)
    assert account is not None
    assert directory.authenticate(STUDENT.login, STUDENT.password).key == account.key


@pytest.mark.parametrize("start_tls", MODES)
@pytest.mark.parametrize(
    "untrusted",
    [
        pytest.param(lambda settings, other_ca: {"LDAP_CA_FILE": other_ca}, id="unknown-ca"),
        pytest.param(lambda settings, other_ca: {"LDAP_CA_FILE": ""}, id="system-cas-only"),
        pytest.param(lambda settings, other_ca: by_name(settings), id="wrong-hostname"),
    ],
)
def test_a_certificate_that_does_not_verify_is_directory_unavailable(
    tls_directory: Callable[..., LdapDirectory],
    slapd_tls: Slapd,
    other_ca: str,
    start_tls: bool,
    untrusted: Callable[[dict[str, Any], str], dict[str, Any]],
) -> None:
    directory = tls_directory(start_tls, **untrusted(slapd_tls.tls_settings(start_tls=start_tls), other_ca))

    with pytest.raises(DirectoryUnavailable):
        directory.ping()
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate(STUDENT.login, STUDENT.password)


# --- what a person and an operator see ------------------------------------------------------


@pytest.mark.parametrize("start_tls", MODES)
def test_sign_in_over_verified_tls_works(make_app: AppFactory, slapd_tls: Slapd, start_tls: bool) -> None:
    app = make_app(directory="openldap", **slapd_tls.tls_settings(start_tls=start_tls))

    response = post_form(app.test_client(), "/login", {"login": STUDENT.login, "password": STUDENT.password})

    assert response.status_code == 303, response.get_data(as_text=True)
    assert "/login" not in response.headers["Location"]


@pytest.mark.parametrize("start_tls", MODES)
@pytest.mark.parametrize("wrong", ["unknown-ca", "wrong-hostname"])
def test_sign_in_on_an_unverified_directory_gets_the_unavailable_page(
    make_app: AppFactory, slapd_tls: Slapd, other_ca: str, start_tls: bool, wrong: str
) -> None:
    app = make_app(
        directory="openldap", **unverifiable(slapd_tls, other_ca, start_tls=start_tls, wrong=wrong)
    )

    response = post_form(app.test_client(), "/login", {"login": STUDENT.login, "password": STUDENT.password})

    assert response.status_code == 503
    assert "We cannot reach the account directory right now." in response.get_data(as_text=True)


@pytest.mark.parametrize("start_tls", MODES)
def test_check_says_the_directory_certificate_is_verified(
    make_app: AppFactory, slapd_tls: Slapd, start_tls: bool
) -> None:
    app = make_app(directory="openldap", **slapd_tls.tls_settings(start_tls=start_tls))

    output = app.test_cli_runner().invoke(main, ["check", "--no-settings"]).output

    assert "OK    directory TLS: encrypted (certificate verified)" in output
    assert "OK    directory bind: " in output


@pytest.mark.parametrize("start_tls", MODES)
@pytest.mark.parametrize("wrong", ["unknown-ca", "wrong-hostname"])
def test_check_fails_on_a_directory_certificate_that_does_not_verify(
    make_app: AppFactory, slapd_tls: Slapd, other_ca: str, start_tls: bool, wrong: str
) -> None:
    app = make_app(
        directory="openldap", **unverifiable(slapd_tls, other_ca, start_tls=start_tls, wrong=wrong)
    )

    result = app.test_cli_runner().invoke(main, ["check", "--no-settings"])

    assert result.exit_code == 1
    assert "FAIL  directory TLS: TLS handshake failed: " in result.output
    assert "certificate was not trusted or does not name the host" in result.output
    assert "LDAP_CA_FILE" in result.output


def test_slapd_tls_certificate_names_only_the_loopback_address(slapd_tls: Slapd) -> None:
    """The wrong-hostname cases above mean something only if ``localhost`` is not on the certificate."""
    from cryptography import x509

    pem = Path(slapd_tls.run_dir / "server.pem").read_bytes()
    names = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.value.get_values_for_type(x509.DNSName) == []
