"""Active Directory adapter (tested against a Samba AD domain controller).

Built on :class:`~selfservice.directory.ldap.LdapDirectory`: the same service-account
connection, timeouts, TLS and filter escaping. What AD does differently lives here:

* Schema: settings ``AD_ATTRIBUTES`` and ``AD_USER_FILTER`` play the part of
  ``LDAP_ATTRIBUTES`` and ``LDAP_USER_FILTER``; the connection settings (``LDAP_URL``,
  ``LDAP_BIND_DN``, ``LDAP_BASE_DN``, timeouts, TLS) are shared. The logical ``login``
  field matches ``sAMAccountName`` or ``userPrincipalName``.
* The key is ``objectGUID`` as a canonical UUID string; ``get`` searches by its bytes.
* Passwords go to ``unicodePwd`` (``"password"`` in UTF-16-LE), and only over LDAPS or
  StartTLS: a reset replaces the value, the holder's own change deletes the old value and
  adds the new one in one modify, so AD checks the old password and its policy applies.
* State: must-change is ``pwdLastSet=0``; disabled is userAccountControl bit 2 or a
  lockout in force, disabled by an administrator bit 2 alone; unlock writes
  ``lockoutTime=0`` (never userAccountControl); roles come from (nested) groups.
* AD's error codes (``data 52e``, ``775``, ``0000052D``...) become the protocol's errors.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import struct
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from selfservice.directory.interfaces import (
    Account,
    DirectoryError,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    PasswordRejected,
    PasswordRules,
    Role,
)
from selfservice.directory.ldap import (
    COMMUNICATION_ERRORS,
    UNAVAILABLE_CODES,
    LdapDirectory,
    _any_group_is,
    _close,
    _entries,
    _first,
    _reject,
    _require_new_password,
    _sent_once,
)
from selfservice.i18n_markers import N_

log = logging.getLogger(__name__)

#: userAccountControl and msDS-User-Account-Control-Computed bits.
ACCOUNT_DISABLED, LOCKED_OUT = 0x2, 0x10
#: LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups too.
IN_CHAIN = "1.2.840.113556.1.4.1941"
#: Per-attribute replication metadata (NDR: a 16-byte header, then 48-byte entries of attid,
#: version, originating change time in seconds since 1601, ...); unicodePwd's entry dates the
#: password, whatever pwdLastSet says. (msDS-ReplAttributeMetaData would say it in XML, but
#: Samba does not offer it.)
REPLICATION_METADATA = "replPropertyMetaData"
UNICODE_PWD_ATTID = 0x9005A
METADATA_HEADER, METADATA_ENTRY = struct.Struct("<IIII"), struct.Struct("<IIQ16sQQ")
#: The domain object's password policy, and pwdProperties' complexity bit.
DOMAIN_RULES = ("minPwdLength", "pwdHistoryLength", "pwdProperties", "minPwdAge")
DOMAIN_PASSWORD_COMPLEX = 0x1
#: A fine-grained password policy (PSO, msDS-PasswordSettings): the constructed attribute on a
#: user names the one in force for them (applied to them, or through a group), then its rules.
RESULTANT_PSO = "msDS-ResultantPSO"
PSO_RULES = (
    "msDS-MinimumPasswordLength",
    "msDS-PasswordHistoryLength",
    "msDS-PasswordComplexityEnabled",
    "msDS-MinimumPasswordAge",
)
#: A PSO's rules are kept this long once read: a person's page costs one search (which PSO), not two.
PSO_REFRESH_SECONDS = 300
#: AD counts time in 100 ns steps from 1601-01-01 UTC.
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
STATE_ATTRIBUTES = ("userAccountControl", "msDS-User-Account-Control-Computed", "pwdLastSet")

#: The "data" code of a refused bind: "...AcceptSecurityContext error, data 775, v1db1".
BIND_DATA = re.compile(r"\bdata ([0-9a-f]+)\b", re.IGNORECASE)
WRONG_PASSWORD = "52e"
#: The password was right, but AD lets nobody bind until it is changed (reset pending, expired).
MUST_CHANGE_CODES = frozenset({"773", "532"})
#: The password was right, but an administrator disabled the account (ACCOUNTDISABLE).
DISABLED_REFUSAL = "533"
BIND_REFUSALS = {
    "530": N_("This account may not sign in at this time of day. Contact the help desk."),
    "531": N_("This account may not sign in from here. Contact the help desk."),
    "701": N_("This account has expired. Contact the help desk."),
    "775": N_("This account is locked in the directory. Try again later or contact the help desk."),
}

#: Extended error codes at the start of a failed modify's message ("0000052D: ...").
POLICY_REFUSAL = "0000052D"
WRONG_OLD_PASSWORD = "00000056"
#: Samba says which rule refused the password; Windows only says 0000052D.
POLICY_MESSAGES = (
    ("too short", N_("The new password is too short. Choose a longer one.")),
    (
        "complexity",
        N_(
            "The new password is too simple: use upper and lower case letters, digits and symbols, "
            "and leave out your name."
        ),
    ),
    ("history", N_("That password was used recently. Choose one you have not used before.")),
    ("too young", N_("The password was changed too recently. Try again later.")),
)
POLICY_OTHERWISE = N_(
    "The new password does not meet the password rules (length, complexity, or one used recently)."
)
NOT_ALLOWED_CHARACTERS = N_("The new password contains characters that are not allowed.")


class AdDirectory(LdapDirectory):
    """The Directory protocol over Active Directory's LDAP."""

    name = "ad"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        # The LDAP machinery reads the schema settings by their LDAP_ names: hand it AD's.
        super().__init__(
            {
                **settings,
                "LDAP_ATTRIBUTES": settings["AD_ATTRIBUTES"],
                "LDAP_USER_FILTER": settings["AD_USER_FILTER"],
            }
        )
        #: PSO DN -> (monotonic expiry, its rules or None when unreadable); used under self._lock.
        self._psos: dict[str, tuple[float, PasswordRules | None]] = {}

    def get(self, key: str, *, with_roles: bool = True) -> Account | None:
        """Fetch by objectGUID, given as the canonical UUID string."""
        try:
            guid = uuid.UUID(key)
        except (TypeError, ValueError):
            return None
        condition = f"({self._attribute('unique_id')}={escape_bytes(guid.bytes_le)})"
        return self._find_one(condition, with_roles=with_roles)

    # --- passwords --------------------------------------------------------------------

    def authenticate(self, login: str, password: str) -> Account | None:
        """Bind as the account; a right password that must be changed still authenticates."""
        self._require_encryption()
        if not password:  # an empty password would be an unauthenticated bind
            return None
        account = self.find(login)
        if account is None:
            self._dummy_bind(password)
            return None
        connection, refusal = self._user_bind(account.ref, password)
        if connection is not None:
            _close(connection)
            return account
        if refusal in MUST_CHANGE_CODES:
            return dataclasses.replace(account, must_change=True)
        return None

    def set_password(
        self,
        account: Account,
        new_password: str,
        *,
        must_change: bool = False,
        unlock: bool = True,
        refuse_disabled: bool = False,
    ) -> None:
        """Administrative reset: replace unicodePwd, set or clear must-change, end a lockout (``unlock``).

        ``refuse_disabled``: userAccountControl is read again right before the write; a
        disable landing in that one round trip stays (AD never clears ACCOUNTDISABLE on a
        reset), the password is then set on the disabled account.
        """
        _require_new_password(new_password)
        self._require_encryption()
        if refuse_disabled:
            current = self.get(account.key, with_roles=False)
            if current is not None and current.disabled_by_admin:
                raise DisabledByAdmin(f"{account.ref} is disabled by an administrator")
        changes = {
            "unicodePwd": [(ldap3.MODIFY_REPLACE, [_unicode_pwd(new_password)])],
            "pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0" if must_change else "-1"])],  # -1: "now"
        }
        if unlock:
            changes["lockoutTime"] = [(ldap3.MODIFY_REPLACE, ["0"])]
        self._write_as_service(lambda connection: _modify(connection, account.ref, changes))

    def lock_to_keep(self, account: Account, *, unlock: bool) -> str | None:
        """None: a unicodePwd write leaves lockoutTime and userAccountControl as they were."""
        return None

    def restore_lock(self, account: Account, lock: str) -> None:
        """Nothing to put back (see lock_to_keep)."""

    def change_password(self, account: Account, old_password: str, new_password: str) -> None:
        """The holder's own change: delete the old value and add the new one, bound as them."""
        _require_new_password(new_password)
        self._require_encryption()
        if not old_password:
            raise InvalidCredentials("the current password is wrong")
        changes = {
            "unicodePwd": [
                (ldap3.MODIFY_DELETE, [_unicode_pwd(old_password, invalid=InvalidCredentials)]),
                (ldap3.MODIFY_ADD, [_unicode_pwd(new_password)]),
            ]
        }
        connection, refusal = self._user_bind(account.ref, old_password)
        if connection is not None:
            try:
                _sent_once(lambda: _modify(connection, account.ref, changes))
            finally:
                _close(connection)
        elif refusal in MUST_CHANGE_CODES:
            # AD lets nobody bind until the password is changed. The delete+add still proves the
            # old password, and everyone holds the Change Password right: send it as the service.
            self._write_as_service(lambda service: _modify(service, account.ref, changes))
        else:
            raise _bind_refusal(refusal)

    def set_must_change(self, account: Account, must_change: bool) -> None:
        """pwdLastSet=0 asks for a change at next sign-in; -1 means "set now"."""
        changes = {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0" if must_change else "-1"])]}
        self._as_service(lambda connection: _modify(connection, account.ref, changes))

    def password_stamp(self, account: Account) -> str | None:
        """unicodePwd's version and change time from the replication metadata, else pwdLastSet.

        pwdLastSet alone cannot tell: a reset that asks for a change at next sign-in sets it to 0.
        """

        def read(connection: ldap3.Connection) -> str | None:
            entry = self._read(connection, account.ref, [REPLICATION_METADATA, "pwdLastSet"])
            if entry is None:
                return None
            raw = entry.get("raw_attributes", {}).get(REPLICATION_METADATA) or [b""]
            last_set = _number(_first(entry, "pwdLastSet"))
            return _password_metadata_stamp(raw[0]) or (f"pwdLastSet:{last_set}" if last_set > 0 else None)

        return self._as_service(read)

    def unlock(self, account: Account) -> None:
        """End a directory lockout (lockoutTime=0 also zeroes the bad-password count)."""
        changes = {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]}
        self._as_service(lambda connection: _modify(connection, account.ref, changes))

    def password_rules(self) -> PasswordRules:
        """The domain's password policy, read from the domain object (the default naming context)."""

        def read(connection: ldap3.Connection) -> PasswordRules:
            domain = self._naming_context(connection)
            entry = self._read(connection, domain, list(DOMAIN_RULES))
            if entry is None:
                return PasswordRules()
            properties = _number(_first(entry, "pwdProperties"))
            return PasswordRules(
                min_length=_number(_first(entry, "minPwdLength")),
                history=_number(_first(entry, "pwdHistoryLength")),
                complexity=bool(properties & DOMAIN_PASSWORD_COMPLEX),
                # AD keeps ages as negative counts of 100 ns.
                min_age_seconds=abs(_number(_first(entry, "minPwdAge"))) // 10_000_000,
                source=domain,
            )

        return self._as_service(read)

    def password_rules_for(self, account: Account) -> PasswordRules | None:
        """The rules of the account's resultant PSO; None when none applies or it cannot be read.

        None means the domain's policy (:meth:`password_rules`) applies. A service account
        without read access to the Password Settings Container sees no PSO at all, or sees
        its name but not its rules: then the domain's policy stays, and the log says why.
        """

        def read(connection: ldap3.Connection) -> PasswordRules | None:
            entry = self._read(connection, account.ref, [RESULTANT_PSO])
            pso = _first(entry, RESULTANT_PSO) if entry else None
            return self._pso_rules(connection, pso, account.login) if pso else None

        return self._as_service(read)

    def _pso_rules(self, connection: ldap3.Connection, dn: str, login: str) -> PasswordRules | None:
        """A PSO's rules, from the cache while fresh (an unreadable PSO is remembered as None too)."""
        now = time.monotonic()
        cached = self._psos.get(dn)
        if cached is not None and cached[0] > now:
            return cached[1]
        entry = self._read(connection, dn, list(PSO_RULES))
        rules = _pso_rules(entry, dn) if entry else None
        if rules is None:
            log.info(
                "AD: the password settings object %s applies to %s but the service account cannot read it; "
                "the domain policy is shown and checked instead (grant read access to the Password "
                "Settings Container)",
                dn,
                login,
            )
        self._psos[dn] = (now + PSO_REFRESH_SECONDS, rules)
        return rules

    def password_changed_at(self, account: Account) -> datetime | None:
        """pwdLastSet as a moment (None when zero: the password must be changed)."""

        def read(connection: ldap3.Connection) -> datetime | None:
            connection.search(account.ref, "(objectClass=*)", ldap3.BASE, attributes=["pwdLastSet"])
            entries = _entries(connection)
            raw = entries[0].get("raw_attributes", {}).get("pwdLastSet") if entries else None
            ticks = _number((raw[0] if isinstance(raw, list) and raw else b"0").decode())
            return FILETIME_EPOCH + timedelta(microseconds=ticks // 10) if ticks > 0 else None

        return self._as_service(read)

    # --- filters and entries ------------------------------------------------------------

    def _equals(self, field: str, value: str) -> str:
        condition = super()._equals(field, value)
        principal_name = self._attributes.get("principal_name")
        if field == "login" and principal_name:
            return f"(|{condition}({principal_name}={escape_filter_chars(value)}))"
        return condition

    def _wanted_attributes(self) -> list[str]:
        return sorted({name for name in self._attributes.values() if name} | set(STATE_ATTRIBUTES))

    def _roles(self, connection: ldap3.Connection, dn: str) -> frozenset[Role]:
        base = self._settings.get("LDAP_GROUP_BASE_DN") or self._settings["LDAP_BASE_DN"]
        group_filter = f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(dn)}))"
        connection.search(base, group_filter, ldap3.SUBTREE, attributes=["cn"])
        groups = _entries(connection)
        return frozenset(role for role, wanted in self._role_groups() if _any_group_is(groups, wanted))

    def _account(self, entry: dict[str, Any], roles: frozenset[Role]) -> Account:
        """The LDAP adapter's fields, then AD's own key and state."""
        account = super()._account(entry, roles)
        control = _number(_first(entry, "userAccountControl"))
        computed = _number(_first(entry, "msDS-User-Account-Control-Computed"))
        return dataclasses.replace(
            account,
            key=_guid(entry, self._attribute("unique_id")),
            must_change=_first(entry, "pwdLastSet") == "0",
            disabled=bool(control & ACCOUNT_DISABLED or computed & LOCKED_OUT),
            disabled_by_admin=bool(control & ACCOUNT_DISABLED),  # a lockout (LOCKED_OUT) is AD's own
        )

    # --- connections ----------------------------------------------------------------------

    def _require_encryption(self) -> None:
        """AD takes passwords only over TLS; never send one over plain LDAP."""
        url = str(self._settings["LDAP_URL"]).strip().lower()
        if not (url.startswith("ldaps://") or self._settings["LDAP_START_TLS"]):
            raise DirectoryUnavailable(
                "Active Directory passwords need an encrypted connection: "
                "set LDAP_URL to ldaps://... or LDAP_START_TLS to true"
            )

    def _bind(self, user: str, password: str) -> tuple[ldap3.Connection, bool]:
        """Every bind, the service account's included, only over LDAPS or StartTLS."""
        self._require_encryption()
        return super()._bind(user, password)

    def _bind_password(self, password: str) -> str | bytes:
        """unicodePwd holds the password exactly as written: bind with it as typed, in UTF-8.

        ldap3 would SASLprep it (² becomes 2, ﬁ becomes fi), and the bind would fail.
        """
        return password.encode("utf-8", "surrogatepass")

    def _user_bind(self, dn: str, password: str) -> tuple[ldap3.Connection | None, str]:
        """A connection bound as ``dn``, or None and AD's refusal code (``52e``, ``775``...)."""
        try:
            connection, bound = self._bind(dn, password)
        except ldap_errors.LDAPPasswordIsMandatoryError:
            return None, WRONG_PASSWORD
        except COMMUNICATION_ERRORS as exc:
            raise DirectoryUnavailable(f"AD did not answer: {type(exc).__name__}") from exc
        if bound:
            return connection, ""
        result = dict(connection.result)
        _close(connection)
        if result.get("result") in UNAVAILABLE_CODES:
            raise DirectoryUnavailable(f"AD bind failed: {result.get('description')}")
        found = BIND_DATA.search(str(result.get("message") or ""))
        return None, found.group(1).lower() if found else WRONG_PASSWORD


