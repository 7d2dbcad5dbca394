"""The builtin directory: accounts in the portal's own database, argon2id password hashes.

The embedded default, so the portal runs with nothing else installed, and fit for a
small site with no directory server.
"""

from __future__ import annotations

import contextlib
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from selfservice.argon2_pool import Argon2Hasher
from selfservice.directory.interfaces import (
    LOOKUP_FIELDS,
    Account,
    AccountKind,
    DirectoryUnavailable,
    DisabledByAdmin,
    InvalidCredentials,
    OutcomeUnknown,
    PasswordRules,
    Role,
    normalise_login,
)
from selfservice.directory.models import DirectoryAccount, DirectoryGroup, group_members
from selfservice.extensions import db
from selfservice.timeutil import utcnow

T = TypeVar("T")


def password_hasher(settings: Mapping[str, Any]) -> Argon2Hasher:
    """The argon2id hasher configured by the ARGON2_* settings (memory from the process's pool)."""
    return Argon2Hasher(
        time_cost=settings.get("ARGON2_TIME_COST", 2),
        memory_cost=settings.get("ARGON2_MEMORY_KIB", 19456),
        parallelism=settings.get("ARGON2_PARALLELISM", 1),
        max_blocks=settings.get("ARGON2_MAX_CONCURRENT", 2),
    )


@dataclass
class NewAccount:
    """What it takes to create a builtin account (demo seed, tests, import)."""

    login: str
    password: str
    kind: AccountKind
    display_name: str
    email: str | None = None
    phone: str | None = None
    student_id: str | None = None
    birth_month_year: str | None = None
    parent_account_number: str | None = None
    parent_pin: str | None = None
    groups: list[str] = field(default_factory=list)


