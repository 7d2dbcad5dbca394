"""Facts for the home page and the health report."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from selfservice.directory import get_directory
from selfservice.directory.interfaces import DirectoryError
from selfservice.extensions import db, limiter
from selfservice.portal.enrollment import enrollment_status


def home_facts(account_key: str | None = None) -> dict[str, Any]:
    """The four destinations; ``account_key`` (the signed-in account's) adds its enrollment status."""
    links = {
        "forgot": url_for("portal.forgot"),
        "change": url_for("portal.change_password"),
        "enroll": url_for("portal.enroll"),
        "helpdesk": url_for("helpdesk.index"),
    }
    enrollment = enrollment_status(account_key) if account_key else None
    return {"links": links, "enrollment": enrollment}


def health() -> dict[str, Any]:
    """The state of each part the portal needs.

    ``status`` is ok when all are; "degraded" when only the limiter storage is down (the
    portal still serves, counting limits per process); else "unavailable".
    """
    checks = {"database": check_database(), "directory": check_directory(), "limiter": check_limiter()}
    states = set(checks.values())
    status = "ok" if states == {"ok"} else "degraded" if states == {"ok", "degraded"} else "unavailable"
    return {"status": status, "checks": checks}


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return "unavailable"
    return "ok"


def check_limiter() -> str:
    """The limiter's shared storage: "ok", or "degraded" while limits count in memory."""
    return limiter.check()


def check_directory() -> str:
    try:
        get_directory().ping()
    except DirectoryError:
        return "unavailable"
    return "ok"
