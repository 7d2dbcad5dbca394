"""pytest plugin: a real Samba AD domain controller provisioned into a temporary folder,
seeded from tests/fixtures/people.py.

Samba's LDAP ports are fixed (389, 636, and 3268/3269 for the global catalog), so the
DC listens on a loopback address of its own (127.x.y.z, free on those ports) instead
of a free port. Only the ``ldap`` service runs; nothing outside the folder is touched.

Fixtures:

* ``samba_ad`` (session): a running :class:`SambaDC`; teardown stops it and removes its folder.
* ``ad_directory`` (function): seed passwords and account state restored, then an
  ``AdDirectory`` built from ``config.DEFAULTS`` plus ``samba_ad.settings()``.
* ``ad_directory_settings`` (function, in conftest.py): the same, as settings for ``make_app``.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.utils.dn import escape_rdn

from selfservice import config
from selfservice.directory.ad import AdDirectory
from selfservice.directory.ldap import _abandon
from tests.fixtures.people import PEOPLE, Person
from tests.slapd import _running_in_ci

APT_PACKAGES = ("samba", "samba-ad-dc", "samba-ad-provision", "samba-dsdb-modules")
LDAP_PORTS = (389, 636, 3268, 3269)
START_SECONDS = 90  # the first start generates Samba's TLS keys

REALM, DOMAIN = "SCHOOL.TEST", "SCHOOL"
BASE_DN = "DC=school,DC=test"
PEOPLE_DN = f"OU=People,{BASE_DN}"
GROUPS_DN = f"OU=Groups,{BASE_DN}"
SERVICES_DN = f"OU=Services,{BASE_DN}"
PASSWORD_SETTINGS_DN = f"CN=Password Settings Container,CN=System,{BASE_DN}"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Admin-Test-Secret-1"
SERVICE_DN = f"CN=selfservice,{SERVICES_DN}"
SERVICE_PASSWORD = "Service-Test-Secret-1"

#: Above the portal's LOCKOUT_MAX_FAILURES (5): the portal's own lock comes first, as it should in
#: a real domain, so flows that count failed sign-ins see the portal's lock, not AD's.
LOCKOUT_THRESHOLD = 10

#: AD attribute for each Person field (config.DEFAULTS["AD_ATTRIBUTES"] names).
PERSON_ATTRIBUTES = {
    "login": "sAMAccountName",
    "display_name": "displayName",
    "email": "mail",
    "phone": "telephoneNumber",
    "student_id": "employeeID",
    "birth_month_year": "msDS-cloudExtensionAttribute1",
    "parent_account_number": "employeeNumber",
    "parent_pin": "msDS-cloudExtensionAttribute2",
    "kind": "employeeType",
}

NORMAL_ACCOUNT, PASSWORD_NEVER_EXPIRES = 0x200, 0x10000
NO_SUCH_OBJECT = 32
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
#: The service account's delegation on OU=People, inherited by user objects only: the
#: Reset Password right, and write access to pwdLastSet and lockoutTime. Reading needs
#: nothing (Authenticated Users read these), nor does the holder's own change (everyone
#: holds Change Password; the old password is the proof).
DELEGATED_RIGHTS = (
    ("CR", "00299570-246d-11d0-a768-00aa006e0529"),  # User-Force-Change-Password (reset)
    ("WP", "bf967a0a-0de6-11d0-a285-00aa003049e2"),  # pwdLastSet
    ("WP", "28630ebf-41d5-11d1-a9c1-0000f80367c1"),  # lockoutTime
)


#: Read property, list contents, list object, read control: on the container and, inherited, each PSO.
PSO_READ_RIGHTS = "RPLCLORC"


def person_dn(person: Person) -> str:
    return f"CN={escape_rdn(person.display_name)},{PEOPLE_DN}"


def group_dn(name: str) -> str:
    return f"CN={escape_rdn(name)},{GROUPS_DN}"


def unicode_pwd(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


@dataclass
class SambaDC:
    """A running test domain controller and how to reach it."""

    address: str
    run_dir: Path
    process: subprocess.Popen[bytes]
    base_dn: str = BASE_DN
    bind_dn: str = SERVICE_DN
    bind_password: str = SERVICE_PASSWORD
    restored_usn: int = 0  # the DC's highest USN when the seed accounts were last as seeded

    @property
    def url(self) -> str:
        return f"ldaps://{self.address}:636"

    def settings(self) -> dict[str, Any]:
        """Settings for an AdDirectory talking to this DC as the delegated service account."""
        return {
            "DIRECTORY": "ad",
            "LDAP_URL": self.url,
            "LDAP_START_TLS": False,
            # Samba's self-signed certificate names DC1.school.test, not the loopback address.
            "LDAP_VALIDATE_CERT": False,
            "LDAP_BIND_DN": self.bind_dn,
            "LDAP_BIND_PASSWORD": self.bind_password,
            "LDAP_BASE_DN": self.base_dn,
            "LDAP_GROUP_BASE_DN": GROUPS_DN,
            "LDAP_CONNECT_TIMEOUT_SECONDS": 2,
            "LDAP_OPERATION_TIMEOUT_SECONDS": 5,
            # One role by full DN, the rest by cn: the adapter must match either.
            "ROLE_GROUPS": {
                "employee": "employees",
                "support": "support",
                "its": group_dn("its"),
                "admin": "admins",
            },
        }

    def dn(self, login: str) -> str:
        """The DN of a seed account."""
        return person_dn(next(p for p in PEOPLE if p.login == login))

    def admin_connection(self) -> ldap3.Connection:
        """A connection bound as the domain Administrator (the caller unbinds it)."""
        return _connect(self.url, ADMIN_DN, ADMIN_PASSWORD)

    def samba_tool(self, *arguments: str) -> None:
        """Run ``samba-tool <arguments>`` on this DC's own database, as provisioning set it up."""
        tool = shutil.which("samba-tool") or "samba-tool"
        conf = self.run_dir / "etc" / "smb.conf"
        sam = self.run_dir / "private" / "sam.ldb"
        _run([tool, *arguments, "-s", str(conf), "-H", str(sam)], self.run_dir / "log" / "samba-tool.log")

    @contextlib.contextmanager
    def password_settings(
        self, name: str, applies_to: str, *options: str, precedence: int = 10
    ) -> Iterator[str]:
        """A PSO (``samba-tool domain passwordsettings pso``) applied to a user or group; deleted after.

        Yields its DN. ``options`` are samba-tool's, e.g. ``--min-pwd-length=16``.
        """
        self.samba_tool("domain", "passwordsettings", "pso", "create", name, str(precedence), *options)
        try:
            self.samba_tool("domain", "passwordsettings", "pso", "apply", name, applies_to)
            yield f"CN={name},{PASSWORD_SETTINGS_DN}"
        finally:
            self.samba_tool("domain", "passwordsettings", "pso", "delete", name)

    def restore_seed(self) -> None:
        """Put every seed account back as seeded, password history included.

        Accounts a test touched (changed since the last restore, or with bad-password
        counts) are deleted and added afresh: AD offers no way to clear a password
        history, and fixed test passwords must not collide across tests. Their objectGUID
        changes; tests never keep a key from one test to the next.
        """
        conn = self.admin_connection()
        try:
            for person in _touched_since(conn, self.restored_usn):
                _recreate(conn, person)
            self.restored_usn = _highest_usn(conn)
        finally:
            conn.unbind()


