"""The durable intent of a password write, and how it is settled (invariant 15).

Order, and why: the directory's own record of the last change is read, then the intent
(account, how, the token or link it spends, the request it resolves) is committed, and
only then is the write sent. Whatever happens next, one of three things settles it:

* the directory answered yes: :func:`complete`, one transaction with every consequence
  (audit event, notice in the outbox, tokens void, lockout cleared, link used, request
  resolved, the held sync writes released to the sync worker);
* the directory answered no, or was never reached: :func:`abandon`, the token given back
  and the held sync writes deleted;
* no answer (reply lost, timeout, worker killed): the directory's record is read again,
  now or by the sweeper (:mod:`selfservice.portal.reconcile`); a change since the intent
  completes it, none abandons it.

A settle is one conditional UPDATE of the intent's state, so a live request and the
sweeper never both settle the same intent.

With sync targets, the new password is held with the intent, encrypted, in one held
sync write per target (:func:`selfservice.sync.services.queue_sync` with ``held_for``),
committed with the intent: the sweeper never has the password, yet a change it settles
reaches every target, and one the live request settles is queued exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import end_sessions
from selfservice.directory.interfaces import Account, Directory, DirectoryError
from selfservice.extensions import db
from selfservice.mail.notices import Notice, notify_account
from selfservice.portal.models import PendingChange
from selfservice.security import Security
from selfservice.security.models import TokenNonce
from selfservice.sync import get_sync
from selfservice.sync.services import drop_held, queue_sync, release_held
from selfservice.timeutil import utcnow

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "unknown")


class How(StrEnum):
    CHANGE = "change"  # the account holder, knowing the current password
    RECOVERY = "recovery"  # after answering the challenge questions
    ASSISTED = "assisted"  # through a help-desk reset link
    ACTIVATION = "activation"  # a parent's first password, from the activation letter


#: The audit tag and the notice of a settled write, by how it was asked (else a reset's).
_TAGS = {How.CHANGE: Tag.PASSWORD_CHANGED, How.ACTIVATION: Tag.PASSWORD_ACTIVATED}
_NOTICES = {How.CHANGE: Notice.PASSWORD_CHANGED, How.ACTIVATION: Notice.ACCOUNT_ACTIVATED}


class Outcome(StrEnum):
    CHANGED = "changed"
    NOT_CHANGED = "not-changed"
    UNKNOWN = "unknown"


def open_intent(
    directory: Directory,
    account: Account,
    *,
    how: How,
    origin: Origin,
    must_change: bool = False,
    token_nonce: str | None = None,
    request_id: int | None = None,
    sync_password: str | None = None,
) -> PendingChange:
    """Read the directory's record of the last change, then add the intent (the caller commits).

    ``sync_password``: the new password, held encrypted for the sync targets until the
    intent is settled. Raises DirectoryUnavailable when the record cannot be read: nothing
    is sent then.
    """
    previous = directory.password_stamp(account)
    intent = PendingChange(
        account_key=account.key,
        login=account.login,
        how=how.value,
        must_change=must_change,
        token_nonce=token_nonce,
        request_id=request_id,
        state="pending",
        previous_stamp=previous,
        started_at=utcnow(),
        ip=origin.ip,
        user_agent=(origin.user_agent or "")[:300] or None,
    )
    db.session.add(intent)
    if sync_password is not None:
        db.session.flush()  # the intent's id ties the held writes to it
        queue_sync(
            get_sync(),
            account,
            sync_password,
            how=how.value,
            must_change=must_change,
            origin=origin,
            held_for=intent.id,
        )
    return intent


def mark_unknown(intent_id: int, note: str) -> None:
    """The write was sent and no answer came: keep the intent open for the sweeper."""
    _retrying(lambda: _mark_unknown(intent_id, note[:120]))


def complete(
    directory: Directory,
    security: Security,
    intent_id: int,
    account: Account,
    *,
    settled_by: str,
) -> bool:
    """The change happened: every consequence in one transaction. False when already settled.

    The sync writes held with the intent are released in that same transaction, whoever
    settles it (the live request or the sweeper).
    """
    return _retrying(lambda: _complete(directory, security, intent_id, account, settled_by))


def abandon(intent_id: int, *, reason: str, settled_by: str) -> bool:
    """The change did not happen: close the intent and give its token or link back."""
    return _retrying(lambda: _abandon(intent_id, reason, settled_by))


def settle_from_directory(
    directory: Directory,
    security: Security,
    intent: PendingChange,
    *,
    settled_by: str,
    new_password_works: Callable[[Account], bool] | None = None,
) -> Outcome:
    """Settle an open intent from the directory's own record; UNKNOWN when it cannot tell.

    While the request still holds the new password, a record that shows no change (or
    none at all: an entry never changed under ppolicy; a write in the very second of the
    last one) is checked by whether the new password works: ``new_password_works``. The
    sweeper never has the password: it trusts the record alone.
    """
    try:
        account = directory.get(intent.account_key)
        now = directory.password_stamp(account) if account else None
    except DirectoryError:
        return Outcome.UNKNOWN
    if account is None:
        abandon(intent.id, reason="account-gone", settled_by=settled_by)
        return Outcome.NOT_CHANGED
    if now is not None and now != intent.previous_stamp:
        return _settle_changed(directory, security, intent, account, settled_by)
    if new_password_works is not None:  # the record shows nothing (or keeps none): ask the password
        try:
            works = new_password_works(account)
        except DirectoryError:
            return Outcome.UNKNOWN
        if works:
            return _settle_changed(directory, security, intent, account, settled_by)
    elif now is None:
        return Outcome.UNKNOWN  # no record for the account: the admin page lists it for staff
    abandon(intent.id, reason="not-applied", settled_by=settled_by)
    return Outcome.NOT_CHANGED


def _settle_changed(
    directory: Directory,
    security: Security,
    intent: PendingChange,
    account: Account,
    settled_by: str,
) -> Outcome:
    _finish_must_change(directory, account, intent.must_change)
    complete(directory, security, intent.id, account, settled_by=settled_by)
    return Outcome.CHANGED


def _finish_must_change(directory: Directory, account: Account, must_change: bool) -> None:
    """The write's second step may never have run: say again what the change meant."""
    try:
        directory.set_must_change(account, must_change)
    except DirectoryError as exc:
        log.warning("directory: must-change not confirmed for a settled change: %s", type(exc).__name__)


