"""OpenLDAP (and 389 Directory Server) adapter, over ldap3.

Every lookup goes through the service account on one reused connection; a user's
own password is only ever checked by binding as that user on a connection of its
own. Passwords are written with the RFC 3062 Password Modify extended operation,
so the server's ppolicy hashes and checks them. Passwords are never logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import ssl
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.protocol.sasl.sasl import sasl_prep
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from selfservice.directory.interfaces import (
    LOOKUP_FIELDS,
    Account,
    AccountKind,
    DirectoryError,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    OutcomeUnknown,
    PasswordRejected,
    PasswordRules,
    PasswordUnchanged,
    Role,
    normalise_login,
)
from selfservice.i18n_markers import N_

T = TypeVar("T")
log = logging.getLogger(__name__)

#: ldap3 errors that mean "the server did not answer", not "the server said no".
COMMUNICATION_ERRORS = (
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPStartTLSError,
    ldap_errors.LDAPMaximumRetriesError,
    ldap_errors.LDAPSSLConfigurationError,
    OSError,
)
#: Failures that happen before a request leaves: the server never saw it.
NOT_SENT_ERRORS = (
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPSocketSendError,
    ldap_errors.LDAPStartTLSError,
    ldap_errors.LDAPSSLConfigurationError,
)

SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT, INVALID_CREDENTIALS = 0, 4, 32, 49
#: Result codes meaning the directory itself is in trouble (busy, unavailable, ...).
UNAVAILABLE_CODES = frozenset({1, 3, 51, 52, 80})

PPOLICY_ATTRIBUTES = ("pwdReset", "pwdAccountLockedTime")
#: ppolicy's pwdAccountLockedTime for a lock only an administrator lifts (a failure lock holds its time).
PERMANENT_LOCK = "000001010000Z"
#: What a ppolicy entry says about new passwords.
PPOLICY_RULES = ("pwdMinLength", "pwdInHistory", "pwdCheckQuality", "pwdMinAge")

SAME_AS_CURRENT = N_("The new password must be different from the current one.")
#: ppolicy / constraint messages (lower-cased fragments) -> what the holder is told.
REJECTION_MESSAGES = (
    ("history", N_("That password was used recently. Choose one you have not used before.")),
    ("too young", N_("The password was changed too recently. Try again later.")),
    ("quality", N_("The new password is too short or too simple. Choose a longer one.")),
    ("too short", N_("The new password is too short. Choose a longer one.")),
    ("old password", N_("The current password is required to change it.")),
    ("not being changed", SAME_AS_CURRENT),
)
REJECTED_BY_CODE = {
    19: N_("The new password does not meet the password rules."),
    50: N_("You are not allowed to change this password. Contact the help desk."),
    53: N_("The directory will not accept this password change. Contact the help desk."),
}
REJECTED_OTHERWISE = N_("The directory refused the new password.")


class LdapDirectory:
    """The Directory protocol over LDAP: OpenLDAP with ppolicy, or 389-DS."""

    name = "openldap"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = settings
        self._attributes: dict[str, str] = dict(settings["LDAP_ATTRIBUTES"])
        self._lock = threading.Lock()
        self._connection: ldap3.Connection | None = None

    # --- lookups --------------------------------------------------------------

    def find(self, login: str, *, with_roles: bool = True) -> Account | None:
        """The one account whose login fields match ``login``; None when none or several."""
        normal = normalise_login(login)
        if not normal:
            return None
        # The server's own case-insensitive match finds the rest; casefold() goes further than it
        # (ß is "ss", İ is "i̇"), so the login as typed (NFKC, trimmed) is asked for too.
        values = dict.fromkeys((normal, unicodedata.normalize("NFKC", login).strip()))
        fields = self._settings["LOGIN_FIELDS"]
        clauses = "".join(self._equals(field, value) for field in fields for value in values)
        return self._find_one(f"(|{clauses})", with_roles=with_roles)

    def find_by(self, field: str, value: str) -> Account | None:
        if field not in LOOKUP_FIELDS:
            raise ValueError(f"cannot look accounts up by {field!r}; use one of {', '.join(LOOKUP_FIELDS)}")
        if not value:
            return None
        return self._find_one(self._equals(field, value))

    def count_by(self, field: str, value: str) -> int:
        if field not in LOOKUP_FIELDS:
            raise ValueError(f"cannot look accounts up by {field!r}; use one of {', '.join(LOOKUP_FIELDS)}")
        if not value:
            return 0
        condition = self._equals(field, value)
        return self._as_service(lambda connection: min(len(self._search(connection, condition)), 2))

    def get(self, key: str, *, with_roles: bool = True) -> Account | None:
        if not key:
            return None
        return self._find_one(self._equals("unique_id", key), with_roles=with_roles)

    # --- passwords --------------------------------------------------------------

    def authenticate(self, login: str, password: str) -> Account | None:
        if not password:  # an empty password would be an unauthenticated bind
            return None
        account = self.find(login)
        if account is None:
            self._dummy_bind(password)
            return None
        connection = self._user_connection(account.ref, password)
        if connection is None:
            return None
        _close(connection)
        return account

    def set_password(
        self,
        account: Account,
        new_password: str,
        *,
        must_change: bool = False,
        unlock: bool = True,
        refuse_disabled: bool = False,
    ) -> None:
        """Administrative reset as the service account, then set or clear pwdReset.

        ppolicy removes pwdAccountLockedTime on any reset, even an administrator's
        permanent lock, so the lock read before is written back after when it must stay:
        always for the permanent lock (``000001010000Z``: only an administrator lifts it),
        and for a failure lock too with ``unlock=False``. With ``refuse_disabled`` the
        permanent lock read then refuses the reset instead (DisabledByAdmin). Raises
        PasswordRejected (nothing changed), DirectoryUnavailable (never sent) or
        OutcomeUnknown (sent, no answer). The reset is never sent twice.

        The lock is read right before the reset: a disable landing between that read and
        the reset (one round trip) is lifted by ppolicy, which honours no assertion on the
        Password Modify operation (slapd: unavailableCriticalExtension).
        """
        _require_new_password(new_password)
        lock = self._locked_time(account)
        if refuse_disabled and lock == PERMANENT_LOCK:
            raise DisabledByAdmin(f"{account.ref} is disabled by an administrator")
        kept_lock = _lock_kept(lock, unlock=unlock)

        def reset(connection: ldap3.Connection) -> None:
            _modify_password(connection, user=account.ref, new_password=new_password)

        self._write_as_service(reset)
        # ppolicy's pwdMustChange may have set pwdReset on the reset; make it say what we mean.
        changes = {"pwdReset": [(ldap3.MODIFY_REPLACE, ["TRUE"] if must_change else [])]}
        if kept_lock:
            changes["pwdAccountLockedTime"] = [(ldap3.MODIFY_REPLACE, [kept_lock])]
        try:
            self._as_service(lambda connection: _checked(connection, connection.modify(account.ref, changes)))
        except DirectoryError as exc:
            # The password is set: that is what the holder is told. A lost flag leaves
            # ppolicy's own answer in place (pwdMustChange; the lock lifted); say so for the operator.
            if kept_lock == PERMANENT_LOCK:  # an administrator's disable undone: the operator must act
                log.error(
                    "password set, but the administrator's permanent lock of %s was not written back "
                    "(%s): lock the account again",
                    account.ref,
                    type(exc).__name__,
                )
                return
            log.warning(
                "password set, but %s not written: %s",
                "the must-change flag and the kept lock were" if kept_lock else "the must-change flag was",
                type(exc).__name__,
            )

    def change_password(self, account: Account, old_password: str, new_password: str) -> None:
        """The holder's own change: bind as them, so ppolicy applies to them."""
        _require_new_password(new_password)
        connection = self._user_connection(account.ref, old_password) if old_password else None
        if connection is None:
            # ppolicy refuses any bind to a locked account: say so when an administrator locked it.
            if self._locked_time(account) == PERMANENT_LOCK:
                raise DisabledByAdmin(f"{account.ref} is disabled by an administrator")
            raise InvalidCredentials("the current password is wrong")
        try:
            _sent_once(
                lambda: _modify_password(
                    connection,
                    user=account.ref,
                    old_password=self._bind_password(old_password),
                    new_password=new_password,
                )
            )
        finally:
            _close(connection)

    def set_must_change(self, account: Account, must_change: bool) -> None:
        """ppolicy's pwdReset: TRUE, or removed."""

        def flag(connection: ldap3.Connection) -> None:
            value = ["TRUE"] if must_change else []
            _checked(
                connection, connection.modify(account.ref, {"pwdReset": [(ldap3.MODIFY_REPLACE, value)]})
            )

        self._as_service(flag)

    def password_stamp(self, account: Account) -> str | None:
        """ppolicy's pwdChangedTime of the account, as the server wrote it (None without one).

        To the second: a write in the very second of the previous one reads as no change
        (a live request then checks the new password itself; see pending.py).
        """

        def read(connection: ldap3.Connection) -> str | None:
            entry = self._read(connection, account.ref, ["pwdChangedTime"])
            raw = (entry or {}).get("raw_attributes", {}).get("pwdChangedTime") or []
            return raw[0].decode("ascii", "replace") if raw else None

        return self._as_service(read)

    def _locked_time(self, account: Account) -> str | None:
        """The account's pwdAccountLockedTime as the server wrote it (None: not locked)."""

        def read(connection: ldap3.Connection) -> str | None:
            entry = self._read(connection, account.ref, ["pwdAccountLockedTime"])
            raw = (entry or {}).get("raw_attributes", {}).get("pwdAccountLockedTime") or []
            return raw[0].decode("ascii", "replace") if raw else None

        return self._as_service(read)

    def lock_to_keep(self, account: Account, *, unlock: bool) -> str | None:
        """pwdAccountLockedTime when it must outlive a reset: ppolicy removes it on any reset."""
        return _lock_kept(self._locked_time(account), unlock=unlock)

    def restore_lock(self, account: Account, lock: str) -> None:
        """Write ``lock`` back to pwdAccountLockedTime, unless it holds that lock or the permanent one."""

        def restore(connection: ldap3.Connection) -> None:
            entry = self._read(connection, account.ref, ["pwdAccountLockedTime"])
            current = _locked_time(entry) if entry is not None else None
            if current in (lock, PERMANENT_LOCK):
                return
            change = {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [lock])]}
            _checked(connection, connection.modify(account.ref, change))

        self._as_service(restore)

    def unlock(self, account: Account) -> None:
        """Remove a failure lock (pwdAccountLockedTime holding a time).

        An administrator's permanent lock (``000001010000Z``) stays: the help desk, the
        admin console, the CLI and a sync target's ``unlock`` end lockouts, never a disable.
        """

        def clear(connection: ldap3.Connection) -> None:
            entry = self._read(connection, account.ref, ["pwdAccountLockedTime"])
            lock = _locked_time(entry) if entry is not None else None
            if not lock or lock == PERMANENT_LOCK:
                return
            change = {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}
            _checked(connection, connection.modify(account.ref, change))

        self._as_service(clear)

    def record_activation(self, account: Account, attribute: str, when: datetime) -> None:
        """Write when a parent activated the account (GeneralizedTime) to ``attribute`` of the entry."""
        change = {attribute: [(ldap3.MODIFY_REPLACE, [when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")])]}
        self._as_service(lambda connection: _checked(connection, connection.modify(account.ref, change)))

    def ping(self) -> None:
        """Bind the service account (if not bound yet) and read the root DSE."""

        def read_root(connection: ldap3.Connection) -> None:
            ok = connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
            if not ok:
                _raise_unavailable(connection)

        self._as_service(read_root)

    # --- read-only diagnostics -------------------------------------------------------

    def password_rules(self) -> PasswordRules:
        """The strictest ppolicy (pwdPolicy entry) under the base DN's naming context."""

        def read(connection: ldap3.Connection) -> PasswordRules:
            base = self._naming_context(connection)
            connection.search(base, "(objectClass=pwdPolicy)", ldap3.SUBTREE, attributes=list(PPOLICY_RULES))
            policies = _entries(connection)
            if not policies:
                return PasswordRules()
            return PasswordRules(
                min_length=max(_number_of(entry, "pwdMinLength") for entry in policies),
                history=max(_number_of(entry, "pwdInHistory") for entry in policies),
                quality_check=any(_number_of(entry, "pwdCheckQuality") > 0 for entry in policies),
                min_age_seconds=max(_number_of(entry, "pwdMinAge") for entry in policies),
                source="; ".join(entry["dn"] for entry in policies),
            )

        return self._as_service(read)

    def password_rules_for(self, account: Account) -> PasswordRules | None:
        """None: :meth:`password_rules` is already the strictest ppolicy entry, whoever it governs."""
        del account
        return None

    def password_changed_at(self, account: Account) -> datetime | None:
        """ppolicy's pwdChangedTime of the account (None when never changed through ppolicy)."""

        def read(connection: ldap3.Connection) -> datetime | None:
            entry = self._read(connection, account.ref, ["pwdChangedTime"])
            return _generalized_time(_first(entry, "pwdChangedTime") if entry else None)

        return self._as_service(read)

    def _naming_context(self, connection: ldap3.Connection) -> str:
        """The naming context holding LDAP_BASE_DN (policies often live beside the people)."""
        base = self._settings["LDAP_BASE_DN"]
        connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
        entries = _entries(connection)
        contexts = entries[0]["attributes"].get("namingContexts", []) if entries else []
        wanted = _normal_dn(base) or ()
        for context in contexts:
            suffix = _normal_dn(str(context)) or ()
            if suffix and wanted[-len(suffix) :] == suffix:
                return str(context)
        return base

    def close(self) -> None:
        """Unbind the shared service connection (it reopens on next use)."""
        with self._lock:
            if self._connection is not None:
                _close(self._connection)
            self._connection = None

    # --- filters and entries ------------------------------------------------------

    def _attribute(self, field: str) -> str:
        try:
            return self._attributes[field]
        except KeyError:
            raise ValueError(f"LDAP_ATTRIBUTES has no attribute for {field!r}") from None

    def _equals(self, field: str, value: str) -> str:
        return f"({self._attribute(field)}={escape_filter_chars(value)})"

    def _user_filter(self, condition: str) -> str:
        user_filter = self._settings["LDAP_USER_FILTER"].strip() or "(objectClass=*)"
        if not user_filter.startswith("("):
            user_filter = f"({user_filter})"
        return f"(&{user_filter}{condition})"

    def _wanted_attributes(self) -> list[str]:
        return sorted(set(self._attributes.values()) | set(PPOLICY_ATTRIBUTES))

    def _find_one(self, condition: str, *, with_roles: bool = True) -> Account | None:
        def search(connection: ldap3.Connection) -> Account | None:
            entries = self._search(connection, condition)
            if len(entries) != 1:
                return None  # none, or ambiguous: never guess which person was meant
            entry = entries[0]
            account = self._account(entry, frozenset())
            if not account.key:  # enrollments, locks and sessions hang off the key: never share ""
                log.warning("%s has no unique id (%s): not used", entry["dn"], self._attribute("unique_id"))
                return None
            if not with_roles:
                return account
            return dataclasses.replace(account, roles=self._roles(connection, entry["dn"]))

        return self._as_service(search)

    def _search(self, connection: ldap3.Connection, condition: str) -> list[dict[str, Any]]:
        connection.search(
            self._settings["LDAP_BASE_DN"],
            self._user_filter(condition),
            ldap3.SUBTREE,
            attributes=self._wanted_attributes(),
            size_limit=2,
        )
        return _entries(connection)

    def _read(self, connection: ldap3.Connection, dn: str, attributes: list[str]) -> dict[str, Any] | None:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        entries = _entries(connection)
        return entries[0] if entries else None

    def _roles(self, connection: ldap3.Connection, dn: str) -> frozenset[Role]:
        base = self._settings.get("LDAP_GROUP_BASE_DN") or self._settings["LDAP_BASE_DN"]
        group_filter = f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))"
        connection.search(base, group_filter, ldap3.SUBTREE, attributes=["cn"])
        groups = _entries(connection)
        return frozenset(role for role, wanted in self._role_groups() if _any_group_is(groups, wanted))

    def _role_groups(self) -> Iterable[tuple[Role, str]]:
        known = {role.value for role in Role}
        for role, group in self._settings.get("ROLE_GROUPS", {}).items():
            if role in known and group:
                yield Role(role), group

    def _account(self, entry: dict[str, Any], roles: frozenset[Role]) -> Account:
        def value(field: str) -> str | None:
            return _first(entry, self._attributes.get(field, ""))

        return Account(
            key=value("unique_id") or "",
            login=value("login") or "",
            kind=_kind(value("kind")),
            display_name=value("display_name") or value("login") or "",
            ref=entry["dn"],
            email=value("email"),
            phone=value("phone"),
            student_id=value("student_id"),
            birth_month_year=value("birth_month_year"),
            parent_account_number=value("parent_account_number"),
            parent_pin=value("parent_pin"),
            roles=roles,
            must_change=(_first(entry, "pwdReset") or "").upper() == "TRUE",
            disabled=bool(_locked_time(entry)),
            disabled_by_admin=_locked_time(entry) == PERMANENT_LOCK,
        )

    # --- connections ------------------------------------------------------------

    def _as_service(self, operation: Callable[[ldap3.Connection], T]) -> T:
        """Run ``operation`` on the shared service connection, reopening it once if it went stale."""
        with self._lock:
            reused = self._connection is not None
            try:
                return operation(self._service_connection())
            except COMMUNICATION_ERRORS as exc:
                self._drop_service_connection()
                if not reused:
                    raise DirectoryUnavailable(f"LDAP server did not answer: {type(exc).__name__}") from exc
            try:
                return operation(self._service_connection())
            except COMMUNICATION_ERRORS as exc:
                self._drop_service_connection()
                raise DirectoryUnavailable(f"LDAP server did not answer: {type(exc).__name__}") from exc

    def _write_as_service(self, write: Callable[[ldap3.Connection], T]) -> T:
        """Send one write on the service connection, exactly once.

        The shared connection is proven alive first (a stale one is reopened then), so a
        failure of the write itself is either "never sent" or "sent, no answer".
        """
        self.ping()
        with self._lock:
            connection = self._service_connection()
            try:
                return _sent_once(lambda: write(connection))
            except (DirectoryUnavailable, OutcomeUnknown):
                self._drop_service_connection()  # its state is unknown: never reuse it
                raise

    def _service_connection(self) -> ldap3.Connection:
        if self._connection is None:
            connection, bound = self._bind(
                self._settings["LDAP_BIND_DN"], self._settings["LDAP_BIND_PASSWORD"]
            )
            if not bound:
                result = connection.result.get("description", "failed")
                _close(connection)
                raise DirectoryUnavailable(f"the LDAP service account could not bind ({result})")
            self._connection = connection
        return self._connection

    def _drop_service_connection(self) -> None:
        if self._connection is not None:
            _abandon(self._connection)
        self._connection = None

    def _dummy_bind(self, password: str) -> None:
        """An unknown login costs a bind too (issue 14, item 5): to a DN that does not exist.

        Never the service account's DN (failed binds could lock it) and never a real one.
        """
        dn = f"{self._attribute('login')}=unknown-{uuid.uuid4().hex},{self._settings['LDAP_BASE_DN']}"
        with contextlib.suppress(ldap_errors.LDAPException):
            connection, _bound = self._bind(dn, password or "-")
            _close(connection)

    def _user_connection(self, dn: str, password: str) -> ldap3.Connection | None:
        """A connection bound as ``dn``; None when the password is wrong."""
        if not dn or not password:
            return None
        try:
            connection, bound = self._bind(dn, password)
        except ldap_errors.LDAPPasswordIsMandatoryError:
            return None
        except COMMUNICATION_ERRORS as exc:
            raise DirectoryUnavailable(f"LDAP server did not answer: {type(exc).__name__}") from exc
        if bound:
            return connection
        result = dict(connection.result)
        _close(connection)
        if result.get("result") in UNAVAILABLE_CODES:
            raise DirectoryUnavailable(f"LDAP bind failed: {result.get('description')}")
        return None

    def _bind_password(self, password: str) -> str | bytes:
        """The password as a bind sends it: as ldap3 writes it (SASLprep), else as typed, in UTF-8.

        ldap3 raises out of the bind for a password SASLprep refuses (a tab, mixed writing
        directions); such a password can only have been set as typed, by another tool.
        """
        if not password:
            return password
        try:
            sasl_prep(password)
        except ldap_errors.LDAPSASLPrepError:
            return password.encode("utf-8", "surrogatepass")
        return password

    def _bind(self, user: str, password: str) -> tuple[ldap3.Connection, bool]:
        """A new connection (StartTLS done when configured) and whether its simple bind succeeded."""
        connection = ldap3.Connection(
            # A fresh Server each time: ldap3 remembers a failed address for 5 s otherwise.
            _make_server(self._settings),
            user=user,
            password=self._bind_password(password),
            authentication=ldap3.SIMPLE,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self._settings["LDAP_OPERATION_TIMEOUT_SECONDS"],
            raise_exceptions=False,
            # ldap3 would chase a referral to any host it names, binding there with this DN and
            # password, in clear unless the referral says ldaps: passwords go only to LDAP_URL.
            auto_referrals=False,
        )
        try:
            connection.open()
            if self._settings["LDAP_START_TLS"] and not connection.start_tls():
                raise ldap_errors.LDAPStartTLSError("StartTLS was refused")
            return connection, bool(connection.bind())
        except (*COMMUNICATION_ERRORS, ldap_errors.LDAPPasswordIsMandatoryError):
            _abandon(connection)
            raise


# --- module helpers -----------------------------------------------------------------


def _make_server(settings: Mapping[str, Any]) -> ldap3.Server:
    url = str(settings["LDAP_URL"]).strip().rstrip("/")  # ldap3 rejects "ldap://host:389/"
    return ldap3.Server(
        url,
        use_ssl=url.lower().startswith("ldaps://"),
        tls=make_tls(settings),
        get_info=ldap3.NONE,
        connect_timeout=settings["LDAP_CONNECT_TIMEOUT_SECONDS"],
    )


def make_tls(settings: Mapping[str, Any]) -> ldap3.Tls:
    """TLS as LDAP_VALIDATE_CERT and LDAP_CA_FILE say (the adapters' and ``selfservice check``'s)."""
    validate = ssl.CERT_REQUIRED if settings["LDAP_VALIDATE_CERT"] else ssl.CERT_NONE
    kind = VerifiedTls if validate == ssl.CERT_REQUIRED else ldap3.Tls
    return kind(validate=validate, ca_certs_file=settings.get("LDAP_CA_FILE") or None)


class VerifiedTls(ldap3.Tls):
    """ldap3's Tls with the host name checked by OpenSSL inside the handshake.

    ldap3 turns the context's own check off and checks the name after the handshake with
    ``ssl.match_hostname`` (deprecated, gone in Python 3.12); on a mismatch it raises with
    the TLS socket still open, and a refused server leaked one socket per attempt. Here the
    handshake itself fails, the socket is closed by ``ssl``, and the name is sent (SNI).
    """

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_certs_file)
        connection.socket = context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def _close(connection: ldap3.Connection) -> None:
    try:
        connection.unbind()
    except (ldap_errors.LDAPException, OSError):
        _abandon(connection)


def _abandon(connection: ldap3.Connection) -> None:
    """Close the socket without a goodbye: ldap3 leaks it when connect or receive fails."""
    sock = connection.socket
    connection.socket = None
    connection.closed = True
    connection.bound = False
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _entries(connection: ldap3.Connection) -> list[dict[str, Any]]:
    code = connection.result.get("result", SUCCESS)
    if code in UNAVAILABLE_CODES:
        _raise_unavailable(connection)
    if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT):
        return []
    return [item for item in connection.response or [] if item.get("type") == "searchResEntry"]


