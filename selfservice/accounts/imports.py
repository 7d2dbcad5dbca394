"""`selfservice accounts import FILE.csv`: the built-in directory's accounts from a district export.

The order of the work, and why:

1. The file first: text that is not UTF-8 or not CSV, and a header without the required
   columns, are refused whole (naming the line) before any row is saved, so a wrong export
   never half-loads.
2. Each row is checked on its own (kind, dates, lengths the directory can hold, duplicates
   in the file and in the database, logins compared case-blind as sign-in compares them);
   a bad row is refused with its line number and reason and the others go on.
3. A login already present is updated in place, never recreated: its key (and so its
   enrollment, locks and help requests) stays. Running the same file twice changes nothing.
4. Passwords are never in an export. A new account gets no usable password: its holder sets
   one through a help-desk reset link (or the optional ``password`` column, for a pilot).
5. ``dry_run`` does all the checks and rolls back, so the report says what a real run would do.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select

from selfservice.audit.services import SYSTEM, record
from selfservice.audit.tags import Tag
from selfservice.directory.builtin import password_hasher
from selfservice.directory.interfaces import AccountKind
from selfservice.directory.models import DirectoryAccount, DirectoryGroup
from selfservice.extensions import db

#: A password hash nothing verifies: the holder cannot sign in until a password is set for them.
NO_PASSWORD = "!imported: no password set"
REQUIRED_COLUMNS = ("login", "kind")
NAME_COLUMNS = ("display_name", "first_name", "last_name")
OPTIONAL_COLUMNS = (
    "student_id",
    "birth_month_year",
    "parent_account_number",
    "parent_pin",
    "email",
    "phone",
    "groups",
    "password",
)
KNOWN_COLUMNS = frozenset((*REQUIRED_COLUMNS, *NAME_COLUMNS, *OPTIONAL_COLUMNS))
#: Profile fields an import sets (the password only on creation).
FIELDS = (
    "kind",
    "display_name",
    "email",
    "phone",
    "student_id",
    "birth_month_year",
    "parent_account_number",
    "parent_pin",
)
BATCH_ROWS = 500
MONTH_YEAR = (
    re.compile(r"^(?P<month>\d{1,2})[/.\- ]?(?P<year>\d{4})$"),  # 112011, 11/2011, 1/2012
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{1,2})(-\d{1,2})?$"),  # 2011-11, 2011-11-23
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ImportRefused(ValueError):
    """The whole file is refused (its header lacks a required column, or it is not CSV)."""


@dataclass
class Refusal:
    line: int
    login: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.refused)


@dataclass
class Row:
    line: int
    login: str
    values: dict[str, str | None]
    groups: list[str]
    password: str


def check_utf8(raw_lines: Iterable[bytes]) -> None:
    """ImportRefused naming the first line that is not UTF-8 (an export saved as Latin-1, say)."""
    for number, line in enumerate(raw_lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportRefused(
                f"line {number} is not UTF-8 text; save the export as CSV UTF-8 and try again"
            ) from exc


def count_rows(lines: Iterable[str]) -> int:
    """The number of records after the header; ImportRefused, naming the line, for text that is
    not CSV. Read before anything is saved, so such a file never half-loads."""
    reader = csv.reader(lines)
    records = 0
    try:
        for records, _record in enumerate(reader):  # noqa: B007 - the count is what is wanted
            pass
    except csv.Error as exc:
        raise ImportRefused(f"line {reader.line_num} is not CSV ({exc})") from exc
    return records


def read_rows(lines: Iterable[str]) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (lower-cased) and the (line number, row) pairs of a CSV export."""
    reader = csv.DictReader(lines)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if "display_name" not in header and not {"first_name", "last_name"} <= set(header):
        missing.append("display_name (or first_name and last_name)")
    if missing:
        raise ImportRefused(
            f"the file has no column {', '.join(missing)}; its columns: {', '.join(header) or '(none)'}"
        )
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for raw in reader:
            clean = {key: (value or "").strip() for key, value in raw.items() if key in KNOWN_COLUMNS}
            yield reader.line_num, clean

    return header, rows()


