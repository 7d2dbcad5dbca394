"""The question bank: add, edit, retire, reactivate and reorder challenge questions.

Questions are never deleted: enrollments point at them, and a retired question
keeps working for everyone who answered it while enrollment stops offering it
(enrollment offers only active questions). Enough questions stay on offer for
enrollment to ask its ENROLL_QUESTION_COUNT, and so for a stranger's decoy to be asked
as many as a real account. Every change is audited with what changed; answers are
never involved.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.extensions import db
from selfservice.portal.models import EnrollmentAnswer, Question


class TooFewQuestions(Exception):
    """Retiring would leave fewer questions on offer than enrollment asks for."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"enrollment needs {needed} questions on offer")
        self.needed = needed


def bank() -> list[Question]:
    """Every question in the order enrollment offers them; retired ones included."""
    statement = select(Question).order_by(Question.position, Question.id)
    return list(db.session.scalars(statement.execution_options(populate_existing=True)))


def get_question(question_id: int) -> Question | None:
    return db.session.get(Question, question_id)


def usage(question_ids: list[int] | None = None) -> dict[int, int]:
    """How many enrollments use each question (by id)."""
    statement = select(EnrollmentAnswer.question_id, func.count()).group_by(EnrollmentAnswer.question_id)
    if question_ids is not None:
        statement = statement.where(EnrollmentAnswer.question_id.in_(question_ids))
    return dict(db.session.execute(statement).all())


def add_question(text: str, translations: dict[str, str], *, actor: str, origin: Origin) -> Question:
    """A new active question at the end of the bank."""
    last = db.session.scalar(select(func.max(Question.position)))
    question = Question(text=text, translations=translations, active=True, position=(last or 0) + 1)
    db.session.add(question)
    db.session.flush()
    _audit(question, "add", actor, origin, {"text": text, "languages": sorted(translations)})
    return question


def edit_question(
    question: Question, text: str, translations: dict[str, str], *, actor: str, origin: Origin
) -> list[str]:
    """Change the wording; returns the names of what changed (nothing audited when nothing did)."""
    changed = [] if question.text == text else ["text"]
    old = question.translations or {}
    changed += [
        f"translations.{code}"
        for code in sorted({*old, *translations})
        if old.get(code) != translations.get(code)
    ]
    if not changed:
        return []
    details: dict[str, Any] = {"changed": changed}
    if "text" in changed:
        details.update(previous_text=question.text, text=text)
    question.text = text
    question.translations = dict(translations)
    _audit(question, "edit", actor, origin, details)
    return changed


def set_active(
    question: Question, active: bool, *, actor: str, origin: Origin, keep_offered: int = 0
) -> bool:
    """Retire (False) or reactivate (True); False when it already was.

    Raises TooFewQuestions rather than leave fewer than ``keep_offered`` questions on offer.
    The count and the write are one: two admins retiring at the same moment cannot both
    pass the check (the bank is taken first, and the UPDATE counts in its own WHERE).
    """
    _lock_bank()
    statement = update(Question).where(Question.id == question.id, Question.active.is_(not active))
    if not active:
        offered = select(func.count(Question.id)).where(Question.active.is_(True)).scalar_subquery()
        statement = statement.where(offered > keep_offered)
    changed = db.session.execute(
        statement.values(active=active), execution_options={"synchronize_session": False}
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        db.session.rollback()  # let the offered rows go before the page is drawn
        if question.active == active:
            return False
        raise TooFewQuestions(keep_offered)
    db.session.refresh(question)
    _audit(
        question,
        "reactivate" if active else "retire",
        actor,
        origin,
        {"in_use": usage([question.id]).get(question.id, 0)},
    )
    return True


def _lock_bank() -> None:
    """Take the bank for this transaction: another change waits for this one, then reads it anew.

    PostgreSQL: every question's row, in id order (two admins never deadlock). SQLite has
    no FOR UPDATE, so an UPDATE comes first: it takes the database's write lock.
    """
    db.session.execute(select(Question.id).order_by(Question.id).with_for_update()).all()
    db.session.execute(
        update(Question).where(Question.id == -1).values(position=Question.position),
        execution_options={"synchronize_session": False},
    )


def move(question: Question, steps: int, *, actor: str, origin: Origin) -> bool:
    """Move one place up (-1) or down (+1) from where it is now; False at either end."""
    if steps not in (-1, 1):
        return False
    _lock_bank()  # a move at the same moment waits, then starts from this one's order
    ordered = bank()
    index = next(i for i, q in enumerate(ordered) if q.id == question.id)
    target = index + steps
    if not 0 <= target < len(ordered):
        db.session.rollback()  # let the bank go
        return False
    ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, each in enumerate(ordered):
        each.position = position  # renumbered whole: old banks may hold equal positions
    _audit(question, "move", actor, origin, {"from": index + 1, "to": target + 1})
    return True


def _audit(question: Question, action: str, actor: str, origin: Origin, details: dict[str, Any]) -> None:
    record(
        Tag.QUESTION_CHANGED,
        origin=origin,
        actor=actor,
        details={"question_id": question.id, "action": action, **details},
        commit=False,
    )
    db.session.commit()