# --- module helpers -----------------------------------------------------------------------


def _unicode_pwd(password: str, *, invalid: type[DirectoryError] = PasswordRejected) -> bytes:
    """AD's unicodePwd value: the password in double quotes, in UTF-16-LE."""
    try:
        return f'"{password}"'.encode("utf-16-le")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise invalid(NOT_ALLOWED_CHARACTERS) from exc


def _modify(connection: ldap3.Connection, dn: str, changes: dict[str, Any]) -> None:
    if not connection.modify(dn, changes):
        _refuse(connection.result)


def _refuse(result: Mapping[str, Any]) -> None:
    """Raise the protocol error for AD's refusal of a modify."""
    message = str(result.get("message") or "")
    extended = message[:8].upper()
    if extended == WRONG_OLD_PASSWORD:
        raise InvalidCredentials("the current password is wrong")
    if extended == POLICY_REFUSAL:
        lowered = message.lower()
        reason = next((text for fragment, text in POLICY_MESSAGES if fragment in lowered), POLICY_OTHERWISE)
        raise PasswordRejected(reason)
    _reject(result)  # unavailable, insufficient rights, ...: as the LDAP adapter says them


def _bind_refusal(code: str) -> DirectoryError:
    if code == DISABLED_REFUSAL:
        return DisabledByAdmin("the account is disabled by an administrator")
    if code in BIND_REFUSALS:
        return PasswordRejected(BIND_REFUSALS[code])
    return InvalidCredentials("the current password is wrong")


