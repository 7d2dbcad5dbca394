"""Held sync writes in the queue, on the builtin directories (the real-server walk is test_held.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from selfservice.audit.services import Origin
from selfservice.directory import get_directory
from selfservice.directory.builtin import BuiltinDirectory
from selfservice.extensions import db
from selfservice.portal import pending
from selfservice.portal.pending import How
from selfservice.security import get_security
from selfservice.sync import get_sync
from selfservice.sync.models import SyncWrite
from selfservice.sync.services import queue_sync
from selfservice.sync.worker import sync_due

LIBRARY = {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]}
ORIGIN = Origin(ip="203.0.113.9", user_agent="pytest")
EARLIER, LATER = "Earlier-Lantern-Sync-31", "Later-Lantern-Sync-32"


def statuses(app: Flask) -> list[tuple[str, bool]]:
    with app.app_context():
        rows = db.session.execute(sa.select(SyncWrite.status, SyncWrite.secret).order_by(SyncWrite.id)).all()
    return [(status, secret is not None) for status, secret in rows]


def test_a_held_newer_change_does_not_supersede_a_queued_older_one(make_app: Any) -> None:
    """The newer change may turn out not made: until then the older one still goes through."""
    app = make_app(SYNC_TARGETS=[LIBRARY])
    with app.test_request_context():
        account = get_directory().find("s1000001")
        queue_sync(get_sync(), account, EARLIER, how="recovery", must_change=False, origin=ORIGIN)
        intent = pending.open_intent(
            get_directory(), account, how=How.RECOVERY, origin=ORIGIN, sync_password=LATER
        )
        db.session.commit()
        result = sync_due(app.config, get_sync(), worker="w1")
        assert result.counts == {"done": 1}
        assert BuiltinDirectory(app.config).authenticate("s1000001", EARLIER) is not None
        assert statuses(app) == [("done", False), ("held", True)]

        assert pending.abandon(intent.id, reason="not-applied", settled_by="reconcile")

    assert statuses(app) == [("done", False)]  # the held password is gone with the change


def test_a_released_change_supersedes_an_older_queued_one(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[LIBRARY])
    with app.test_request_context():
        directory = get_directory()
        account = directory.find("s1000001")
        queue_sync(get_sync(), account, EARLIER, how="recovery", must_change=False, origin=ORIGIN)
        intent = pending.open_intent(directory, account, how=How.RECOVERY, origin=ORIGIN, sync_password=LATER)
        db.session.commit()
        directory.set_password(account, LATER, must_change=False)
        assert pending.complete(directory, get_security(), intent.id, account, settled_by="reconcile")
        result = sync_due(app.config, get_sync(), worker="w1")
    assert result.counts == {"superseded": 1, "done": 1}
    assert statuses(app) == [("superseded", False), ("done", False)]
    with app.app_context():
        assert BuiltinDirectory(app.config).authenticate("s1000001", LATER) is not None


def test_a_change_confirmed_late_is_due_from_its_release_not_from_when_it_was_held(make_app: Any) -> None:
    """The promise ("within 5 minutes") starts once the change is confirmed: not overdue at once."""
    from datetime import timedelta

    from selfservice.sync.services import target_states
    from selfservice.timeutil import utcnow

    app = make_app(SYNC_TARGETS=[LIBRARY], SYNC_PROMISE_MINUTES=5)
    with app.test_request_context():
        directory = get_directory()
        account = directory.find("s1000001")
        intent = pending.open_intent(directory, account, how=How.RECOVERY, origin=ORIGIN, sync_password=LATER)
        db.session.commit()
        # The directory's answer was lost; the sweeper confirms the change 20 minutes later.
        held_at = utcnow() - timedelta(minutes=20)
        db.session.execute(sa.update(SyncWrite).values(created_at=held_at))
        db.session.commit()
        directory.set_password(account, LATER, must_change=False)
        assert pending.complete(directory, get_security(), intent.id, account, settled_by="reconcile")

        [state] = target_states(get_sync(), overdue_before=utcnow() - timedelta(minutes=5))
    assert (state.pending, state.overdue) == (1, 0)
    assert state.oldest_queued is not None
    assert state.oldest_queued > held_at
    assert app.test_cli_runner().invoke(args=["sync", "status"]).exit_code == 0
