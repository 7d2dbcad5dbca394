"""Checks of the portal's other services: database and its migrations, limiter storage, SMTP relay."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from limits.storage import storage_from_string
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from selfservice.config import ConfigError, mask_url
from selfservice.doctor import Finding, fail, ok, warn
from selfservice.limiter import without_password_in
from selfservice.mail.smtp import SmtpSettings, connect, describe


def check_database(engine: Engine, migrations_dir: Path) -> list[Finding]:
    """Reachable, and at the newest migration this code knows."""
    script = ScriptDirectory.from_config(_alembic_config(migrations_dir))
    wanted = set(script.get_heads())
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        cause = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        return [fail("database", f"cannot connect: {cause}", "DATABASE_URL")]
    where = f"{engine.url.get_backend_name()} database"
    if not current:
        return [
            fail("database", f"{where} reachable but empty: run `selfservice db upgrade`", "DATABASE_URL")
        ]
    if current != wanted:
        cause = f"at migration {', '.join(sorted(current))}, this version needs {', '.join(sorted(wanted))}"
        return [fail("database", f"{cause}: run `selfservice db upgrade`", "DATABASE_URL")]
    return [ok("database", f"{where} reachable, at the latest migration ({', '.join(sorted(current))})")]


def _alembic_config(migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return config


def check_limiter(settings: Mapping[str, Any]) -> list[Finding]:
    """The rate limiter's storage answers, and is shared when several workers serve the portal."""
    uri = str(settings["RATELIMIT_STORAGE_URI"])
    setting = "RATELIMIT_STORAGE_URI"
    if uri.startswith("memory://"):
        workers = settings["WEB_WORKERS"]
        if workers > 1:
            cause = f"memory storage with WEB_WORKERS = {workers}: each worker would count on its own"
            return [fail("limiter storage", f"{cause}; use redis://", setting)]
        return [ok("limiter storage", "in memory (one worker)", setting)]
    try:
        healthy = storage_from_string(uri).check()
    except Exception as exc:  # noqa: BLE001 - each storage backend raises its own errors
        cause = without_password_in(str(exc), uri)
        return [fail("limiter storage", f"cannot use {mask_url(uri)}: {cause}", setting)]
    if not healthy:
        return [fail("limiter storage", f"{mask_url(uri)} does not answer", setting)]
    return [ok("limiter storage", f"{mask_url(uri)} answers", setting)]


def check_smtp(settings: Mapping[str, Any]) -> list[Finding]:
    """The relay answers with the configured security (and accepts the login when one is set)."""
    if not settings["SMTP_HOST"]:
        cause = "SMTP_HOST is empty: mail waits in the outbox and nobody receives notices"
        return [warn("mail relay", cause, "SMTP_HOST")]
    try:
        smtp_settings = SmtpSettings.from_config(settings)
    except ConfigError as exc:
        return [fail("mail relay", str(exc), "SMTP_SECURITY, MAIL_FROM")]
    where = f"{smtp_settings.host}:{smtp_settings.port} ({smtp_settings.security})"
    try:
        smtp = connect(smtp_settings)
    except smtplib.SMTPAuthenticationError as exc:
        return [
            fail(
                "mail relay",
                f"{where} refused the login: {describe(exc, smtp_settings)}",
                "SMTP_USERNAME, SMTP_PASSWORD",
            )
        ]
    except (smtplib.SMTPException, OSError) as exc:
        cause = f"{where}: {describe(exc, smtp_settings)}"
        return [fail("mail relay", cause, "SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_CA_FILE")]
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
    return [ok("mail relay", f"{where} answers{', login accepted' if smtp_settings.username else ''}")]
