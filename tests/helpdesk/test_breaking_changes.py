"""Tests for code-breaking changes that once passed every fast test (issue 14 item 13).

Each test here fails when its change is made:
- an empty PIN on file "matching" a typed PIN of spaces;
- a student's link address read from the request (as it was when opened) instead of the
  directory at the moment the link is issued.
(``session.clear()`` at sign-in: tests/auth/test_sign_in.py::test_session_is_renewed_at_sign_in;
an unknown SECOND_FACTOR value: tests/site/test_config.py, checked at start.)
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from selfservice.directory.models import DirectoryAccount
from selfservice.extensions import db
from tests.helpdesk.helpers import act, add_person, browser, link_mails, open_request, opened_number


@pytest.mark.parametrize("typed", [" ", "    ", "\t"])
def test_a_parent_without_a_pin_on_file_never_matches_a_pin_of_spaces(app: Flask, typed: str) -> None:
    add_person(
        app,
        "p2000099",
        groups=[],
        kind="parent",
        display_name="Rosa Diaz",
        email="rosa.diaz@example.test",
        parent_account_number="A-2000099",
        parent_pin="",
    )
    response = open_request(
        browser(app, "teacher1"), "parent", pin=typed, account_number="A-2000099", parent_name="Rosa Diaz"
    )
    assert response.status_code == 400
    assert "do not match our records" in response.get_data(as_text=True)


def test_a_student_link_goes_to_the_openers_address_as_the_directory_has_it_at_issue_time(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    with app.app_context():
        row = db.session.scalar(select(DirectoryAccount).where(DirectoryAccount.login == "teacher1"))
        assert row is not None
        row.email = "t.teacher@newschool.test"
        db.session.commit()
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    [mail] = link_mails(app)
    assert mail.to_address == "t.teacher@newschool.test"