def _touched_since(conn: ldap3.Connection, usn: int) -> list[Person]:
    conn.search(PEOPLE_DN, "(objectClass=user)", attributes=["sAMAccountName", "uSNChanged", "badPwdCount"])
    untouched = set()
    for entry in conn.response or []:
        if entry.get("type") != "searchResEntry":
            continue
        changed, bad_passwords, login = (
            _single(entry, name) for name in ("uSNChanged", "badPwdCount", "sAMAccountName")
        )
        if int(changed or 0) <= usn and not int(bad_passwords or 0):
            untouched.add(login.lower())
    return [person for person in PEOPLE if person.login.lower() not in untouched]


def _single(entry: dict[str, Any], attribute: str) -> str:
    values = entry["attributes"].get(attribute) or [""]
    return str(values[0] if isinstance(values, list) else values)


def _recreate(conn: ldap3.Connection, person: Person) -> None:
    dn = person_dn(person)
    if not conn.delete(dn) and conn.result["result"] != NO_SUCH_OBJECT:
        raise RuntimeError(f"test Samba DC refused to delete {dn}: {conn.result}")
    _check(conn, conn.add(dn, attributes=_person_attributes(person)))
    for name in person.groups:
        _check(conn, conn.modify(group_dn(name), {"member": [(ldap3.MODIFY_ADD, [dn])]}))


def _highest_usn(conn: ldap3.Connection) -> int:
    conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["highestCommittedUSN"])
    return int(_single(conn.response[0], "highestCommittedUSN"))