def _first(entry: Mapping[str, Any], attribute: str) -> str | None:
    if not attribute:
        return None
    values = entry["attributes"].get(attribute)
    if isinstance(values, list):
        values = values[0] if values else None
    if values is None or values == "":
        return None
    return values.decode("utf-8", "replace") if isinstance(values, bytes) else str(values)


def _locked_time(entry: Mapping[str, Any]) -> str | None:
    """pwdAccountLockedTime exactly as the server wrote it (ldap3 may parse the value it decodes)."""
    raw = entry.get("raw_attributes", {}).get("pwdAccountLockedTime") or []
    if raw:
        return raw[0].decode("ascii", "replace") if isinstance(raw[0], bytes) else str(raw[0])
    return _first(entry, "pwdAccountLockedTime")


def _lock_kept(lock: str | None, *, unlock: bool) -> str | None:
    """The lock a reset must leave in place: the permanent one always, any with ``unlock=False``."""
    return lock if lock == PERMANENT_LOCK or not unlock else None


def _generalized_time(value: str | None) -> datetime | None:
    """An LDAP GeneralizedTime ("20261129214700Z", ldap3 may give "2026-11-29 21:47:00+00:00")."""
    if not value:
        return None
    for parse in (
        lambda text: datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC),
        datetime.fromisoformat,
    ):
        try:
            moment = parse(value)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _number_of(entry: Mapping[str, Any], attribute: str) -> int:
    try:
        return int(_first(entry, attribute) or 0)
    except ValueError:
        return 0


