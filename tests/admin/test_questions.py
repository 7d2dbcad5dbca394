"""The question bank: add, edit, reorder, retire, reactivate (all audited); retired questions keep working."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from selfservice.audit.models import AuditEvent
from selfservice.audit.services import Origin
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.portal import recovery
from selfservice.portal.enrollment import active_questions, enroll
from selfservice.portal.models import Question
from selfservice.security import get_security
from tests.admin.conftest import post_at_once
from tests.conftest import post_form

ANSWERS = ["Mister Fluffles", "Reykjavik harbour", "boiled spinach", "Captain Whiskers", "Bubbles"]


def question_changes(app: Flask) -> list[dict]:
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(tag=str(Tag.QUESTION_CHANGED)).order_by(AuditEvent.id)
        return [{"actor": e.actor, **e.details} for e in events]


def bank_texts(app: Flask) -> list[str]:
    with app.app_context():
        return [q.text for q in db.session.query(Question).order_by(Question.position, Question.id)]


def test_adding_a_question_with_translations(admin: FlaskClient, app: Flask) -> None:
    response = post_form(
        admin,
        "/admin/questions/new",
        {
            "text": "What was the name of your first school bus driver?",
            "text_es": "¿Cómo se llamaba tu primer conductor de autobús escolar?",
            "text_ht": "Ki jan chofè bis lekòl ou te rele?",
        },
    )
    assert response.status_code == 303
    assert bank_texts(app)[-1] == "What was the name of your first school bus driver?"
    with app.app_context():
        question = db.session.query(Question).order_by(Question.id.desc()).first()
        assert question.active
        assert question.text_in("es").startswith("¿Cómo")
        offered = [choice.id for choice in active_questions("ht")]
        assert question.id in offered
    [change] = question_changes(app)
    assert (change["actor"], change["action"], change["languages"]) == ("admin1", "add", ["es", "ht"])


def test_a_question_needs_text(admin: FlaskClient, app: Flask) -> None:
    before = bank_texts(app)
    response = post_form(admin, "/admin/questions/new", {"text": "  "})
    assert response.status_code == 400
    assert "Enter the question." in response.get_data(as_text=True)
    assert bank_texts(app) == before


def test_editing_records_what_changed(admin: FlaskClient, app: Flask) -> None:
    with app.app_context():
        first = db.session.query(Question).order_by(Question.position).first()
        question_id, old_text = first.id, first.text
    response = post_form(
        admin,
        f"/admin/questions/{question_id}",
        {"text": old_text, "text_es": "¿Cuál fue tu primer peluche?"},
    )
    assert response.status_code == 303
    [change] = question_changes(app)
    assert (change["action"], change["changed"]) == ("edit", ["translations.es"])
    assert "text" not in change


def test_moving_a_question_down_and_up(admin: FlaskClient, app: Flask) -> None:
    before = bank_texts(app)
    with app.app_context():
        first_id = db.session.query(Question).order_by(Question.position, Question.id).first().id
    post_form(admin, f"/admin/questions/{first_id}/move", {"direction": "down"}, form_path="/admin/questions")
    assert bank_texts(app)[:2] == [before[1], before[0]]
    post_form(admin, f"/admin/questions/{first_id}/move", {"direction": "up"}, form_path="/admin/questions")
    assert bank_texts(app) == before
    assert [(c["action"], c["from"], c["to"]) for c in question_changes(app)] == [
        ("move", 1, 2),
        ("move", 2, 1),
    ]
    with app.app_context():
        assert [c.text for c in active_questions("en")] == before


def test_a_move_needs_a_direction(admin: FlaskClient, app: Flask) -> None:
    with app.app_context():
        question_id = db.session.query(Question.id).order_by(Question.id).limit(1).scalar()
    path = f"/admin/questions/{question_id}/move"
    response = post_form(admin, path, {"direction": "sideways"}, form_path="/admin/questions")
    assert response.status_code == 400


def test_retiring_a_question_in_use_keeps_the_enrollment_working(make_app) -> None:  # type: ignore[no-untyped-def]
    # All five enrolled questions are asked, so the retired one is certainly among them.
    app = make_app(RECOVERY_QUESTION_COUNT=5)
    client = app.test_client()
    with app.app_context():
        account = get_directory().find("s1000001")
        chosen = [choice.id for choice in active_questions("en")[:5]]
        enroll(
            account, list(zip(chosen, ANSWERS, strict=True)), current_password_for_rules=None, origin=Origin()
        )
    retired = chosen[2]
    post_form(client, "/login", {"login": "admin1", "password": "Root-Cellar-3004"})

    page = f"/admin/questions/{retired}"
    assert "1 enrollments use this question" in client.get(page).get_data(as_text=True)
    refused = post_form(client, f"{page}/retire", {}, form_path=page)
    assert refused.status_code == 400  # no confirmation tick
    response = post_form(client, f"{page}/retire", {"confirm": "y"}, form_path=page)
    assert response.status_code == 303

    with app.app_context():
        assert retired not in [choice.id for choice in active_questions("en")]
        attempt = recovery.start(get_directory(), app.config, "s1000001", Origin())
        pinned = recovery.pinned_questions(attempt)
        assert pinned is not None
        assert retired in [q.id for q in pinned]
        by_question = dict(zip(chosen, ANSWERS, strict=True))
        step = recovery.answer(
            get_directory(),
            get_security(),
            app.config,
            attempt,
            [by_question[q.id] for q in pinned],
            Origin(),
        )
        assert step.stage is not recovery.Stage.HELP
    [change] = question_changes(app)
    assert (change["action"], change["question_id"], change["in_use"]) == ("retire", retired, 1)
    assert "Retired" in client.get("/admin/questions").get_data(as_text=True)


def test_the_bank_keeps_enough_questions_on_offer_to_enroll(admin: FlaskClient, app: Flask) -> None:
    # With fewer than ENROLL_QUESTION_COUNT on offer nobody can enroll; with fewer than
    # RECOVERY_QUESTION_COUNT a stranger's decoy asks fewer questions than a real account.
    with app.app_context():
        offered = [choice.id for choice in active_questions("en")]
    keep = app.config["ENROLL_QUESTION_COUNT"]
    for question_id in offered[: len(offered) - keep]:
        page = f"/admin/questions/{question_id}"
        assert post_form(admin, f"{page}/retire", {"confirm": "y"}, form_path=page).status_code == 303

    last = offered[-1]
    page = f"/admin/questions/{last}"
    refused = post_form(admin, f"{page}/retire", {"confirm": "y"}, form_path=page)
    assert refused.status_code == 409
    assert f"Enrollment asks for {keep} questions" in refused.get_data(as_text=True)
    with app.app_context():
        assert len(active_questions("en")) == keep
    assert [c["action"] for c in question_changes(app)] == ["retire"] * (len(offered) - keep)


def test_a_retired_question_can_be_offered_again(admin: FlaskClient, app: Flask) -> None:
    with app.app_context():
        question = db.session.query(Question).order_by(Question.position).first()
        question.active = False
        db.session.commit()
        question_id = question.id
    response = post_form(
        admin, f"/admin/questions/{question_id}/reactivate", {}, form_path="/admin/questions"
    )
    assert response.status_code == 303
    with app.app_context():
        assert question_id in [choice.id for choice in active_questions("en")]
    assert [c["action"] for c in question_changes(app)] == ["reactivate"]


def test_unknown_question_is_404(admin: FlaskClient) -> None:
    assert admin.get("/admin/questions/99999").status_code == 404


def _retire_at_once(app: Flask, question_ids: list[int]) -> list[tuple[int, str]]:
    posts = [(f"/admin/questions/{qid}/retire", {"confirm": "y"}) for qid in question_ids]
    return post_at_once(app, posts, "WHERE question.active")


def test_two_admins_retiring_at_once_never_leave_the_bank_short(app: Flask) -> None:
    keep = app.config["ENROLL_QUESTION_COUNT"]
    with app.app_context():
        offered = [choice.id for choice in active_questions("en")]
        for question_id in offered[: len(offered) - keep - 1]:  # one to spare
            db.session.get(Question, question_id).active = False  # type: ignore[union-attr]
        db.session.commit()
        offered = [choice.id for choice in active_questions("en")]
    assert len(offered) == keep + 1

    results = _retire_at_once(app, offered[-2:])

    assert sorted(status for status, _page in results) == [303, 409]
    refused = next(page for status, page in results if status == 409)
    assert f"Enrollment asks for {keep} questions" in refused
    with app.app_context():
        assert len(active_questions("en")) == keep
    assert [c["action"] for c in question_changes(app)] == ["retire"]


def test_two_admins_retiring_the_same_question_record_one_retirement(app: Flask) -> None:
    with app.app_context():
        question_id = active_questions("en")[0].id

    results = _retire_at_once(app, [question_id, question_id])

    assert [status for status, _page in results] == [303, 303]
    with app.app_context():
        assert question_id not in [choice.id for choice in active_questions("en")]
    assert [c["action"] for c in question_changes(app)] == ["retire"]  # one event, not two


def test_two_admins_moving_at_once_both_moves_count(app: Flask) -> None:
    with app.app_context():
        ids = [q.id for q in db.session.query(Question).order_by(Question.position, Question.id)]
    first, second, third = ids[1:4]
    posts = [
        (f"/admin/questions/{first}/move", {"direction": "down"}),
        (f"/admin/questions/{second}/move", {"direction": "down"}),
    ]

    results = post_at_once(app, posts, "ORDER BY question.position")

    assert [status for status, _page in results] == [303, 303]
    with app.app_context():
        order = [q.id for q in db.session.query(Question).order_by(Question.position, Question.id)]
        positions = [q.position for q in db.session.query(Question)]
    one_then_other = ids  # first went down past second, then second went down past it again
    other_then_one = [ids[0], third, first, second, *ids[4:]]  # second went down, then first
    assert order in (one_then_other, other_then_one)  # neither move lost
    assert len(set(positions)) == len(positions)
    assert [c["action"] for c in question_changes(app)] == ["move", "move"]