class BuiltinDirectory:
    name = "builtin"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.login_fields = [f for f in settings["LOGIN_FIELDS"] if f in LOOKUP_FIELDS]
        self.role_groups = {Role(role): group for role, group in settings["ROLE_GROUPS"].items()}
        self.hasher = password_hasher(settings)
        self._dummy_hash: str | None = None

    # Lookups -----------------------------------------------------------------

    def find(self, login: str, *, with_roles: bool = True) -> Account | None:
        found = self._accounts_where(self._login_matching(login), with_roles)
        return found[0] if len(found) == 1 else None

    def find_by(self, field: str, value: str) -> Account | None:
        if field not in LOOKUP_FIELDS:
            raise ValueError(f"unknown lookup field {field!r}")
        found = self._accounts_where(self._matching([field], value), with_roles=True)
        return found[0] if len(found) == 1 else None

    def count_by(self, field: str, value: str) -> int:
        if field not in LOOKUP_FIELDS:
            raise ValueError(f"unknown lookup field {field!r}")
        condition = self._matching([field], value)
        if condition is None:
            return 0
        statement = select(DirectoryAccount.id).where(condition).limit(2)
        return len(self._query(lambda: db.session.execute(statement).all()))

    def get(self, key: str, *, with_roles: bool = True) -> Account | None:
        found = self._accounts_where(DirectoryAccount.id == key, with_roles)
        return found[0] if found else None

    # Passwords ---------------------------------------------------------------

    def authenticate(self, login: str, password: str) -> Account | None:
        # Only the three columns a check needs, as a plain row: a found login costs what a
        # missing one does up to the verify (no ORM object, no groups), and an unknown
        # login then pays a dummy verify. The account itself is read once the password
        # is right.
        found = self._credentials_for_login(login)
        if found is None or found.disabled or not found.password_hash or not password:
            self._dummy_verify(password)  # an unknown login costs what a wrong password does
            return None
        if not self._verify_hash(found.id, found.password_hash, password):
            return None
        return self.get(found.id)

    def set_password(
        self,
        account: Account,
        new_password: str,
        *,
        must_change: bool = False,
        unlock: bool = True,
        refuse_disabled: bool = False,
    ) -> None:
        # ``unlock`` changes nothing here: no directory lockout of its own (see unlock()).
        password_hash = self.hasher.hash(new_password)
        # One UPDATE and one commit: the hash and its timestamp land together, or neither
        # does. A commit that fails may still have landed (the connection lost with the
        # answer in flight): only the timestamp, read again, can tell. The disabled flag is
        # part of the UPDATE's condition: a disable committed first is never written over.
        condition = DirectoryAccount.id == account.key
        if refuse_disabled:
            condition = condition & DirectoryAccount.disabled.is_(False)
        statement = (
            update(DirectoryAccount)
            .where(condition)
            .values(password_hash=password_hash, must_change=must_change, password_changed_at=utcnow())
        )
        written = self._query(
            lambda: db.session.execute(statement, execution_options={"synchronize_session": False})
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            if refuse_disabled and self._query(lambda: db.session.get(DirectoryAccount, account.key)):
                raise DisabledByAdmin(f"{account.login} is disabled by an administrator")
            raise LookupError(f"no builtin account with key {account.key}")
        try:
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            raise OutcomeUnknown("the portal database did not confirm the password write") from exc

    def change_password(self, account: Account, old_password: str, new_password: str) -> None:
        row = self._row(account)
        if not old_password or not self._verify_hash(row.id, row.password_hash, old_password):
            raise InvalidCredentials()
        self.set_password(account, new_password, must_change=False, refuse_disabled=True)

    def set_must_change(self, account: Account, must_change: bool) -> None:
        row = self._row(account)
        row.must_change = must_change
        self._query(db.session.commit)

    def password_stamp(self, account: Account) -> str | None:
        """The row's own timestamp (to the microsecond), written in the same commit as the hash."""
        statement = select(DirectoryAccount.password_changed_at).where(DirectoryAccount.id == account.key)
        stamp = self._query(lambda: db.session.execute(statement).first())
        return _aware(stamp[0]).isoformat() if stamp else None

    def unlock(self, account: Account) -> None:
        """The builtin directory has no lockout of its own: self-service locks live elsewhere."""

    def lock_to_keep(self, account: Account, *, unlock: bool) -> str | None:
        """None: a password write never touches the disabled flag."""
        return None

    def restore_lock(self, account: Account, lock: str) -> None:
        """Nothing to put back (see lock_to_keep)."""

    def ping(self) -> None:
        self._query(lambda: db.session.execute(text("SELECT 1")))

    def password_rules(self) -> PasswordRules:
        """The builtin directory has no rules of its own: the portal's PASSWORD_* settings are all."""
        return PasswordRules(source="builtin")

    def password_rules_for(self, account: Account) -> PasswordRules | None:
        """No account has rules of its own here."""
        del account
        return None

    def password_changed_at(self, account: Account) -> datetime | None:
        row = self._query(lambda: db.session.get(DirectoryAccount, account.key))
        return row.password_changed_at if row else None

    # Seeding -----------------------------------------------------------------

    def create(self, new: NewAccount) -> Account:
        """Add one account (and any groups it names) and commit."""
        row = DirectoryAccount(
            login=new.login,
            kind=new.kind.value,
            display_name=new.display_name,
            email=new.email,
            phone=new.phone,
            student_id=new.student_id,
            birth_month_year=new.birth_month_year,
            parent_account_number=new.parent_account_number,
            parent_pin=new.parent_pin,
            password_hash=self.hasher.hash(new.password),
            groups=[self._group(name) for name in new.groups],
        )
        db.session.add(row)
        db.session.commit()
        return self._account(row, {group.name for group in row.groups})

    # Internals ---------------------------------------------------------------

    def _accounts_where(self, condition: Any, with_roles: bool) -> list[Account]:
        """The accounts ``condition`` selects, groups included, in one query of plain rows.

        Plain rows, not ORM objects: building those (identity map, the groups collection)
        was most of what a found login cost beyond a missing one (equal timing), and a
        good part of each lookup's CPU. Groups are joined whatever ``with_roles`` says,
        so the query is the same either way.
        """
        if condition is None:
            return []
        statement = (
            select(*_ACCOUNT_COLUMNS, DirectoryGroup.name)
            .select_from(DirectoryAccount)
            .outerjoin(group_members, group_members.c.account_id == DirectoryAccount.id)
            .outerjoin(DirectoryGroup, DirectoryGroup.id == group_members.c.group_id)
            .where(condition)
        )
        found: dict[str, tuple[Any, set[str]]] = {}
        for row in self._query(lambda: db.session.execute(statement).all()):
            names = found.setdefault(row.id, (row, set()))[1]
            if row.name is not None:
                names.add(row.name)
        return [self._account(row, names if with_roles else set()) for row, names in found.values()]

    @staticmethod
    def _matching(fields: list[str], value: str, *, typed: str = "") -> Any:
        """Any of ``fields`` holds ``value``, or ``typed`` as it is; None when nothing can.

        Logins and emails compare case-blind too (SQL's lower(): SQLite's folds ASCII only).
        """
        if not value or "\x00" in value or not fields:  # no account holds a NUL (PostgreSQL refuses one)
            return None
        spellings = dict.fromkeys(spelling for spelling in (value, typed) if spelling)
        conditions = []
        for name in fields:
            column = getattr(DirectoryAccount, name)
            for spelling in spellings:
                conditions.append(column == spelling)
                if name in {"login", "email"}:
                    conditions.append(func.lower(column) == spelling.lower())
        return or_(*conditions)

    def _login_matching(self, login: str) -> Any:
        """The login fields holding ``login`` in its one form (invariant 16), or as typed.

        casefold() goes further than SQL's lower() (SQLite's folds ASCII only; ß becomes "ss"),
        so the login as typed (NFKC, trimmed) is asked for too, as the LDAP adapter does.
        """
        typed = unicodedata.normalize("NFKC", login).strip()
        return self._matching(self.login_fields, normalise_login(login), typed=typed)

    def _credentials_for_login(self, login: str) -> Any:
        """(id, password_hash, disabled) of the one row ``login`` names; None when none or several."""
        condition = self._login_matching(login)
        if condition is None:
            return None
        statement = (
            select(DirectoryAccount.id, DirectoryAccount.password_hash, DirectoryAccount.disabled)
            .where(condition)
            .limit(2)
        )
        rows = self._query(lambda: db.session.execute(statement).all())
        return rows[0] if len(rows) == 1 else None

    def _row(self, account: Account) -> DirectoryAccount:
        row = self._query(lambda: db.session.get(DirectoryAccount, account.key))
        if row is None:
            raise LookupError(f"no builtin account with key {account.key}")
        return row

    def _dummy_verify(self, password: str) -> None:
        """One argon2 verify against a hash of a secret nobody knows (equal timing, issue 14 item 5)."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(32))
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy_hash, password or "-")

    def _verify_hash(self, key: str, password_hash: str | None, password: str) -> bool:
        try:
            self.hasher.verify(password_hash or "", password)
        except (VerificationError, InvalidHashError):
            return False
        if self.hasher.check_needs_rehash(password_hash or ""):
            statement = update(DirectoryAccount).where(DirectoryAccount.id == key)
            db.session.execute(statement.values(password_hash=self.hasher.hash(password)))
            db.session.commit()
        return True

    def _group(self, name: str) -> DirectoryGroup:
        group = db.session.scalar(select(DirectoryGroup).where(DirectoryGroup.name == name))
        if group is None:
            group = DirectoryGroup(name=name)
            db.session.add(group)
        return group

    def _account(self, row: Any, names: set[str]) -> Account:
        """The account of ``row`` (a DirectoryAccount or a row of its columns), in ``names``' groups."""
        return Account(
            key=row.id,
            login=row.login,
            kind=AccountKind(row.kind),
            display_name=row.display_name,
            ref=row.id,
            email=row.email,
            phone=row.phone,
            student_id=row.student_id,
            birth_month_year=row.birth_month_year,
            parent_account_number=row.parent_account_number,
            parent_pin=row.parent_pin,
            roles=frozenset(role for role, group in self.role_groups.items() if group in names),
            must_change=row.must_change,
            disabled=row.disabled,
            disabled_by_admin=row.disabled,  # no failure lock of its own: only an administrator disables
        )

    @staticmethod
    def _query(run: Callable[[], T]) -> T:
        try:
            return run()
        except SQLAlchemyError as exc:
            db.session.rollback()
            raise DirectoryUnavailable("the portal database did not answer") from exc


#: What an Account is built from (no password hash, no timestamps).
_ACCOUNT_COLUMNS = (
    DirectoryAccount.id,
    DirectoryAccount.login,
    DirectoryAccount.kind,
    DirectoryAccount.display_name,
    DirectoryAccount.email,
    DirectoryAccount.phone,
    DirectoryAccount.student_id,
    DirectoryAccount.birth_month_year,
    DirectoryAccount.parent_account_number,
    DirectoryAccount.parent_pin,
    DirectoryAccount.must_change,
    DirectoryAccount.disabled,
)


def _aware(moment: datetime) -> datetime:
    """A column read straight from some drivers comes back naive: it is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
