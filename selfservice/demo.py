"""`selfservice demo`: the builtin directory seeded with the district's demo accounts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from selfservice.directory import get_directory
from selfservice.directory.builtin import BuiltinDirectory, NewAccount
from selfservice.directory.interfaces import Account, AccountKind

DEMO_PASSWORD = "Portal-Demo-2026"

DEMO_ACCOUNTS = [
    NewAccount(
        "s1000001",
        DEMO_PASSWORD,
        AccountKind.STUDENT,
        "Ana Lopez",
        email="ana.lopez@students.example.org",
        student_id="1000001",
        birth_month_year="042012",
    ),
    NewAccount(
        "s1000002",
        DEMO_PASSWORD,
        AccountKind.STUDENT,
        "Ben Carter",
        student_id="1000002",
        birth_month_year="112011",
    ),
    NewAccount(
        "p2000001",
        DEMO_PASSWORD,
        AccountKind.PARENT,
        "Maria Lopez",
        email="maria.lopez@example.org",
        phone="555-0101",
        parent_account_number="2000001",
        parent_pin="4821",
    ),
    NewAccount(
        "p2000002",
        DEMO_PASSWORD,
        AccountKind.PARENT,
        "James Carter",
        phone="555-0102",
        parent_account_number="2000002",
        parent_pin="7390",
    ),
    NewAccount(
        "teacher1",
        DEMO_PASSWORD,
        AccountKind.STAFF,
        "Terry Teacher",
        email="teacher1@staff.example.org",
        groups=["employees"],
    ),
    NewAccount(
        "support1",
        DEMO_PASSWORD,
        AccountKind.STAFF,
        "Sam Support",
        email="support1@staff.example.org",
        groups=["employees", "support"],
    ),
    NewAccount(
        "its1",
        DEMO_PASSWORD,
        AccountKind.STAFF,
        "Ivy Technician",
        email="its1@staff.example.org",
        groups=["employees", "its"],
    ),
    NewAccount(
        "admin1",
        DEMO_PASSWORD,
        AccountKind.STAFF,
        "Alex Admin",
        email="admin1@staff.example.org",
        groups=["employees", "admins"],
    ),
]


#: The demo's own database file in the instance folder, apart from a real site's.
DEMO_DATABASE = "demo.sqlite"


def demo_settings(instance_path: Path, *, keep: bool = False) -> dict[str, Any]:
    """Settings for a local demo: its own SQLite file (fresh unless ``keep``), relaxed cookies,
    a throwaway secret, the demo directory."""
    instance_path.mkdir(parents=True, exist_ok=True)
    database = instance_path / DEMO_DATABASE
    if not keep:
        for leftover in (database, database.with_name(f"{DEMO_DATABASE}-journal")):
            leftover.unlink(missing_ok=True)
    return {
        "DEMO": True,
        "DIRECTORY": "demo",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SESSION_COOKIE_SECURE": False,
        "INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": f"sqlite:///{database}",
    }


def seed_demo() -> list[Account]:
    """Create the demo accounts that are missing; return all of them."""
    directory = get_directory()
    if not isinstance(directory, BuiltinDirectory):
        raise RuntimeError("the demo runs on the builtin directory")
    accounts = []
    for new in DEMO_ACCOUNTS:
        existing = directory.find_by("login", new.login)
        accounts.append(existing or directory.create(new))
    return accounts