def _connect(url: str, user: str, password: str) -> ldap3.Connection:
    server = ldap3.Server(url, use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE), get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user, password, receive_timeout=30)
    try:
        if not conn.bind():
            raise RuntimeError(f"the test Samba DC refused the bind of {user}: {conn.result}")
    except ldap3.core.exceptions.LDAPException:
        _abandon(conn)  # ldap3 leaks the socket when connecting fails
        raise
    return conn


def _check(conn: ldap3.Connection, ok: bool) -> None:
    if not ok:
        raise RuntimeError(f"test Samba DC refused a write: {conn.result}")


# --- finding or installing Samba ----------------------------------------------------


def _samba_binaries() -> tuple[str, str] | None:
    samba, tool = shutil.which("samba") or "/usr/sbin/samba", shutil.which("samba-tool")
    if tool and os.access(samba, os.X_OK):
        return samba, tool
    return None


def _install_samba() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", *APT_PACKAGES], check=False, env=env, timeout=1200)


def _require_samba() -> tuple[str, str]:
    binaries = _samba_binaries()
    if binaries is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_samba()
        binaries = _samba_binaries()
    if binaries is not None:
        return binaries
    reason = f"Samba AD DC is not installed (apt-get install {' '.join(APT_PACKAGES)})"
    if _running_in_ci():
        pytest.fail(f"{reason}; CI must run the AD tests against a real Samba DC", pytrace=False)
    pytest.skip(reason)


# --- provisioning and running ------------------------------------------------------------


def _free_loopback_address() -> str:
    """A 127.x.y.z address whose LDAP ports nobody holds (nor the wildcard address)."""
    for _attempt in range(50):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if all(_port_is_free(address, port) for port in LDAP_PORTS):
            return address
    raise RuntimeError("no loopback address with free LDAP ports")


def _port_is_free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _provision(tool: str, run_dir: Path, address: str) -> Path:
    """`samba-tool domain provision` into run_dir, serving LDAP only, on ``address`` only."""
    for folder in ("run", "log", "ncalrpc", "winbindd"):
        (run_dir / folder).mkdir()
    options = {
        "interfaces": f"{address}/8",
        "bind interfaces only": "yes",
        "server services": "ldap",
        "pid directory": run_dir / "run",
        "ncalrpc dir": run_dir / "ncalrpc",
        "winbindd socket directory": run_dir / "winbindd",
        "log file": run_dir / "log" / "samba.log",
        "panic action": "",
        "ldb:nosync": "true",  # a throwaway database: no fsync on every write
    }
    command = [
        tool,
        "domain",
        "provision",
        f"--realm={REALM}",
        f"--domain={DOMAIN}",
        "--server-role=dc",
        "--dns-backend=NONE",
        "--use-rfc2307",
        "--host-name=dc1",
        f"--adminpass={ADMIN_PASSWORD}",
        f"--targetdir={run_dir}",
        *(f"--option={name} = {value}" for name, value in options.items()),
    ]
    _run(command, run_dir / "log" / "provision.log")
    conf = run_dir / "etc" / "smb.conf"
    # Samba accepts the previous password for an hour after a change, for NTLM clients that
    # still hold it; the tests check that a reset ends the old one at once. (Provision leaves
    # this option out of smb.conf when given as --option, so it goes in here.)
    text = conf.read_text().replace("[global]\n", "[global]\n\told password allowed period = 0\n", 1)
    conf.write_text(text)
    return conf


def _run(command: list[str], log: Path) -> None:
    with log.open("ab") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} exited with {done.returncode}:\n{log.read_text()[-4000:]}")


def _start(binary: str, conf: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        # Interactive: in the foreground, one process, and it exits when its stdin closes,
        # so a killed test run does not leave a DC behind.
        return subprocess.Popen(
            [binary, "--interactive", "--model=single", "-s", str(conf)],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_until_answering(instance: SambaDC) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(f"samba exited with {instance.process.returncode}:\n{_tail(instance)}")
        try:
            with socket.create_connection((instance.address, 636), timeout=1):
                pass
            instance.admin_connection().unbind()
            return
        except (OSError, ldap3.core.exceptions.LDAPException):
            time.sleep(0.2)
    raise RuntimeError(f"Samba did not answer LDAPS within {START_SECONDS} s:\n{_tail(instance)}")


def _tail(instance: SambaDC) -> str:
    logs = [instance.run_dir / "log" / "samba.out", instance.run_dir / "log" / "samba.log"]
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in logs if path.exists())


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- seeding ----------------------------------------------------------------------------


def _person_attributes(person: Person) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "userPrincipalName": f"{person.login}@school.test",
        "sn": person.display_name.split()[-1],
        "unicodePwd": unicode_pwd(person.password),
        "userAccountControl": str(NORMAL_ACCOUNT),
    }
    for field, attribute in PERSON_ATTRIBUTES.items():
        value = getattr(person, field)
        if value:
            attributes[attribute] = value
    return attributes


