"""Reset links: one link per click, only to the right person, used once, refused when stale."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, update

from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.directory.models import DirectoryAccount
from selfservice.extensions import db
from selfservice.helpdesk.models import ResetLink
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import get_security
from tests.conftest import AppFactory, csrf_token, person
from tests.helpdesk.helpers import (
    act,
    action_form,
    audit_events,
    browser,
    link_mails,
    open_request,
    opened_number,
    outbox,
    token_of,
)

GOOD_PASSWORD = "Copper-Kettle-Meadow-42"


def student_request_with_link(app: Flask) -> tuple[str, str]:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    return number, token_of(link_mails(app)[-1])


def use_link(app: Flask, token: str, password: str = GOOD_PASSWORD, confirm: str | None = None):
    holder = browser(app, None)
    data = {"new_password": password, "confirm": confirm if confirm is not None else password}
    return holder.post(f"/reset/{token}", data={"csrf_token": csrf_token(holder, "/"), **data})


def binds(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return app.extensions["selfservice.directory"].authenticate(login, password) is not None


def test_double_clicking_issue_reset_link_sends_one_link_and_one_mail(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    its = browser(app, "its1")
    form = action_form(its, number)
    first = its.post(f"/helpdesk/requests/{number}/reset-link", data=form)
    second = its.post(f"/helpdesk/requests/{number}/reset-link", data=form)
    assert first.status_code == second.status_code == 303
    assert "Nothing was done" in its.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert len(link_mails(app)) == 1
    assert len(audit_events(app, Tag.RESET_LINK_ISSUED)) == 1
    with app.app_context():
        assert len(db.session.scalars(select(ResetLink)).all()) == 1


def test_double_clicking_any_action_does_it_once(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "parent"))
    support = browser(app, "support1")
    form = action_form(support, number)
    contact = {**form, "contact_method": "voicemail", "contact_outcome": "left-message"}
    for _click in range(2):
        support.post(f"/helpdesk/requests/{number}/contact", data=contact)
    form = action_form(support, number)
    for _click in range(2):
        support.post(
            f"/helpdesk/requests/{number}/resolve", data={**form, "resolve_note": "Parent found it."}
        )
    page = support.get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert page.count("Contact with the parent") == 1
    assert len(outbox(app, "helpdesk:resolved")) == 1


def test_the_link_page_never_shows_or_asks_for_an_address(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    page = browser(app, None).get(f"/reset/{token}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "s1000001" in text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "@" not in text.split("<main", 1)[1].split("</main>", 1)[0]


def test_a_used_link_is_refused(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    assert use_link(app, token).status_code == 200
    again = use_link(app, token, "Another-Fresh-Password-9")
    assert again.status_code == 410
    assert "cannot be used" in again.get_data(as_text=True)
    assert binds(app, "s1000001", GOOD_PASSWORD)
    assert audit_events(app, Tag.RESET_LINK_REFUSED)


def test_an_expired_link_is_refused(make_app: AppFactory) -> None:
    app = make_app(RESET_LINK_HOURS_STUDENT=0)
    _number, token = student_request_with_link(app)
    assert browser(app, None).get(f"/reset/{token}").status_code == 410
    assert use_link(app, token).status_code == 410
    assert binds(app, "s1000001", person("s1000001").password)


def test_a_forged_link_is_refused(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    assert browser(app, None).get(f"/reset/{token[:-2]}xx").status_code == 410
    assert browser(app, None).get("/reset/not-a-token").status_code == 410


def test_a_password_the_policy_refuses_leaves_the_link_usable(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    weak = use_link(app, token, "password")
    assert weak.status_code == 400
    assert "too" in weak.get_data(as_text=True)
    mismatch = use_link(app, token, GOOD_PASSWORD, "Something-Else-Entirely-7")
    assert mismatch.status_code == 400
    assert "do not match" in mismatch.get_data(as_text=True)
    assert use_link(app, token).status_code == 200
    assert binds(app, "s1000001", GOOD_PASSWORD)


def test_the_assisted_password_must_be_changed_at_next_sign_in(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    use_link(app, token)
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "s1000001"))
        assert row.must_change is True


def test_a_new_link_replaces_the_old_one(app: Flask) -> None:
    number, first = student_request_with_link(app)
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    second = token_of(link_mails(app)[-1])
    assert first != second
    assert use_link(app, first).status_code == 410
    assert use_link(app, second).status_code == 200
    page = browser(app, "its1").get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "Replaced by a newer link" in page


def test_a_password_change_elsewhere_voids_the_link(app: Flask) -> None:
    number, token = student_request_with_link(app)
    with app.test_request_context():
        directory = app.extensions["selfservice.directory"]
        account = directory.find("s1000001")
        new = NewPassword("Walnut-Harbor-Violet-5", "Walnut-Harbor-Violet-5")
        apply_new_password(
            directory,
            get_security(),
            account,
            new,
            how=How.CHANGE,
            origin=SYSTEM,
            current_password=person("s1000001").password,
        )
    assert use_link(app, token).status_code == 410
    page = browser(app, "its1").get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "No longer valid" in page


def test_a_request_resolved_by_staff_voids_its_link(app: Flask) -> None:
    # Done another way (the student remembered, the request was a mistake): the link
    # mailed earlier must not stay usable for its 72 hours.
    number, token = student_request_with_link(app)
    resolved = act(browser(app, "its1"), number, "resolve", {"resolve_note": "Remembered the password."})
    assert resolved.status_code == 303
    refused = use_link(app, token)
    assert refused.status_code == 410
    assert binds(app, "s1000001", person("s1000001").password)
    page = browser(app, "its1").get(f"/helpdesk/requests/{number}").get_data(as_text=True)
    assert "Void: the request was resolved without it." in page


def test_the_parent_link_goes_to_the_address_on_file_at_issue_time(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "parent"))
    assert act(browser(app, "support1"), number, "escalate", {"escalate_reason": "Reset."}).status_code == 303
    with app.app_context():  # the parent updated their Parent Information screen meanwhile
        db.session.execute(
            update(DirectoryAccount)
            .where(DirectoryAccount.login == "p2000001")
            .values(email="maria@new.test")
        )
        db.session.commit()
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    assert [mail.to_address for mail in link_mails(app)] == ["maria@new.test"]


@pytest.mark.parametrize(
    "change", [{"disabled": True}, {"groups": []}], ids=["opener-disabled", "opener-no-longer-an-employee"]
)
def test_no_student_link_when_the_opener_is_no_longer_an_active_employee(app: Flask, change: dict) -> None:
    """A student's link goes to the employee who opened the request: not to a disabled or former one."""
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "teacher1"))
        for name, value in change.items():
            setattr(row, name, value)
        db.session.commit()
    response = act(browser(app, "its1"), number, "reset-link")
    assert response.status_code == 409
    assert "no longer an active employee" in response.get_data(as_text=True)
    assert link_mails(app) == []


