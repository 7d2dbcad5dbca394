"""Whole journeys in Chromium, as people do them: at a phone size, a desktop size, and once in Spanish.

Fields and buttons are found by their names and addresses, not their words, so the same steps run in
every language; each page is checked to be in the language the person chose.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask_babel import force_locale, gettext

from selfservice.directory import get_directory
from selfservice.security import get_security
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    NEW_PASSWORD,
    answer_questions,
    binds,
    choose_language,
    enroll_directly,
    enroll_in_browser,
    link_in_mail,
    lock_out,
    outbox,
    sign_in,
    sign_out,
    submit,
)
from tests.conftest import person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Each journey at a phone size and a desktop size in English, once in Spanish on a phone, and once
#: with JavaScript turned off.
JOURNEY_CASES = pytest.mark.parametrize(
    ("size", "language", "javascript"),
    [
        pytest.param("phone", "en", True, id="phone-en"),
        pytest.param("desktop", "en", True, id="desktop-en"),
        pytest.param("phone", "es", True, id="phone-es"),
        pytest.param("desktop", "en", False, id="desktop-en-no-javascript"),
    ],
    indirect=["size"],
)


def start(page: Any, live: LiveServer, language: str) -> None:
    page.goto(live("/"))
    if language != "en":
        choose_language(page, language)


def in_language(page: Any, language: str) -> None:
    assert page.locator("html").get_attribute("lang") == language, page.url


def translated(live: LiveServer, text: str, language: str) -> str:
    """``text`` as the shipped catalog for ``language`` has it."""
    with live.app.test_request_context(), force_locale(language):
        return gettext(text)


def signed_in(page: Any) -> bool:
    return page.locator("header form[action='/logout']").count() == 1


def locked_until(live: LiveServer, login: str) -> Any:
    with live.app.app_context():
        account = get_directory().find(login)
        assert account is not None
        return get_security().lockout.locked_until(account.key)


@JOURNEY_CASES
def test_student_enrolls_forgets_answers_and_signs_in_with_a_new_password(
    open_page: Any, live: LiveServer, language: str, javascript: bool
) -> None:
    page = open_page(javascript=javascript)
    student = person("s1000001")
    start(page, live, language)
    sign_in(page, live.url, student.login, student.password)
    # First sign-in: the portal asks them to set up their questions.
    assert page.url == live("/enroll")
    known = enroll_in_browser(page, live.url)
    assert page.url == live("/")
    assert page.locator(".flash-success").count() == 1
    in_language(page, language)
    sign_out(page)

    # Some weeks later: the password is forgotten.
    with page.expect_navigation():
        page.click("main a[href='/forgot']")
    heading = translated(live, "Forgot your password?", language)
    assert page.locator("h1").inner_text() == heading
    if language != "en":
        assert heading != "Forgot your password?", f"no {language} translation shipped"
    page.fill("#login", student.login)
    submit(page)
    assert page.url == live("/forgot/questions")
    in_language(page, language)
    answer_questions(page, known)
    assert "/forgot/reset/" in page.url
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)
    assert page.url == live("/forgot/done")
    in_language(page, language)

    page.click("main a[href='/login']")
    page.fill("#login", student.login)
    page.fill("#password", NEW_PASSWORD)
    submit(page)
    assert signed_in(page)
    in_language(page, language)
    assert binds(live.app, student.login, NEW_PASSWORD)
    assert not binds(live.app, student.login, student.password)


@JOURNEY_CASES
def test_too_many_wrong_answers_lock_and_lead_to_the_help_desk_hours(
    open_page: Any, live: LiveServer, language: str, javascript: bool
) -> None:
    page = open_page(javascript=javascript)
    student = person("s1000001")
    known = enroll_directly(live.app, student.login)
    start(page, live, language)
    page.click("main a[href='/forgot']")
    page.fill("#login", student.login)
    submit(page)
    for _try in range(live.app.config["LOCKOUT_MAX_FAILURES"]):
        assert page.url == live("/forgot/questions")
        answer_questions(page, known, right=False)
        assert page.url == live("/forgot/help")
        in_language(page, language)
        try_again = page.locator("main a[href='/forgot/questions']")
        if try_again.count():
            with page.expect_navigation():
                try_again.click()
        else:
            break
    assert locked_until(live, student.login) is not None
    # Locked: even the right answers now lead to the same help page.
    page.goto(live("/forgot"))
    page.fill("#login", student.login)
    submit(page)
    answer_questions(page, known)
    assert page.url == live("/forgot/help")
    in_language(page, language)
    hours = page.locator("section.hours")
    assert hours.count() == 1
    assert hours.locator("h2").is_visible()
    assert len(hours.inner_text()) > 40
    assert "305-555-0100" in page.locator("footer").inner_text()
    assert page.locator("main a[href='/forgot']").count() == 1  # Start over
    # The address on file is told about the lock.
    assert outbox(live.app, student.email or "")


@JOURNEY_CASES
def test_employee_asks_its_issues_a_link_and_the_student_sets_a_password_with_it(
    open_page: Any, live: LiveServer, language: str, javascript: bool
) -> None:
    page = open_page(javascript=javascript)
    teacher, its, student = person("teacher1"), person("its1"), person("s1000001")
    start(page, live, language)
    sign_in(page, live.url, teacher.login, teacher.password)
    page.goto(live("/helpdesk/"))
    in_language(page, language)
    page.click("main a[href='/helpdesk/new/student']")
    page.fill("#student_id", student.student_id or "")
    page.fill("#student_name", student.display_name)
    page.fill("#birth_month_year", student.birth_month_year or "")
    submit(page)
    assert "/helpdesk/requests/" in page.url
    request_path = page.url.removeprefix(live.url)
    assert page.locator(".flash-success").count() == 1
    sign_out(page)

    sign_in(page, live.url, its.login, its.password)
    page.goto(live("/helpdesk/"))
    in_language(page, language)
    with page.expect_navigation():
        page.click(f"main a[href='{request_path}']")
    with page.expect_navigation():
        page.click("form[action$='/reset-link'] button[type=submit]")
    assert page.locator(".flash-success").count() == 1
    sign_out(page)

    # The employee opens the mail and hands the link to the student, who uses it on their own device.
    link = link_in_mail(live.app, teacher.email or "")
    student_page = open_page(javascript=javascript, locale="es-ES" if language == "es" else "en-US")
    student_page.goto(link)
    in_language(student_page, language)
    student_page.fill("#new_password", NEW_PASSWORD)
    student_page.fill("#confirm", NEW_PASSWORD)
    submit(student_page)
    assert student_page.locator("main a[href='/login']").count() == 1
    assert binds(live.app, student.login, NEW_PASSWORD)
    # The link works once.
    assert student_page.goto(link).status == 410


@JOURNEY_CASES
def test_admin_unlocks_a_locked_account_and_the_student_can_try_again(
    open_page: Any, live: LiveServer, language: str, javascript: bool
) -> None:
    page = open_page(javascript=javascript)
    admin, student = person("admin1"), person("s1000001")
    known = enroll_directly(live.app, student.login)
    lock_out(live, student.login)
    assert locked_until(live, student.login) is not None

    start(page, live, language)
    sign_in(page, live.url, admin.login, admin.password)
    page.goto(live("/admin/"))
    in_language(page, language)
    page.click("nav a[href='/admin/lockouts']")
    assert student.login in page.locator("main table").first.inner_text()
    with page.expect_navigation():
        page.click("main a[href*='/unlock']")
    page.check("#confirm")
    submit(page)
    assert page.locator(".flash-success, .flash-info").count() == 1
    in_language(page, language)
    assert locked_until(live, student.login) is None

    # The student can answer their questions again.
    student_page = open_page(javascript=javascript)
    student_page.goto(live("/forgot"))
    student_page.fill("#login", student.login)
    submit(student_page)
    answer_questions(student_page, known)
    assert "/forgot/reset/" in student_page.url
