"""`selfservice check --account LOGIN`: how the portal sees one account, field by field."""

from __future__ import annotations

from datetime import datetime

from selfservice.directory.interfaces import Account


def describe_account(account: Account | None, login: str, locked_until: datetime | None) -> list[str]:
    """Printable lines for the account ``login`` found; the parent PIN is never shown, only whether set."""
    if account is None:
        return [f"no single account found for {login!r} (none, or several match: see LOGIN_FIELDS)"]
    return _lines(account, locked_until)


def _lines(account: Account, locked_until: datetime | None) -> list[str]:
    roles = ", ".join(sorted(role.value for role in account.roles)) or "(none)"
    lock = f"self-service locked until {locked_until:%Y-%m-%d %H:%M} UTC" if locked_until else "not locked"
    rows = [
        ("login", account.login),
        ("entry", account.ref),
        ("key", account.key or "(missing: the unique_id attribute is empty)"),
        ("name", account.display_name),
        ("kind", account.kind.value),
        ("roles", roles),
        ("student ID", account.student_id),
        ("birth month/year", _month_year(account.birth_month_year)),
        ("parent account number", account.parent_account_number),
        ("parent PIN", "set" if account.parent_pin else None),
        ("email", account.email),
        ("phone", account.phone),
        ("must change password", "yes" if account.must_change else "no"),
        ("directory lock", _directory_lock(account)),
        ("portal lock", lock),
    ]
    return [f"{label:<22} {value if value else '(not set)'}" for label, value in rows]


def _directory_lock(account: Account) -> str:
    if account.disabled_by_admin:
        return "disabled by an administrator (self-service refuses it)"
    return "locked after failed sign-ins (a reset ends it)" if account.disabled else "active"


def _month_year(value: str | None) -> str | None:
    if value and len(value) == 6 and value.isdigit():
        return f"{value[:2]}/{value[2:]} ({value})"
    return f"{value} (not MMYYYY: help-desk requests cannot match it)" if value else None