def test_no_link_when_the_employee_has_no_address_in_the_directory(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    with app.app_context():  # the address it had when the request was opened must not be used
        db.session.execute(
            update(DirectoryAccount).where(DirectoryAccount.login == "teacher1").values(email=None)
        )
        db.session.commit()
    response = act(browser(app, "its1"), number, "reset-link")
    assert response.status_code == 409
    assert "has no email address in the directory" in response.get_data(as_text=True)
    assert link_mails(app) == []


def test_the_link_form_takes_no_address(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    its = browser(app, "its1")
    form = action_form(its, number)
    its.post(f"/helpdesk/requests/{number}/reset-link", data={**form, "to": "attacker@evil.test"})
    assert [mail.to_address for mail in link_mails(app)] == [person("teacher1").email]


# An account an administrator disabled ------------------------------------------------------


def disable(app: Flask, login: str) -> None:
    with app.app_context():
        db.session.execute(
            update(DirectoryAccount).where(DirectoryAccount.login == login).values(disabled=True)
        )
        db.session.commit()


def test_staff_are_told_why_no_link_goes_out_for_a_disabled_account(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    disable(app, "s1000001")
    response = act(browser(app, "its1"), number, "reset-link")
    assert response.status_code == 409
    assert "disabled this account" in response.get_data(as_text=True)
    assert link_mails(app) == []


def test_a_link_for_an_account_disabled_after_it_was_issued_sets_no_password(app: Flask) -> None:
    _number, token = student_request_with_link(app)
    disable(app, "s1000001")

    shown = browser(app, None).get(f"/reset/{token}")
    assert shown.status_code == 403
    assert "has been disabled" in shown.get_data(as_text=True)
    used = use_link(app, token)
    assert used.status_code == 403
    with app.app_context():  # the link stays unused: nothing changed
        assert db.session.scalar(select(ResetLink)).used_at is None  # type: ignore[union-attr]
    assert audit_events(app, Tag.RESET_LINK_USED) == []
    refused = [e.details for e in audit_events(app, Tag.PASSWORD_CHANGE_FAILED)]
    assert {"how": "assisted", "reason": "AccountDisabled"} in refused


# SQLite lets one writer at a time: the new link cannot land inside the change's transaction.
@pytest.mark.row_locks
def test_a_link_issued_while_the_old_one_is_being_used_dies_with_the_request(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ITS sends a new link just as the holder sets a password with the old one. The change voids
    the account's tokens, then resolves the request; a link committed between the two stayed
    usable for its 72 hours after the request was resolved and the password changed (invariant 6)."""
    import threading

    from selfservice.portal import pending

    number, first = student_request_with_link(app)
    its = browser(app, "its1")
    form = action_form(its, number)
    original = pending.release_held
    answers: list[int] = []

    def release_then_let_its_send(*args: object, **kwargs: object) -> object:
        if not answers:  # inside the change's transaction: every token of the account already void
            sender = threading.Thread(
                target=lambda: answers.append(
                    its.post(f"/helpdesk/requests/{number}/reset-link", data=form).status_code
                )
            )
            sender.start()
            sender.join(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(pending, "release_held", release_then_let_its_send)
    assert use_link(app, first).status_code == 200
    assert answers == [303]
    second = token_of(link_mails(app)[-1])
    assert second != first
    assert use_link(app, second, "Another-Fresh-Password-9").status_code == 410
    assert binds(app, "s1000001", GOOD_PASSWORD)
