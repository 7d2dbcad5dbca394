"""Enrollment: the account holder's challenge questions and their hashed answers.

Rules come from settings (ENROLL_QUESTION_COUNT, ANSWER_*). Each answer is
normalised and hashed on its own with argon2id (invariant 1); only the hashes
reach the database, and audit events name question ids, never answers. Saving a
new set replaces the old one in a single transaction, so a failure leaves the old
set as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.directory.interfaces import Account, AccountKind, Directory
from selfservice.extensions import db
from selfservice.i18n_markers import N_
from selfservice.mail.notices import Notice, notify_account
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.security import Security, get_security
from selfservice.security.answers import check_answers
from selfservice.timeutil import utcnow

#: Account kinds invited to enroll after sign-in.
HOLDER_KINDS = frozenset({AccountKind.STUDENT, AccountKind.PARENT})

WRONG_COUNT = N_("Choose and answer every question.")
NO_QUESTION = N_("Choose a question.")
UNKNOWN_QUESTION = N_("Choose a question from the list.")
QUESTION_TWICE = N_("You chose this question more than once. Choose a different one.")
NO_ANSWER = N_("Type your answer.")


class QuestionChoice(NamedTuple):
    id: int
    text: str
    #: The language ``text`` is in (English where the question has no translation).
    lang: str


class EnrollmentStatus(NamedTuple):
    enrolled: bool
    enrolled_at: datetime | None


class EnrollmentRefused(Exception):
    """The chosen questions or answers break a rule; nothing was written.

    ``questions`` and ``answers`` map a slot (0-based position in the choices) to a
    message id (translate with ``_()``); ``general`` holds problems of the whole set.
    """

    def __init__(self) -> None:
        super().__init__("enrollment refused")
        self.questions: dict[int, str] = {}
        self.answers: dict[int, str] = {}
        self.general: list[str] = []

    def any(self) -> bool:
        return bool(self.questions or self.answers or self.general)


def active_questions(language: str) -> list[QuestionChoice]:
    """The questions on offer, in bank order, in ``language`` where translated."""
    rows = db.session.scalars(
        select(Question).where(Question.active.is_(True)).order_by(Question.position, Question.id)
    )
    return [QuestionChoice(row.id, row.text_in(language), row.language_in(language)) for row in rows]


def enrollment_status(account_key: str) -> EnrollmentStatus:
    """Whether the account has a set of answers, and since when."""
    enrollment = _enrollment_of(account_key)
    if enrollment is None or not enrollment.answers:
        return EnrollmentStatus(False, None)
    return EnrollmentStatus(True, enrollment.enrolled_at)


def invite_to_enroll(account: Account) -> bool:
    """True for a student or parent who has not enrolled yet."""
    return account.kind in HOLDER_KINDS and not enrollment_status(account.key).enrolled


def reauth_required(signed_in_at: float, minutes: int) -> bool:
    """True when a sign-in at ``signed_in_at`` (epoch seconds) is older than ``minutes``."""
    return utcnow().timestamp() - signed_in_at > timedelta(minutes=minutes).total_seconds()


def confirm_password(
    directory: Directory, settings: Mapping[str, Any], account: Account, password: str, origin: Origin
) -> bool:
    """Check the signed-in holder's current password at the directory; a failure is audited.

    The account's sign-in limit is claimed first (RateLimited past it): this is a guess too.
    """
    from selfservice.auth.services import claim_password_check  # the auth package imports this module

    claim_password_check(settings, account, origin, "portal.enroll")
    confirmed = directory.authenticate(account.login, password)
    if confirmed is not None and confirmed.key == account.key:
        return True
    record(
        Tag.REAUTH_FAILED,
        outcome="failure",
        origin=origin,
        actor=account.login,
        subject=account.login,
        subject_key=account.key,
        details={"purpose": "enrollment"},
    )
    return False


def enroll(
    account: Account,
    choices: list[tuple[int | None, str]],
    *,
    current_password_for_rules: str | None,
    origin: Origin,
    security: Security | None = None,
    count: int | None = None,
) -> Enrollment:
    """Replace the account's answers with ``choices`` ((question id, answer) pairs).

    Raises EnrollmentRefused, with a message per slot, when a rule is broken; then
    nothing is written. ``security`` and ``count`` default to the current app's.
    """
    security = security or get_security()
    count = count if count is not None else current_app.config["ENROLL_QUESTION_COUNT"]
    questions = _check_choices(security, account, choices, count, current_password_for_rules)
    hashes = [security.hasher.hash(answer) for _question_id, answer in choices]
    try:
        return _save(account, questions, hashes, origin)
    except IntegrityError:
        # A simultaneous first enrollment (a double click) created the row first:
        # start again, and this time replace that row's answers.
        db.session.rollback()
        return _save(account, questions, hashes, origin)


def _save(account: Account, questions: list[Question], hashes: list[str], origin: Origin) -> Enrollment:
    try:
        enrollment = _replace(account, [q.id for q in questions], hashes)
        record(
            Tag.ENROLLMENT_SAVED,
            origin=origin,
            actor=account.login,
            subject=account.login,
            subject_key=account.key,
            details={"question_ids": [q.id for q in questions], "count": len(questions)},
            commit=False,
        )
        notify_account(account, Notice.ENROLLMENT_SAVED, commit=False)
        db.session.commit()
    except IntegrityError:
        raise
    except BaseException:
        db.session.rollback()
        raise
    return enrollment


def clear_enrollment(account: Account, actor: str, origin: Origin) -> bool:
    """Delete the account's answers (help desk); False when there were none."""
    enrollment = _enrollment_of(account.key)
    if enrollment is None:
        return False
    try:
        db.session.delete(enrollment)
        record(
            Tag.ENROLLMENT_CLEARED,
            origin=origin,
            actor=actor,
            subject=account.login,
            subject_key=account.key,
            details={"count": len(enrollment.answers)},
            commit=False,
        )
        notify_account(account, Notice.ENROLLMENT_CLEARED, commit=False)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return True


