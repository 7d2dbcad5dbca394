"""pytest plugin: a real OpenLDAP slapd on a free loopback port, seeded from
tests/fixtures/people.py.

Fixtures:

* ``slapd`` (session): a running :class:`Slapd`; teardown stops it and removes its folder.
* ``ldap_directory`` (function): seed passwords and ppolicy state restored, then an
  ``LdapDirectory`` built from ``config.DEFAULTS`` plus ``slapd.settings()``.
* ``slapd_tls`` (session): a second seeded slapd that also serves TLS (StartTLS on its
  ldap:// port, and an ldaps:// port) with a certificate for 127.0.0.1 issued by a test CA
  of its own; :meth:`Slapd.tls_settings` verifies it as a real site would.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import ldap3
import pytest
from ldap3.utils.dn import escape_rdn

from selfservice import config
from selfservice.directory.ldap import LdapDirectory
from tests.fixtures.certificates import ServerFiles, make_ca
from tests.fixtures.people import PEOPLE, Person
from tests.scratch import free_port

LDAP_DIR = Path(__file__).parent / "ldap"
SLAPD_CANDIDATES = ("/usr/sbin/slapd", "/usr/local/libexec/slapd", "/usr/libexec/slapd")
START_SECONDS = 10

BASE_DN = "dc=school,dc=test"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "Root-Test-Secret-1"
SERVICE_DN = f"cn=selfservice,ou=services,{BASE_DN}"
SERVICE_PASSWORD = "Service-Test-Secret-1"

#: LDAP attribute for each Person field (config.DEFAULTS["LDAP_ATTRIBUTES"] names).
PERSON_ATTRIBUTES = {
    "login": "uid",
    "display_name": "cn",
    "email": "mail",
    "phone": "telephoneNumber",
    "student_id": "schoolStudentId",
    "birth_month_year": "schoolBirthMonthYear",
    "parent_account_number": "schoolParentAccountNumber",
    "parent_pin": "schoolParentPin",
    "kind": "schoolAccountKind",
}

#: ppolicy state cleared before each test (rootdn, Relax control for the NO-USER-MODIFICATION ones).
PPOLICY_STATE = ("pwdReset", "pwdAccountLockedTime", "pwdHistory", "pwdFailureTime", "pwdChangedTime")
RELAX_CONTROL = ("1.3.6.1.4.1.4203.666.5.12", True, None)


def person_dn(person: Person) -> str:
    return f"uid={escape_rdn(person.login)},{PEOPLE_DN}"


def group_dn(name: str) -> str:
    return f"cn={escape_rdn(name)},{GROUPS_DN}"


@dataclass
class Slapd:
    """A running test slapd and how to reach it."""

    url: str
    run_dir: Path
    process: subprocess.Popen[bytes]
    base_dn: str = BASE_DN
    bind_dn: str = SERVICE_DN
    bind_password: str = SERVICE_PASSWORD
    root_dn: str = ROOT_DN
    root_password: str = ROOT_PASSWORD
    ldaps_url: str = ""  # only when it serves TLS
    ca_file: str = ""  # the test CA that issued its certificate

    def settings(self) -> dict[str, Any]:
        """Settings for an LdapDirectory talking to this slapd as the service account."""
        return {
            "DIRECTORY": "openldap",
            "LDAP_URL": self.url,
            "LDAP_START_TLS": False,
            "LDAP_BIND_DN": self.bind_dn,
            "LDAP_BIND_PASSWORD": self.bind_password,
            "LDAP_BASE_DN": self.base_dn,
            "LDAP_GROUP_BASE_DN": GROUPS_DN,
            "LDAP_CONNECT_TIMEOUT_SECONDS": 2,
            "LDAP_OPERATION_TIMEOUT_SECONDS": 3,
            # One role by full DN, the rest by cn: the adapter must match either.
            "ROLE_GROUPS": {
                "employee": "employees",
                "support": "support",
                "its": group_dn("its"),
                "admin": "admins",
            },
        }

    def tls_settings(self, *, start_tls: bool) -> dict[str, Any]:
        """:meth:`settings` over TLS with the certificate verified against the test CA:
        StartTLS on the ldap:// port, or the ldaps:// port."""
        if not self.ldaps_url:
            raise RuntimeError("this slapd serves no TLS: use the slapd_tls fixture")
        return {
            **self.settings(),
            "LDAP_URL": self.url if start_tls else self.ldaps_url,
            "LDAP_START_TLS": start_tls,
            "LDAP_VALIDATE_CERT": True,
            "LDAP_CA_FILE": self.ca_file,
        }

    def dn(self, login: str) -> str:
        """The DN of a seed account."""
        return f"uid={escape_rdn(login)},{PEOPLE_DN}"

    def root_connection(self) -> ldap3.Connection:
        """A bound rootdn connection (the caller unbinds it)."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, self.root_dn, self.root_password, auto_bind=True, receive_timeout=10)

    def restore_seed(self) -> None:
        """Put every seed account's password and ppolicy state back as seeded."""
        conn = self.root_connection()
        try:
            for person in PEOPLE:
                _restore_person(conn, person_dn(person), person.password)
        finally:
            conn.unbind()


