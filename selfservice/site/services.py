"""Facts for the home page and the health report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from selfservice.directory import get_directory
from selfservice.directory.interfaces import DirectoryError
from selfservice.extensions import db
from selfservice.helpdesk.hours import SupportHours


def home_facts(settings: Mapping[str, Any]) -> dict[str, Any]:
    links = {"forgot": "/forgot", "change": "/password", "enroll": "/enroll", "helpdesk": "/helpdesk/"}
    return {"hours": SupportHours.from_settings(settings), "links": links}


def health() -> dict[str, Any]:
    """The state of each part the portal needs; ``status`` is ok only when all are."""
    checks = {"database": check_database(), "directory": check_directory()}
    status = "ok" if all(state == "ok" for state in checks.values()) else "unavailable"
    return {"status": status, "checks": checks}


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return "unavailable"
    return "ok"


def check_directory() -> str:
    try:
        get_directory().ping()
    except DirectoryError:
        return "unavailable"
    return "ok"
