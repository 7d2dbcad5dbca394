"""An account an administrator disabled never gets a password through self-service.

The refusal comes only once the person has shown who they are (right answers, and the
mailed code where one is asked), so /forgot's first steps say nothing (invariant 4); it
is checked again where the password is written, so an account disabled after the answers
is refused truthfully, with its token unspent (invariant 15). A failure lock is not a
disable: self-service still ends it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select

from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal.passwords import AccountDisabled, How, NewPassword, apply_new_password
from selfservice.security import get_security
from selfservice.security.models import TokenNonce
from tests.conftest import AppFactory, AuthActions, csrf_token, person, post_form
from tests.fixtures.directories import ALL_DIRECTORIES
from tests.fixtures.disabling import disable_by_admin, failure_lock_time, ldap_lock
from tests.portal.test_recovery import (
    NEW_PASSWORD,
    audit,
    binds,
    enroll,
    journey,
    mailed_code,
    outbox,
    recover,
    reset_to,
)
from tests.samba import LOCKOUT_THRESHOLD

DISABLED_PAGE = "has been disabled"


def still_disabled(app: Flask, login: str) -> bool:
    with app.app_context():
        account = get_directory().find(login)
        return account is not None and account.disabled_by_admin


def refusals(app: Flask) -> list[dict[str, object]]:
    return [
        event.details
        for event in audit(app, Tag.PASSWORD_CHANGE_FAILED)
        if event.details.get("reason") == "AccountDisabled"
    ]


def live_tokens(app: Flask) -> int:
    with app.app_context():
        return len(db.session.scalars(select(TokenNonce).where(TokenNonce.used_at.is_(None))).all())


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_an_account_disabled_by_an_administrator_gets_no_reset_token_after_right_answers(
    make_app: AppFactory, request: pytest.FixtureRequest, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    disable_by_admin(request, app, "s1000001")
    client = app.test_client()

    assert recover(client, app, "s1000001") == "/forgot/help"

    page = client.get("/forgot/help")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert DISABLED_PAGE in text
    assert "help desk" in text
    assert live_tokens(app) == 0
    assert refusals(app) == [{"how": "recovery", "reason": "AccountDisabled"}]
    assert audit(app, Tag.PASSWORD_RESET) == []
    assert still_disabled(app, "s1000001")


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_an_account_disabled_after_the_answers_is_refused_where_the_password_is_written(
    make_app: AppFactory, request: pytest.FixtureRequest, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    client = app.test_client()
    location = recover(client, app, "s1000001")
    assert location.startswith("/forgot/reset/")
    with app.app_context():
        changed_before = get_directory().password_changed_at(get_directory().find("s1000001"))  # type: ignore[arg-type]
    disable_by_admin(request, app, "s1000001")

    shown = client.get(location)
    assert shown.status_code == 403
    assert DISABLED_PAGE in shown.get_data(as_text=True)
    form = {
        "csrf_token": csrf_token(client, "/forgot"),
        "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    refused = client.post(location, data=form)
    assert refused.status_code == 403
    assert DISABLED_PAGE in refused.get_data(as_text=True)

    assert live_tokens(app) == 1  # nothing changed: the token is not spent
    assert audit(app, Tag.PASSWORD_RESET) == []
    assert len(refusals(app)) == 2
    assert still_disabled(app, "s1000001")
    with app.app_context():  # the password was never written
        directory_now = get_directory()
        assert directory_now.password_changed_at(directory_now.find("s1000001")) == changed_before  # type: ignore[arg-type]


def test_a_parent_disabled_by_an_administrator_is_refused_after_the_mailed_code(
    make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    app = make_app()
    enroll(app, "p2000001")
    disable_by_admin(request, app, "p2000001")
    client = app.test_client()

    assert recover(client, app, "p2000001") == "/forgot/code"  # like any parent with an address on file
    done = post_form(client, "/forgot/code", {"code": mailed_code(app)})

    assert done.headers["Location"] == "/forgot/help"
    assert DISABLED_PAGE in client.get("/forgot/help").get_data(as_text=True)
    assert live_tokens(app) == 0
    assert still_disabled(app, "p2000001")


def test_wrong_answers_for_a_disabled_account_look_like_any_other_login(
    make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    app = make_app(LOCKOUT_MAX_FAILURES=1, RECOVERY_RATE_LIMIT="1000 per minute")
    enroll(app, "s1000001")
    enroll(app, "s1000002")
    disable_by_admin(request, app, "s1000002")
    disabled = journey(app, "s1000002")
    assert journey(app, "nobody-like-this") == disabled
    assert journey(app, "s1000001") == disabled
    assert audit(app, Tag.PASSWORD_CHANGE_FAILED) == []  # wrong answers never reach the disable check


def test_the_reset_write_itself_refuses_a_disabled_account(make_app: AppFactory) -> None:
    """The one write path checks too, whoever calls it."""
    app = make_app()
    with app.app_context():
        found = get_directory().find("s1000001")
        assert found is not None
        account = replace(found, disabled=True, disabled_by_admin=True)
        with pytest.raises(AccountDisabled):
            apply_new_password(
                get_directory(),
                get_security(),
                account,
                NewPassword(NEW_PASSWORD, NEW_PASSWORD),
                how=How.RECOVERY,
                origin=SYSTEM,
            )
    assert binds(app, "s1000001", person("s1000001").password)


@pytest.mark.parametrize(
    "directory",
    [param for param in ALL_DIRECTORIES if param.values[0] != "builtin"],
)
def test_a_failure_locked_account_still_resets_and_the_lock_ends(
    make_app: AppFactory, request: pytest.FixtureRequest, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    if directory == "openldap":
        ldap_lock(request.getfixturevalue("slapd"), "s1000001", failure_lock_time())
    else:
        for _ in range(LOCKOUT_THRESHOLD):
            binds(app, "s1000001", "Wrong-Guess-0000")
    with app.app_context():
        locked = get_directory().find("s1000001")
        assert locked is not None
        assert locked.disabled
        assert not locked.disabled_by_admin
    client = app.test_client()

    location = recover(client, app, "s1000001")
    assert reset_to(client, location).headers["Location"] == "/forgot/done"
    assert binds(app, "s1000001", NEW_PASSWORD)


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_an_account_disabled_between_the_read_and_the_write_is_told_so_not_done(
    make_app: AppFactory, request: pytest.FixtureRequest, directory: str
) -> None:
    """The request read the account enabled; an administrator disables it before the write.

    Before, the write went through: "your password was changed", a reset audited and
    noticed, and on OpenLDAP ppolicy lifted the lock with the reset. The adapter checks the
    account where it writes: nothing written, the disabled page, the refusal audited.
    """
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    client = app.test_client()
    location = recover(client, app, "s1000001")
    with app.app_context():
        adapter = get_directory()
        changed_before = adapter.password_changed_at(adapter.find("s1000001"))  # type: ignore[arg-type]
    write = adapter.set_password

    def disabled_first(*args: object, **kwargs: object) -> None:
        disable_by_admin(request, app, "s1000001")  # after the request's read, before its write
        write(*args, **kwargs)  # type: ignore[arg-type]

    adapter.set_password = disabled_first  # type: ignore[method-assign]

    refused = reset_to(client, location)

    assert refused.status_code == 403
    assert DISABLED_PAGE in refused.get_data(as_text=True)
    assert still_disabled(app, "s1000001")
    assert live_tokens(app) == 1  # nothing changed: the token is not spent
    assert audit(app, Tag.PASSWORD_RESET) == []
    assert refusals(app) == [{"how": "recovery", "reason": "AccountDisabled"}]
    assert [message.purpose for message in outbox(app) if message.purpose.startswith("notice:")] == []
    with app.app_context():  # the password was never written
        assert adapter.password_changed_at(adapter.find("s1000001")) == changed_before  # type: ignore[arg-type]


@pytest.mark.parametrize("directory", ALL_DIRECTORIES)
def test_a_signed_in_change_for_an_account_disabled_before_the_write_is_told_so(
    make_app: AppFactory, request: pytest.FixtureRequest, directory: str
) -> None:
    """Builtin wrote the password and said "changed"; OpenLDAP said "not your current password";
    AD showed its refusal of the bind as a password rule under the form."""
    app = make_app(directory=directory)
    client = app.test_client()
    AuthActions(client).login("p2000001")
    with app.app_context():
        adapter = get_directory()
    change = adapter.change_password

    def disabled_first(*args: object, **kwargs: object) -> None:
        disable_by_admin(request, app, "p2000001")  # after the request's read, before its write
        change(*args, **kwargs)  # type: ignore[arg-type]

    adapter.change_password = disabled_first  # type: ignore[method-assign]
    form = {"current_password": person("p2000001").password, "new_password": NEW_PASSWORD}

    refused = post_form(client, "/password", {**form, "confirm": NEW_PASSWORD})

    assert refused.status_code == 403
    assert DISABLED_PAGE in refused.get_data(as_text=True)
    assert still_disabled(app, "p2000001")
    assert audit(app, Tag.PASSWORD_CHANGED) == []
    assert refusals(app) == [{"how": "change", "reason": "AccountDisabled"}]
    assert [message.purpose for message in outbox(app) if message.purpose.startswith("notice:")] == []
