"""What the person is told after a change, with sync targets: which systems have the new
password now, which follow and when, in their language, and nothing false when the change
could not be confirmed (issue 15, invariant 15)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from selfservice.config import DEFAULTS
from selfservice.directory.interfaces import DirectoryUnavailable, OutcomeUnknown
from selfservice.sync.targets import parse_targets
from tests.conftest import AuthActions, person, post_form
from tests.portal.test_write_faults import recovery_token

NEW = "Harvest-Lantern-Sync-77"
LIBRARY = {"name": "library", "label": "Library catalog", "kind": "builtin", "match": ["login"]}
WINDOWS = {
    "name": "windows",
    "label": "Windows sign-in",
    "label_by_language": {"es": "el inicio de sesión de Windows"},
    "kind": "builtin",
    "match": ["login"],
}


def done_page(app: Flask, language: str = "en") -> str:
    client = app.test_client()
    client.set_cookie("lang", language)
    AuthActions(client).login("p2000001")
    form = {"current_password": person("p2000001").password, "new_password": NEW, "confirm": NEW}
    assert post_form(client, "/password", form).status_code == 303
    return client.get("/password/done").get_data(as_text=True)


def test_the_done_page_names_the_system_that_has_it_and_the_ones_that_follow(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[WINDOWS], SYNC_PRIMARY_LABEL="Student Portal", SYNC_PROMISE_MINUTES=5)
    page = done_page(app)
    assert "Your new password works now for Student Portal. Windows sign-in follows within 5 minutes." in page


def test_several_targets_are_listed_in_one_sentence(make_app: Any) -> None:
    app = make_app(SYNC_TARGETS=[LIBRARY, WINDOWS], SYNC_PROMISE_MINUTES=1)
    page = done_page(app)
    assert "Your new password works now for the Student and Parent Portals." in page
    assert "Library catalog and Windows sign-in follow within 1 minute." in page


def test_the_names_and_the_sentence_are_in_the_page_language(make_app: Any) -> None:
    app = make_app(
        SYNC_TARGETS=[WINDOWS, LIBRARY],
        SYNC_PRIMARY_LABEL="Student Portal",
        SYNC_PRIMARY_LABEL_BY_LANGUAGE={"es": "el Portal Estudiantil"},
        SYNC_PROMISE_MINUTES=5,
    )
    page = done_page(app, "es")
    assert "Su nueva contraseña ya funciona en el Portal Estudiantil." in page
    assert "El inicio de sesión de Windows y Library catalog la recibirán en 5 minutos como máximo." in page
    assert "Student Portal" not in page


def test_a_target_without_a_label_is_named_from_its_short_name() -> None:
    targets = [{"name": "ad", "kind": "ad"}, {"name": "google_workspace", "kind": "builtin"}, LIBRARY]
    labels = [target.label for target in parse_targets({**DEFAULTS, "SYNC_TARGETS": targets})]
    assert labels == ["AD", "Google workspace", "Library catalog"]


@pytest.fixture
def unconfirmable(make_app: Any) -> Flask:
    """A write that gets no answer, and a directory that cannot tell whether it took."""
    app = make_app(SYNC_TARGETS=[WINDOWS, LIBRARY])
    directory = app.extensions["selfservice.directory"]

    def lost(*args: Any, **kwargs: Any) -> None:
        raise OutcomeUnknown("no answer")

    def away(*args: Any, **kwargs: Any) -> None:
        raise DirectoryUnavailable("away")

    directory.set_password = lost
    directory.authenticate = away
    return app


def test_an_unconfirmed_change_promises_the_targets_only_once_it_is_confirmed(unconfirmable: Flask) -> None:
    token = recovery_token(unconfirmable, "s1000001")
    response = post_form(
        unconfirmable.test_client(), f"/forgot/reset/{token}", {"new_password": NEW, "confirm": NEW}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 202
    assert (
        "If the change went through, the new password also reaches Windows sign-in and Library catalog "
        "once we have confirmed it." in page
    )
    assert "works now" not in page
    assert "follow within" not in page