def import_accounts(
    rows: Iterable[tuple[int, dict[str, str]]],
    settings: Mapping[str, Any],
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda _done: None,
) -> ImportReport:
    """Create or update one builtin account per row; refuse bad rows with their reasons."""
    report = ImportReport(dry_run=dry_run)
    hasher = password_hasher(settings)
    seen: dict[str, dict[str, int]] = {"login": {}, "student_id": {}, "parent_account_number": {}}
    groups: dict[str, DirectoryGroup] = {}
    for count, (line, raw) in enumerate(rows, start=1):
        try:
            row = _parse(line, raw)
            _check_unique_in_file(row, seen)
            existing = _existing(row.login)
            _check_unique_in_database(row, existing)
        except ValueError as problem:
            report.refused.append(Refusal(line, raw.get("login", ""), str(problem)))
        else:
            _save(row, existing, hasher, groups, report)
        if count % BATCH_ROWS == 0:
            _flush(dry_run)
        progress(1)
    if dry_run:
        db.session.rollback()
    else:
        record(
            Tag.ACCOUNTS_IMPORTED,
            origin=SYSTEM,
            details={"created": report.created, "updated": report.updated, "refused": len(report.refused)},
            commit=False,
        )
        db.session.commit()
    return report


def _flush(dry_run: bool) -> None:
    if dry_run:
        db.session.flush()
    else:
        db.session.commit()


def _check_characters(raw: Mapping[str, str]) -> None:
    for name, value in raw.items():
        if "\x00" in value:
            raise ValueError(f"{name} holds a NUL character")


def _check_lengths(values: Mapping[str, str | None], groups: list[str]) -> None:
    """Refuse what the directory's columns cannot hold (PostgreSQL refuses it; SQLite would keep it)."""
    for name, value in values.items():
        longest = DirectoryAccount.__table__.c[name].type.length
        if value and longest and len(value) > longest:
            raise ValueError(f"{name} is longer than {longest} characters")
    longest = DirectoryGroup.__table__.c["name"].type.length
    for group in groups:
        if len(group) > longest:
            raise ValueError(f"group {group!r} is longer than {longest} characters")


def _parse(line: int, raw: Mapping[str, str]) -> Row:
    _check_characters(raw)
    login = raw.get("login", "")
    if not login:
        raise ValueError("login is empty")
    if len(login) > 128 or any(char.isspace() for char in login):
        raise ValueError(f"login {login!r} is longer than 128 characters or contains spaces")
    kind = raw.get("kind", "").lower()
    if kind not in {k.value for k in AccountKind}:
        raise ValueError(f"kind {raw.get('kind')!r} is not student, parent or staff")
    name = raw.get("display_name") or " ".join(filter(None, (raw.get("first_name"), raw.get("last_name"))))
    if not name:
        raise ValueError("the name is empty")
    values: dict[str, str | None] = {
        "kind": kind,
        "display_name": name[:200],
        "email": raw.get("email") or None,
        "phone": raw.get("phone") or None,
        "student_id": raw.get("student_id") or None,
        "birth_month_year": _month_year(raw.get("birth_month_year", "")),
        "parent_account_number": raw.get("parent_account_number") or None,
        "parent_pin": raw.get("parent_pin") or None,
    }
    if values["email"] and not EMAIL.match(values["email"] or ""):
        raise ValueError(f"email {values['email']!r} is not an email address")
    if kind == AccountKind.STUDENT and not (values["student_id"] and values["birth_month_year"]):
        raise ValueError("a student needs a student_id and a birth_month_year (the help desk checks both)")
    if kind == AccountKind.PARENT and not values["parent_account_number"]:
        raise ValueError("a parent needs a parent_account_number")
    groups = [name.strip() for name in re.split(r"[;|]", raw.get("groups", "")) if name.strip()]
    _check_lengths(values, groups)
    return Row(line, login, values, groups, raw.get("password", ""))


