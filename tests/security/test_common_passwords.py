"""A bundled list of common and breached passwords, refused in every flow (issue 14 item 12).

``correcthorsebatterystaple`` and ``Summer2024!!`` were accepted: zxcvbn scores them 3.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.security.passwords import (
    COMMON_PASSWORDS_FILE,
    TOO_COMMON,
    PasswordPolicy,
    check_password,
    common_passwords,
)
from tests.conftest import AuthActions, csrf_token, person, post_form
from tests.helpdesk.helpers import act, browser, link_mails, open_request, opened_number, token_of

COMMON = [
    "correcthorsebatterystaple",
    "Correct Horse Battery Staple",
    "Summer2024!!",
    "Football!!2024",
    "P@ssw0rd123!",
    "Welcome-2025",
    "iloveyou!!!!",
]


def test_the_list_ships_inside_the_package() -> None:
    assert COMMON_PASSWORDS_FILE.parent.name == "security"
    assert len(common_passwords()) > 5000


@pytest.mark.parametrize("password", COMMON)
def test_common_and_decorated_common_passwords_are_refused(password: str) -> None:
    assert TOO_COMMON in check_password(
        password, PasswordPolicy(), login="s1000001", display_name="Ana Lopez"
    )


@pytest.mark.parametrize(
    "password", ["Harbor-Lantern-Quill-42", "Velvet-Compass-Ridge-73", "mYp4n7ry-ha5-0wl5"]
)
def test_uncommon_passphrases_pass(password: str) -> None:
    assert TOO_COMMON not in check_password(password, PasswordPolicy())


def test_the_change_password_page_refuses_a_common_password(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("p2000001")
    data = {
        "current_password": person("p2000001").password,
        "new_password": "Summer2024!!",
        "confirm": "Summer2024!!",
    }
    response = post_form(client, "/password", data)
    assert response.status_code == 400
    assert "common or breached" in response.get_data(as_text=True)


def test_a_help_desk_link_refuses_a_common_password(app: Flask) -> None:
    number = opened_number(open_request(browser(app, "teacher1"), "student"))
    assert act(browser(app, "its1"), number, "reset-link").status_code == 303
    token = token_of(link_mails(app)[-1])
    holder = app.test_client()
    data = {"new_password": "correcthorsebatterystaple", "confirm": "correcthorsebatterystaple"}
    response = holder.post(f"/reset/{token}", data={"csrf_token": csrf_token(holder, "/"), **data})
    assert response.status_code == 400
    assert "common or breached" in response.get_data(as_text=True)
