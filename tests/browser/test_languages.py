"""Families in their own language, on a phone: a parent in Spanish, a student in Kreyòl (from a
phone asking for fr-HT) and a parent in French enroll and reset their password.

On every page they see, no visible text comes from the English catalog (or the English question
bank, or English day and month names), axe finds nothing, and every mail they get is in their
language with dates in the district's time zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.messages.pofile import read_po

from selfservice.dates import format_day
from selfservice.portal.question_bank import SEED_QUESTIONS
from tests.browser.conftest import LiveServer
from tests.browser.helpers import NEW_PASSWORD, assert_accessible, choose_language, outbox, sign_out, submit
from tests.conftest import person
from tests.helpdesk.helpers import browser as signed_in_client
from tests.helpdesk.helpers import open_request, opened_number
from tests.site.test_translations import CATALOGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_VISIBLE_TEXTS = """() => {
  const lang = document.documentElement.lang;
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    const element = node.parentElement;
    if (!text || element.closest("script, style, template")) continue;
    const marked = element.closest("[lang]");
    if (marked && marked.lang !== lang) continue;  // said to be another language, on purpose
    const box = element.closest("select") || element;  // an option shows through its select
    if (!box.getClientRects().length || getComputedStyle(box).visibility === "hidden") continue;
    texts.push(text);
  }
  return texts;
}"""

_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


@cache
def english_leaks(language: str) -> tuple[list[re.Pattern[str]], list[str]]:
    """What English looks like where ``language`` differs: whole-message patterns and phrases."""
    with (CATALOGS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    patterns, phrases = [], list(SEED_QUESTIONS)
    for message in catalog:
        english = message.id if isinstance(message.id, str) else message.id[0]
        translated = message.string if isinstance(message.string, str) else message.string[0]
        if not english or english == translated:
            continue  # the same in both languages ("Email" in Spanish): not a leak
        literal = _PLACEHOLDER.sub("", english)
        if _PLACEHOLDER.search(english):
            if len(re.findall(r"[A-Za-z]", literal)) >= 4:
                parts = [re.escape(part) for part in _PLACEHOLDER.split(english)]
                patterns.append(re.compile(".+?".join(parts)))
        elif len(english.split()) >= 2:
            phrases.append(english)
    return patterns, phrases


@cache
def english_calendar_words() -> re.Pattern[str]:
    english = Locale.parse("en")
    names = [*english.days["format"]["wide"].values(), *english.months["format"]["wide"].values()]
    return re.compile(r"\b(" + "|".join(names) + r")\b")


def english_in(texts: list[str], language: str) -> list[str]:
    patterns, phrases = english_leaks(language)

    def english(text: str) -> bool:
        whole = any(pattern.fullmatch(text) for pattern in patterns)
        return whole or any(p in text for p in phrases) or bool(english_calendar_words().search(text))

    return [text for text in texts if english(text)]


def check_page(page: Any, language: str, what: str) -> None:
    """In ``language`` throughout, accessible, and the language switch in sight at the top."""
    assert page.locator("html").get_attribute("lang") == language, f"{what}: {page.url}"
    switch = page.locator("header button[name=language]").first.bounding_box()
    assert switch is not None
    assert switch["y"] + switch["height"] < 150, f"the language switch is not at the top of {what}"
    leaks = english_in(page.evaluate(_VISIBLE_TEXTS), language)
    assert leaks == [], f"English on {what} ({page.url}) in {language}: {leaks}"
    assert_accessible(page, f"{what} in {language}")


def check_mail(live: LiveServer, address: str, language: str) -> None:
    """Every mail to ``address`` in ``language``, dated in the district's zone, never in UTC."""
    messages = outbox(live.app, address)
    assert messages, f"no mail to {address}"
    zone = ZoneInfo(live.app.config["TIME_ZONE"])
    today = format_day(datetime.now(zone).date(), language)
    for message in messages:
        lines = [message.subject, *(line.strip() for line in message.body_text.splitlines() if line.strip())]
        leaks = english_in(lines, language)
        assert leaks == [], f"English in the {message.purpose} mail in {language}: {leaks}"
        assert f'lang="{language}"' in (message.body_html or "")
        assert "UTC" not in message.body_text
    notices = [m for m in messages if m.purpose in {"notice:enrollment_saved", "notice:password_reset"}]
    assert len(notices) == 2, [m.purpose for m in messages]
    for notice in notices:
        assert today in notice.body_text, f"no local date ({today}) in {notice.purpose}"


def enroll(page: Any, language: str, answers: list[str]) -> None:
    """On /enroll: send it empty first (the summary names each question), then fill it in."""
    submit(page)
    summary = page.locator("#error-summary li")
    first_label = page.locator("label[for=question_1]").inner_text().strip()
    assert summary.first.inner_text().startswith(first_label), "the summary does not name the question"
    check_page(page, language, "enrollment with errors")
    selects = page.locator("main form select")
    for index in range(selects.count()):
        option = selects.nth(index).locator("option").nth(index + 1)
        selects.nth(index).select_option(value=option.get_attribute("value"))
        page.fill(f"#answer_{index + 1}", answers[index])
        echo = page.locator(".question-echo").nth(index)  # the whole question, not cut off
        assert echo.inner_text() == option.inner_text().strip()
    check_page(page, language, "enrollment filled in")
    submit(page)


