"""Enrolling challenge answers: rules, hashing, replacement, re-authentication, notices."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from selfservice.portal import enrollment
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.security import get_security
from selfservice.security.answers import normalise_answer
from tests.conftest import AuthActions, person, post_form
from tests.fixtures.directories import ALL_DIRECTORIES

ANSWERS = ["Zanzibar  Moon", "periwinkle", "Okonomiyaki!", "marmalade sky", "tangerine dream"]
OTHER_ANSWERS = ["Quokka Island", "bumblebee jam", "velvet cactus", "honeycomb rain", "lighthouse tea"]
DIRECTORIES = ALL_DIRECTORIES


@pytest.fixture(params=DIRECTORIES)
def any_app(request: pytest.FixtureRequest, make_app: Any) -> Flask:
    """The app on each directory: builtin and a real slapd."""
    return make_app(directory=request.param)


def question_ids(app: Flask) -> list[int]:
    with app.app_context():
        return [choice.id for choice in enrollment.active_questions("en")]


def form_data(ids: list[int], answers: list[str], **extra: str) -> dict[str, str]:
    data = {f"question_{n}": str(qid) for n, qid in enumerate(ids, start=1)}
    data |= {f"answer_{n}": answer for n, answer in enumerate(answers, start=1)}
    return data | extra


def submit(client: FlaskClient, ids: list[int], answers: list[str], **extra: str) -> Any:
    return post_form(client, "/enroll", form_data(ids, answers, **extra))


def stored(app: Flask) -> list[tuple[int, str]]:
    """(question id, hash) of every stored answer."""
    with app.app_context():
        rows = db.session.scalars(select(EnrollmentAnswer).order_by(EnrollmentAnswer.id))
        return [(row.question_id, row.answer_hash) for row in rows]


def events(app: Flask, tag: Tag) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag))))


def outbox(app: Flask) -> list[OutboxMessage]:
    with app.app_context():
        return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def everything_stored(app: Flask) -> str:
    """Every row of every table as lower-case text: answers must appear nowhere in it."""
    with app.app_context():
        rows = [row for table in db.metadata.sorted_tables for row in db.session.execute(table.select())]
    return "\n".join(repr(tuple(row)) for row in rows).lower()


def age_sign_in(client: FlaskClient, minutes: int) -> None:
    """Pretend the sign-in happened ``minutes`` ago."""
    with client.session_transaction() as session:
        snapshot = dict(session["account"])
        snapshot["signed_in_at"] -= minutes * 60
        session["account"] = snapshot


@pytest.fixture
def ids(app: Flask) -> list[int]:
    return question_ids(app)[:5]


# --- end to end -------------------------------------------------------------------


def test_enrollment_stores_only_argon2id_hashes_of_normalised_answers(
    any_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = any_app.test_client()
    signed_in = AuthActions(client).login("s1000001")
    assert signed_in.headers["Location"] == "/enroll"  # invited straight after sign-in
    ids = question_ids(any_app)[3:8]

    response = submit(client, ids, ANSWERS)

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "Your security questions are saved." in client.get("/").get_data(as_text=True)
    rows = stored(any_app)
    assert [qid for qid, _hash in rows] == ids
    assert len({answer_hash for _qid, answer_hash in rows}) == 5
    with any_app.app_context():
        hasher = get_security().hasher
        for (_qid, answer_hash), answer in zip(rows, ANSWERS, strict=True):
            assert answer_hash.startswith("$argon2id$")
            assert hasher.verify(answer_hash, normalise_answer(answer))
            assert hasher.verify(answer_hash, answer.upper() + "  ")
        assert enrollment.enrollment_status(get_directory().find("s1000001").key).enrolled
    # Invariant 1: the answers are nowhere in plain text: no row, audit event, mail or log line.
    everything = everything_stored(any_app)
    for answer in ANSWERS:
        assert normalise_answer(answer) not in everything
        assert normalise_answer(answer) not in caplog.text.lower()
    [saved] = events(any_app, Tag.ENROLLMENT_SAVED)
    assert saved.details == {"question_ids": ids, "count": 5}
    assert (saved.actor, saved.subject, saved.outcome) == ("s1000001", "s1000001", "success")
    [mail] = outbox(any_app)
    assert mail.to_address == person("s1000001").email
    assert mail.subject == "Your security questions were updated"


def test_form_offers_numbered_question_selects_and_answers(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("p2000001")
    page = client.get("/enroll").get_data(as_text=True)
    for n in range(1, 6):
        assert f">Question {n}</label>" in page
        assert f">Answer {n}</label>" in page
    assert 'name="current_password"' not in page  # fresh sign-in: no password asked


def test_question_count_is_a_setting(make_app: Any) -> None:
    app = make_app(ENROLL_QUESTION_COUNT=3)
    client = app.test_client()
    AuthActions(client).login("s1000001")
    assert "Question 4" not in client.get("/enroll").get_data(as_text=True)
    assert submit(client, question_ids(app)[:3], ANSWERS[:3]).status_code == 303
    assert len(stored(app)) == 3


# --- each rule ----------------------------------------------------------------------


def _with(answers: list[str], slot: int, value: str) -> list[str]:
    changed = list(answers)
    changed[slot] = value
    return changed


RULES = [
    pytest.param({"answers": _with(ANSWERS, 0, "ab")}, "This answer is too short.", id="too-short"),
    pytest.param(
        {"answers": _with(ANSWERS, 0, "  a.  ")}, "This answer is too short.", id="short-after-norm"
    ),
    pytest.param({"answers": _with(ANSWERS, 0, "x" * 101)}, "This answer is too long.", id="too-long"),
    pytest.param({"answers": _with(ANSWERS, 0, "")}, "Type your answer.", id="empty"),
    pytest.param(
        {"answers": _with(ANSWERS, 3, " PERIWINKLE ")},
        "Each answer must be different from your other answers.",
        id="duplicate-answer",
    ),
    pytest.param(
        {"answers": _with(ANSWERS, 0, "my stuffed bear")},
        "An answer cannot repeat a word from its question.",
        id="question-word",
    ),
    pytest.param(
        {"answers": _with(ANSWERS, 2, "S1000001")}, "An answer cannot be your username.", id="login"
    ),
    pytest.param({"answers": _with(ANSWERS, 2, "ana  lopez")}, "An answer cannot be your name.", id="name"),
    pytest.param(
        {"question": (1, "first")},
        "You chose this question more than once. Choose a different one.",
        id="question-twice",
    ),
    pytest.param({"question": (2, "")}, "Choose a question.", id="no-question"),
    pytest.param({"question": (2, "999999")}, "Choose a question from the list.", id="unknown-question"),
]


@pytest.mark.parametrize(("change", "message"), RULES)
def test_each_rule_refuses_with_its_message(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int], change: dict[str, Any], message: str
) -> None:
    auth.login("s1000001")
    data = form_data(ids, change.get("answers", ANSWERS))
    if "question" in change:
        slot, value = change["question"]
        data[f"question_{slot + 1}"] = str(ids[0]) if value == "first" else value

    response = post_form(client, "/enroll", data)

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert "There is a problem" in page
    assert stored(app) == []
    assert events(app, Tag.ENROLLMENT_SAVED) == []
    assert outbox(app) == []


def test_every_problem_of_the_set_shows_at_once(
    client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    data = form_data(ids, _with(ANSWERS, 4, "no")) | {"question_2": str(ids[0]), "answer_3": ""}
    page = post_form(client, "/enroll", data).get_data(as_text=True)
    assert "You chose this question more than once." in page
    assert "Type your answer." in page
    assert "This answer is too short." in page


def test_answer_may_not_be_the_current_password(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    age_sign_in(client, 11)
    password = person("s1000001").password
    response = submit(client, ids, _with(ANSWERS, 4, password.lower()), current_password=password)
    assert response.status_code == 400
    assert "An answer cannot be your password." in response.get_data(as_text=True)
    assert stored(app) == []


def test_question_words_count_in_every_language(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    with app.app_context():
        question = db.session.get(Question, question_ids(app)[0])
        question.translations = {"es": "¿Cuál fue tu primer peluche favorito?"}
        db.session.commit()
    auth.login("s1000001")
    response = submit(client, question_ids(app)[:5], _with(ANSWERS, 0, "peluche azul"))
    assert response.status_code == 400
    assert "An answer cannot repeat a word from its question." in response.get_data(as_text=True)


# --- replacing a set ------------------------------------------------------------------


def test_enrolling_again_replaces_the_whole_set(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("s1000001")
    first, second = question_ids(app)[:5], question_ids(app)[5:10]
    assert submit(client, first, ANSWERS).status_code == 303
    page = client.get("/enroll").get_data(as_text=True)
    assert "Saving this form replaces all of your answers." in page

    assert submit(client, second, OTHER_ANSWERS).status_code == 303

    rows = stored(app)
    assert [qid for qid, _hash in rows] == second
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Enrollment.id))) == 1
        hasher = get_security().hasher
        assert all(hasher.verify(h, a) for (_q, h), a in zip(rows, OTHER_ANSWERS, strict=True))
        assert not any(hasher.verify(h, a) for (_q, h), a in zip(rows, ANSWERS, strict=True))
    assert len(events(app, Tag.ENROLLMENT_SAVED)) == 2
    assert len(outbox(app)) == 2


def test_refused_re_enrollment_leaves_the_old_set(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    submit(client, ids, ANSWERS)
    before = stored(app)
    response = submit(client, question_ids(app)[5:10], _with(OTHER_ANSWERS, 4, "no"))
    assert response.status_code == 400
    assert stored(app) == before


@contextmanager
def new_answers_refused() -> Iterator[None]:
    """The database fails as the new answers are written (after the old ones were deleted)."""

    def refuse(session: Session, *_args: Any) -> None:
        if any(isinstance(row, EnrollmentAnswer) for row in session.new):
            raise RuntimeError("database went away")

    event.listen(Session, "before_flush", refuse)
    try:
        yield
    finally:
        event.remove(Session, "before_flush", refuse)


def test_a_failure_while_saving_keeps_the_old_set(app: Flask, ids: list[int]) -> None:
    origin = Origin(ip="192.0.2.1")
    with app.test_request_context():
        account = get_directory().find("s1000001")
        enrollment.enroll(
            account, list(zip(ids, ANSWERS, strict=True)), current_password_for_rules=None, origin=origin
        )
    before = stored(app)
    new = list(zip(question_ids(app)[5:10], OTHER_ANSWERS, strict=True))
    with app.test_request_context(), new_answers_refused(), pytest.raises(RuntimeError):
        enrollment.enroll(account, new, current_password_for_rules=None, origin=origin)
    assert stored(app) == before
    assert len(events(app, Tag.ENROLLMENT_SAVED)) == 1
    assert len(outbox(app)) == 1


# --- re-authentication ------------------------------------------------------------------


def test_changing_answers_after_reauth_minutes_takes_the_current_password(any_app: Flask) -> None:
    client = any_app.test_client()
    AuthActions(client).login("p2000001")
    ids = question_ids(any_app)[:5]
    assert submit(client, ids, ANSWERS).status_code == 303
    before = stored(any_app)
    age_sign_in(client, 11)
    assert 'name="current_password"' in client.get("/enroll").get_data(as_text=True)

    missing = submit(client, ids, OTHER_ANSWERS)
    wrong = submit(client, ids, OTHER_ANSWERS, current_password="Not-My-Password-9")

    assert missing.status_code == 400
    assert "Enter your current password to confirm it is you." in missing.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.get_data(as_text=True)
    assert stored(any_app) == before
    [refused] = events(any_app, Tag.REAUTH_FAILED)
    assert refused.subject == "p2000001"
    assert "Not-My-Password" not in repr(refused.details)

    right = submit(client, ids, OTHER_ANSWERS, current_password=person("p2000001").password)
    assert right.status_code == 303
    assert stored(any_app) != before
    assert person("p2000001").password.lower() not in everything_stored(any_app)


def test_guessing_the_current_password_to_change_answers_is_limited_per_account(make_app: Any) -> None:
    app = make_app(SIGN_IN_ACCOUNT_RATE_LIMIT="5 per minute")
    client = app.test_client()
    AuthActions(client).login("s1000001")  # one claim of the five
    age_sign_in(client, 11)
    ids = question_ids(app)[:5]
    statuses = []
    for n in range(8):
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        statuses.append(submit(client, ids, ANSWERS, current_password=f"Wrong-Guess-{n}").status_code)
    assert statuses == [400] * 4 + [429] * 4
    assert len(events(app, Tag.REAUTH_FAILED)) == 4  # the others never reached the directory
    right = submit(client, ids, ANSWERS, current_password=person("s1000001").password)
    assert right.status_code == 429
    assert stored(app) == []


def test_reauth_minutes_is_a_setting(make_app: Any) -> None:
    app = make_app(REAUTH_MINUTES=30)
    client = app.test_client()
    AuthActions(client).login("s1000001")
    age_sign_in(client, 11)
    assert submit(client, question_ids(app)[:5], ANSWERS).status_code == 303


def test_stale_first_enrollment_also_takes_the_password(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    age_sign_in(client, 11)
    assert submit(client, ids, ANSWERS).status_code == 400
    assert submit(client, ids, ANSWERS, current_password=person("s1000001").password).status_code == 303


# --- question bank -------------------------------------------------------------------


def test_retired_question_keeps_the_enrollment_but_is_no_longer_offered(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    submit(client, ids, ANSWERS)
    with app.app_context():
        db.session.get(Question, ids[0]).active = False
        db.session.commit()

    page = client.get("/enroll").get_data(as_text=True)
    assert f'value="{ids[0]}"' not in page
    assert f'value="{ids[1]}"' in page
    assert "Your security questions are set up" in client.get("/").get_data(as_text=True)
    assert [qid for qid, _hash in stored(app)] == ids
    again = submit(client, ids, OTHER_ANSWERS)
    assert again.status_code == 400
    assert "Choose a question from the list." in again.get_data(as_text=True)
    assert [qid for qid, _hash in stored(app)] == ids


# --- notices, home page, invitation ---------------------------------------------------------


def test_no_mail_for_an_account_without_email_but_still_audited(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000002")
    assert submit(client, ids, ANSWERS).status_code == 303
    assert outbox(app) == []
    assert len(events(app, Tag.ENROLLMENT_SAVED)) == 1


def test_home_page_says_whether_and_when_enrolled(
    client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("p2000001")
    assert "You have not set up your security questions yet." in client.get("/").get_data(as_text=True)
    submit(client, ids, ANSWERS)
    page = client.get("/").get_data(as_text=True)
    assert "Your security questions are set up (since" in page


@pytest.mark.parametrize(
    ("login", "lands_on"), [("s1000001", "/enroll"), ("p2000002", "/enroll"), ("teacher1", "/")]
)
def test_unenrolled_holders_are_invited_after_sign_in(auth: AuthActions, login: str, lands_on: str) -> None:
    assert auth.login(login).headers["Location"] == lands_on


def test_enrolled_holder_goes_home_after_sign_in(
    client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    submit(client, ids, ANSWERS)
    auth.logout()
    assert auth.login("s1000001").headers["Location"] == "/"


def test_clearing_an_enrollment_is_audited_and_mailed(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("p2000001")
    submit(client, ids, ANSWERS)
    with app.test_request_context():
        account = get_directory().find("p2000001")
        assert enrollment.clear_enrollment(account, "its1", Origin(ip="10.0.0.9"))
        assert not enrollment.enrollment_status(account.key).enrolled
        assert not enrollment.clear_enrollment(account, "its1", Origin())
    assert stored(app) == []
    [cleared] = events(app, Tag.ENROLLMENT_CLEARED)
    assert (cleared.actor, cleared.subject, cleared.ip) == ("its1", "p2000001", "10.0.0.9")
    assert [m.subject for m in outbox(app)][-1] == "Your security questions were cleared"


# --- access --------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/enroll")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_post_without_csrf_token_is_refused(
    app: Flask, client: FlaskClient, auth: AuthActions, ids: list[int]
) -> None:
    auth.login("s1000001")
    response = client.post("/enroll", data=form_data(ids, ANSWERS))
    assert response.status_code == 400
    assert stored(app) == []


def save_at_once(app: Flask, login: str, sets: list[list[tuple[int, str]]]) -> list[BaseException]:
    """Each set of (question id, answer) saved by a thread of its own, all at the same moment."""
    barrier = threading.Barrier(len(sets))
    errors: list[BaseException] = []

    def submit(chosen: list[tuple[int, str]]) -> None:
        with app.app_context():
            account = get_directory().find(login)
            barrier.wait()
            try:
                enrollment.enroll(account, chosen, current_password_for_rules=None, origin=Origin())
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit, args=(chosen,)) for chosen in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_simultaneous_first_enrollments_leave_one_set(app: Flask) -> None:
    """A double click on the first enrollment: both requests succeed, one set of answers remains."""
    from sqlalchemy import func

    with app.app_context():
        question_ids = list(db.session.scalars(select(Question.id).order_by(Question.position).limit(5)))
    answers = ["tangerine", "saxophone", "lighthouse", "marmalade", "xylophone"]
    chosen = list(zip(question_ids, answers, strict=True))
    assert save_at_once(app, "s1000002", [chosen, chosen]) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 1
        assert len(db.session.scalars(select(Enrollment)).one().answers) == 5


def test_two_simultaneous_re_enrollments_leave_one_whole_set(app: Flask, ids: list[int]) -> None:
    """Saving again from two tabs at once: one of the two sets stands, whole; never both mixed."""
    with app.app_context():
        holder = get_directory().find("s1000002")
        assert holder is not None
        enrollment.enroll(
            holder, list(zip(ids, ANSWERS, strict=True)), current_password_for_rules=None, origin=Origin()
        )
    offered = question_ids(app)
    sets = [offered[5:10], offered[10:15]]
    for _round in range(3):
        chosen_sets = [list(zip(chosen, OTHER_ANSWERS, strict=True)) for chosen in sets]
        assert save_at_once(app, "s1000002", chosen_sets) == []
        assert sorted(qid for qid, _hash in stored(app)) in [sorted(chosen) for chosen in sets]
