"""Sync queue rows for pages that need some (browser tests)."""

from __future__ import annotations

from flask import Flask

from selfservice.extensions import db
from selfservice.sync.models import SyncStatus, SyncWrite
from selfservice.timeutil import utcnow


def add_sync_writes(app: Flask) -> None:
    """One pending write (after a failed attempt) and one refused by the target's policy."""
    now = utcnow()
    common = {
        "account_key": "k-1000001",
        "account_login": "s1000001",
        "how": "recovery",
        "must_change": False,
    }
    with app.app_context():
        db.session.add_all(
            [
                SyncWrite(
                    change_id="a" * 32,
                    target="ad",
                    lookups={"login": "s1000001"},
                    secret="gAAAA-not-a-real-token",
                    status=SyncStatus.QUEUED.value,
                    attempts=1,
                    next_attempt_at=now,
                    last_error="AD did not answer: LDAPSocketOpenError",
                    **common,
                ),
                SyncWrite(
                    change_id="b" * 32,
                    target="library",
                    lookups={"login": "s1000001"},
                    secret=None,
                    status=SyncStatus.REFUSED.value,
                    attempts=1,
                    next_attempt_at=now,
                    settled_at=now,
                    last_error="The new password is too short. Choose a longer one.",
                    **common,
                ),
            ]
        )
        db.session.commit()
