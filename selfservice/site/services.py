"""Facts for the home page and the health report."""

from __future__ import annotations

import logging
from typing import Any

from flask import url_for
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from selfservice.directory import get_directory
from selfservice.directory.interfaces import DirectoryError
from selfservice.extensions import db, limiter
from selfservice.portal.enrollment import enrollment_status
from selfservice.site.models import HealthProbe
from selfservice.timeutil import utcnow

PROBE_ID = 1
log = logging.getLogger(__name__)


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
    portal still serves, counting limits per process); else "unavailable". The database
    must accept a write, not only a read: a read-only SQLite file or a full disk answers
    SELECT 1 and fails every change.
    """
    checks = {"database": check_database(), "directory": check_directory(), "limiter": check_limiter()}
    states = set(checks.values())
    status = "ok" if states == {"ok"} else "degraded" if states == {"ok", "degraded"} else "unavailable"
    return {"status": status, "checks": checks}


def check_database() -> str:
    """ok, unavailable (no answer), or read-only (answers, but a write fails: read-only, disk full)."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return "unavailable"
    try:
        _write_probe()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("database does not accept writes: %s", type(getattr(exc, "orig", None) or exc).__name__)
        return "read-only"
    return "ok"


def _write_probe() -> None:
    now = utcnow()
    updated = db.session.execute(update(HealthProbe).where(HealthProbe.id == PROBE_ID).values(checked_at=now))
    if not updated.rowcount:  # type: ignore[attr-defined]
        db.session.add(HealthProbe(id=PROBE_ID, checked_at=now))
    try:
        db.session.commit()
    except IntegrityError:  # another worker's first probe inserted the row a moment ago
        db.session.rollback()


def check_limiter() -> str:
    """The limiter's shared storage: "ok", or "degraded" while limits count in memory."""
    return limiter.check()


def check_directory() -> str:
    try:
        get_directory().ping()
    except DirectoryError:
        return "unavailable"
    return "ok"
