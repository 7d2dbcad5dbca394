"""Audit counts kept by the writer, so the dashboard never counts raw events.

Every audit event adds one to its row of ``audit_count`` (tag, quarter hour, kind) in
the transaction that writes the event, whichever way it is written:

- through the ORM (``record``, and anything else that adds an ``AuditEvent`` to a
  session): a ``before_flush`` hook notes the session's new events and a
  ``before_commit`` hook counts them, so a count's row lock lasts only the commit;
- in bulk through Core (``seed_audit``): the writer calls :func:`count_events`;
- rate-limit breaches are not audit events but counts per minute (``rate_limit_breach``):
  whoever writes those calls :func:`count_breaches` in the same transaction.

Enrollment coverage needs the distinct accounts seen in a window, which no count can
give: ``account_activity`` keeps when each (account key, login) pair was last the
subject of its holder's own event, and ``staff_activity`` when each login last acted
as staff. Both are one row per account, so coverage reads a few thousand rows at most.

Each write is an INSERT ... ON CONFLICT DO UPDATE (same statement on SQLite and
PostgreSQL): atomic, so two instances writing at once never lose a count. A transaction
writes its counts once, at commit, in key order: two transactions lock shared rows in the
same order and hold them only for the commit.

Retention (``selfservice purge``) deletes raw events but not ``audit_count``: counts name
no one, and a dashboard is expected to outlive the raw log. The activity tables do
name accounts, so the purge deletes their rows older than the events it deletes.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, event, inspect
from sqlalchemy.orm import Session, SessionTransaction

from selfservice.audit.models import AccountActivity, AuditCount, AuditEvent, StaffActivity
from selfservice.audit.tags import Tag
from selfservice.dbtypes import insert_for
from selfservice.timeutil import utcnow

BUCKET_MINUTES = 15
BUCKET = timedelta(minutes=BUCKET_MINUTES)

#: Events that only an account holder's own sign-in or self-service produces.
HOLDER_TAGS = (
    Tag.LOGIN_SUCCESS,
    Tag.PASSWORD_CHANGED,
    Tag.PASSWORD_RESET,
    Tag.PASSWORD_ACTIVATED,
    Tag.ENROLLMENT_SAVED,
    Tag.RECOVERY_STARTED,
    Tag.RECOVERY_VERIFIED,
    Tag.LOCKED,
)
#: Events only staff act in: whoever acted in one is staff, not an account holder.
STAFF_TAGS = (
    Tag.HELP_REQUEST_OPENED,
    Tag.HELP_REQUEST_UPDATED,
    Tag.RESET_LINK_ISSUED,
    Tag.HELP_REQUEST_ESCALATED,
    Tag.HELP_REQUEST_RESOLVED,
    Tag.QUESTION_CHANGED,
    Tag.UNLOCKED,
    Tag.UNLOCK_REFUSED,
)
_HOLDER = frozenset(str(tag) for tag in HOLDER_TAGS)
_STAFF = frozenset(str(tag) for tag in STAFF_TAGS)


def bucket_of(moment: datetime) -> datetime:
    """The start of the quarter hour (UTC) that ``moment`` (aware) falls in."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % BUCKET_MINUTES, second=0, microsecond=0)


def kind_of(details: Mapping[str, Any] | None) -> str:
    """The one detail the dashboard splits counts by: how a password was set."""
    how = (details or {}).get("how")
    return "" if how is None else str(how)[:32]


def count_events(connection: Connection, events: Iterable[Mapping[str, Any]]) -> None:
    """Add ``events`` (mappings with an AuditEvent's column names) to the counts and activity tables."""
    counts: Counter[tuple[str, datetime, str]] = Counter()
    seen: dict[tuple[str, str], datetime] = {}
    acted: dict[str, datetime] = {}
    for row in events:
        tag, moment = row["tag"], row["created_at"]
        counts[(tag, bucket_of(moment), kind_of(row.get("details")))] += 1
        if tag in _HOLDER and row.get("subject_key"):
            pair = (row["subject_key"], row.get("subject") or "")
            seen[pair] = max(seen.get(pair, moment), moment)
        if tag in _STAFF and row.get("actor"):
            acted[row["actor"]] = max(acted.get(row["actor"], moment), moment)
    _add_counts(connection, counts)
    if seen:
        rows = [{"subject_key": k, "subject": s, "last_seen_at": at} for (k, s), at in sorted(seen.items())]
        connection.execute(_upsert(connection.dialect.name, AccountActivity.__tablename__), rows)
    if acted:
        rows = [{"actor": actor, "last_acted_at": at} for actor, at in sorted(acted.items())]
        connection.execute(_upsert(connection.dialect.name, StaffActivity.__tablename__), rows)