def _month_year(text: str) -> str | None:
    """MMYYYY from 112011, 11/2011, 1/2012 or 2011-11; ValueError for anything else."""
    if not text:
        return None
    for pattern in MONTH_YEAR:
        found = pattern.match(text)
        if found:
            month, year = int(found["month"]), int(found["year"])
            if 1 <= month <= 12 and 1900 <= year <= date.today().year:
                return f"{month:02d}{year}"
    raise ValueError(f"birth_month_year {text!r} is not a month and year such as 11/2011")


def _check_unique_in_file(row: Row, seen: dict[str, dict[str, int]]) -> None:
    keys = {"login": row.login.casefold()}
    for name in ("student_id", "parent_account_number"):
        if row.values[name]:
            keys[name] = str(row.values[name])
    for name, value in keys.items():
        earlier = seen[name].get(value)
        if earlier is not None:
            raise ValueError(f"{name} {value!r} is already on line {earlier}")
    for name, value in keys.items():
        seen[name][value] = row.line


def _existing(login: str) -> DirectoryAccount | None:
    """The account ``login`` names in any letter case (sign-in is case-blind, so must this be)."""
    found = db.session.scalars(
        select(DirectoryAccount).where(
            or_(DirectoryAccount.login == login, func.lower(DirectoryAccount.login) == login.lower())
        )
    ).all()
    exact = [account for account in found if account.login == login]
    if exact or len(found) <= 1:
        return (exact or found or [None])[0]
    raise ValueError(f"login {login!r} matches several accounts: {', '.join(sorted(a.login for a in found))}")


def _check_unique_in_database(row: Row, existing: DirectoryAccount | None) -> None:
    """A student ID or parent account number may not belong to another account already."""
    conditions = [
        getattr(DirectoryAccount, name) == row.values[name]
        for name in ("student_id", "parent_account_number")
        if row.values[name]
    ]
    if not conditions:
        return
    others = db.session.scalars(select(DirectoryAccount).where(or_(*conditions))).all()
    others = [other for other in others if existing is None or other.id != existing.id]
    for other in others:
        name = "student_id" if other.student_id == row.values["student_id"] else "parent_account_number"
        raise ValueError(f"{name} {row.values[name]!r} belongs to the account {other.login!r} already")


def _save(
    row: Row,
    account: DirectoryAccount | None,
    hasher: Any,
    groups: dict[str, DirectoryGroup],
    report: ImportReport,
) -> None:
    wanted_groups = [_group(name, groups) for name in row.groups]
    if account is None:
        password = hasher.hash(row.password) if row.password else NO_PASSWORD
        account = DirectoryAccount(login=row.login, password_hash=password, must_change=bool(row.password))
        db.session.add(account)
        _apply(account, row, wanted_groups)
        report.created += 1
    elif _apply(account, row, wanted_groups):
        report.updated += 1
    else:
        report.unchanged += 1


def _apply(account: DirectoryAccount, row: Row, groups: list[DirectoryGroup]) -> bool:
    """Copy the row's fields onto ``account``; whether anything changed."""
    changed = False
    for name in FIELDS:
        if getattr(account, name, None) != row.values[name]:
            setattr(account, name, row.values[name])
            changed = True
    if {group.name for group in account.groups or []} != {group.name for group in groups}:
        account.groups = groups
        changed = True
    return changed


def _group(name: str, cache: dict[str, DirectoryGroup]) -> DirectoryGroup:
    if name not in cache:
        group = db.session.scalar(select(DirectoryGroup).where(DirectoryGroup.name == name))
        if group is None:
            group = DirectoryGroup(name=name)
            db.session.add(group)
        cache[name] = group
    return cache[name]
