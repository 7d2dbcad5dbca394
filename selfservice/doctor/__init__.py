"""The configuration doctor behind `selfservice check`: proves the setup on the live services.

Each check gives one :class:`Finding`: a verdict, what was checked, the cause in plain
words and the setting to change. Checks only read: nothing is written anywhere, so the
doctor is safe to run against production at any time. The CLI only prints findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from selfservice.directory.interfaces import Directory


class Verdict(StrEnum):
    OK = "ok"
    INFO = "info"  # a fact worth knowing (e.g. the policy found), not a problem
    WARN = "warn"  # works, but probably not as meant
    FAIL = "fail"  # the portal will not work as configured


@dataclass(frozen=True)
class Finding:
    """One check's outcome; ``setting`` names what to change (empty when nothing to change)."""

    verdict: Verdict
    check: str
    cause: str
    setting: str = ""

    def line(self) -> str:
        """The finding as one printable line: ``FAIL  directory bind: ... [LDAP_BIND_PASSWORD]``."""
        where = f"  [setting: {self.setting}]" if self.setting else ""
        return f"{self.verdict.value.upper():<5} {self.check}: {self.cause}{where}"


def ok(check: str, cause: str, setting: str = "") -> Finding:
    return Finding(Verdict.OK, check, cause, setting)


def info(check: str, cause: str, setting: str = "") -> Finding:
    return Finding(Verdict.INFO, check, cause, setting)


def warn(check: str, cause: str, setting: str = "") -> Finding:
    return Finding(Verdict.WARN, check, cause, setting)


def fail(check: str, cause: str, setting: str = "") -> Finding:
    return Finding(Verdict.FAIL, check, cause, setting)


def failed(findings: list[Finding]) -> bool:
    """Whether any finding is a failure (the check command then exits non-zero)."""
    return any(finding.verdict is Verdict.FAIL for finding in findings)


def diagnose(
    settings: Mapping[str, Any], directory: Directory, engine: Engine, migrations_dir: Path
) -> list[Finding]:
    """Every check, in the order to fix them: database, limiter, directory, mail."""
    from selfservice.doctor.directory import check_directory
    from selfservice.doctor.services import check_database, check_limiter, check_smtp

    return [
        *check_database(engine, migrations_dir),
        *check_limiter(settings),
        *check_directory(settings, directory),
        *check_smtp(settings),
    ]
