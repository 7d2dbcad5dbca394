"""A parent activates the Parent Portal account from the letter, on a phone, in Chromium.

With and without JavaScript, on the builtin directory and on a real slapd: the parent
without an email address is told what to do, the parent with one activates and signs
in, and wrong PINs lock activation for the account.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import LiveServer
from tests.browser.helpers import assert_accessible, outbox, sign_in, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_PASSWORD = "Lantern-Meadow-Copper-77"
ANSWERS = ["saxophone lessons", "lighthouse keeper", "pomegranate jam", "tangerine kite", "harbor seals"]


@pytest.fixture
def activation_live(browser_app: Any, serve: Any, request: pytest.FixtureRequest) -> LiveServer:
    return serve(browser_app(directory=request.param, ACTIVATION_RATE_LIMIT="1000 per minute"))


def fill_letter(page: Any, live: LiveServer, number: str, pin: str, name: str) -> None:
    page.goto(live("/activate"))
    page.fill("#account_number", number)
    page.fill("#pin", pin)
    page.fill("#parent_name", name)
    submit(page)


def mailed_code(live: LiveServer, address: str) -> str:
    for message in reversed(outbox(live.app, address)):
        if message.purpose == "activation:code":
            found = re.search(r"^\s{4}([A-Z0-9]{8})\s*$", message.body_text, re.MULTILINE)
            assert found
            return found.group(1)
    raise AssertionError(f"no activation code mailed to {address}")


@pytest.mark.parametrize("size", ["phone"], indirect=True)
@pytest.mark.parametrize("activation_live", ["builtin", "openldap"], indirect=True)
@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_parents_activate_from_the_letter_on_a_phone(
    open_page: Any, activation_live: LiveServer, javascript: bool
) -> None:
    live = activation_live
    page = open_page(javascript=javascript)

    # A parent with no email on file: told what to do, nothing mailed.
    fill_letter(page, live, "A-2000002", "7390", "David Carter")
    assert "no email address" in page.locator("main").inner_text()
    if javascript:
        assert_accessible(page, "activation: no email")

    # A parent with the letter and an email address: the whole flow.
    fill_letter(page, live, "A-2000001", "4821", "maria lopez")
    assert page.url == live("/activate/code")
    if javascript:
        assert_accessible(page, "activation: code")
    page.fill("#code", mailed_code(live, "maria.lopez@example.test").lower())
    submit(page)
    assert page.url == live("/activate/password")
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)
    assert page.url == live("/activate/questions")
    if javascript:
        assert_accessible(page, "activation: questions")
    selects = page.locator("main form select")
    for index in range(selects.count()):
        option = selects.nth(index).locator("option").nth(index + 1)
        selects.nth(index).select_option(value=option.get_attribute("value"))
        page.fill(f"#answer_{index + 1}", ANSWERS[index])
    submit(page)
    assert page.url == live("/activate/done")
    if javascript:
        assert_accessible(page, "activation: done")
    with page.expect_navigation():
        page.click("main a[href='/login']")
    sign_in(page, live.url, "p2000001", NEW_PASSWORD)
    assert page.locator("header form[action='/logout']").count() == 1

    # Someone guessing the other parent's PIN: locked after the limit, even for the right PIN.
    guesser = open_page(javascript=javascript)
    for _ in range(live.app.config["LOCKOUT_MAX_FAILURES"]):
        fill_letter(guesser, live, "A-2000002", "0000", "David Carter")
        assert "do not match our records" in guesser.locator("main").inner_text()
    fill_letter(guesser, live, "A-2000002", "7390", "David Carter")
    assert "too many tries" in guesser.locator("main").inner_text()
    if javascript:
        assert_accessible(guesser, "activation: locked")
