"""Directory checks for OpenLDAP and Active Directory, in the order a sysadmin would fix them.

Network first (TCP, then TLS), then the service account's bind (wrong credentials are told
apart from a server that does not answer), then what the settings name: each base DN,
each role group, each mapped attribute (in the schema, and present on sampled accounts),
the password policy, and the service account's rights where they can be read without
writing anything. A step that cannot run because an earlier one failed is not reported.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from selfservice.directory.interfaces import AccountKind, Directory
from selfservice.directory.ldap import _abandon, make_tls
from selfservice.doctor import Finding, fail, info, ok, warn
from selfservice.doctor.builtin import check_builtin
from selfservice.doctor.policy import policy_findings

#: How many accounts the attribute checks look at.
SAMPLE_SIZE = 200
#: Fields without which the portal cannot find or tell accounts apart: absent everywhere is a failure.
ESSENTIAL_FIELDS = ("login", "unique_id")
NO_SUCH_OBJECT, INVALID_CREDENTIALS = 32, 49
#: Attributes AD lets the service account write when it holds the delegation docs/directories.md gives.
AD_WRITTEN_ATTRIBUTES = ("pwdLastSet", "lockoutTime")


class _Stop(Exception):
    """A check failed in a way that makes the later checks meaningless."""


def check_directory(settings: Mapping[str, Any], directory: Directory) -> list[Finding]:
    """Every directory check for ``settings`` (openldap or ad); builtin needs none of them."""
    if settings["DIRECTORY"] not in {"openldap", "ad"}:
        return check_builtin(settings)
    findings: list[Finding] = []
    checker = _Checker(settings, findings)
    try:
        connection = checker.connect()
    except _Stop:
        return findings
    try:
        checker.base_dns(connection)
        checker.accounts(connection)
        checker.role_groups(connection)
        checker.rights(connection)
    except _Stop:
        pass
    finally:
        _abandon(connection)
    findings.extend(policy_findings(settings, directory))
    return findings


class _Checker:
    def __init__(self, settings: Mapping[str, Any], findings: list[Finding]) -> None:
        self.settings = settings
        self.findings = findings
        self.ad = settings["DIRECTORY"] == "ad"
        self.table = "AD_ATTRIBUTES" if self.ad else "LDAP_ATTRIBUTES"
        self.attributes: dict[str, str] = {k: v for k, v in settings[self.table].items() if v}
        self.sample_dn = ""
        self.server: ldap3.Server | None = None

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def stop(self, finding: Finding) -> None:
        self.add(finding)
        raise _Stop

    # --- network and bind ---------------------------------------------------------------

    def connect(self) -> ldap3.Connection:
        url = str(self.settings["LDAP_URL"]).strip().rstrip("/")
        parts = urlsplit(url)
        secure = parts.scheme.lower() == "ldaps"
        if parts.scheme.lower() not in {"ldap", "ldaps"} or not parts.hostname:
            self.stop(fail("directory address", f"{url!r} is not an ldap:// or ldaps:// URL", "LDAP_URL"))
        host, port = parts.hostname or "", parts.port or (636 if secure else 389)
        timeout = self.settings["LDAP_CONNECT_TIMEOUT_SECONDS"]
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.stop(
                fail("directory connection", f"nothing answers at {host}:{port} ({reason})", "LDAP_URL")
            )
        self.add(ok("directory connection", f"{host}:{port} answers"))
        if self.ad and not (secure or self.settings["LDAP_START_TLS"]):
            # Stop here: the service account's password is not sent in clear to check the rest.
            cause = "Active Directory takes passwords only over an encrypted connection"
            self.stop(fail("directory encryption", cause, "LDAP_URL (ldaps://) or LDAP_START_TLS"))
        connection = self._connection(url, secure)
        try:
            self._open(connection, secure)
            self._bind(connection)
        except _Stop:
            _abandon(connection)
            raise
        return connection

    def _connection(self, url: str, secure: bool) -> ldap3.Connection:
        self.server = ldap3.Server(
            url,
            use_ssl=secure,
            tls=make_tls(self.settings),
            get_info=ldap3.SCHEMA,
            connect_timeout=self.settings["LDAP_CONNECT_TIMEOUT_SECONDS"],
        )
        return ldap3.Connection(
            self.server,
            user=self.settings["LDAP_BIND_DN"],
            password=self.settings["LDAP_BIND_PASSWORD"],
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self.settings["LDAP_OPERATION_TIMEOUT_SECONDS"],
            raise_exceptions=False,
            auto_referrals=False,  # the service password goes only to LDAP_URL (as in directory/ldap.py)
        )

    def _open(self, connection: ldap3.Connection, secure: bool) -> None:
        start_tls = self.settings["LDAP_START_TLS"]
        tls_setting = "LDAP_CA_FILE, LDAP_VALIDATE_CERT"
        try:
            connection.open()
            if start_tls and not connection.start_tls():
                self.stop(fail("directory TLS", "the server refused StartTLS", "LDAP_START_TLS"))
        except (ldap_errors.LDAPException, OSError) as exc:
            cause = _tls_cause(exc)
            if isinstance(exc, ldap_errors.LDAPStartTLSError) and "certificate" not in cause:
                self.stop(fail("directory TLS", f"the server refused StartTLS ({cause})", "LDAP_START_TLS"))
            if secure or start_tls:
                self.stop(fail("directory TLS", f"TLS handshake failed: {cause}", tls_setting))
            self.stop(fail("directory connection", f"could not open an LDAP session: {cause}", "LDAP_URL"))
        if secure or start_tls:
            validate = self.settings["LDAP_VALIDATE_CERT"]
            checked = "certificate verified" if validate else "certificate NOT verified"
            self.add((ok if validate else warn)("directory TLS", f"encrypted ({checked})", tls_setting))
        elif not self.ad:
            cause = "not encrypted: passwords cross the network in clear"
            self.add(warn("directory TLS", cause, "LDAP_START_TLS"))

    def _bind(self, connection: ldap3.Connection) -> None:
        who = self.settings["LDAP_BIND_DN"]
        if not who or not self.settings["LDAP_BIND_PASSWORD"]:
            missing = "LDAP_BIND_DN" if not who else "LDAP_BIND_PASSWORD"
            self.stop(fail("directory bind", f"{missing} is empty: the service account cannot bind", missing))
        try:
            bound = connection.bind()
        except (ldap_errors.LDAPException, OSError) as exc:
            self.stop(
                fail("directory bind", f"the server did not answer the bind: {_tls_cause(exc)}", "LDAP_URL")
            )
        if not bound:
            result = connection.result
            if result.get("result") == INVALID_CREDENTIALS:
                message = str(result.get("message") or "").strip()
                cause = "invalid credentials: the bind DN or its password is wrong"
                self.stop(
                    fail(
                        "directory bind",
                        f"{cause}{f' ({message})' if message else ''}",
                        "LDAP_BIND_DN, LDAP_BIND_PASSWORD",
                    )
                )
            refusal = f"{result.get('description')} {result.get('message') or ''}".strip()
            cause = f"the server refused the bind: {refusal}"
            self.stop(fail("directory bind", cause, "LDAP_BIND_DN"))
        self.add(ok("directory bind", f"bound as {who}"))

    # --- what the settings name -------------------------------------------------------

    def base_dns(self, connection: ldap3.Connection) -> None:
        base = self.settings["LDAP_BASE_DN"]
        if not base:
            self.stop(fail("people base DN", "LDAP_BASE_DN is empty", "LDAP_BASE_DN"))
        if not self._exists(connection, base):
            self.stop(
                fail(
                    "people base DN",
                    f"{base!r} does not exist (or the service account cannot read it)",
                    "LDAP_BASE_DN",
                )
            )
        self.add(ok("people base DN", f"{base} exists"))
        groups = self.settings["LDAP_GROUP_BASE_DN"]
        if not groups:
            self.add(
                info("group base DN", f"not set: groups are searched under {base}", "LDAP_GROUP_BASE_DN")
            )
        elif not self._exists(connection, groups):
            self.add(
                fail(
                    "group base DN",
                    f"{groups!r} does not exist (or the service account cannot read it)",
                    "LDAP_GROUP_BASE_DN",
                )
            )
        else:
            self.add(ok("group base DN", f"{groups} exists"))

    def accounts(self, connection: ldap3.Connection) -> None:
        filter_setting = "AD_USER_FILTER" if self.ad else "LDAP_USER_FILTER"
        user_filter = _parenthesised(self.settings[filter_setting])
        known = self._schema()
        try:
            connection.search(
                self.settings["LDAP_BASE_DN"],
                user_filter,
                ldap3.SUBTREE,
                attributes=sorted({self.attributes[field] for field in known}),
                size_limit=SAMPLE_SIZE,
            )
        except ldap_errors.LDAPException as exc:
            self.stop(fail("accounts", f"the filter {user_filter} cannot be used: {exc}", filter_setting))
        entries = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
        if not entries:
            self.stop(fail("accounts", f"no entry under LDAP_BASE_DN matches {user_filter}", filter_setting))
        self.sample_dn = _holder_of_a_portal_account(entries, self.attributes.get("kind", ""))
        self.add(ok("accounts", f"{len(entries)} sampled under LDAP_BASE_DN with {user_filter}"))
        for field in known:
            attribute = self.attributes[field]
            count = sum(1 for entry in entries if _has(entry, attribute))
            self._attribute_presence(field, attribute, count, len(entries))
        if "kind" in known:
            self._kinds(entries)

    def _schema(self) -> list[str]:
        """Fail each mapped attribute the schema lacks; return the fields whose attribute it has."""
        schema = self._server_schema()
        if schema is None:
            cause = "the server's schema could not be read: attribute names not verified"
            self.add(warn("schema", cause, self.table))
            return sorted(self.attributes)
        known = []
        for field, attribute in sorted(self.attributes.items()):
            if attribute in schema.attribute_types:
                known.append(field)
                continue
            cause = f"{attribute!r} is not in the server's schema"
            self.add(fail(f"attribute {field}", cause, f"{self.table}.{field}"))
        return known

    def _server_schema(self) -> Any:
        return getattr(self.server, "schema", None)

    def _attribute_presence(self, field: str, attribute: str, count: int, total: int) -> None:
        setting = f"{self.table}.{field}"
        text = f"{attribute} on {count} of {total} sampled accounts"
        if field == "unique_id" and 0 < count < total:
            self.add(
                fail(f"attribute {field}", f"{text}: an account without it cannot use the portal", setting)
            )
        elif count:
            self.add(ok(f"attribute {field}", text, setting))
        elif field in ESSENTIAL_FIELDS:
            self.add(fail(f"attribute {field}", f"{text}: no account can be found without it", setting))
        else:
            self.add(
                warn(f"attribute {field}", f"{text}: absent, or not readable by the service account", setting)
            )

    def _kinds(self, entries: list[dict[str, Any]]) -> None:
        attribute = self.attributes.get("kind")
        if not attribute:
            return
        counts: Counter[str] = Counter()
        for entry in entries:
            value = _value(entry, attribute).strip().lower()
            counts[value or "(none: staff)"] += 1
        known = {kind.value for kind in AccountKind}
        unknown = sorted(kind for kind in counts if kind not in known and not kind.startswith("(none"))
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
        setting = f"{self.table}.kind"
        if unknown:
            self.add(
                warn(
                    "account kinds",
                    f"{summary}; values other than student, parent, staff count as staff",
                    setting,
                )
            )
        else:
            self.add(info("account kinds", f"{summary} (an account without a kind is staff)", setting))

    def role_groups(self, connection: ldap3.Connection) -> None:
        base = self.settings["LDAP_GROUP_BASE_DN"] or self.settings["LDAP_BASE_DN"]
        group_class = "group" if self.ad else "groupOfNames"
        for role, wanted in sorted(self.settings["ROLE_GROUPS"].items()):
            setting = f"ROLE_GROUPS.{role}"
            if "=" in wanted:
                connection.search(wanted, "(objectClass=*)", ldap3.BASE, attributes=["member"])
            else:
                condition = f"(&(objectClass={group_class})(cn={escape_filter_chars(wanted)}))"
                connection.search(base, condition, ldap3.SUBTREE, attributes=["member"])
            found = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
            if not found:
                self.add(fail(f"role group {role}", f"no group {wanted!r} under {base}", setting))
                continue
            members = len(found[0]["attributes"].get("member") or [])
            verdict = ok if members else warn
            self.add(verdict(f"role group {role}", f"{found[0]['dn']}: {members} direct member(s)", setting))

    def rights(self, connection: ldap3.Connection) -> None:
        if not self.ad:
            self.add(
                info(
                    "write rights",
                    "OpenLDAP cannot tell the service account's rights without a write: "
                    "reset a test account's password once to prove them",
                    "LDAP_BIND_DN",
                )
            )
            return
        connection.search(
            self.sample_dn, "(objectClass=*)", ldap3.BASE, attributes=["allowedAttributesEffective"]
        )
        found = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
        granted = (
            {str(name).lower() for name in (found[0]["attributes"].get("allowedAttributesEffective") or [])}
            if found
            else set()
        )
        missing = [name for name in AD_WRITTEN_ATTRIBUTES if name.lower() not in granted]
        if missing:
            self.add(
                fail(
                    "write rights",
                    f"the service account cannot write {', '.join(missing)} on {self.sample_dn}",
                    "LDAP_BIND_DN",
                )
            )
        else:
            self.add(ok("write rights", f"can write {', '.join(AD_WRITTEN_ATTRIBUTES)} on {self.sample_dn}"))
        self.add(
            info(
                "write rights",
                "the Reset Password right itself cannot be read without using it: "
                "docs/directories.md lists the delegation",
            )
        )

    # --- helpers ---------------------------------------------------------------------

    def _exists(self, connection: ldap3.Connection, dn: str) -> bool:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
        return connection.result.get("result") == 0


def _holder_of_a_portal_account(entries: list[dict[str, Any]], kind_attribute: str) -> str:
    """A student's or parent's entry (their passwords are the ones the portal writes), else the first."""
    for entry in entries:
        if kind_attribute and _value(entry, kind_attribute).strip().lower() in {"student", "parent"}:
            return entry["dn"]
    return entries[0]["dn"]


def _tls_cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"the server's certificate was not trusted or does not name the host ({text})"
    return text


def _parenthesised(text: str) -> str:
    text = text.strip() or "(objectClass=*)"
    return text if text.startswith("(") else f"({text})"


def _value(entry: Mapping[str, Any], attribute: str) -> str:
    values = entry["attributes"].get(attribute)
    if isinstance(values, list):
        values = values[0] if values else ""
    if isinstance(values, bytes):
        return values.decode("utf-8", "replace")
    return str(values or "")


def _has(entry: Mapping[str, Any], attribute: str) -> bool:
    values = entry.get("raw_attributes", {}).get(attribute)
    return bool(values)
