"""Column types shared by the domain models, and the upsert of each database."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from sqlalchemy.types import TypeDecorator

#: The database, not the request, is at fault: connection lost, read-only (PostgreSQL raises
#: InternalError in a read-only transaction: a standby after a failover), disk full, locked.
#: A page answers 503; a worker ends its pass and tries again. (Constraint and programming
#: errors are other DBAPIError kinds: they stay errors.)
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, InternalError)

#: 64-bit ids on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC, refuses naive datetimes on the way in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def insert_for(dialect: str) -> Callable[..., Any]:
    """The INSERT of ``dialect`` ("postgresql" or "sqlite") that has ON CONFLICT.

    Imported here, when first used: a worker loads its own database's dialect only (the
    other is 0.5 MB, or 2.5 MB for PostgreSQL's, that it would never use; issue 17, P5).
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
