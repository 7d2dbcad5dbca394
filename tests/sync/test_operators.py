"""What operators and account holders see of the sync: admin page, commands, settings, done pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from selfservice import create_app
from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.cli import main
from selfservice.config import ConfigError
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.sync import get_sync
from selfservice.sync.models import SyncWrite
from selfservice.sync.services import queue_sync
from selfservice.sync.worker import sync_due
from selfservice.timeutil import utcnow
from tests.conftest import AuthActions, base_settings, person, post_form
from tests.site.test_site import closed_port

LIBRARY = {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]}


def unreachable_target() -> dict[str, Any]:
    """An openldap target on a closed port: every attempt fails at once."""
    return {
        "name": "gradebook",
        "label": "Gradebook",
        "kind": "openldap",
        "settings": {
            "LDAP_URL": f"ldap://127.0.0.1:{closed_port()}",
            "LDAP_BIND_DN": "cn=sync,dc=school,dc=test",
            "LDAP_BIND_PASSWORD": "Gradebook-Bind-Secret-9",
            "LDAP_BASE_DN": "dc=school,dc=test",
            "LDAP_CONNECT_TIMEOUT_SECONDS": 1,
        },
    }


def queue_for(app: Flask, login: str, password: str = "Meadow-Copper-Sync-33") -> None:  # noqa: S107
    with app.app_context():
        account = get_directory().find(login)
        queue_sync(get_sync(), account, password, how="recovery", must_change=False, origin=Origin())
        db.session.commit()


def pending_ids(app: Flask) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(sa.select(SyncWrite.id).where(SyncWrite.status == "queued")))


@pytest.fixture
def sync_admin(make_app: Any) -> tuple[Flask, FlaskClient]:
    app = make_app(SYNC_TARGETS=[unreachable_target(), LIBRARY])
    client = app.test_client()
    assert AuthActions(client).login("admin1").status_code == 303
    return app, client


def test_admin_page_shows_pending_and_failed_changes_per_target(sync_admin: Any) -> None:
    app, client = sync_admin
    queue_for(app, "s1000001")
    queue_for(app, "p2000002")
    with app.app_context():
        sync_due(app.config, get_sync(), worker="test")

    page = client.get("/admin/sync/")

    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Gradebook" in text
    assert "Library catalog" in text
    assert "s1000001" in text
    assert "LDAP server did not answer" in text  # the last error of the pending writes
    assert 'href="/admin/sync/" aria-current="page"' in text


def test_admin_gives_up_a_pending_change_and_its_password_is_deleted(sync_admin: Any) -> None:
    app, client = sync_admin
    queue_for(app, "s1000001")
    [gradebook, _library] = pending_ids(app)

    response = post_form(client, f"/admin/sync/{gradebook}/give-up", {}, form_path="/admin/sync/")

    assert response.status_code == 303
    with app.app_context():
        row = db.session.get(SyncWrite, gradebook)
        assert (row.status, row.secret) == ("given-up", None)
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.tag == str(Tag.SYNC_GIVEN_UP))
        ).one()
        assert (event.actor, event.subject, event.details["target"]) == ("admin1", "s1000001", "gradebook")
    again = post_form(client, f"/admin/sync/{gradebook}/give-up", {}, form_path="/admin/sync/")
    assert "That change is no longer pending." in client.get(again.headers["Location"]).get_data(as_text=True)


def test_admin_retries_a_targets_pending_changes_now(sync_admin: Any) -> None:
    app, client = sync_admin
    queue_for(app, "s1000001")
    with app.app_context():
        sync_due(app.config, get_sync(), worker="test")  # gradebook now waits for its backoff

    response = post_form(client, "/admin/sync/retry", {"target": "gradebook"}, form_path="/admin/sync/")

    assert response.status_code == 303
    assert "1 pending changes will be tried again" in client.get("/admin/sync/").get_data(as_text=True)
    with app.app_context():
        assert sync_due(app.config, get_sync(), worker="test").counts == {"queued": 1}


def test_sync_actions_need_a_csrf_token_and_an_admin(sync_admin: Any) -> None:
    app, client = sync_admin
    queue_for(app, "s1000001")
    [gradebook, _library] = pending_ids(app)
    teacher = app.test_client()
    AuthActions(teacher).login("teacher1")

    assert client.post(f"/admin/sync/{gradebook}/give-up").status_code == 400
    assert client.post("/admin/sync/retry", data={"target": "gradebook"}).status_code == 400
    assert teacher.get("/admin/sync/").status_code == 403
    assert (
        post_form(teacher, f"/admin/sync/{gradebook}/give-up", {}, form_path="/password").status_code == 403
    )
    assert pending_ids(app) == [gradebook, _library]  # nothing given up


def test_an_id_too_large_for_the_database_is_not_found(sync_admin: Any) -> None:
    _app, client = sync_admin
    response = post_form(client, "/admin/sync/99999999999999999999/give-up", {}, form_path="/admin/sync/")
    assert response.status_code == 404


def test_unknown_target_in_the_retry_form_is_a_clear_message(sync_admin: Any) -> None:
    _app, client = sync_admin
    response = post_form(client, "/admin/sync/retry", {"target": "nope"}, form_path="/admin/sync/")
    assert "There is no sync target by that name." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_sync_commands_report_status_retry_and_give_up(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[unreachable_target(), LIBRARY])
    runner = app.test_cli_runner()
    queue_for(app, "s1000002")

    ran = runner.invoke(main, ["sync", "run", "--once"])
    status = runner.invoke(main, ["sync", "status"])
    retried = runner.invoke(main, ["sync", "retry", "--target", "gradebook"])
    [gradebook] = pending_ids(app)
    gave_up = runner.invoke(main, ["sync", "give-up", str(gradebook)])
    after = runner.invoke(main, ["sync", "status"])

    assert ran.output.strip() == "sync: done 1, retry later 1"
    assert status.exit_code == 0, status.output
    assert "gradebook (openldap): queued 1, done 0" in status.output
    assert "library (builtin): queued 0, done 1" in status.output
    assert "1 pending writes are due now" in retried.output
    assert gave_up.output.strip() == f"write {gradebook}: given up"
    assert after.exit_code == 0
    assert "given-up 1" in after.output
    assert runner.invoke(main, ["sync", "retry", "--target", "nope"]).exit_code == 2


def test_check_covers_every_target_and_masks_their_secrets(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[unreachable_target(), LIBRARY])

    result = app.test_cli_runner().invoke(main, ["check"])

    assert result.exit_code == 1
    assert "OK    sync target library:" in result.output
    assert "FAIL  sync target gradebook:" in result.output
    assert "Gradebook-Bind-Secret-9" not in result.output


@pytest.mark.parametrize(
    ("targets", "named"),
    [
        ([{"name": "x", "kind": "novell"}], "SYNC_TARGETS[0].kind"),
        ([{"name": "x", "kind": "ad", "match": ["shoe_size"]}], "SYNC_TARGETS[0].match"),
        ([{"name": "x", "kind": "ad", "must_change": "sometimes"}], "SYNC_TARGETS[0].must_change"),
        ([{"name": "x", "kind": "ad", "passwd": "x"}], "SYNC_TARGETS[0]: unknown keys"),
        ([LIBRARY, LIBRARY], "its own name"),
        ([{"kind": "ad"}], "SYNC_TARGETS[0].name"),
        ([{**LIBRARY, "label_by_language": {"es": 7}}], "SYNC_TARGETS[0].label_by_language"),
        ("ad", "SYNC_TARGETS must be a list"),
    ],
)
def test_a_malformed_target_stops_the_start_and_names_the_setting(
    tmp_path: Any, targets: Any, named: str
) -> None:
    settings = {**base_settings("sqlite://", tmp_path), "SYNC_TARGETS": targets}
    with pytest.raises(ConfigError, match=re.escape(named)):
        create_app(settings)


def test_a_malformed_encryption_key_stops_the_start(tmp_path: Any) -> None:
    settings = {**base_settings("sqlite://", tmp_path), "SYNC_ENCRYPTION_KEY": "not-a-key"}
    with pytest.raises(ConfigError, match="SYNC_ENCRYPTION_KEY"):
        create_app(settings)


def test_the_person_is_told_where_the_password_works_and_what_follows(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[LIBRARY], SYNC_PROMISE_MINUTES=10, SYNC_PRIMARY_LABEL="the Student Portal")
    client = app.test_client()
    AuthActions(client).login("p2000001")
    new = "Harvest-Lantern-Sync-77"
    form = {"current_password": person("p2000001").password, "new_password": new, "confirm": new}
    assert post_form(client, "/password", form).status_code == 303

    page = client.get("/password/done").get_data(as_text=True)

    assert "Your new password works now for the Student Portal." in page
    assert "Library catalog follows within 10 minutes." in page


def test_without_targets_the_done_page_promises_nothing(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("p2000001")
    new = "Harvest-Lantern-Sync-77"
    form = {"current_password": person("p2000001").password, "new_password": new, "confirm": new}
    post_form(client, "/password", form)
    assert "follows within" not in client.get("/password/done").get_data(as_text=True)


def test_sync_status_fails_when_a_write_is_later_than_promised(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[unreachable_target()], SYNC_PROMISE_MINUTES=15)
    queue_for(app, "s1000001")
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["sync", "status"]).exit_code == 0
    with app.app_context():
        db.session.execute(sa.update(SyncWrite).values(created_at=utcnow() - timedelta(minutes=16)))
        db.session.commit()

    late = runner.invoke(main, ["sync", "status"])

    assert late.exit_code == 1
    assert "gradebook (openldap): queued 1" in late.output
    assert "1 overdue" in late.output


def test_writes_for_a_target_no_longer_configured_are_settled_and_forgotten(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[unreachable_target()])
    without = make_app(SYNC_TARGETS=[])  # the same database, after the target was removed
    queue_for(app, "s1000001")

    result = without.test_cli_runner().invoke(main, ["sync", "run", "--once"])

    assert "SYNC_TARGETS is empty: nothing to synchronize (done 0, retry later 0, failed 1)" in result.output
    with without.app_context():
        row = db.session.scalars(sa.select(SyncWrite)).one()
        assert (row.status, row.secret, row.last_error) == (
            "failed",
            None,
            "the target is no longer configured",
        )
