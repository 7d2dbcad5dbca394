"""One login normalisation (NFKC, case-folded, trimmed) for every lookup and key (invariant 16)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.directory import get_directory
from tests.conftest import AppFactory
from tests.fixtures.directories import ALL_DIRECTORIES
from tests.portal.test_recovery import begin, enroll, pinned_ids

#: s1000001 as a phone's full-width keyboard types it (written with escapes: ruff's RUF001).
FULL_WIDTH = "\uff53\uff11\uff10\uff10\uff10\uff10\uff10\uff11"
SPELLINGS = ["s1000001", FULL_WIDTH, "  S1000001 ", "\uff33" + "1000001"]


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_every_adapter_finds_one_account_for_every_spelling_of_a_login(
    make_app: AppFactory, directory: str
) -> None:
    app = make_app(directory=directory)
    with app.app_context():
        found = {spelling: get_directory().find(spelling) for spelling in SPELLINGS}
    keys = {spelling: account.key if account else None for spelling, account in found.items()}
    assert None not in keys.values(), keys
    assert len(set(keys.values())) == 1, keys


def alternate(app: Flask, rounds: int = 8) -> list[tuple[int, ...]]:
    client = app.test_client()
    seen = []
    for n in range(rounds):
        assert begin(client, FULL_WIDTH if n % 2 else "s1000001").status_code == 303
        seen.append(tuple(pinned_ids(client, app)))
    return seen


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_the_full_width_login_cannot_re_roll_the_pinned_questions(
    make_app: AppFactory, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    assert len(set(alternate(app))) == 1


def test_a_decoy_never_replaces_the_live_challenge_of_a_real_account(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    real = pinned_ids(client, app)
    with app.app_context():
        directory = get_directory()
    # An adapter that failed to find the account (as the old lower-casing lookup did): a decoy.
    monkeypatch.setattr(type(directory), "find", lambda self, login, **_: None)
    for _ in range(5):
        begin(client, FULL_WIDTH)
        assert pinned_ids(client, app) == real


def lookup_of(client: FlaskClient) -> str:
    with client.session_transaction() as state:
        return str(state["recovery"]["lookup"])


def challenge_for(app: Flask, typed: str) -> tuple[str, list[int]]:
    client = app.test_client()
    assert begin(client, typed).status_code == 303
    return lookup_of(client), pinned_ids(client, app)


def test_an_unknown_student_id_and_its_login_share_one_decoy_like_a_real_account(
    make_app: AppFactory,
) -> None:
    app = make_app()
    enroll(app, "s1000001")
    # A real student: the ID and the login key one challenge (the account's canonical login).
    assert challenge_for(app, "1000001") == challenge_for(app, "s1000001")
    # A made-up student: the same holds, so comparing the two does not tell it apart.
    assert challenge_for(app, "9999999") == challenge_for(app, "s9999999")
    assert challenge_for(app, "\uff19" * 7) == challenge_for(app, "S9999999")  # full-width digits
    # An email's local part is not mapped: it keys its own decoy.
    assert challenge_for(app, "9999999@district.example")[0] != challenge_for(app, "s9999999")[0]


def test_alias_patterns_follow_the_setting(make_app: AppFactory) -> None:
    app = make_app(RECOVERY_ALIAS_PATTERNS=[["([0-9]{6})", "stu\\1"]])
    assert challenge_for(app, "999999") == challenge_for(app, "stu999999")
    assert challenge_for(app, "9999999")[0] != challenge_for(app, "s9999999")[0]