ANSWERS = {
    "es": ["conejito azul", "puerto de lisboa", "quimbombó hervido", "capitán bigotes", "zorbly"],
    "ht": ["ti lapen ble", "pò lisbon", "kalalou bouyi", "kapitèn moustach", "zorbly"],
    "fr": ["lapin bleu doux", "port de lisbonne", "gombo bouilli", "capitaine moustache", "zorbly"],
}

#: (language, account, browser locale, choose with the switch?)
FAMILIES = [
    pytest.param("es", "p2000001", "en-US", True, id="parent-in-spanish"),
    pytest.param("ht", "s1000001", "fr-HT", False, id="student-in-kreyol-from-fr-HT"),
    pytest.param("fr", "p2000001", "fr-FR", False, id="parent-in-french"),
]


@pytest.mark.parametrize("size", ["phone"], indirect=True)
@pytest.mark.parametrize(("language", "login", "locale", "switch"), FAMILIES)
def test_a_family_enrolls_and_resets_in_their_own_language(
    open_page: Any, live: LiveServer, language: str, login: str, locale: str, switch: bool
) -> None:
    who = person(login)
    page = open_page(locale=locale)
    page.goto(live("/"))
    if switch:
        choose_language(page, language)
    check_page(page, language, "home")

    page.goto(live("/login"))
    page.fill("#login", who.login)
    page.fill("#password", who.password)
    submit(page)
    assert page.url == live("/enroll")
    check_page(page, language, "enrollment")
    answers = ANSWERS[language]
    known = {}
    options = page.locator("main form select").first.locator("option")
    for index in range(len(answers)):
        known[options.nth(index + 1).inner_text().strip()] = answers[index]
    enroll(page, language, answers)
    assert page.url == live("/")
    check_page(page, language, "home, enrolled")
    sign_out(page)

    page.goto(live("/forgot"))
    check_page(page, language, "forgot password")
    page.fill("#login", who.login)
    submit(page)
    assert page.url == live("/forgot/questions")
    check_page(page, language, "security questions")
    for index in range(page.locator("main form input[type=password]").count()):
        field = page.locator("main form input[type=password]").nth(index)
        label = page.locator(f"label[for='{field.get_attribute('id')}']").inner_text().strip()
        field.fill(known[label])
    submit(page)
    if page.url == live("/forgot/code"):  # parents with an address on file get a code by mail
        check_page(page, language, "emailed code")
        (mail,) = [m for m in outbox(live.app, who.email or "") if m.purpose == "recovery:code"]
        code = re.search(r"^\s{4}(\S+)\s*$", mail.body_text, re.MULTILINE)
        assert code, mail.body_text
        page.fill("#code", code.group(1))
        submit(page)
    assert "/forgot/reset/" in page.url
    check_page(page, language, "choose a new password")
    page.fill("#new_password", "password1")  # zxcvbn's advice, in their language
    page.fill("#confirm", "password1")
    submit(page)
    assert page.locator("main .error-message").count() >= 1
    check_page(page, language, "a password that is too easy")
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    submit(page)
    assert page.url == live("/forgot/done")
    check_page(page, language, "password reset done")
    check_mail(live, who.email or "", language)


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_on_a_phone_a_wide_table_says_it_scrolls_and_keeps_its_first_column(
    open_page: Any, live: LiveServer
) -> None:
    number = opened_number(open_request(signed_in_client(live.app, "teacher1"), "student"))
    page = open_page(locale="es-ES")
    its = person("its1")
    page.goto(live("/login"))
    page.fill("#login", its.login)
    page.fill("#password", its.password)
    submit(page)
    page.goto(live("/helpdesk/queue/its-student"))
    table = page.locator(".table-scroll").first
    assert table.evaluate("box => box.scrollWidth > box.clientWidth"), "the queue fits: nothing to test"
    hint = page.locator(".scroll-hint")
    assert hint.is_visible()
    assert hint.inner_text() == "Deslice hacia los lados para ver todas las columnas."
    assert table.get_attribute("tabindex") == "0"  # scrollable from the keyboard
    first_cell = table.locator(f"td a:text('{number}')")
    left = first_cell.bounding_box()
    table.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    assert first_cell.bounding_box() == left, "the first column scrolled away"
    check_page(page, "es", "the queue on a phone")


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_on_a_phone_a_page_that_ends_in_a_button_keeps_its_space_above_the_footer(
    open_page: Any, live: LiveServer
) -> None:
    page = open_page(locale="fr-FR")
    student = person("s1000001")
    page.goto(live("/login"))
    page.fill("#login", student.login)
    page.fill("#password", student.password)
    submit(page)
    assert page.url == live("/enroll")  # ends in its "Save my questions" button
    button = page.locator("main button[type=submit]").last.bounding_box()
    main = page.locator("main").bounding_box()
    footer = page.locator("footer").bounding_box()
    assert button is not None
    assert main is not None
    assert footer is not None
    assert footer["y"] - (button["y"] + button["height"]) >= 24
    assert main["y"] + main["height"] - (button["y"] + button["height"]) >= 16