def _enrollment_of(account_key: str) -> Enrollment | None:
    return db.session.scalar(select(Enrollment).where(Enrollment.account_key == account_key))


def _check_choices(
    security: Security,
    account: Account,
    choices: list[tuple[int | None, str]],
    count: int,
    current_password: str | None,
) -> list[Question]:
    """The chosen questions, in order; raise EnrollmentRefused on any broken rule."""
    refused = EnrollmentRefused()
    if len(choices) != count:
        refused.general.append(WRONG_COUNT)
        raise refused
    offered = {q.id: q for q in db.session.scalars(select(Question).where(Question.active.is_(True)))}
    refused.questions = _question_problems([qid for qid, _answer in choices], offered)
    pairs = [(_all_texts(offered.get(qid or 0)), answer) for qid, answer in choices]
    refused.answers = check_answers(
        pairs,
        login=account.login,
        display_name=account.display_name,
        current_password=current_password,
        rules=security.answer_rules,
    )
    refused.answers |= {slot: NO_ANSWER for slot, (_qid, answer) in enumerate(choices) if not answer.strip()}
    if refused.any():
        raise refused
    return [offered[qid] for qid, _answer in choices if qid is not None]


def _question_problems(question_ids: list[int | None], offered: dict[int, Question]) -> dict[int, str]:
    """Slot -> message for a missing, unknown (or retired) or repeated question."""
    problems: dict[int, str] = {}
    seen: set[int] = set()
    for slot, question_id in enumerate(question_ids):
        if question_id is None:
            problems[slot] = NO_QUESTION
        elif question_id not in offered:
            problems[slot] = UNKNOWN_QUESTION
        elif question_id in seen:
            problems[slot] = QUESTION_TWICE
        else:
            seen.add(question_id)
    return problems


def _all_texts(question: Question | None) -> str:
    """Every wording of the question, so its words are refused in any language."""
    if question is None:
        return ""
    return " ".join([question.text, *(question.translations or {}).values()])


def _replace(account: Account, question_ids: list[int], hashes: list[str]) -> Enrollment:
    """Swap in the new answers; the caller commits (one transaction).

    The enrollment row is locked first (PostgreSQL), so a second save at the same time
    waits, then replaces this set whole instead of adding its answers to it.
    """
    enrollment = db.session.scalar(
        select(Enrollment)
        .where(Enrollment.account_key == account.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if enrollment is None:
        enrollment = Enrollment(account_key=account.key, login=account.login)
        db.session.add(enrollment)
    enrollment.answers.clear()  # delete-orphan: the old rows go in this same transaction
    db.session.flush()
    enrollment.login = account.login
    enrollment.enrolled_at = utcnow()
    enrollment.answers.extend(
        EnrollmentAnswer(question_id=question_id, answer_hash=answer_hash)
        for question_id, answer_hash in zip(question_ids, hashes, strict=True)
    )
    db.session.flush()
    return enrollment