def _kind(value: str | None) -> AccountKind:
    try:
        return AccountKind((value or "").strip().lower())
    except ValueError:
        return AccountKind.STAFF


def _normal_dn(dn: str) -> tuple[tuple[str, str], ...] | None:
    try:
        return tuple((attribute.lower(), value.lower()) for attribute, value, _ in parse_dn(dn))
    except ldap_errors.LDAPException:
        return None


def _any_group_is(groups: list[dict[str, Any]], wanted: str) -> bool:
    """Whether one of ``groups`` is ``wanted``, given as a group cn or as a full DN."""
    wanted_dn = _normal_dn(wanted) if "=" in wanted else None
    for group in groups:
        if wanted_dn is not None and _normal_dn(group["dn"]) == wanted_dn:
            return True
        names = group["attributes"].get("cn") or []
        if any(str(name).lower() == wanted.lower() for name in names):
            return True
    return False


def _require_new_password(new_password: str) -> None:
    # ldap3 drops an empty new password, and the server would then generate one.
    if not new_password:
        raise PasswordRejected(N_("The new password cannot be empty."))


def _sent_once(write: Callable[[], T]) -> T:
    """Run a write request and classify a communication failure by whether it was sent."""
    try:
        return write()
    except NOT_SENT_ERRORS as exc:
        raise DirectoryUnavailable(f"LDAP server not reached: {type(exc).__name__}") from exc
    except COMMUNICATION_ERRORS as exc:
        raise OutcomeUnknown(f"LDAP server did not answer the write: {type(exc).__name__}") from exc


