"""Reading the audit log: filters, keyset pages (newest first) and a streamed CSV export.

Pages are cut on (created_at, id), never with OFFSET, so page 2,000 costs what
page 1 costs. The condition is written as ``created_at <= t AND (created_at < t OR
id < n)``: its first half is an index range on every database, which the row-value
form ``(created_at, id) < (t, n)`` is not on all of them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from selfservice.audit.models import AuditEvent
from selfservice.extensions import db
from selfservice.web import parse_id

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
#: The last moment a datetime can hold, as a cursor's microseconds: larger ones are damaged links.
MAX_CURSOR_MICROS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // MICROSECOND
EXPORT_BATCH = 5_000
CSV_COLUMNS = (
    "id",
    "created_at",
    "tag",
    "outcome",
    "actor",
    "subject",
    "subject_key",
    "ip",
    "user_agent",
    "details",
)
#: A spreadsheet runs a cell that starts with one of these as a formula; logins and
#: user agents come from strangers, so such cells are written with a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InvalidCursor(ValueError):
    """A page cursor that this code did not write."""


@dataclass(frozen=True)
class AuditQuery:
    """What an admin is looking for; every part is optional and they combine with AND."""

    tags: tuple[str, ...] = ()
    subject: str | None = None
    actor: str | None = None
    ip: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if len(self.tags) == 1:
            found.append(AuditEvent.tag == self.tags[0])
        elif self.tags:
            found.append(AuditEvent.tag.in_(self.tags))
        for name in ("subject", "actor", "ip", "outcome"):
            value = getattr(self, name)
            if value:
                found.append(getattr(AuditEvent, name) == value)
        if self.since:
            found.append(AuditEvent.created_at >= self.since)
        if self.until:
            found.append(AuditEvent.created_at < self.until)
        return found

    def as_args(self) -> dict[str, str]:
        """The query as URL parameters (for links to the next page and the export's audit event).

        The time range goes as exact UTC moments: "7d" on page 2 means the week page 1 showed.
        """
        args = {name: getattr(self, name) for name in ("subject", "actor", "ip", "outcome")}
        if len(self.tags) == 1:
            args["tag"] = self.tags[0]
        for name in ("since", "until"):
            moment = getattr(self, name)
            args[name] = moment.isoformat() if moment else None
        return {key: value for key, value in args.items() if value}


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: the next page starts strictly after it."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        """``<microseconds since 1970 UTC>_<id>``: exact, and safe in a URL as it is."""
        return f"{(self.created_at - EPOCH) // MICROSECOND}_{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        micros_text, _sep, number_text = text.partition("_")
        micros, number = parse_id(micros_text, maximum=MAX_CURSOR_MICROS), parse_id(number_text)
        if micros is None or number is None:
            raise InvalidCursor(text)
        return cls(EPOCH + micros * MICROSECOND, number)

    @classmethod
    def of(cls, event: Any) -> Cursor:
        return cls(event.created_at, event.id)


@dataclass(frozen=True)
class Page:
    events: list[AuditEvent]
    next_cursor: Cursor | None


def after(cursor: Cursor | None) -> list[ColumnElement[bool]]:
    """Rows older than ``cursor`` in (created_at, id) order."""
    if cursor is None:
        return []
    return [
        AuditEvent.created_at <= cursor.created_at,
        or_(AuditEvent.created_at < cursor.created_at, and_(AuditEvent.id < cursor.id)),
    ]


def newest_first(statement: Select[Any]) -> Select[Any]:
    return statement.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


def page(query: AuditQuery, cursor: Cursor | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of events matching ``query``, newest first, starting after ``cursor``."""
    return _cut(_fetch(query, cursor, size + 1), size)


def merged_page(queries: Sequence[AuditQuery], cursor: Cursor | None = None, size: int = PAGE_SIZE) -> Page:
    """Like :func:`page` for the union of several queries (one index range each, merged here).

    ``tag IN (a, b) ORDER BY created_at`` cannot walk one index in order; a page
    from each query, merged, can.
    """
    found = {event.id: event for query in queries for event in _fetch(query, cursor, size + 1)}
    return _cut(sorted(found.values(), key=lambda e: (e.created_at, e.id), reverse=True), size)


def _fetch(query: AuditQuery, cursor: Cursor | None, limit: int) -> list[AuditEvent]:
    statement = newest_first(select(AuditEvent).where(*query.conditions(), *after(cursor))).limit(limit)
    return list(db.session.scalars(statement))


def _cut(events: list[AuditEvent], size: int) -> Page:
    """The first ``size`` events, and a cursor when there were more."""
    shown = events[:size]
    return Page(shown, Cursor.of(shown[-1]) if len(events) > size and shown else None)


def get_event(event_id: int) -> AuditEvent | None:
    return db.session.get(AuditEvent, event_id)


def iter_events(query: AuditQuery, batch: int = EXPORT_BATCH) -> Iterator[Any]:
    """Every matching event, newest first, read in keyset batches (memory stays flat)."""
    columns = [getattr(AuditEvent, name) for name in CSV_COLUMNS]
    cursor: Cursor | None = None
    while True:
        statement = newest_first(select(*columns).where(*query.conditions(), *after(cursor))).limit(batch)
        rows = db.session.execute(statement).all()
        db.session.rollback()  # end the read transaction between batches: no long-held snapshot
        yield from rows
        if len(rows) < batch:
            return
        cursor = Cursor.of(rows[-1])


def csv_lines(query: AuditQuery, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The export as CSV text, a header line first, yielded in chunks of about ``batch`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(iter_events(query, batch), start=1):
        writer.writerow(_csv_cells(row))
        if count % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _csv_cells(row: Any) -> list[str]:
    cells = []
    for name, value in zip(CSV_COLUMNS, row, strict=True):
        if name == "details":
            text = json.dumps(value or {}, sort_keys=True, ensure_ascii=False)
        elif isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = "" if value is None else str(value)
        cells.append("'" + text if text.startswith(FORMULA_STARTS) else text)
    return cells