# --- the transactions ---------------------------------------------------------------


def _set_state(intent_id: int, state: str, *, note: str | None = None, settled_by: str | None = None) -> bool:
    """One conditional UPDATE: only an open intent is settled (``settled_by``) or marked."""
    return _settle_returning(intent_id, state, note=note, settled_by=settled_by) is not None


class _Settled(NamedTuple):
    """What settling an intent needs from its row, read by the settling UPDATE itself."""

    how: str
    token_nonce: str | None
    ip: str | None
    user_agent: str | None


def _settle_returning(
    intent_id: int, state: str, *, note: str | None = None, settled_by: str | None = None
) -> _Settled | None:
    """The conditional UPDATE of :func:`_set_state`, returning the row it matched (None: none).

    RETURNING (SQLite 3.35+, PostgreSQL) reads the row in the statement that claims it:
    no second SELECT, and what is read is exactly the row this UPDATE settled.
    """
    values: dict[str, object] = {"state": state}
    if note is not None:
        values["note"] = note
    if settled_by is not None:
        values["settled_at"] = utcnow()
        values["settled_by"] = settled_by
    table = PendingChange.__table__
    row = db.session.execute(
        update(table)
        .where(table.c.id == intent_id, table.c.state.in_(OPEN_STATES))
        .values(**values)
        .returning(*(table.c[name] for name in _Settled._fields))
    ).one_or_none()
    return None if row is None else _Settled(*row)


def _mark_unknown(intent_id: int, note: str) -> bool:
    marked = _set_state(intent_id, "unknown", note=note)
    db.session.commit()
    return marked


def _complete(
    directory: Directory,
    security: Security,
    intent_id: int,
    account: Account,
    settled_by: str,
) -> bool:
    intent = _settle_returning(intent_id, "changed", settled_by=settled_by)
    if intent is None:
        db.session.rollback()
        return False
    how = How(intent.how)
    origin = Origin(ip=intent.ip, user_agent=intent.user_agent)
    security.tokens.void_all(account.key)  # invariant 6: every token of the account, this one too
    security.lockout.forget(account.key)
    end_sessions(account.key, commit=False)  # every signed-in browser of the account (invariant 17)
    release_held(intent_id, origin=origin)  # the other directories follow through their queue
    record(
        _TAGS.get(how, Tag.PASSWORD_RESET),
        origin=origin,
        actor=account.login,
        subject=account.login,
        subject_key=account.key,
        # A change settled from the directory's record, not its answer, says so.
        details={"how": how.value} if settled_by == "write" else {"how": how.value, "settled_by": settled_by},
        commit=False,
    )
    notify_account(account, _NOTICES.get(how, Notice.PASSWORD_RESET), commit=False)
    if how is How.ASSISTED and intent.token_nonce:
        from selfservice.helpdesk.links import resolve_by_link  # the help desk builds on this module

        resolve_by_link(directory, intent.token_nonce, account, origin)
    if how is How.ACTIVATION:
        from selfservice.activation.services import record_activation  # activation builds on this module

        record_activation(account, origin)
    db.session.commit()
    return True


def _abandon(intent_id: int, reason: str, settled_by: str) -> bool:
    intent = _settle_returning(intent_id, "not-changed", note=reason, settled_by=settled_by)
    if intent is None:
        db.session.rollback()
        return False
    if intent.token_nonce:
        _give_back(intent.token_nonce)
    drop_held(intent_id)  # the password held for the sync targets goes with the change
    db.session.commit()
    return True


def _give_back(nonce: str) -> None:
    """The token was only claimed for this write: make it usable again while it lives."""
    db.session.execute(
        update(TokenNonce)
        .where(TokenNonce.nonce == nonce, TokenNonce.expires_at > utcnow())
        .values(used_at=None),
        execution_options={"synchronize_session": False},
    )


def _retrying(transaction: Callable[[], bool]) -> bool:
    """Run ``transaction``; once more on a fresh connection when the database dropped it."""
    try:
        return transaction()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("database: settling a password change failed once, retrying: %s", type(exc).__name__)
    return transaction()
