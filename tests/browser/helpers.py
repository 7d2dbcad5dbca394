"""What the browser tests do to a page: run axe-core, check focus and targets, act as a person."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from sqlalchemy import select

from selfservice.audit.services import Origin
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.security import get_security
from tests.browser.conftest import AXE_SCRIPT

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

#: Answers a person would give, one per enrolled question.
ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
WRONG_ANSWER = "definitely not it"
NEW_PASSWORD = "Lantern-Orchard-Velvet-88"

_AXE_RUN = """async (tags) => {
  const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
  const results = await axe.run(document, options);
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary})),
  }));
}"""


# axe-core --------------------------------------------------------------------------------


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in the page with the WCAG 2.1 A/AA rules; return its violations.

    ``page.add_script_tag`` inserts an inline <script>, which the site's CSP (script-src 'self')
    refuses. ``page.evaluate`` runs the same source through the DevTools protocol, which CSP does not
    govern, so the page is checked with its real policy in force (no bypass_csp context).
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    return page.evaluate(_AXE_RUN, WCAG_TAGS)


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        rule = f"{violation['id']} ({violation['impact']})"
        lines.append(f"- {rule}: {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {node['target']}: {node['html'][:160]}")
            summary = (node["summary"] or "").replace("\n", "\n      ")
            lines.append(f"      {summary}")
    return "\n".join(lines)


def assert_accessible(page: Any, what: str) -> None:
    """Zero axe violations, and the page itself broke no rule of its Content-Security-Policy."""
    violations = axe_violations(page)
    assert not violations, f"axe found {len(violations)} violation(s) on {what} ({page.url}):\n" + (
        describe_violations(violations)
    )
    assert not page.csp_violations, f"CSP refused something on {what}: {page.csp_violations}"


# Focus, errors and targets -------------------------------------------------------------------


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => { const e = document.activeElement;
        return {tag: e.tagName.toLowerCase(), id: e.id, cls: e.className,
                text: (e.textContent || '').trim()}; }"""
    )


def assert_error_fields_tied(page: Any) -> None:
    """The error summary is there; every invalid field says so and points at its error text."""
    assert page.locator("#error-summary").count() == 1, "no error summary"
    invalid = page.locator("main [aria-invalid=true]")
    assert invalid.count() >= 1, "no field is marked aria-invalid"
    for index in range(invalid.count()):
        control = invalid.nth(index)
        describedby = (control.get_attribute("aria-describedby") or "").split()
        name = control.get_attribute("name")
        assert describedby, f"{name} is invalid but has no aria-describedby"
        texts = [page.locator(f"[id='{ident}']").inner_text() for ident in describedby]
        assert any(text.strip() for text in texts), f"{name}: aria-describedby points at no text"
        errors = [ident for ident in describedby if ident.endswith("-error")]
        assert errors, f"{name}: aria-describedby does not point at its error message"
    for link in page.locator("#error-summary a").all():
        target = (link.get_attribute("href") or "").lstrip("#")
        assert target, "a summary link with no target"
        assert page.locator(f"[id='{target}']").count() == 1, f"summary link to #{target} leads nowhere"


def small_targets(page: Any) -> list[str]:
    """Buttons, links and controls in forms in <main> smaller than 44x44 CSS pixels."""
    return page.evaluate(
        """() => {
        const small = [];
        for (const el of document.querySelectorAll(
            'main form button, main form a, main form input:not([type=hidden]), main form select,'
            + ' main a.button, header form.language-form button')) {
          const box = el.getBoundingClientRect();
          if (box.width === 0 && box.height === 0) continue;
          const checkbox = el.type === 'checkbox' || el.type === 'radio';
          const target = checkbox && el.labels && el.labels[0] ? el.labels[0].getBoundingClientRect() : box;
          if (target.height < 44 || target.width < 44) {
            const name = (el.textContent || el.name || '').trim().slice(0, 40);
            const box_ = `${Math.round(target.width)}x${Math.round(target.height)}`;
            small.push(`${el.tagName.toLowerCase()} "${name}" ${box_}`);
          }
        }
        return small;
      }"""
    )


