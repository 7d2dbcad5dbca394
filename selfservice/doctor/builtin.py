"""Checks of the built-in directory: its accounts and role groups, in the portal's own database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from selfservice.directory.models import DirectoryAccount, DirectoryGroup, group_members
from selfservice.doctor import Finding, fail, ok, warn
from selfservice.extensions import db


def check_builtin(settings: Mapping[str, Any]) -> list[Finding]:
    """The built-in directory: how many accounts it holds, and each role group's members."""
    try:
        accounts = db.session.scalar(select(func.count()).select_from(DirectoryAccount)) or 0
        members = dict(
            db.session.execute(
                select(DirectoryGroup.name, func.count(group_members.c.account_id))
                .join(group_members, isouter=True)
                .group_by(DirectoryGroup.name)
            ).all()
        )
    except SQLAlchemyError:
        db.session.rollback()
        return [fail("directory", "the built-in directory's tables cannot be read", "DATABASE_URL")]
    if not accounts:
        cause = "built-in directory with no accounts yet: `selfservice accounts import FILE.csv`"
        findings = [warn("directory", cause, "DIRECTORY")]
    else:
        findings = [ok("directory", f"built-in directory: {accounts} accounts")]
    for role, group in sorted(settings["ROLE_GROUPS"].items()):
        setting = f"ROLE_GROUPS.{role}"
        if group not in members:
            findings.append(warn(f"role group {role}", f"no account is in the group {group!r}", setting))
        else:
            findings.append(ok(f"role group {role}", f"{group}: {members[group]} member(s)", setting))
    return findings
