"""Forgotten password: pinned questions, decoys, the mailed code and the reset token.

The order of every answer check is the point (invariant 2): the per-IP limits run
before the view, then the account's lockout claim, and only then the argon2
verifies. A login that is unknown or not enrolled gets decoy questions and the same
number of verifies against a dummy hash, so pages, status codes and time match a
real account (invariant 4). The questions asked stay pinned until answered right or
expired (invariant 5). Answers, codes and passwords never reach a log, an audit
detail or a notice; the code appears only in its own mail.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import lazyload

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.dbtypes import insert_for
from selfservice.directory.interfaces import (
    Account,
    AccountKind,
    Directory,
    normalise_login,
)
from selfservice.extensions import db
from selfservice.i18n import _
from selfservice.mail.notices import Notice, compose, notify_account
from selfservice.mail.services import queue_mail
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question, RecoveryChallenge
from selfservice.portal.passwords import (
    AccountDisabled,
    How,
    NewPassword,
    Spend,
    apply_new_password,
    refuse_if_disabled,
)
from selfservice.security import Security, codes
from selfservice.security.answers import AnswerHasher
from selfservice.security.lockout import Locked
from selfservice.security.tokens import Purpose, TokenRefused
from selfservice.security.work import Busy
from selfservice.timeutil import utcnow

#: No 0/O, 1/I/L: easy to read aloud and to type from a phone.
REQUIRED, IF_AVAILABLE, OFF = "required", "if-available", "off"


class Stage(StrEnum):
    """Where the person goes next."""

    START = "start"  # nothing pinned any more (expired): begin again
    QUESTIONS = "questions"
    CODE = "code"
    RESET = "reset"
    HELP = "help"


class HelpReason(StrEnum):
    NOT_VERIFIED = "not-verified"  # wrong answers, locked, unknown: the generic page
    NO_EMAIL = "no-email"  # answers right, but the second factor needs an address on file
    CODE_FAILED = "code-failed"  # answers right, the code expired or ran out of tries
    DISABLED = "disabled"  # answers (and code) right, but an administrator disabled the account


@dataclass(frozen=True)
class Attempt:
    """What the browser keeps between steps: no login in clear, never an answer.

    ``subject`` is the account key, or for an unknown login a decoy key derived from
    the login; the session holds it sealed (:func:`seal`), so it looks alike either way.
    """

    lookup: str
    subject: str


#: Account keys fit the 64-character key columns; sealed subjects are padded to this length.
SUBJECT_BYTES = 64


def seal(settings: Mapping[str, Any], attempt: Attempt) -> dict[str, str]:
    """The attempt as session data, the subject hidden.

    Flask's session cookie is signed, not encrypted, and a directory's keys can have a
    tell-tale shape (OpenLDAP's entryUUIDs are time-based), so the subject is XORed with
    an HMAC-derived pad bound to the lookup. The cookie's signature keeps it intact.
    """
    raw = attempt.subject.encode()
    if len(raw) > SUBJECT_BYTES:
        raise ValueError("account key longer than the key columns")
    sealed = _xor(raw.ljust(SUBJECT_BYTES, b"\0"), _pad(settings, attempt.lookup))
    return {"lookup": attempt.lookup, "subject": sealed.hex()}


def unseal(settings: Mapping[str, Any], data: Mapping[str, str]) -> Attempt | None:
    """The attempt kept by :func:`seal`; None for anything else."""
    try:
        lookup, sealed = data["lookup"], bytes.fromhex(data["subject"])
        raw = _xor(sealed, _pad(settings, lookup))
        return Attempt(lookup=lookup, subject=raw.rstrip(b"\0").decode())
    except (KeyError, TypeError, ValueError):
        return None


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def _pad(settings: Mapping[str, Any], lookup: str) -> bytes:
    key = settings["SECRET_KEY"].encode()
    blocks = (
        hmac.new(key, f"recovery-subject:{lookup}:{n}".encode(), hashlib.sha256).digest()
        for n in range(SUBJECT_BYTES // hashlib.sha256().digest_size)
    )
    return b"".join(blocks)


@dataclass(frozen=True)
class Step:
    stage: Stage
    token: str | None = None
    #: Only set once the answers were right: the person has shown who they are.
    kind: AccountKind | None = None
    reason: HelpReason | None = None
    tries_left: int | None = None


# Starting: the pinned challenge ---------------------------------------------------


def start(directory: Directory, settings: Mapping[str, Any], login: str, origin: Origin) -> Attempt:
    """Pin the questions for ``login`` (real or decoy) and say nothing about whether it exists."""
    typed = normalise_login(login)
    account = directory.find(typed, with_roles=False) if typed else None  # recovery never asks roles
    enrolled = _enrolled_question_ids(account.key, settings) if account else []
    # Aliases (student ID, email, other case or width) share one challenge: no question shopping.
    canonical = normalise_login(account.login) if account else alias_of(settings, typed)
    attempt = Attempt(
        lookup=_hmac(settings, "recovery:" + canonical),
        subject=account.key if account else _decoy_key(settings, canonical),
    )
    _pin(attempt.lookup, enrolled or _decoy_pool(settings, canonical), settings, real=bool(enrolled))
    record(
        Tag.RECOVERY_STARTED,
        outcome="started",
        origin=origin,
        subject=account.login if account else None,
        subject_key=account.key if account else None,
        details={"known": account is not None, "enrolled": bool(enrolled), "lookup": attempt.lookup[:16]},
    )
    return attempt


def pinned_questions(attempt: Attempt) -> list[Question] | None:
    """The questions pinned for this attempt, in order; None when they expired."""
    challenge = _live_challenge(attempt.lookup)
    if challenge is None:
        return None
    ids = list(challenge.question_ids)
    found = {q.id: q for q in db.session.scalars(select(Question).where(Question.id.in_(ids)))}
    return [found[qid] for qid in ids if qid in found]


def alias_of(settings: Mapping[str, Any], typed: str) -> str:
    """The login an unknown ``typed`` login stands for, by ``RECOVERY_ALIAS_PATTERNS``.

    A made-up student ID and its "s" + ID login then share one decoy challenge, as a
    real student's ID and login share the account's (invariant 4). No pattern: as typed.
    """
    for pattern, template in settings["RECOVERY_ALIAS_PATTERNS"]:
        match = re.fullmatch(pattern, typed)
        if match:
            return normalise_login(match.expand(template))
    return typed


def _enrolled_question_ids(account_key: str, settings: Mapping[str, Any]) -> list[int]:
    """The account's enrolled question ids; empty when it has too few to be asked M of them."""
    ids = list(
        db.session.scalars(
            select(EnrollmentAnswer.question_id)
            .join(Enrollment)
            .where(Enrollment.account_key == account_key)
            .order_by(EnrollmentAnswer.id)
        )
    )
    return ids if len(ids) >= settings["RECOVERY_QUESTION_COUNT"] else []


def _decoy_pool(settings: Mapping[str, Any], login: str) -> list[int]:
    """K questions ranked by an HMAC of the login: a stable fake enrollment.

    M of these are then drawn at random like a real account's, so even across
    expiries a decoy behaves like a real enrollment of K questions. They come from the
    questions a real account can be asked: the active ones, and the retired ones someone
    still answers (a retired question keeps working), or seeing one would prove a login real.
    """
    answered = select(EnrollmentAnswer.id).where(EnrollmentAnswer.question_id == Question.id).exists()
    ids = db.session.scalars(select(Question.id).where(Question.active.is_(True) | answered)).all()
    login = normalise_login(login)
    ranked = sorted(ids, key=lambda qid: _hmac(settings, f"recovery-decoy-question:{login}:{qid}"))
    return ranked[: settings["ENROLL_QUESTION_COUNT"]]


def _pin(lookup: str, pool: list[int], settings: Mapping[str, Any], *, real: bool) -> None:
    """Keep a live challenge whose questions are still in ``pool``; otherwise draw a new one.

    A decoy (``real`` false) never replaces a live challenge: if one exists for its
    lookup, a real account pinned it, and redrawing would reveal more of its questions.
    The caller commits, with its audit event.
    """
    now = utcnow()
    expires_at = now + timedelta(minutes=settings["RECOVERY_CHALLENGE_MINUTES"])
    challenge = db.session.get(RecoveryChallenge, lookup, populate_existing=True)
    live = challenge is not None and challenge.expires_at > now
    if live and (not real or set(challenge.question_ids) <= set(pool)):  # type: ignore[union-attr]
        return
    chosen = secrets.SystemRandom().sample(pool, min(settings["RECOVERY_QUESTION_COUNT"], len(pool)))
    if challenge is not None:
        challenge.question_ids, challenge.created_at, challenge.expires_at = chosen, now, expires_at
        return  # committed with the audit event
    # A parallel request that pinned first wins: its questions stand, this insert does nothing.
    insert = insert_for(db.session.get_bind().dialect.name)
    row = {"lookup": lookup, "question_ids": chosen, "created_at": now, "expires_at": expires_at}
    db.session.execute(
        insert(RecoveryChallenge).values(**row).on_conflict_do_nothing(index_elements=["lookup"])
    )


def _live_challenge(lookup: str) -> RecoveryChallenge | None:
    """The challenge pinned under ``lookup`` while it lives.

    Read once per request: the answer step reads it for the form's labels and again to
    check the answers. The session (and its ``info``) lives for one request; a commit in
    between expires the kept row, which is then read again.
    """
    kept = db.session.info.get(_CHALLENGE_INFO)
    if kept is not None and kept.lookup_key == lookup and not sa_inspect(kept.row).expired:
        challenge = kept.row
    else:
        challenge = db.session.get(RecoveryChallenge, lookup, populate_existing=True)
        db.session.info[_CHALLENGE_INFO] = _Kept(lookup, challenge) if challenge is not None else None
    return challenge if challenge is not None and challenge.expires_at > utcnow() else None


_CHALLENGE_INFO = "selfservice.recovery.challenge"


@dataclass(frozen=True)
class _Kept:
    lookup_key: str
    row: RecoveryChallenge


# Answering ------------------------------------------------------------------------


def answer(
    directory: Directory,
    security: Security,
    settings: Mapping[str, Any],
    attempt: Attempt,
    answers: Sequence[str],
    origin: Origin,
) -> Step:
    """Check the answers to the pinned questions: lock claim first, then every verify."""
    challenge = _live_challenge(attempt.lookup)
    if challenge is None or len(answers) != len(challenge.question_ids):
        return Step(Stage.START)
    account = directory.get(attempt.subject, with_roles=False)
    stored = _stored_hashes(account.key if account else attempt.subject)  # a decoy's query finds nothing
    rows = [stored.get(qid) for qid in challenge.question_ids]
    hashes = [row.answer_hash if row else None for row in rows]  # read now: the claim's commit expires rows
    # Unknown, unenrolled, enrolled and locked: the same claim, the same argon2 work (issue 14, item 5).
    # A decoy is claimed under its decoy key with no login, so it locks like a real account.
    key, login = (account.key, account.login) if account else (attempt.subject, "")
    try:
        security.lockout.claim_attempt(key, login, origin)
    except Locked as locked:
        with security.work.slot():  # no guess is checked, but the time is the same
            security.hasher.pad(len(answers))
        _record_failure(origin, account, attempt, "locked")
        if locked.newly and account is not None:
            notify_account(account, Notice.LOCKED, until=locked.until)
        _notice_if_due(security, key, account)
        return Step(Stage.HELP, reason=HelpReason.NOT_VERIFIED)
    if account is None or not stored or not _checked(security, key, hashes, answers):
        if account is None or not stored:
            _checked(security, key, hashes, answers)  # a decoy: the same verifies, against a dummy hash
        until = security.lockout.record_failure(key, login, origin)
        _record_failure(origin, account, attempt, "failure")
        if account is not None and until is not None:  # this request set the lock: tell the holder once
            notify_account(account, Notice.LOCKED, until=until)
        _notice_if_due(security, key, account)
        return Step(Stage.HELP, reason=HelpReason.NOT_VERIFIED)
    # One transaction: the rehash, the count cleared, the questions unpinned, the audit
    # event, and the code or the token of the next step.
    _rehash_if_needed(security.hasher, rows, hashes, answers)
    security.lockout.record_success(account.key, commit=False)
    db.session.execute(
        delete(RecoveryChallenge).where(RecoveryChallenge.lookup == attempt.lookup),
        execution_options={"synchronize_session": False},
    )
    record(Tag.RECOVERY_VERIFIED, origin=origin, subject=account.login, subject_key=account.key, commit=False)
    step = _second_factor(security, settings, account, origin)
    db.session.commit()
    return step


def _checked(security: Security, key: str, hashes: Sequence[str | None], answers: Sequence[str]) -> bool:
    """The verifies, through the work gate; a busy portal gives the lock claim back (Busy)."""
    try:
        with security.work.slot():
            return _verify_all(security.hasher, hashes, answers)
    except Busy:
        security.lockout.give_back(key)
        raise


def _notice_if_due(security: Security, key: str, account: Account | None) -> None:
    """Slow guessing does not go unseen: past the day's threshold the holder is told, once a day.

    Asked for decoys too (nobody is told), so every path does the same database work.
    """
    failures = security.lockout.notice_due(key)
    if failures is not None and account is not None:
        notify_account(account, Notice.REPEATED_FAILURES, failures=failures)


def _stored_hashes(account_key: str) -> dict[int, EnrollmentAnswer]:
    """The account's enrolled answers by question, in one query (a decoy's finds none, at the same cost)."""
    rows = db.session.scalars(
        select(EnrollmentAnswer)
        .join(Enrollment)
        .where(Enrollment.account_key == account_key)
        .options(lazyload(EnrollmentAnswer.question))
    )
    return {row.question_id: row for row in rows}


def _verify_all(hasher: AnswerHasher, hashes: Sequence[str | None], answers: Sequence[str]) -> bool:
    """Verify every answer (no early exit, for even timing); a missing hash checks a dummy one."""
    results = [
        hasher.verify(stored or _dummy_hash(hasher), given) and stored is not None
        for stored, given in zip(hashes, answers, strict=True)
    ]
    return all(results)


@functools.cache
def _dummy_hash(hasher: AnswerHasher) -> str:
    """A hash of a random secret nobody knows, with the hasher's own parameters."""
    return hasher.hash(secrets.token_urlsafe(32))


def _rehash_if_needed(
    hasher: AnswerHasher,
    rows: Sequence[EnrollmentAnswer | None],
    hashes: Sequence[str | None],
    answers: Sequence[str],
) -> None:
    """Hashes read before the claim's commit: an answer needing no rehash costs no read."""
    for row, stored, given in zip(rows, hashes, answers, strict=True):
        if row is not None and stored is not None and hasher.needs_rehash(stored):
            row.answer_hash = hasher.hash(given)


def _record_failure(origin: Origin, account: Account | None, attempt: Attempt, outcome: str) -> None:
    record(
        Tag.RECOVERY_ANSWER_FAILED,
        outcome=outcome,
        origin=origin,
        subject=account.login if account else None,
        subject_key=account.key if account else None,
        details={"known": account is not None, "lookup": attempt.lookup[:16]},
    )


# Second factor --------------------------------------------------------------------


def second_factor_mode(settings: Mapping[str, Any], kind: AccountKind) -> str:
    """required, if-available or off for this kind; anything else counts as required (fail closed)."""
    mode = settings["SECOND_FACTOR"].get(kind.value, OFF)
    return mode if mode in (REQUIRED, IF_AVAILABLE, OFF) else REQUIRED


def _second_factor(security: Security, settings: Mapping[str, Any], account: Account, origin: Origin) -> Step:
    mode = second_factor_mode(settings, account.kind)
    if mode == REQUIRED and not account.email:
        _record_code(Tag.RECOVERY_CODE_FAILED, "refused", origin, account, reason="no-email")
        return Step(Stage.HELP, kind=account.kind, reason=HelpReason.NO_EMAIL)
    if mode != OFF and account.email:
        _send_code(settings, account, origin)
        return Step(Stage.CODE, kind=account.kind)
    return _reset_step(security, settings, account, origin)


def _reset_step(security: Security, settings: Mapping[str, Any], account: Account, origin: Origin) -> Step:
    """The reset token; none for an account an administrator disabled.

    Said only here, once the person has shown who they are (answers, and the code where
    one is asked): before that a disabled account looks like any other (invariant 4).
    """
    try:
        refuse_if_disabled(account, How.RECOVERY, origin)
    except AccountDisabled:
        return Step(Stage.HELP, kind=account.kind, reason=HelpReason.DISABLED)
    return Step(Stage.RESET, token=_issue_token(security, settings, account))


def _send_code(settings: Mapping[str, Any], account: Account, origin: Origin) -> None:
    """Mail a fresh code to the address on file only; an older recovery code of the account dies."""
    minutes = settings["CODE_MINUTES"]
    code = codes.issue(
        account.key,
        codes.Purpose.RECOVERY,
        lambda typed: _code_digest(settings, typed),
        minutes=minutes,
        tries=settings["CODE_TRIES"],
    )
    body = compose("verification_code", account=account, code=code, minutes=minutes)
    queue_mail(account.email or "", _("Your verification code"), body, purpose="recovery:code", commit=False)
    _record_code(Tag.RECOVERY_CODE_SENT, "success", origin, account, minutes=minutes, commit=False)
    db.session.commit()


def check_code(
    directory: Directory,
    security: Security,
    settings: Mapping[str, Any],
    attempt: Attempt,
    typed: str,
    origin: Origin,
) -> Step:
    """Spend one try of the live code atomically, then compare; a match is single use."""
    account = directory.get(attempt.subject, with_roles=False)
    row = codes.live_code(attempt.subject, codes.Purpose.RECOVERY)
    # Read now: the claim's commit expires the row, and reading it again is a query.
    code_id, stored = (row.id, row.code_digest) if row else (0, "")
    if (
        account is None
        or row is None
        or not _claim_code(security, account, origin)
        or not codes.spend_try(code_id)
    ):
        if account is not None:
            _record_code(Tag.RECOVERY_CODE_FAILED, "refused", origin, account, reason="expired-or-used")
        return Step(Stage.HELP, kind=account.kind if account else None, reason=HelpReason.CODE_FAILED)
    if hmac.compare_digest(stored, _code_digest(settings, codes.normalise(typed))) and codes.use(code_id):
        security.lockout.give_back_code(account.key)
        return _reset_step(security, settings, account, origin)
    tries_left = codes.tries_left(code_id)
    _record_code(Tag.RECOVERY_CODE_FAILED, "failure", origin, account, reason="wrong", tries_left=tries_left)
    until = security.lockout.record_code_failure(account.key, account.login, origin)
    if until is not None:  # this code reached the day's cap: tell the holder once
        notify_account(account, Notice.LOCKED, until=until, by_codes=True)
    _notice_if_due(security, account.key, account)
    if not tries_left:
        return Step(Stage.HELP, kind=account.kind, reason=HelpReason.CODE_FAILED)
    return Step(Stage.CODE, kind=account.kind, tries_left=tries_left)


def _claim_code(security: Security, account: Account, origin: Origin) -> bool:
    """Count this try against the account's daily cap before comparing; False past the cap."""
    try:
        security.lockout.claim_code(account.key, account.login, origin)
    except Locked as locked:
        if locked.newly:  # this refusal set the cap's lock: tell the holder once
            notify_account(account, Notice.LOCKED, until=locked.until, by_codes=True)
        return False
    return True


def _record_code(
    tag: Tag, outcome: str, origin: Origin, account: Account, *, commit: bool = True, **details: Any
) -> None:
    record(
        tag,
        outcome=outcome,
        origin=origin,
        subject=account.login,
        subject_key=account.key,
        details=details,
        commit=commit,
    )


# The new password -----------------------------------------------------------------


def _issue_token(security: Security, settings: Mapping[str, Any], account: Account) -> str:
    lifetime = timedelta(minutes=settings["RECOVERY_TOKEN_MINUTES"])
    issued = security.tokens.issue(account.key, Purpose.RECOVERY, lifetime)
    db.session.commit()
    return issued.value


def open_reset(directory: Directory, security: Security, token: str, origin: Origin) -> Account:
    """The account a live recovery token is for, without using the token up; else TokenRefused.

    AccountDisabled when an administrator disabled it since the answers (the token stays unspent).
    """
    try:
        claim = security.tokens.peek(token, Purpose.RECOVERY)
    except TokenRefused:
        record(
            Tag.TOKEN_REFUSED, outcome="refused", origin=origin, details={"purpose": Purpose.RECOVERY.value}
        )
        raise
    account = directory.get(claim.account_key, with_roles=False)
    if account is None:
        record(Tag.TOKEN_REFUSED, outcome="refused", origin=origin, subject_key=claim.account_key)
        raise TokenRefused()
    refuse_if_disabled(account, How.RECOVERY, origin)
    return account


def reset_password(
    directory: Directory, security: Security, account: Account, token: str, new: NewPassword, origin: Origin
) -> None:
    """Check the policy, then write with the token claimed by the change's intent.

    ``account`` is what :func:`open_reset` returned for ``token`` in this request (the
    account is read once). The token is spent only once the change is known to have
    happened: the intent claims it atomically. Raises TokenRefused, PolicyViolation
    (token still good), DirectoryUnavailable (nothing changed, token still good) or
    ChangeUnconfirmed (settled later by the sweeper).
    """
    apply_new_password(
        directory,
        security,
        account,
        new,
        how=How.RECOVERY,
        origin=origin,
        spend=Spend(token, Purpose.RECOVERY),
    )


# Small helpers --------------------------------------------------------------------


def _hmac(settings: Mapping[str, Any], message: str) -> str:
    key = settings["SECRET_KEY"].encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _code_digest(settings: Mapping[str, Any], code: str) -> str:
    return _hmac(settings, "verification-code:" + code)


def _decoy_key(settings: Mapping[str, Any], login: str) -> str:
    """A key shaped like a directory's unique id (a UUID), stable for the login."""
    digest = bytes.fromhex(_hmac(settings, "recovery-decoy-key:" + normalise_login(login)))
    return str(uuid.UUID(bytes=digest[:16], version=4))