# Acting as a person -------------------------------------------------------------------------


def submit(page: Any, form: str = "main form") -> None:
    """Press the submit button of the (first) form in <main> and wait for the next page."""
    with page.expect_navigation():
        page.locator(form).first.locator("button[type=submit]").first.click()


def sign_in(page: Any, url: str, login: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("#login", login)
    page.fill("#password", password)
    submit(page)


def sign_out(page: Any) -> None:
    with page.expect_navigation():
        page.locator("header form[action='/logout'] button[type=submit]").click()


def choose_language(page: Any, code: str) -> None:
    """Press the language button at the top of the page, as a person does."""
    with page.expect_navigation():
        page.locator(f"header button[name=language][value={code}]").click()
    assert page.locator("html").get_attribute("lang") == code


def enroll_in_browser(page: Any, url: str, answers: list[str] = ANSWERS) -> dict[str, str]:
    """Fill /enroll choosing the first questions offered; return question text -> answer."""
    page.goto(url + "/enroll")
    chosen: dict[str, str] = {}
    selects = page.locator("main form select")
    for index in range(selects.count()):
        select = selects.nth(index)
        option = select.locator("option").nth(index + 1)  # option 0 is "Choose a question"
        text = option.inner_text().strip()
        select.select_option(value=option.get_attribute("value"))
        number = (select.get_attribute("name") or "").rsplit("_", 1)[-1]
        page.fill(f"#answer_{number}", answers[index])
        chosen[text] = answers[index]
    submit(page)
    return chosen


def answer_questions(page: Any, known: dict[str, str], *, right: bool = True) -> None:
    """On /forgot/questions: type the answer for each question shown (its label), then submit."""
    fields = page.locator("main form input[type=password]")
    for index in range(fields.count()):
        field = fields.nth(index)
        label = page.locator(f"label[for='{field.get_attribute('id')}']").inner_text().strip()
        field.fill(known[label] if right else WRONG_ANSWER)
    submit(page)


def enroll_directly(app: Flask, login: str, answers: list[str] = ANSWERS) -> dict[str, str]:
    """Store an enrollment through the database; return question text (in every language) -> answer."""
    with app.app_context():
        account = get_directory().find(login)
        assert account is not None
        hasher = get_security().hasher
        questions = list(
            db.session.scalars(select(Question).where(Question.active.is_(True)).order_by(Question.id))
        )[: len(answers)]
        rows = [
            EnrollmentAnswer(question_id=q.id, answer_hash=hasher.hash(text))
            for q, text in zip(questions, answers, strict=True)
        ]
        db.session.add(Enrollment(account_key=account.key, login=account.login, answers=rows))
        db.session.commit()
        known = {}
        for question, answer in zip(questions, answers, strict=True):
            known |= dict.fromkeys([question.text, *(question.translations or {}).values()], answer)
        return known


def outbox(app: Flask, to: str) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).where(OutboxMessage.to_address == to).order_by(OutboxMessage.id)
        messages = list(db.session.scalars(query))
        db.session.expunge_all()
        return messages


def link_in_mail(app: Flask, to: str, path: str = "/reset/") -> str:
    """The newest link to ``path`` mailed to ``to``, as the person would click it."""
    for message in reversed(outbox(app, to)):
        found = re.search(r"https?://\S+" + re.escape(path) + r"\S+", message.body_text)
        if found:
            return found.group(0).rstrip(".,)")
    raise AssertionError(f"no mail to {to} with a link to {path}")


def binds(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return get_directory().authenticate(login, password) is not None


def lock_out(live: Any, login: str) -> None:
    """Lock self-service for ``login`` the way wrong answers do, through the lockout service."""
    origin = Origin(ip="127.0.0.1", user_agent="browser test")
    with live.app.app_context():
        account = get_directory().find(login)
        assert account is not None
        lockout = get_security().lockout
        for _attempt in range(live.app.config["LOCKOUT_MAX_FAILURES"]):
            lockout.claim_attempt(account.key, login, origin)
            lockout.record_failure(account.key, login, origin)