def count_breaches(connection: Connection, breaches: Iterable[tuple[datetime, int]]) -> None:
    """Add refused requests, given as (minute, count), to the counts under the breach tag."""
    counts: Counter[tuple[str, datetime, str]] = Counter()
    for minute, count in breaches:
        counts[(str(Tag.RATE_LIMIT_BREACH), bucket_of(minute), "")] += count
    _add_counts(connection, counts)


def _add_counts(connection: Connection, counts: Counter[tuple[str, datetime, str]]) -> None:
    if not counts:
        return
    rows = [{"tag": t, "bucket": b, "kind": k, "count": n} for (t, b, k), n in sorted(counts.items())]
    connection.execute(_upsert(connection.dialect.name, "counts"), rows)


@functools.cache
def _upsert(dialect: str, table: str) -> Any:
    """The upsert of ``table`` ("counts", or a last-seen table), built once per dialect.

    Every audited commit runs one or two: building and hashing the statement each time
    cost more than sending it. A last-seen row only moves forward (events may arrive out
    of order).
    """
    insert = insert_for(dialect)
    if table == "counts":
        statement = insert(AuditCount)
        return statement.on_conflict_do_update(
            index_elements=["tag", "bucket", "kind"],
            set_={"count": AuditCount.count + statement.excluded["count"]},
        )
    model, column = _LATEST[table]
    statement = insert(model)
    keys = [c.name for c in model.__table__.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={column: statement.excluded[column]},
        where=statement.excluded[column] > getattr(model, column),
    )


#: The "last seen" tables: the model and the time column only ever moved forward.
_LATEST: dict[str, tuple[type[Any], str]] = {
    AccountActivity.__tablename__: (AccountActivity, "last_seen_at"),
    StaffActivity.__tablename__: (StaffActivity, "last_acted_at"),
}


#: Where a session keeps the events it has flushed but not yet counted.
_UNCOUNTED = "selfservice.audit.uncounted"


@event.listens_for(Session, "before_flush")
def _note_new_events(session: Session, flush_context: object, instances: object) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    for audit in new:
        if audit.created_at is None:  # the column default, fixed now so the count and the row agree
            audit.created_at = utcnow()
    if new:
        session.info.setdefault(_UNCOUNTED, []).extend(new)


@event.listens_for(Session, "before_commit")
def _count_at_commit(session: Session) -> None:
    """Count the transaction's events at its commit, not at its flushes.

    A row lock on a count lasts from the upsert to the commit: taken at a flush, it would
    make every other request counting the same tag in the same quarter hour wait while
    this one does its slow work (argon2, a directory write) before committing. At commit,
    in key order, it lasts only the commit, and no two transactions lock rows in
    different orders.
    """
    session.flush()  # events added since the last flush are this transaction's too
    uncounted = session.info.pop(_UNCOUNTED, None)
    # An event a rolled-back savepoint took back is no longer persistent: it is not counted.
    events = [audit for audit in uncounted or () if inspect(audit).persistent]
    if events:
        count_events(
            session.connection(),
            (
                {
                    "tag": audit.tag,
                    "created_at": audit.created_at,
                    "details": audit.details,
                    "subject": audit.subject,
                    "subject_key": audit.subject_key,
                    "actor": audit.actor,
                }
                for audit in events
            ),
        )


@event.listens_for(Session, "after_transaction_end")
def _forget_uncounted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended (rolled back, or counted above)
        session.info.pop(_UNCOUNTED, None)