def _guid(entry: Mapping[str, Any], attribute: str) -> str:
    """objectGUID (16 bytes, little-endian fields) as the canonical UUID string."""
    values = entry.get("raw_attributes", {}).get(attribute) or []
    raw = values[0] if isinstance(values, list) and values else values
    if isinstance(raw, bytes) and len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    return ""


def _password_metadata_stamp(blob: bytes) -> str | None:
    """unicodePwd's "version@time" in a replPropertyMetaData blob; None if absent."""
    try:
        _, _, count, _ = METADATA_HEADER.unpack_from(blob, 0)
        for index in range(count):
            offset = METADATA_HEADER.size + index * METADATA_ENTRY.size
            attid, version, seconds, *_ = METADATA_ENTRY.unpack_from(blob, offset)
            if attid == UNICODE_PWD_ATTID and seconds:
                written = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
                return f"{version}@{written:%Y%m%d%H%M%SZ}"
    except struct.error:
        return None
    return None


def _pso_rules(entry: Mapping[str, Any], dn: str) -> PasswordRules | None:
    """A msDS-PasswordSettings entry as rules; None when its attributes were not readable."""
    if _first(entry, "msDS-MinimumPasswordLength") is None:
        return None
    return PasswordRules(
        min_length=_number(_first(entry, "msDS-MinimumPasswordLength")),
        history=_number(_first(entry, "msDS-PasswordHistoryLength")),
        complexity=(_first(entry, "msDS-PasswordComplexityEnabled") or "").strip().upper() == "TRUE",
        min_age_seconds=abs(_number(_first(entry, "msDS-MinimumPasswordAge"))) // 10_000_000,
        source=dn,
    )


def _number(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
