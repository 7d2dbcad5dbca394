"""The Directory protocol: what the portal needs from wherever passwords live.

Adapters (builtin, openldap, ad) implement :class:`Directory`. Services only ever
see :class:`Account` values and the error types below, never ldap3 or SQL objects.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


def normalise_login(typed: str) -> str:
    """The one form of a login (invariant 16): NFKC, case-folded, trimmed.

    Every adapter looks logins up in this form, and the recovery challenge, the lockout
    and the per-account limits are keyed by it, so a full-width or upper-case login with
    spaces around it is the same login everywhere.
    """
    return unicodedata.normalize("NFKC", typed).casefold().strip()


class AccountKind(StrEnum):
    STUDENT = "student"
    PARENT = "parent"
    STAFF = "staff"


class Role(StrEnum):
    """Staff roles, read from directory group membership."""

    EMPLOYEE = "employee"
    SUPPORT = "support"
    ITS = "its"
    ADMIN = "admin"


#: Logical fields an account can be looked up by. Adapters map them to attributes.
LOOKUP_FIELDS = ("login", "email", "student_id", "parent_account_number")


@dataclass(frozen=True)
class Account:
    """One account holder as the directory knows them.

    ``key`` is the directory's stable unique id (entryUUID, objectGUID or the
    builtin row id): enrollments and lockouts hang off it, so renames don't
    orphan them. ``ref`` is the adapter's own handle (a DN for LDAP).

    ``disabled``: the directory refuses this account's sign-in now, for any reason (an
    administrator disabled it, or it is locked after failed binds). ``disabled_by_admin``:
    an administrator disabled it and only an administrator may enable it again (builtin:
    its disabled flag; OpenLDAP: ppolicy's permanent lock ``000001010000Z``; AD:
    userAccountControl ACCOUNTDISABLE). A failure lock is for self-service to end (a
    reset lifts it); an administrator's disable never is: no flow gives such an account
    a password.
    """

    key: str
    login: str
    kind: AccountKind
    display_name: str
    ref: str = ""
    email: str | None = None
    phone: str | None = None
    student_id: str | None = None
    birth_month_year: str | None = None
    parent_account_number: str | None = None
    parent_pin: str | None = field(default=None, repr=False)
    roles: frozenset[Role] = frozenset()
    must_change: bool = False
    disabled: bool = False
    disabled_by_admin: bool = False

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True)
class PasswordRules:
    """The directory's own password rules (ppolicy, AD's domain policy or a PSO); zero means no rule.

    ``source`` says where they were read, e.g. the policy entry's DN.
    """

    min_length: int = 0
    history: int = 0
    complexity: bool = False  # AD: characters of three of four kinds, no part of the name
    min_age_seconds: int = 0
    quality_check: bool = False  # ppolicy's pwdCheckQuality: the server checks what it can
    source: str = ""


class DirectoryError(Exception):
    """Base for everything a directory adapter raises on purpose."""


class DirectoryUnavailable(DirectoryError):
    """The directory did not answer (down, unreachable, timed out, bad service bind).

    On a password write it means the write was never sent: nothing changed.
    """


class OutcomeUnknown(DirectoryError):
    """A password write was sent but no answer came back: it may or may not have been applied.

    Only the directory's own record (:meth:`Directory.password_stamp`) can settle it.
    """


class PasswordRejected(DirectoryError):
    """The directory refused a new password (history, age, complexity, constraint).

    ``reason`` is a short, user-facing English sentence already fit for ``_()``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordUnchanged(PasswordRejected):
    """Refused because the new password already is the current one (OpenLDAP ppolicy says so).

    To a person that is a refusal like any other; to the sync worker it means the target
    already has the password it was asked to write (an earlier attempt's reply was lost).
    """


class DisabledByAdmin(DirectoryError):
    """An administrator disabled the account, as the directory says where the write is made.

    Nothing was written: the account read at the start of the request was enabled, and
    was disabled before the write.
    """


class InvalidCredentials(DirectoryError):
    """The current password given for a change was wrong."""


@runtime_checkable
class Directory(Protocol):
    """What every directory adapter offers."""

    name: str

    def find(self, login: str, *, with_roles: bool = True) -> Account | None:
        """Look an account up by any of the configured login fields.

        ``with_roles=False``: the caller never looks at roles (self-service recovery), so
        they are not read (on LDAP and AD, one group search less) and come back empty.
        """

    def find_by(self, field: str, value: str) -> Account | None:
        """Look an account up by one logical field of :data:`LOOKUP_FIELDS`."""

    def count_by(self, field: str, value: str) -> int:
        """How many entries hold ``value`` in ``field`` (as :meth:`find_by` looks): 0, 1, or 2 for more."""

    def get(self, key: str, *, with_roles: bool = True) -> Account | None:
        """Fetch an account by its stable key (``with_roles`` as for :meth:`find`)."""

    def authenticate(self, login: str, password: str) -> Account | None:
        """Return the account when ``password`` binds, else ``None``."""

    def set_password(
        self,
        account: Account,
        new_password: str,
        *,
        must_change: bool = False,
        unlock: bool = True,
        refuse_disabled: bool = False,
    ) -> None:
        """Administrative reset: write ``new_password`` without knowing the old one.

        The reset also ends a directory lockout, as an administrator's reset does; with
        ``unlock=False`` the account's lock is as it was before (a sync target's choice).
        ``refuse_disabled`` (the portal's own flows): raise DisabledByAdmin, nothing written,
        when an administrator disabled the account, as the directory says at the write.
        """

    def change_password(self, account: Account, old_password: str, new_password: str) -> None:
        """The account holder's own change; raises InvalidCredentials on a wrong old one.

        Raises DisabledByAdmin, nothing written, when an administrator disabled the account.
        """

    def set_must_change(self, account: Account, must_change: bool) -> None:
        """Set or clear "must change at next sign-in" on its own (a reset settled after a lost reply)."""

    def unlock(self, account: Account) -> None:
        """Clear a directory-side lockout (no-op where the directory has none)."""

    def lock_to_keep(self, account: Account, *, unlock: bool) -> str | None:
        """The account's lock that a password write must leave in place, as the directory wrote it.

        An administrator's lock always, a failure lock too with ``unlock=False``. None when
        there is none to keep, or when the directory's password write never lifts a lock
        (builtin, AD): then there is nothing to put back.
        """

    def restore_lock(self, account: Account, lock: str) -> None:
        """Put back ``lock`` (from :meth:`lock_to_keep`) that a password write lifted.

        Leaves the account alone when it is locked that way, or for good, already.
        """

    def ping(self) -> None:
        """Raise DirectoryUnavailable unless the directory answers right now."""

    def password_stamp(self, account: Account) -> str | None:
        """The directory's own mark of the account's last password write; another after any new write.

        OpenLDAP: ppolicy's pwdChangedTime; AD: unicodePwd's replication metadata (its
        version and time; pwdLastSet when unreadable); builtin: its own timestamp. None
        when the directory keeps no such record for the account. Raises
        DirectoryUnavailable when it cannot be read.
        """

    def password_rules(self) -> PasswordRules:
        """The directory's own password rules (read-only; empty rules where it has none)."""

    def password_rules_for(self, account: Account) -> PasswordRules | None:
        """Rules that apply to ``account`` in place of :meth:`password_rules`, or None where those apply.

        AD: the account's resultant fine-grained policy (PSO), read in one search (the PSO
        itself is cached); None when no PSO applies or the service account cannot read it.
        """

    def password_changed_at(self, account: Account) -> datetime | None:
        """When the account's password last changed, as the directory records it (None: unknown)."""