def _restore_person(conn: ldap3.Connection, dn: str, password: str) -> None:
    _check(conn, conn.modify(dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [password])]}))
    # Separate modify: ppolicy sets pwdReset on the rootdn's reset above.
    changes = {name: [(ldap3.MODIFY_REPLACE, [])] for name in (*PPOLICY_STATE, "schoolParentActivated")}
    _check(conn, conn.modify(dn, changes, controls=[RELAX_CONTROL]))


def _check(conn: ldap3.Connection, ok: bool) -> None:
    if not ok:
        raise RuntimeError(f"test slapd refused a write: {conn.result}")


# --- finding or installing slapd ---------------------------------------------


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _find_slapd() -> str | None:
    for candidate in SLAPD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("slapd")


def _install_slapd() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "slapd", "ldap-utils"], check=False, env=env, timeout=900)


def _require_slapd() -> str:
    binary = _find_slapd()
    if binary is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_slapd()
        binary = _find_slapd()
    if binary is not None:
        return binary
    reason = "OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)"
    if _running_in_ci():
        pytest.fail(f"{reason}; CI must run the LDAP tests against a real slapd", pytrace=False)
    pytest.skip(reason)


# --- configuration and seed LDIF ----------------------------------------------


def _write_config(run_dir: Path, tls: ServerFiles | None = None) -> Path:
    (run_dir / "data").mkdir()
    template = Template((LDAP_DIR / "slapd.conf.template").read_text())
    text = template.substitute(
        schema_file=LDAP_DIR / "school.schema",
        run_dir=run_dir,
        base_dn=BASE_DN,
        root_dn=ROOT_DN,
        root_password=ROOT_PASSWORD,
        service_dn=SERVICE_DN,
        tls=_tls_lines(tls),
    )
    conf = run_dir / "slapd.conf"
    conf.write_text(text)
    return conf


def _tls_lines(tls: ServerFiles | None) -> str:
    if tls is None:
        return ""
    return f"TLSCertificateFile {tls.certificate}\nTLSCertificateKeyFile {tls.key}"


def _ldif_line(name: str, value: str) -> str:
    safe = value.isascii() and value == value.strip() and not value.startswith((":", "<"))
    if safe and "\n" not in value:
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _ldif_entry(dn: str, attributes: dict[str, list[str]]) -> str:
    lines = [_ldif_line("dn", dn)]
    for name, values in attributes.items():
        lines.extend(_ldif_line(name, value) for value in values)
    return "\n".join(lines)


def _person_attributes(person: Person) -> dict[str, list[str]]:
    attributes = {
        "objectClass": ["inetOrgPerson", "schoolPerson"],
        "sn": [person.display_name.split()[-1]],
        "userPassword": [person.password],
    }
    for field, attribute in PERSON_ATTRIBUTES.items():
        value = getattr(person, field)
        if value:
            attributes[attribute] = [value]
    return attributes


def _group_members() -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for person in PEOPLE:
        for name in person.groups:
            members.setdefault(name, []).append(person_dn(person))
    return members


