"""The directory's password policy as the doctor reports it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selfservice.directory.interfaces import Directory, DirectoryError, PasswordRules
from selfservice.doctor import Finding, info, warn


def policy_findings(settings: Mapping[str, Any], directory: Directory) -> list[Finding]:
    try:
        rules = directory.password_rules()
    except DirectoryError as exc:
        return [warn("password policy", f"could not be read: {exc}")]
    return describe_rules(rules, settings)


def describe_rules(rules: PasswordRules, settings: Mapping[str, Any]) -> list[Finding]:
    """The directory's policy as findings, and how it changes the portal's own minimum."""
    if not rules.source or not (
        rules.min_length or rules.history or rules.complexity or rules.min_age_seconds
    ):
        return [
            warn("password policy", "none found in the directory: only the portal's PASSWORD_* rules apply")
        ]
    parts = [f"at least {rules.min_length} characters", f"history {rules.history}"]
    parts.append("complexity required" if rules.complexity else "no complexity rule")
    if rules.quality_check:
        parts.append("quality check on")
    parts.append(f"minimum age {rules.min_age_seconds} s")
    findings = [info("password policy", f"{rules.source}: {', '.join(parts)}")]
    portal = settings["PASSWORD_MIN_LENGTH"]
    if rules.min_length > portal:
        findings.append(
            info(
                "password length",
                f"the portal asks for {rules.min_length} characters, the directory's minimum "
                f"(PASSWORD_MIN_LENGTH is {portal})",
                "PASSWORD_MIN_LENGTH",
            )
        )
    return findings
