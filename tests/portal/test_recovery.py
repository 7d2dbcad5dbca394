"""Forgotten password (/forgot): pinned questions, decoys, second factor, reset token, fallback page."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from selfservice import create_app
from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.dates import format_moment
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal import enrollment, recovery
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question, RecoveryChallenge
from selfservice.security import get_security
from selfservice.security.answers import AnswerHasher
from selfservice.security.models import Lockout, TokenNonce, VerificationCode
from selfservice.security.tokens import Purpose
from selfservice.timeutil import utcnow
from tests.conftest import FAST_HASHING, AppFactory, AuthActions, base_settings, csrf_token, person, post_form
from tests.fixtures.directories import ALL_DIRECTORIES

ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
NEW_PASSWORD = "Lantern-Orchard-Velvet-88"
WRONG = "definitely not it"
ORIGIN = Origin(ip="192.0.2.7", user_agent="pytest")

DIRECTORIES = ALL_DIRECTORIES


# Steps a person takes ---------------------------------------------------------------


def enroll(app: Flask, login: str, answers: list[str] = ANSWERS, hasher: AnswerHasher | None = None) -> None:
    """Store an enrollment straight in the database: the first K active questions, hashed answers."""
    with app.app_context():
        account = get_directory().find(login)
        assert account is not None
        hasher = hasher or get_security().hasher
        ids = db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        rows = [
            EnrollmentAnswer(question_id=qid, answer_hash=hasher.hash(text))
            for qid, text in zip(ids, answers, strict=False)
        ]
        db.session.add(Enrollment(account_key=account.key, login=account.login, answers=rows))
        db.session.commit()


def enrolled_answers(app: Flask, login: str) -> dict[int, str]:
    """question id -> the answer :func:`enroll` stored for it."""
    with app.app_context():
        ids = db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        return dict(zip(ids, ANSWERS, strict=False))


def begin(client: FlaskClient, login: str) -> Any:
    return post_form(client, "/forgot", {"login": login})


def pinned_ids(client: FlaskClient, app: Flask) -> list[int]:
    with client.session_transaction() as state:
        lookup = state["recovery"]["lookup"]
    with app.app_context():
        challenge = db.session.get(RecoveryChallenge, lookup)
        assert challenge is not None
        return list(challenge.question_ids)


def answer(client: FlaskClient, app: Flask, login: str | None = None, *, right: bool = True) -> Any:
    """Answer the pinned questions: right (from the enrollment) or all wrong."""
    known = enrolled_answers(app, login) if login else {}
    ids = pinned_ids(client, app)
    data = {f"answer_{n}": known[qid] if right else WRONG for n, qid in enumerate(ids, start=1)}
    return post_form(client, "/forgot/questions", data)


def reset_to(client: FlaskClient, location: str, password: str = NEW_PASSWORD) -> Any:
    return post_form(client, location, {"new_password": password, "confirm": password})


def recover(client: FlaskClient, app: Flask, login: str) -> str:
    """Start and answer right; return where the person is sent."""
    assert begin(client, login).status_code == 303
    response = answer(client, app, login)
    assert response.status_code == 303
    return response.headers["Location"]


def outbox(app: Flask, purpose: str | None = None) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if purpose:
            query = query.where(OutboxMessage.purpose == purpose)
        messages = list(db.session.scalars(query))
        db.session.expunge_all()
        return messages


def audit(app: Flask, tag: Tag) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag))))
        db.session.expunge_all()
        return events


def mailed_code(app: Flask) -> str:
    (message,) = outbox(app, "recovery:code")
    match = re.search(r"^\s+([A-Z0-9]{8})\s*$", message.body_text, re.MULTILINE)
    assert match, message.body_text
    return match.group(1)


def binds(app: Flask, login: str, password: str) -> bool:
    with app.app_context():
        return get_directory().authenticate(login, password) is not None


# The whole walk -------------------------------------------------------------------


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_student_resets_a_forgotten_password_and_can_sign_in_with_it(
    make_app: AppFactory, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    client = app.test_client()

    assert client.get("/forgot").status_code == 200
    location = recover(client, app, "s1000001")
    assert location.startswith("/forgot/reset/")
    page = client.get(location)
    assert page.status_code == 200
    assert "s1000001" in page.get_data(as_text=True)

    done = reset_to(client, location)
    assert done.status_code == 303
    assert done.headers["Location"] == "/forgot/done"
    assert "You can now sign in" in client.get("/forgot/done").get_data(as_text=True)

    assert binds(app, "s1000001", NEW_PASSWORD)
    assert not binds(app, "s1000001", person("s1000001").password)
    assert len(audit(app, Tag.PASSWORD_RESET)) == 1
    assert [m.to_address for m in outbox(app, "notice:password_reset")] == [person("s1000001").email]


def test_done_page_does_not_sign_the_person_in(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    reset_to(client, recover(client, app, "s1000001"))
    home = client.get("/").get_data(as_text=True)
    assert "Signed in as" not in home


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_parent_with_email_confirms_a_mailed_code_before_choosing_a_password(
    make_app: AppFactory, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "p2000001")
    client = app.test_client()

    assert recover(client, app, "p2000001") == "/forgot/code"
    (message,) = outbox(app, "recovery:code")
    assert message.to_address == person("p2000001").email
    response = post_form(client, "/forgot/code", {"code": mailed_code(app).lower()})
    assert response.status_code == 303
    assert reset_to(client, response.headers["Location"]).status_code == 303
    assert binds(app, "p2000001", NEW_PASSWORD)
    assert not binds(app, "p2000001", person("p2000001").password)
    assert len(audit(app, Tag.RECOVERY_CODE_SENT)) == 1


#: Kreyòl and French answers as a phone types them (smart punctuation: U+2019) and as a school
#: computer's keyboard does (').
PHONE_ANSWERS = [
    "m\u2019ap manje diri",
    "l\u2019école Toussaint",
    "pòt k\u2019ap louvri",
    "Tonton Jan",
    "lapli",
]


def test_an_answer_enrolled_on_a_phone_is_accepted_from_a_computer_keyboard(make_app: AppFactory) -> None:
    app = make_app()
    phone = app.test_client()
    assert AuthActions(phone).login("s1000001").headers["Location"] == "/enroll"
    with app.app_context():
        ids = [choice.id for choice in enrollment.active_questions("ht")][:5]
    fields = {f"question_{n}": str(qid) for n, qid in enumerate(ids, start=1)}
    fields |= {f"answer_{n}": text for n, text in enumerate(PHONE_ANSWERS, start=1)}
    assert post_form(phone, "/enroll", fields).status_code == 303

    computer = app.test_client()
    assert begin(computer, "s1000001").status_code == 303
    typed = dict(zip(ids, PHONE_ANSWERS, strict=True))
    data = {
        f"answer_{n}": typed[qid].replace("\u2019", "'")
        for n, qid in enumerate(pinned_ids(computer, app), start=1)
    }
    response = post_form(computer, "/forgot/questions", data)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/forgot/reset/")


def test_an_answer_enrolled_with_a_curly_apostrophe_before_it_was_folded_still_works(
    make_app: AppFactory,
) -> None:
    """Hashes stored before apostrophes were folded keep the U+2019 the phone typed: still accepted."""
    app = make_app()
    legacy = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with app.app_context():
        account = get_directory().find("s1000001")
        assert account is not None
        ids = db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        rows = [
            EnrollmentAnswer(question_id=qid, answer_hash=legacy.hash(text.casefold()))
            for qid, text in zip(ids, PHONE_ANSWERS, strict=False)
        ]
        db.session.add(Enrollment(account_key=account.key, login=account.login, answers=rows))
        db.session.commit()
        typed = {row.question_id: text for row, text in zip(rows, PHONE_ANSWERS, strict=True)}
    client = app.test_client()
    assert begin(client, "s1000001").status_code == 303
    data = {f"answer_{n}": typed[qid] for n, qid in enumerate(pinned_ids(client, app), start=1)}

    response = post_form(client, "/forgot/questions", data)

    assert response.headers["Location"].startswith("/forgot/reset/")


# Second factor --------------------------------------------------------------------


def test_if_available_without_email_goes_straight_to_the_new_password(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "p2000002")  # parent, no email on file
    client = app.test_client()
    assert recover(client, app, "p2000002").startswith("/forgot/reset/")
    assert outbox(app, "recovery:code") == []


def test_off_never_sends_a_code(make_app: AppFactory) -> None:
    app = make_app(SECOND_FACTOR={"student": "off", "parent": "off", "staff": "off"})
    enroll(app, "p2000001")
    client = app.test_client()
    assert recover(client, app, "p2000001").startswith("/forgot/reset/")
    assert outbox(app, "recovery:code") == []


def test_required_with_email_sends_a_code(make_app: AppFactory) -> None:
    app = make_app(SECOND_FACTOR={"student": "required", "parent": "required", "staff": "required"})
    enroll(app, "s1000001")
    client = app.test_client()
    assert recover(client, app, "s1000001") == "/forgot/code"
    assert len(outbox(app, "recovery:code")) == 1


def test_required_without_email_sends_the_person_to_help_for_their_kind(make_app: AppFactory) -> None:
    app = make_app(SECOND_FACTOR={"student": "required", "parent": "if-available", "staff": "off"})
    enroll(app, "s1000002")  # student, no email
    client = app.test_client()
    assert recover(client, app, "s1000002") == "/forgot/help"
    page = client.get("/forgot/help").get_data(as_text=True)
    assert "there is none" in page
    assert "student ID number" in page
    assert "birth month and year" in page
    assert "Parent Information screen" not in page  # they proved who they are: only their kind
    assert audit(app, Tag.RECOVERY_CODE_FAILED)[0].details == {"reason": "no-email"}
    with app.app_context():
        assert db.session.scalar(select(TokenNonce)) is None


def test_three_wrong_codes_kill_the_code(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "p2000001")
    client = app.test_client()
    recover(client, app, "p2000001")
    code = mailed_code(app)

    first = post_form(client, "/forgot/code", {"code": "AAAAAAAA"})
    assert first.status_code == 400
    assert "2 tries left" in first.get_data(as_text=True)
    assert post_form(client, "/forgot/code", {"code": "BBBBBBBB"}).status_code == 400
    third = post_form(client, "/forgot/code", {"code": "CCCCCCCC"})
    assert third.headers["Location"] == "/forgot/help"
    assert "typed wrong too many times" in client.get("/forgot/help").get_data(as_text=True)

    # The right code no longer works, even through the service.
    with app.app_context():
        step = _check(app, "p2000001", code)
    assert step.stage is recovery.Stage.HELP
    assert step.reason is recovery.HelpReason.CODE_FAILED
    with app.app_context():
        assert db.session.scalar(select(TokenNonce)) is None


def _check(app: Flask, login: str, code: str) -> recovery.Step:
    account = get_directory().find(login)
    assert account is not None
    attempt = recovery.Attempt(lookup="unused", subject=account.key)
    return recovery.check_code(get_directory(), get_security(), app.config, attempt, code, ORIGIN)


def test_a_code_works_once(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "p2000001")
    client = app.test_client()
    recover(client, app, "p2000001")
    code = mailed_code(app)
    with app.app_context():
        assert _check(app, "p2000001", code).stage is recovery.Stage.RESET
        assert _check(app, "p2000001", code).stage is recovery.Stage.HELP
    # nor from the browser that was waiting for it
    assert post_form(client, "/forgot/code", {"code": code}).headers["Location"] == "/forgot/help"


def test_an_expired_code_is_refused(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "p2000001")
    client = app.test_client()
    recover(client, app, "p2000001")
    code = mailed_code(app)
    with app.app_context():
        db.session.execute(update(VerificationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = post_form(client, "/forgot/code", {"code": code})
    assert response.headers["Location"] == "/forgot/help"


def test_the_code_is_stored_only_as_a_digest(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "p2000001")
    client = app.test_client()
    recover(client, app, "p2000001")
    code = mailed_code(app)
    with app.app_context():
        row = db.session.scalar(select(VerificationCode))
        assert row is not None
        assert code not in row.code_digest
        assert row.tries_left == 3
        assert row.expires_at - row.created_at == timedelta(minutes=10)
    assert len(code) == 8
    assert not set(code) & set("01OIL")


# Invariant 4: no enumeration ----------------------------------------------------------

MASKS = [
    (re.compile(r'(name="csrf_token"[^>]*value=")[^"]+'), r"\1CSRF"),
    (re.compile(r'(<label[^>]*for="answer_\d+"[^>]*>)[^<]*'), r"\1QUESTION"),
]


def masked(html: str) -> str:
    for pattern, replacement in MASKS:
        html = pattern.sub(replacement, html)
    return html


def journey(app: Flask, login: str) -> list[Any]:
    """What a stranger sees for ``login``: statuses, redirects and pages with question texts masked."""
    client = app.test_client()
    seen: list[Any] = []
    start = begin(client, login)
    seen += [start.status_code, start.headers.get("Location")]
    questions = client.get("/forgot/questions")
    seen += [questions.status_code, masked(questions.get_data(as_text=True))]
    token = csrf_token(client, "/forgot/questions")
    empty = client.post("/forgot/questions", data={"csrf_token": token})
    seen += [empty.status_code, masked(empty.get_data(as_text=True))]
    for _ in range(2):
        wrong = answer(client, app, right=False)
        seen += [wrong.status_code, wrong.headers.get("Location")]
        help_page = client.get("/forgot/help")
        seen += [help_page.status_code, masked(help_page.get_data(as_text=True))]
    return seen


def test_unknown_unenrolled_and_enrolled_logins_get_the_same_pages(make_app: AppFactory) -> None:
    # The second wrong try meets a locked account; the per-IP limit is another test's business.
    app = make_app(LOCKOUT_MAX_FAILURES=1, RECOVERY_RATE_LIMIT="1000 per minute")
    enroll(app, "s1000001")
    enrolled = journey(app, "s1000001")
    assert enrolled[:2] == [303, "/forgot/questions"]
    assert enrolled[-2:][0] == 200
    assert journey(app, "nobody-like-this") == enrolled
    assert journey(app, "s1000002") == enrolled  # a real account that never enrolled
    assert journey(app, "1000001") == enrolled  # an alias of the enrolled (and now locked) account
    with app.app_context():
        assert get_security().lockout.locked_until(get_directory().find("s1000001").key)  # type: ignore[union-attr]


def test_every_journey_asks_the_same_number_of_questions(make_app: AppFactory) -> None:
    app = make_app(RECOVERY_QUESTION_COUNT=2)
    enroll(app, "s1000001")
    for login in ["s1000001", "s1000002", "ghost"]:
        client = app.test_client()
        begin(client, login)
        page = client.get("/forgot/questions").get_data(as_text=True)
        assert page.count('type="password"') == 2


def test_decoys_cost_the_same_argon2_work_as_a_real_account(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    counts = []
    for login in ["s1000001", "ghost", "s1000002"]:
        client = app.test_client()
        begin(client, login)
        with app.app_context():
            before = get_security().hasher.verify_count
        answer(client, app, right=False)
        with app.app_context():
            counts.append(get_security().hasher.verify_count - before)
    assert counts == [3, 3, 3]


def test_a_retired_question_in_use_is_drawn_for_strangers_too(make_app: AppFactory) -> None:
    # A retired question keeps working for those who answered it. If decoys never drew it,
    # seeing it asked would prove the login real and enrolled.
    app = make_app()
    enroll(app, "s1000001")
    enrolled = list(enrolled_answers(app, "s1000001"))
    with app.app_context():
        unused = db.session.scalar(
            select(Question.id).where(Question.id.not_in(enrolled)).order_by(Question.id.desc())
        )
        in_use = enrolled[0]
        db.session.execute(update(Question).where(Question.id.in_([in_use, unused])).values(active=False))
        db.session.commit()
        drawn = {qid for n in range(40) for qid in recovery._decoy_pool(app.config, f"ghost-{n}")}
    assert in_use in drawn
    assert unused not in drawn  # asked of nobody real any more: nor of strangers


def test_decoy_questions_are_stable_across_requests_and_restarts(
    make_app: AppFactory, database_url: str, tmp_path: Any
) -> None:
    app = make_app()
    first, second = app.test_client(), app.test_client()
    begin(first, "Ghost.Login")
    begin(second, "ghost.login ")
    assert pinned_ids(first, app) == pinned_ids(second, app)

    restarted = create_app(base_settings(database_url, tmp_path))  # same database, a new process
    try:
        third = restarted.test_client()
        begin(third, "GHOST.LOGIN")
        assert pinned_ids(third, restarted) == pinned_ids(first, app)
        with restarted.app_context():
            pool = recovery._decoy_pool(restarted.config, "ghost.login")
            assert pool == recovery._decoy_pool(app.config, "Ghost.Login")
    finally:
        with restarted.app_context():
            db.session.remove()
            db.engine.dispose()


def session_state(client: FlaskClient) -> dict[str, str]:
    with client.session_transaction() as state:
        return dict(state["recovery"])


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_the_session_holds_neither_the_login_nor_the_account_key(
    make_app: AppFactory, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    real, ghost = app.test_client(), app.test_client()
    begin(real, "s1000001")
    begin(ghost, "s1000009")
    with app.app_context():
        key = get_directory().find("s1000001").key  # type: ignore[union-attr]
    kept = json.dumps(session_state(real))
    assert "s1000001" not in kept
    assert key not in kept
    shape = {name: len(value) for name, value in session_state(real).items()}
    assert shape == {name: len(value) for name, value in session_state(ghost).items()}
    with app.app_context():
        assert recovery.unseal(app.config, session_state(real)).subject == key  # type: ignore[union-attr]


def test_failed_recovery_is_audited_without_saying_so_on_the_page(make_app: AppFactory) -> None:
    app = make_app()
    client = app.test_client()
    begin(client, "ghost")
    answer(client, app, right=False)
    (started,) = audit(app, Tag.RECOVERY_STARTED)
    assert started.subject is None  # whatever was typed (maybe a password) is not kept
    assert started.details["known"] is False
    (failed,) = audit(app, Tag.RECOVERY_ANSWER_FAILED)
    assert failed.details["known"] is False
    assert failed.details["lookup"] == started.details["lookup"]


# Invariant 5: pinned questions --------------------------------------------------------


def question_labels(client: FlaskClient) -> list[str]:
    page = client.get("/forgot/questions").get_data(as_text=True)
    return re.findall(r'<label[^>]*for="answer_\d+"[^>]*>([^<]*)</label>', page)


def test_reloading_never_changes_the_pinned_questions(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    asked = question_labels(client)
    assert len(asked) == 3
    for _ in range(5):
        assert question_labels(client) == asked
    begin(client, "s1000001")
    assert question_labels(client) == asked
    answer(client, app, right=False)
    other = app.test_client()  # another browser, and through an alias of the login
    begin(other, person("s1000001").email or "")
    assert question_labels(other) == asked


def test_questions_are_drawn_anew_only_after_they_expire(make_app: AppFactory) -> None:
    app = make_app(ENROLL_QUESTION_COUNT=5, RECOVERY_QUESTION_COUNT=3)
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    before = pinned_ids(client, app)
    with app.app_context():
        challenge = db.session.scalar(select(RecoveryChallenge))
        assert challenge is not None
        assert challenge.expires_at - challenge.created_at == timedelta(minutes=30)
        challenge.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get("/forgot/questions").headers["Location"] == "/forgot"
    data = {f"answer_{n}": "x" for n in (1, 2, 3)}
    expired = post_form(client, "/forgot/questions", data, form_path="/forgot")
    assert expired.headers["Location"] == "/forgot"
    begin(client, "s1000001")
    after = pinned_ids(client, app)
    assert set(after) <= set(enrolled_answers(app, "s1000001"))
    assert len(after) == len(before) == 3


def test_a_right_answer_unpins_the_questions(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    recover(client, app, "s1000001")
    with app.app_context():
        assert db.session.scalar(select(RecoveryChallenge)) is None


# Lockout through the pages --------------------------------------------------------


def test_six_wrong_answers_count_five_failures_and_lock(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    with app.app_context():
        before = get_security().hasher.verify_count
    for _ in range(6):
        response = answer(client, app, right=False)
        assert response.headers["Location"] == "/forgot/help"
    with app.app_context():
        key = get_directory().find("s1000001").key  # type: ignore[union-attr]
        row = db.session.get(Lockout, key)
        assert row is not None
        assert row.failures == 5
        assert row.locked_until is not None
        assert get_security().hasher.verify_count - before == 5 * 3  # the sixth did no argon2 work
    assert len(audit(app, Tag.LOCKED)) == 1
    outcomes = sorted(e.outcome for e in audit(app, Tag.RECOVERY_ANSWER_FAILED))
    assert outcomes == ["failure"] * 5 + ["locked"]
    (notice,) = outbox(app, "notice:locked")
    assert notice.to_address == person("s1000001").email
    # In the district's time zone, written out for the reader; never UTC.
    assert format_moment(row.locked_until, "en", app.config["TIME_ZONE"]) in notice.body_text
    assert "UTC" not in notice.body_text

    # The right answers do not get past the lock, and cost nothing.
    with app.app_context():
        before = get_security().hasher.verify_count
    assert answer(client, app, "s1000001").headers["Location"] == "/forgot/help"
    with app.app_context():
        assert get_security().hasher.verify_count == before
        assert db.session.scalar(select(TokenNonce)) is None


def test_a_right_answer_clears_earlier_failures(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    answer(client, app, right=False)
    answer(client, app, right=False)
    assert answer(client, app, "s1000001").headers["Location"].startswith("/forgot/reset/")
    with app.app_context():
        assert db.session.scalar(select(Lockout.failures)) == 0


def test_wrong_answers_lead_back_to_the_same_questions_from_the_help_page(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    asked = question_labels(client)
    answer(client, app, right=False)
    page = client.get("/forgot/help").get_data(as_text=True)
    assert 'href="/forgot/questions"' in page
    assert question_labels(client) == asked


def test_answers_are_rehashed_when_the_parameters_change(make_app: AppFactory) -> None:
    app = make_app()
    old = AnswerHasher(memory_cost=2048, time_cost=1, parallelism=1)
    enroll(app, "s1000001", hasher=old)
    client = app.test_client()
    begin(client, "s1000001")
    asked = pinned_ids(client, app)
    answer(client, app, "s1000001")
    with app.app_context():
        hasher = get_security().hasher
        rows = db.session.scalars(select(EnrollmentAnswer)).all()
        rehashed = {row.question_id for row in rows if not hasher.needs_rehash(row.answer_hash)}
    assert rehashed == set(asked)


# The fallback page ----------------------------------------------------------------


def test_fallback_page_tells_both_kinds_what_to_do_and_when_the_desk_is_open(client: FlaskClient) -> None:
    page = client.get("/forgot/help").get_data(as_text=True)
    assert "If you are a student" in page
    assert "student ID number" in page
    assert "birth month and year (MMYYYY)" in page
    assert "If you are a parent or guardian" in page
    assert "Parent Information screen" in page
    assert "Help desk hours" in page
    assert "no evening help desk" in page


# Tokens through the pages -----------------------------------------------------------


def token_location(make_app: AppFactory, **settings: Any) -> tuple[Flask, FlaskClient, str]:
    app = make_app(**settings)
    enroll(app, "s1000001")
    client = app.test_client()
    return app, client, recover(client, app, "s1000001")


def test_a_used_token_is_refused(make_app: AppFactory) -> None:
    app, client, location = token_location(make_app)
    assert reset_to(client, location).status_code == 303
    assert client.get(location).status_code == 410
    again = client.post(location, data={"new_password": "x", "confirm": "x"})
    assert again.status_code in (400, 410)  # no CSRF token on a dead page: refused either way
    assert binds(app, "s1000001", NEW_PASSWORD)


def test_an_expired_token_is_refused(make_app: AppFactory) -> None:
    app, client, location = token_location(make_app)
    with app.app_context():
        row = db.session.scalar(select(TokenNonce))
        assert row is not None
        assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get(location).status_code == 410
    assert binds(app, "s1000001", person("s1000001").password)


def test_a_token_dies_when_the_password_changes_another_way(make_app: AppFactory) -> None:
    app, client, location = token_location(make_app)
    other = app.test_client()
    second = recover(other, app, "s1000001")  # a second recovery finishes first
    assert reset_to(other, second).status_code == 303
    assert client.get(location).status_code == 410


def test_forged_and_other_purpose_tokens_are_refused(make_app: AppFactory) -> None:
    app, client, location = token_location(make_app)
    assert client.get(location[:-3] + "abc").status_code == 410
    assert client.get("/forgot/reset/not-a-token").status_code == 410
    with app.app_context():
        key = get_directory().find("s1000001").key  # type: ignore[union-attr]
        assisted = get_security().tokens.issue(key, Purpose.ASSISTED_RESET, timedelta(hours=1)).value
        db.session.commit()
    assert client.get(f"/forgot/reset/{assisted}").status_code == 410
    assert len(audit(app, Tag.TOKEN_REFUSED)) == 3


def test_a_weak_password_does_not_burn_the_token(make_app: AppFactory) -> None:
    app, client, location = token_location(make_app)
    weak = reset_to(client, location, "password")
    assert weak.status_code == 400
    assert "too easy to guess" in weak.get_data(as_text=True)
    mismatch = post_form(client, location, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 400
    assert reset_to(client, location).status_code == 303
    assert binds(app, "s1000001", NEW_PASSWORD)


def test_a_reset_clears_the_lockout_counter(make_app: AppFactory) -> None:
    app = make_app()
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    answer(client, app, right=False)
    location = answer(client, app, "s1000001").headers["Location"]
    with app.app_context():
        key = get_directory().find("s1000001").key  # type: ignore[union-attr]
        db.session.execute(update(Lockout).values(failures=3))
        db.session.commit()
    reset_to(client, location)
    with app.app_context():
        assert db.session.get(Lockout, key).failures == 0  # type: ignore[union-attr]


# Secrets stay secret ----------------------------------------------------------------


def test_answers_passwords_and_codes_never_reach_logs_audit_or_other_mail(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app()
    enroll(app, "p2000001")
    client = app.test_client()
    begin(client, "p2000001")
    answer(client, app, right=False)
    assert recover(client, app, "p2000001") == "/forgot/code"
    code = mailed_code(app)
    post_form(client, "/forgot/code", {"code": "WRONGXYZ"})
    location = post_form(client, "/forgot/code", {"code": code}).headers["Location"]
    reset_to(client, location, "password")  # refused by the policy
    reset_to(client, location)

    secrets_typed = [*ANSWERS, WRONG, NEW_PASSWORD, code]
    logs = caplog.text
    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
        audit_text = json.dumps([[e.tag, e.subject, e.actor, e.user_agent, e.details] for e in events])
    for secret in secrets_typed:
        assert secret not in logs
        assert secret not in audit_text
    for message in outbox(app):
        for secret in secrets_typed:
            if message.purpose == "recovery:code" and secret == code:
                continue
            assert secret not in message.body_text, message.purpose
            assert secret not in message.subject
    assert binds(app, "p2000001", NEW_PASSWORD)


def test_unenrolled_real_account_hashes_nothing_about_itself(make_app: AppFactory) -> None:
    """A decoy challenge for a real but unenrolled account stores no answer, and is counted like any.

    The claim is the same database work as an enrolled account's (issue 14, item 5).
    """
    app = make_app(**FAST_HASHING)
    client = app.test_client()
    begin(client, "s1000002")
    answer(client, app, right=False)
    with app.app_context():
        assert db.session.scalar(select(Enrollment)) is None
        assert db.session.scalar(select(EnrollmentAnswer)) is None
        (row,) = db.session.scalars(select(Lockout))
        assert (row.login, row.failures) == ("s1000002", 1)