def seed_ldif() -> str:
    """The service account, the seed people and their groups, as LDIF."""
    service = {
        "objectClass": ["applicationProcess", "simpleSecurityObject"],
        "cn": ["selfservice"],
        "userPassword": [SERVICE_PASSWORD],
    }
    entries = [_ldif_entry(SERVICE_DN, service)]
    entries += [_ldif_entry(person_dn(person), _person_attributes(person)) for person in PEOPLE]
    for name, members in sorted(_group_members().items()):
        group = {"objectClass": ["groupOfNames"], "cn": [name], "member": members}
        entries.append(_ldif_entry(group_dn(name), group))
    return "\n\n".join(entries) + "\n"


def parse_ldif(text: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """Yield (dn, attributes) from simple LDIF: no line folding, no changetypes."""
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if not lines:
            continue
        pairs = [_parse_ldif_line(line) for line in lines]
        attributes: dict[str, list[str]] = {}
        for name, value in pairs[1:]:
            attributes.setdefault(name, []).append(value)
        yield pairs[0][1], attributes


def _parse_ldif_line(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    if value.startswith(":"):
        return name, base64.b64decode(value[1:].strip()).decode()
    return name, value.strip()


# --- running slapd ----------------------------------------------------------------


def _start(binary: str, conf: Path, urls: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        # -d 0 keeps slapd in the foreground as our child, so we stop exactly this one.
        return subprocess.Popen(
            [binary, "-f", str(conf), "-h", urls, "-d", "0"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"slapd did not answer on port {port} within {START_SECONDS} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _load(instance: Slapd) -> None:
    seed = instance.run_dir / "seed.ldif"
    seed.write_text(seed_ldif(), encoding="utf-8")
    conn = instance.root_connection()
    try:
        for path in (LDAP_DIR / "base.ldif", seed):
            for dn, attributes in parse_ldif(path.read_text(encoding="utf-8")):
                _check(conn, conn.add(dn, attributes=attributes))
        for person in PEOPLE:
            # The rootdn's add counts as an admin reset (pwdMustChange): start clean.
            _check(conn, conn.modify(person_dn(person), {"pwdReset": [(ldap3.MODIFY_REPLACE, [])]}))
    finally:
        conn.unbind()


def _launch(binary: str, run_dir: Path, tls: ServerFiles | None = None) -> Slapd:
    """slapd on a free ldap:// port (and a free ldaps:// one when given a certificate)."""
    conf = _write_config(run_dir, tls)
    log = run_dir / "slapd.log"
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port, tls_port = free_port(), free_port()
        url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}" if tls else ""
        process = _start(binary, conf, " ".join(f"{u}/" for u in (url, ldaps_url) if u), log)
        try:
            for listening in (port, tls_port) if tls else (port,):
                _wait_until_answering(process, listening, log)
        except RuntimeError:
            _stop(process)
            if _attempt == 2:
                raise
            continue
        return Slapd(url=url, run_dir=run_dir, process=process, ldaps_url=ldaps_url)
    raise AssertionError("unreachable")


def _seeded(prefix: str, *, tls: bool = False) -> Iterator[Slapd]:
    """Launch and seed a slapd in a fresh folder; stop it and remove the folder after.

    ``tls``: it also serves StartTLS and LDAPS with a certificate for 127.0.0.1 (and no
    other name) from a test CA, whose file is ``ca_file``.
    """
    binary = _require_slapd()
    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    instance: Slapd | None = None
    try:
        authority = make_ca(run_dir / "ca") if tls else None
        certificate = authority.issue(run_dir, ips=("127.0.0.1",)) if authority else None
        instance = _launch(binary, run_dir, certificate)
        if authority is not None:
            instance.ca_file = str(authority.file)
        _load(instance)
        yield instance
    finally:
        if instance is not None:
            _stop(instance.process)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """A seeded slapd for the whole session."""
    yield from _seeded("selfservice-slapd-")


@pytest.fixture(scope="session")
def slapd_tls() -> Iterator[Slapd]:
    """A seeded slapd serving TLS with a certificate for 127.0.0.1 (and no other name) from a test CA."""
    yield from _seeded("selfservice-slapd-tls-", tls=True)


@pytest.fixture
def ldap_directory(slapd: Slapd) -> Iterator[LdapDirectory]:
    """An LdapDirectory on the seeded slapd, seed passwords and ppolicy state restored."""
    slapd.restore_seed()
    directory = LdapDirectory({**config.DEFAULTS, **slapd.settings()})
    yield directory
    directory.close()
