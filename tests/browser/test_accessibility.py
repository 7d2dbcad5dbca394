"""axe-core in Chromium: zero WCAG 2.1 A/AA violations on every page, in every state, at a phone and a
desktop size; plus what axe cannot see: skip link, errors tied to fields, visible focus, thumb-sized
targets, and every page working with JavaScript off."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from selfservice.audit.services import Origin
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal import pending
from tests.browser.conftest import BROWSER_SETTINGS, LiveServer
from tests.browser.helpers import (
    NEW_PASSWORD,
    answer_questions,
    assert_accessible,
    assert_error_fields_tied,
    choose_language,
    enroll_directly,
    enroll_in_browser,
    focused,
    link_in_mail,
    lock_out,
    sign_in,
    small_targets,
    submit,
)
from tests.conftest import base_settings, person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

State = Callable[[Any, LiveServer], None]
STATES: dict[str, State] = {}


def state(name: str) -> Callable[[State], State]:
    def register(function: State) -> State:
        STATES[name] = function
        return function

    return register


def as_person(page: Any, live: LiveServer, login: str) -> None:
    sign_in(page, live.url, login, person(login).password)


# Public pages -----------------------------------------------------------------------------------


@state("home")
def _home(page: Any, live: LiveServer) -> None:
    page.goto(live("/"))


@state("home in Spanish")
def _home_es(page: Any, live: LiveServer) -> None:
    page.goto(live("/"))
    choose_language(page, "es")


@state("home in Haitian Creole")
def _home_ht(page: Any, live: LiveServer) -> None:
    page.goto(live("/"))
    choose_language(page, "ht")


@state("home in French")
def _home_fr(page: Any, live: LiveServer) -> None:
    page.goto(live("/"))
    choose_language(page, "fr")


@state("sign in, wrong password, in French")
def _login_wrong_fr(page: Any, live: LiveServer) -> None:
    page.goto(live("/login"))
    choose_language(page, "fr")
    sign_in(page, live.url, "s1000001", "not-the-password")


@state("forgot: help in Haitian Creole")
def _help_ht(page: Any, live: LiveServer) -> None:
    page.goto(live("/forgot/help"))
    choose_language(page, "ht")


@state("sign in")
def _login(page: Any, live: LiveServer) -> None:
    page.goto(live("/login"))


@state("sign in, wrong password")
def _login_wrong(page: Any, live: LiveServer) -> None:
    sign_in(page, live.url, "s1000001", "not-the-password")


@state("sign in, wrong password, in Spanish")
def _login_wrong_es(page: Any, live: LiveServer) -> None:
    page.goto(live("/login"))
    choose_language(page, "es")
    sign_in(page, live.url, "s1000001", "not-the-password")


@state("page not found")
def _not_found(page: Any, live: LiveServer) -> None:
    page.goto(live("/no/such/page"))


@state("not allowed (student on /admin)")
def _forbidden(page: Any, live: LiveServer) -> None:
    as_person(page, live, "s1000001")
    page.goto(live("/admin/"))


@state("form expired (CSRF)")
def _csrf_expired(page: Any, live: LiveServer) -> None:
    page.goto(live("/login"))
    page.context.clear_cookies()
    page.fill("#login", "s1000001")
    page.fill("#password", "whatever")
    submit(page)


# Parent activation and API clients ---------------------------------------------------------


@state("activate")
def _activate(page: Any, live: LiveServer) -> None:
    page.goto(live("/activate"))


@state("activate, nothing typed")
def _activate_empty(page: Any, live: LiveServer) -> None:
    page.goto(live("/activate"))
    submit(page)


@state("admin: API clients, a token just created")
def _api_client_created(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/api-clients/")
    page.fill("#name", "Student information system")
    page.locator("main input[type=checkbox]").first.check()
    submit(page, "main form:not(.inline-form)")


# Forgot password -----------------------------------------------------------------------------


@state("forgot")
def _forgot(page: Any, live: LiveServer) -> None:
    page.goto(live("/forgot"))


@state("forgot, nothing typed")
def _forgot_empty(page: Any, live: LiveServer) -> None:
    page.goto(live("/forgot"))
    submit(page)


def _to_questions(page: Any, live: LiveServer, login: str = "s1000001") -> dict[str, str]:
    known = enroll_directly(live.app, login)
    page.goto(live("/forgot"))
    page.fill("#login", login)
    submit(page)
    return known


@state("forgot: questions")
def _questions(page: Any, live: LiveServer) -> None:
    _to_questions(page, live)


@state("forgot: help after wrong answers")
def _help_wrong(page: Any, live: LiveServer) -> None:
    known = _to_questions(page, live)
    answer_questions(page, known, right=False)


@state("forgot: help, never enrolled")
def _help_direct(page: Any, live: LiveServer) -> None:
    page.goto(live("/forgot"))
    page.click("main a[href='/forgot/help']")


@state("forgot: emailed code")
def _code(page: Any, live: LiveServer) -> None:
    known = _to_questions(page, live, "p2000001")
    answer_questions(page, known)


@state("forgot: emailed code, wrong code")
def _code_wrong(page: Any, live: LiveServer) -> None:
    _code(page, live)
    page.fill("#code", "ZZZZ9999")
    submit(page)


@state("forgot: new password")
def _reset(page: Any, live: LiveServer) -> None:
    known = _to_questions(page, live)
    answer_questions(page, known)


@state("forgot: new password, not the same twice")
def _reset_mismatch(page: Any, live: LiveServer) -> None:
    _reset(page, live)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD + "x")
    submit(page)


@state("forgot: done")
def _forgot_done(page: Any, live: LiveServer) -> None:
    _reset(page, live)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)


@state("forgot: link no longer works")
def _forgot_refused(page: Any, live: LiveServer) -> None:
    page.goto(live("/forgot/reset/not-a-real-token"))


# Signed-in account holder ----------------------------------------------------------------------


@state("home, signed in")
def _home_signed_in(page: Any, live: LiveServer) -> None:
    as_person(page, live, "s1000001")
    page.goto(live("/"))


@state("enroll")
def _enroll(page: Any, live: LiveServer) -> None:
    as_person(page, live, "s1000001")
    page.goto(live("/enroll"))


@state("enroll, nothing chosen")
def _enroll_empty(page: Any, live: LiveServer) -> None:
    _enroll(page, live)
    submit(page)


@state("enroll, saved")
def _enroll_saved(page: Any, live: LiveServer) -> None:
    as_person(page, live, "s1000001")
    enroll_in_browser(page, live.url)


@state("change password")
def _password(page: Any, live: LiveServer) -> None:
    as_person(page, live, "s1000001")
    page.goto(live("/password"))


@state("change password, wrong current password")
def _password_wrong(page: Any, live: LiveServer) -> None:
    _password(page, live)
    page.fill("#current_password", "not-it-at-all")
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)


@state("change password, done")
def _password_done(page: Any, live: LiveServer) -> None:
    _password(page, live)
    page.fill("#current_password", person("s1000001").password)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)


# Help desk ---------------------------------------------------------------------------------------


def _student_request(page: Any, live: LiveServer, *, birth: str = "032012") -> None:
    as_person(page, live, "teacher1")
    page.goto(live("/helpdesk/new/student"))
    page.fill("#student_id", "1000001")
    page.fill("#student_name", "Ana Lopez")
    page.fill("#birth_month_year", birth)
    submit(page)


@state("help desk: employee's requests")
def _mine(page: Any, live: LiveServer) -> None:
    as_person(page, live, "teacher1")
    page.goto(live("/helpdesk/mine"))


@state("help desk: new student request")
def _new_student(page: Any, live: LiveServer) -> None:
    as_person(page, live, "teacher1")
    page.goto(live("/helpdesk/new/student"))


@state("help desk: new student request, nothing typed")
def _new_student_empty(page: Any, live: LiveServer) -> None:
    _new_student(page, live)
    submit(page)


@state("help desk: new student request, details do not match")
def _new_student_refused(page: Any, live: LiveServer) -> None:
    _student_request(page, live, birth="042012")


@state("help desk: student request opened")
def _student_opened(page: Any, live: LiveServer) -> None:
    _student_request(page, live)


@state("help desk: new parent request")
def _new_parent(page: Any, live: LiveServer) -> None:
    as_person(page, live, "teacher1")
    page.goto(live("/helpdesk/new/parent"))


@state("help desk: new parent request, nothing typed")
def _new_parent_empty(page: Any, live: LiveServer) -> None:
    _new_parent(page, live)
    submit(page)


def _parent_request(page: Any, live: LiveServer, who: str = "p2000001") -> None:
    parent = person(who)
    _new_parent(page, live)
    page.fill("#contact_name", parent.display_name)
    page.fill("#contact_phone", parent.phone or "555-0101")
    page.fill("#account_number", parent.parent_account_number or "")
    page.fill("#pin", parent.parent_pin or "")
    page.fill("#parent_name", parent.display_name)
    page.fill("#parent_phone", parent.phone or "555-0101")
    submit(page)


@state("help desk: parent request refused, no email on file")
def _parent_refused(page: Any, live: LiveServer) -> None:
    _parent_request(page, live, "p2000002")


@state("help desk: ITS works a student request")
def _its_detail(page: Any, live: LiveServer) -> None:
    _student_request(page, live)
    number_path = page.url.removeprefix(live.url)
    page.context.clear_cookies()
    as_person(page, live, "its1")
    page.goto(live(number_path))


@state("help desk: ITS queue")
def _its_queue(page: Any, live: LiveServer) -> None:
    _student_request(page, live)
    page.context.clear_cookies()
    as_person(page, live, "its1")
    page.goto(live("/helpdesk/"))


@state("help desk: ITS issued a reset link")
def _its_link(page: Any, live: LiveServer) -> None:
    _its_detail(page, live)
    with page.expect_navigation():
        page.click("form[action$='/reset-link'] button[type=submit]")


@state("help desk: support works a parent request")
def _support_detail(page: Any, live: LiveServer) -> None:
    _parent_request(page, live)
    number_path = page.url.removeprefix(live.url)
    page.context.clear_cookies()
    as_person(page, live, "support1")
    page.goto(live(number_path))


@state("help desk: support queue")
def _support_queue(page: Any, live: LiveServer) -> None:
    _parent_request(page, live)
    page.context.clear_cookies()
    as_person(page, live, "support1")
    page.goto(live("/helpdesk/"))


@state("help desk: support recorded a contact")
def _support_contact(page: Any, live: LiveServer) -> None:
    _support_detail(page, live)
    form = page.locator("form[action$='/contact']")
    form.locator("#contact_method").select_option("phone")
    form.locator("#contact_outcome").select_option("reached")
    submit(page, "form[action$='/contact']")


@state("help desk: escalated, ITS Parent Accounts works it")
def _its_parent(page: Any, live: LiveServer) -> None:
    _support_detail(page, live)
    number_path = page.url.removeprefix(live.url)
    page.fill("#escalate_reason", "The password has to be reset.")
    submit(page, "form[action$='/escalate']")
    page.context.clear_cookies()
    as_person(page, live, "its1")
    page.goto(live(number_path))


@state("help desk: admin sees all requests")
def _all_requests(page: Any, live: LiveServer) -> None:
    as_person(page, live, "admin1")
    page.goto(live("/helpdesk/all"))


def _reset_link_page(page: Any, live: LiveServer) -> None:
    _its_link(page, live)
    link = link_in_mail(live.app, person("teacher1").email or "")
    page.context.clear_cookies()
    page.goto(link)


@state("reset link: choose a password")
def _reset_link(page: Any, live: LiveServer) -> None:
    _reset_link_page(page, live)


@state("reset link: not the same twice")
def _reset_link_mismatch(page: Any, live: LiveServer) -> None:
    _reset_link_page(page, live)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD + "x")
    submit(page)


@state("reset link: done")
def _reset_link_done(page: Any, live: LiveServer) -> None:
    _reset_link_page(page, live)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)


@state("reset link: refused")
def _reset_link_refused(page: Any, live: LiveServer) -> None:
    page.goto(live("/reset/not-a-real-token"))


# Admin -------------------------------------------------------------------------------------------


def _admin(page: Any, live: LiveServer, path: str) -> None:
    as_person(page, live, "admin1")
    page.goto(live(path))


@state("admin: dashboard")
def _dashboard(page: Any, live: LiveServer) -> None:
    lock_out(live, "s1000001")
    _admin(page, live, "/admin/")


@state("admin: audit log")
def _audit(page: Any, live: LiveServer) -> None:
    lock_out(live, "s1000001")
    _admin(page, live, "/admin/audit")


@state("admin: audit log, bad filter")
def _audit_bad(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/audit?ip=not-an-ip&since=someday")


@state("admin: one audit event")
def _audit_event(page: Any, live: LiveServer) -> None:
    lock_out(live, "s1000001")
    _admin(page, live, "/admin/audit")
    with page.expect_navigation():
        page.locator("main table a[href*='/admin/audit/']").first.click()


@state("admin: lockouts")
def _lockouts(page: Any, live: LiveServer) -> None:
    lock_out(live, "s1000001")
    _admin(page, live, "/admin/lockouts")


@state("admin: unlock")
def _unlock(page: Any, live: LiveServer) -> None:
    _lockouts(page, live)
    with page.expect_navigation():
        page.locator("main a[href*='/unlock']").first.click()


@state("admin: unlock, not confirmed")
def _unlock_unconfirmed(page: Any, live: LiveServer) -> None:
    _unlock(page, live)
    submit(page)


@state("admin: unlocked")
def _unlocked(page: Any, live: LiveServer) -> None:
    _unlock(page, live)
    page.check("#confirm")
    submit(page)


@state("admin: rate limits")
def _rate_limits(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/rate-limits")


@state("admin: question bank")
def _questions_bank(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/questions")


@state("admin: new question, nothing typed")
def _new_question_empty(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/questions/new")
    submit(page)


@state("admin: edit a question")
def _edit_question(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/questions")
    with page.expect_navigation():
        page.locator("main a[href*='/admin/questions/']:not([href$='/new'])").first.click()


@state("admin: unsettled password changes")
def _unsettled_changes(page: Any, live: LiveServer) -> None:
    with live.app.app_context():  # what a worker killed mid-write leaves behind
        account = get_directory().find("s1000001")
        pending.open_intent(get_directory(), account, how=pending.How.RECOVERY, origin=Origin(ip="127.0.0.1"))
        db.session.commit()
    _admin(page, live, "/admin/password-changes")


@state("admin: password sync, pending and refused")
def _password_sync(page: Any, live: LiveServer) -> None:
    from tests.sync.helpers import add_sync_writes

    add_sync_writes(live.app)
    _admin(page, live, "/admin/sync/")


@state("admin: one account's sign-in")
def _account(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/accounts/?login=its1")


@state("admin: no such account")
def _account_unknown(page: Any, live: LiveServer) -> None:
    _admin(page, live, "/admin/accounts/?login=nobody-here")


# Staff second factor -------------------------------------------------------------------------------


def _second_factor_required(page: Any, live: LiveServer) -> None:
    live.app.config["STAFF_SECOND_FACTOR"] = {**live.app.config["STAFF_SECOND_FACTOR"], "its": "required"}
    as_person(page, live, "its1")


@state("second factor: set up")
def _second_factor_setup(page: Any, live: LiveServer) -> None:
    _second_factor_required(page, live)


@state("second factor: set up, wrong code")
def _second_factor_setup_wrong(page: Any, live: LiveServer) -> None:
    _second_factor_required(page, live)
    page.fill("#code", "000000")
    submit(page)


@state("second factor: recovery codes")
def _second_factor_codes(page: Any, live: LiveServer) -> None:
    import pyotp

    _second_factor_required(page, live)
    secret = page.locator("code.secret-key").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    submit(page)


@state("second factor: code")
def _second_factor_code(page: Any, live: LiveServer) -> None:
    _second_factor_codes(page, live)
    page.context.clear_cookies()
    as_person(page, live, "its1")


# The checks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STATES))
def test_page_has_no_axe_violations(name: str, page: Any, live: LiveServer) -> None:
    STATES[name](page, live)
    assert_accessible(page, name)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rate_limited_page_and_the_admin_report_of_it_have_no_axe_violations(
    page: Any, browser_app: Any, serve: Any
) -> None:
    live = serve(browser_app(RECOVERY_RATE_LIMIT="2 per minute"))
    for _try in range(3):
        page.goto(live("/forgot"))
        page.fill("#login", "s1000001")
        with page.expect_navigation() as navigation:
            page.locator("main form button[type=submit]").click()
    assert navigation.value.status == 429
    assert_accessible(page, "too many attempts")
    as_person(page, live, "admin1")
    for path in ("/admin/rate-limits", "/admin/"):
        page.goto(live(path))
        assert_accessible(page, f"{path} with a breach")


def test_directory_unavailable_page_has_no_axe_violations(
    page: Any, database_url: str, tmp_path: Any, serve: Any
) -> None:
    from selfservice import create_app

    settings = base_settings(database_url, tmp_path) | BROWSER_SETTINGS
    settings |= {
        "DIRECTORY": "openldap",
        "LDAP_URL": f"ldap://127.0.0.1:{closed_port()}",
        "LDAP_BASE_DN": "dc=nowhere",
        "LDAP_BIND_DN": "cn=nobody,dc=nowhere",
        "LDAP_BIND_PASSWORD": "irrelevant",
        "LDAP_CONNECT_TIMEOUT_SECONDS": 1,
    }
    live = serve(create_app(settings))
    sign_in(page, live.url, "s1000001", "whatever-it-is")
    assert page.locator("h1").count() == 1
    assert "503" not in page.title()  # a page for people, not a status code
    assert_accessible(page, "directory unavailable")


def test_demo_mailbox_has_no_axe_violations(page: Any, browser_app: Any, serve: Any) -> None:
    live = serve(browser_app(DEMO=True))
    _student_request(page, live)
    page.goto(live("/demo/mail"))
    assert page.locator("main article").count() >= 1
    assert_accessible(page, "demo mailbox")


# What axe does not check -----------------------------------------------------------------------

FORM_PAGES = [
    "sign in",
    "forgot",
    "forgot: questions",
    "forgot: new password",
    "enroll",
    "change password",
    "help desk: new student request",
    "help desk: new parent request",
    "help desk: ITS works a student request",
    "help desk: support works a parent request",
    "reset link: choose a password",
    "admin: unlock",
    "admin: lockouts",
    "admin: new question, nothing typed",
]


@pytest.mark.parametrize("name", ["home", "sign in", "help desk: new student request"])
def test_skip_link_is_the_first_stop_and_moves_focus_to_main(name: str, page: Any, live: LiveServer) -> None:
    STATES[name](page, live)
    page.keyboard.press("Tab")
    first = focused(page)
    assert first["cls"] == "skip-link", first
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"


@pytest.mark.parametrize(
    "name",
    [
        "sign in, wrong password",
        "forgot, nothing typed",
        "forgot: new password, not the same twice",
        "enroll, nothing chosen",
        "change password, wrong current password",
        "help desk: new student request, nothing typed",
        "help desk: new parent request, nothing typed",
        "reset link: not the same twice",
        "admin: unlock, not confirmed",
    ],
)
def test_form_errors_are_summarised_and_tied_to_their_fields(name: str, page: Any, live: LiveServer) -> None:
    STATES[name](page, live)
    assert_error_fields_tied(page)
    # focus-error.js: the summary takes focus, so a screen reader reads it first.
    assert focused(page)["id"] == "error-summary"


def test_focus_is_visible_on_buttons_and_fields(page: Any, live: LiveServer) -> None:
    page.goto(live("/login"))
    page.fill("#login", "")
    for selector in ("#login", "main button[type=submit]", "header button[name=language]"):
        page.locator(selector).first.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus from the keyboard, so :focus-visible applies
        style = page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
            return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), shadow: s.boxShadow}; }"""
        )
        assert style["style"] != "none", (selector, style)
        assert style["width"] >= 2, (selector, style)


@pytest.mark.parametrize("name", FORM_PAGES)
def test_targets_in_forms_are_big_enough_for_a_thumb(name: str, page: Any, live: LiveServer) -> None:
    STATES[name](page, live)
    assert small_targets(page) == []


def test_pages_work_with_javascript_off(open_page: Any, live: LiveServer) -> None:
    """Sign in, change the language, enroll, and recover a password with no script running."""
    page = open_page(javascript=False)
    page.goto(live("/"))
    assert page.evaluate("() => 1") == 1  # Playwright's own evaluation still works
    choose_language(page, "es")
    choose_language(page, "en")
    as_person(page, live, "s1000001")
    known = enroll_in_browser(page, live.url)
    assert page.url == live("/")
    assert page.locator(".flash-success").count() == 1
    page.context.clear_cookies()
    page.goto(live("/forgot"))
    page.fill("#login", "s1000001")
    submit(page)
    answer_questions(page, known)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)
    assert page.url == live("/forgot/done")
    sign_in(page, live.url, "s1000001", NEW_PASSWORD)
    assert page.locator("header form[action='/logout']").count() == 1