def _group_members() -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for person in PEOPLE:
        for name in person.groups:
            members.setdefault(name, []).append(person_dn(person))
    return members


def _seed(instance: SambaDC, tool: str, conf: Path) -> None:
    """Password rules, the service account and its delegation, the seed people and groups."""
    conn = instance.admin_connection()
    try:
        rules = {"minPwdAge": "0", "lockoutThreshold": str(LOCKOUT_THRESHOLD)}  # complexity stays on
        _check(conn, conn.modify(BASE_DN, {name: [(ldap3.MODIFY_REPLACE, [v])] for name, v in rules.items()}))
        for dn in (PEOPLE_DN, GROUPS_DN, SERVICES_DN):
            _check(conn, conn.add(dn, ["top", "organizationalUnit"]))
        service = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "sAMAccountName": "svc-selfservice",
            "unicodePwd": unicode_pwd(SERVICE_PASSWORD),
            "userAccountControl": str(NORMAL_ACCOUNT | PASSWORD_NEVER_EXPIRES),
        }
        _check(conn, conn.add(SERVICE_DN, attributes=service))
        _delegate(conn, tool, conf)
        for person in PEOPLE:
            _check(conn, conn.add(person_dn(person), attributes=_person_attributes(person)))
        for name, members in sorted(_group_members().items()):
            group = {"objectClass": ["top", "group"], "sAMAccountName": name, "member": members}
            _check(conn, conn.add(group_dn(name), attributes=group))
        instance.restored_usn = _highest_usn(conn)
    finally:
        conn.unbind()


def _delegate(conn: ldap3.Connection, tool: str, conf: Path) -> None:
    """Grant the service account DELEGATED_RIGHTS on OU=People, as a real deployment would,
    and read access to the Password Settings Container (the PSOs), as docs/directory.md asks."""
    conn.search(SERVICE_DN, "(objectClass=user)", ldap3.BASE, attributes=["objectSid"])
    sid = format_sid(conn.response[0]["raw_attributes"]["objectSid"][0])
    aces = "".join(f"(OA;CIIO;{right};{guid};{USER_CLASS};{sid})" for right, guid in DELEGATED_RIGHTS)
    _set_acl(tool, conf, PEOPLE_DN, aces)
    _set_acl(tool, conf, PASSWORD_SETTINGS_DN, f"(A;CI;{PSO_READ_RIGHTS};;;{sid})")


def _set_acl(tool: str, conf: Path, dn: str, aces: str) -> None:
    sam = conf.parent.parent / "private" / "sam.ldb"
    command = [
        tool,
        "dsacl",
        "set",
        "-s",
        str(conf),
        "-H",
        str(sam),
        f"--objectdn={dn}",
        f"--sddl={aces}",
    ]
    _run(command, conf.parent.parent / "log" / "dsacl.log")


def _launch(binary: str, tool: str, run_dir: Path) -> SambaDC:
    address = _free_loopback_address()
    conf = _provision(tool, run_dir, address)
    process = _start(binary, conf, run_dir / "log" / "samba.out")
    instance = SambaDC(address=address, run_dir=run_dir, process=process)
    try:
        _wait_until_answering(instance)
        _seed(instance, tool, conf)
    except BaseException:
        _stop(process)
        raise
    return instance


@pytest.fixture(scope="session")
def samba_ad() -> Iterator[SambaDC]:
    """A provisioned, seeded Samba AD DC for the whole session."""
    binary, tool = _require_samba()
    run_dir = Path(tempfile.mkdtemp(prefix="selfservice-samba-"))
    try:
        instance = _launch(binary, tool, run_dir)
    except (RuntimeError, OSError, subprocess.SubprocessError, ldap3.core.exceptions.LDAPException) as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        if _running_in_ci():
            pytest.fail(f"the test Samba DC did not start: {exc}", pytrace=False)
        pytest.skip(f"the test Samba DC did not start: {exc}")
    try:
        yield instance
    finally:
        _stop(instance.process)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def ad_directory(samba_ad: SambaDC) -> Iterator[AdDirectory]:
    """An AdDirectory on the seeded DC, seed passwords and account state restored."""
    samba_ad.restore_seed()
    directory = AdDirectory({**config.DEFAULTS, **samba_ad.settings()})
    yield directory
    directory.close()