def _modify_password(connection: ldap3.Connection, **arguments: str) -> None:
    try:
        done = connection.extend.standard.modify_password(**arguments)
    except ldap_errors.LDAPSASLPrepError as exc:  # raised before anything is sent
        raise PasswordRejected(N_("The new password contains characters that are not allowed.")) from exc
    if done is not True:
        _reject(connection.result)


def _checked(connection: ldap3.Connection, ok: bool) -> None:
    if not ok:
        _reject(connection.result)


def _reject(result: Mapping[str, Any]) -> None:
    code = result.get("result")
    if code in UNAVAILABLE_CODES:
        raise DirectoryUnavailable(f"LDAP operation failed: {result.get('description')}")
    if code == INVALID_CREDENTIALS:
        raise InvalidCredentials("the current password is wrong")
    reason = _rejection_reason(code, str(result.get("message") or ""))
    raise (PasswordUnchanged if reason == SAME_AS_CURRENT else PasswordRejected)(reason)


def _rejection_reason(code: int | None, message: str) -> str:
    lowered = message.lower()
    for fragment, reason in REJECTION_MESSAGES:
        if fragment in lowered:
            return reason
    return REJECTED_BY_CODE.get(code or 0, REJECTED_OTHERWISE)


def _raise_unavailable(connection: ldap3.Connection) -> None:
    raise DirectoryUnavailable(f"LDAP operation failed: {connection.result.get('description')}")
