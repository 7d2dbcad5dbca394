"""Per-account lockout of self-service (invariants 2 and 3).

A guess is *claimed* before it is checked: one atomic UPDATE adds one to the
account's failure count, and only a claim that stays within the limit may go on to
the argon2 verify. Twenty parallel guesses therefore get at most ``max_failures``
verifies between them, on one worker or many, because the database serialises the
UPDATEs. A correct guess gives its claim back and clears the count.

A full window and the day's cap (answer sets and mailed codes together) both end in a
lock, set by one conditional UPDATE so that one request only records the event and
tells the holder; the cap's lock lasts until the day ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, update

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.dbtypes import insert_for
from selfservice.extensions import db
from selfservice.security.models import Lockout
from selfservice.timeutil import utcnow


class Locked(Exception):
    """Self-service is locked for this account until ``until``.

    ``newly`` is true for the one caller whose request set the lock (it notifies).
    """

    def __init__(self, until: datetime, *, newly: bool = False) -> None:
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until
        self.newly = newly


DAY = timedelta(days=1)


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    duration: timedelta = timedelta(minutes=30)
    #: The long-run cap: failed answer sets and codes per day, whatever the windows allow.
    max_failures_per_day: int = 20
    #: The holder is told once a day when failures reach this many, locked or not.
    notice_failures_per_day: int = 8

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LockoutPolicy:
        return cls(
            max_failures=settings["LOCKOUT_MAX_FAILURES"],
            window=timedelta(minutes=settings["LOCKOUT_WINDOW_MINUTES"]),
            duration=timedelta(minutes=settings["LOCKOUT_MINUTES"]),
            max_failures_per_day=settings["LOCKOUT_MAX_FAILURES_PER_DAY"],
            notice_failures_per_day=settings["LOCKOUT_NOTICE_FAILURES_PER_DAY"],
        )


class LockoutService:
    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy

    def locked_until(self, account_key: str) -> datetime | None:
        """When the account's lock ends, or None when it is not locked now."""
        row = db.session.get(Lockout, account_key, populate_existing=True)
        if row and row.locked_until and row.locked_until > utcnow():
            return row.locked_until
        return None

    def claim_attempt(self, account_key: str, login: str, origin: Origin) -> None:
        """Count one guess before it is checked; raise Locked when no guess is left."""
        self._claim(account_key, login, origin, window=True)

    def claim_code(self, account_key: str, login: str, origin: Origin) -> None:
        """Count one code try against the daily cap before it is compared; Locked past the cap."""
        self._claim(account_key, login, origin, window=False)

    def _claim(self, account_key: str, login: str, origin: Origin, *, window: bool) -> None:
        self._ensure_row(account_key, login)
        now = utcnow()
        # A window is open while it is recent and no lock has ended since it began.
        window_open = and_(
            Lockout.window_started_at > now - self.policy.window, Lockout.locked_until.is_(None)
        )
        day_open = and_(Lockout.day_started_at.is_not(None), Lockout.day_started_at > now - DAY)
        not_locked = or_(Lockout.locked_until.is_(None), Lockout.locked_until <= now)
        under_cap = or_(~day_open, Lockout.day_failures < self.policy.max_failures_per_day)
        values: dict[str, Any] = {
            "day_failures": case((day_open, Lockout.day_failures + 1), else_=1),
            "day_started_at": case((day_open, Lockout.day_started_at), else_=now),
            "day_noticed": case((day_open, Lockout.day_noticed), else_=False),
            "last_ip": origin.ip,
        }
        statement = update(Lockout).where(Lockout.account_key == account_key, not_locked, under_cap)
        if window:
            statement = statement.where(or_(~window_open, Lockout.failures < self.policy.max_failures))
            values |= {
                "failures": case((window_open, Lockout.failures + 1), else_=1),
                "window_started_at": case((window_open, Lockout.window_started_at), else_=now),
                "locked_until": None,
            }
        result = db.session.execute(statement.values(**values))
        db.session.commit()
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return
        # Refused: the window's count or the day's cap may be full with nobody's lock on it yet.
        until, newly = self._lock(account_key, login, origin, window=window)
        raise Locked(until, newly=newly)

    def notice_due(self, account_key: str) -> int | None:
        """The day's failure count for the one caller that crossed the notice threshold, else None."""
        result = db.session.execute(
            update(Lockout)
            .where(
                Lockout.account_key == account_key,
                Lockout.day_noticed.is_(False),
                Lockout.day_failures >= self.policy.notice_failures_per_day,
                Lockout.day_started_at > utcnow() - DAY,
            )
            .values(day_noticed=True)
        )
        db.session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return db.session.scalar(select(Lockout.day_failures).where(Lockout.account_key == account_key))

    def give_back_code(self, account_key: str) -> None:
        """A right code: its daily claim was not a failure."""
        self._give_back_day(account_key)
        db.session.commit()

    @staticmethod
    def _give_back_day(account_key: str) -> None:
        db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == account_key, Lockout.day_failures > 0)
            .values(day_failures=Lockout.day_failures - 1)
        )

    def record_failure(self, account_key: str, login: str, origin: Origin) -> datetime | None:
        """A claimed guess was wrong: lock when it was the last one allowed, in its window or its day.

        Returns the lock's end only to the one caller that set the lock, so exactly one
        notice goes out however many wrong answers arrive at once.
        """
        until, newly = self._lock(account_key, login, origin, window=True)
        return until if newly else None

    def record_code_failure(self, account_key: str, login: str, origin: Origin) -> datetime | None:
        """A claimed code was wrong: lock until the day ends when it was the day's last allowed.

        Like :meth:`record_failure`, only the caller that set the lock gets its end.
        """
        until, newly = self._lock(account_key, login, origin, window=False)
        return until if newly else None

    def give_back(self, account_key: str) -> None:
        """Return a claimed guess that was never checked (the portal was too busy)."""
        db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == account_key, Lockout.failures > 0)
            .values(failures=Lockout.failures - 1)
        )
        self._give_back_day(account_key)
        db.session.commit()

    def record_success(self, account_key: str, *, commit: bool = True) -> None:
        """A correct answer: clear the window's count; the day keeps its failures, not this claim."""
        self.forget(account_key, day=False)
        if commit:
            db.session.commit()

    @staticmethod
    def forget(account_key: str, *, day: bool = True) -> None:
        """:meth:`clear` in one UPDATE, in the caller's transaction, when nobody asks what it lifted.

        ``day`` forgets the day's failures (a password reset); without it one of them is
        given back (the claim of a right answer).
        """
        now = utcnow()
        day_failures = (
            0
            if day
            else case((Lockout.day_failures > 0, Lockout.day_failures - 1), else_=Lockout.day_failures)
        )
        values: dict[str, Any] = {
            "failures": 0,
            "locked_until": case((Lockout.locked_until > now, None), else_=Lockout.locked_until),
            "day_failures": day_failures,
        }
        if day:
            values["day_noticed"] = case((Lockout.day_failures > 0, False), else_=Lockout.day_noticed)
        db.session.execute(
            update(Lockout).where(Lockout.account_key == account_key).values(**values),
            execution_options={"synchronize_session": False},
        )

    def clear(self, account_key: str) -> bool:
        """Forget failures, the day's too, and any lock (an admin's unlock). True when a lock or cap held."""
        lifted = db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == account_key, self._refusing(utcnow()))
            .values(failures=0, locked_until=None)
        ).rowcount  # type: ignore[attr-defined]
        LockoutService.forget(account_key)
        return bool(lifted)

    def currently_locked(self) -> list[Lockout]:
        """Accounts self-service refuses now: a lock in force, or the day's cap reached."""
        return list(
            db.session.scalars(
                select(Lockout)
                .where(self._refusing(utcnow()), Lockout.login != "")  # decoys are nobody's
                .order_by(Lockout.locked_until.desc())
            )
        )

    def refusing(self, account_key: str) -> Lockout | None:
        """The account's row while self-service refuses it (a lock or the day's cap), else None."""
        return db.session.scalar(
            select(Lockout).where(Lockout.account_key == account_key, self._refusing(utcnow()))
        )

    def refused_until(self, row: Lockout) -> datetime | None:
        """When self-service takes the account again: the later of its lock's end and its cap's end."""
        now = utcnow()
        ends = [row.locked_until] if row.locked_until and row.locked_until > now else []
        if row.day_started_at and row.day_failures >= self.policy.max_failures_per_day:
            ends += [row.day_started_at + DAY] if row.day_started_at + DAY > now else []
        return max(ends, default=None)

    def _refusing(self, now: datetime) -> ColumnElement[bool]:
        capped = and_(
            Lockout.day_started_at > now - DAY, Lockout.day_failures >= self.policy.max_failures_per_day
        )
        return or_(Lockout.locked_until > now, capped)

    def _lock(self, account_key: str, login: str, origin: Origin, *, window: bool) -> tuple[datetime, bool]:
        """Set the lock once: only the first caller writes it and records the event (newly=True).

        A full window locks for the policy's duration; the day's cap locks until the day
        ends (the later of the two when both are full), and lengthens a shorter window lock
        already in force. The conditional UPDATE is what makes one caller the first.
        """
        now = utcnow()
        row = db.session.get(Lockout, account_key, populate_existing=True)
        if row is None:
            return now, False
        day_end = self._cap_end(row, now)
        full = window and row.failures >= self.policy.max_failures
        free = or_(Lockout.locked_until.is_(None), Lockout.locked_until <= now)
        if day_end is not None and (row.locked_until is None or row.locked_until < day_end):
            until = max(day_end, now + self.policy.duration) if full else day_end
            which = and_(
                Lockout.day_started_at == row.day_started_at,
                Lockout.day_failures >= self.policy.max_failures_per_day,
                or_(free, Lockout.locked_until < day_end),
            )
            details = {"limit": "day", "failures": self.policy.max_failures_per_day}
        elif full and (row.locked_until is None or row.locked_until <= now):
            until = now + self.policy.duration
            which = and_(free, Lockout.failures >= self.policy.max_failures)
            details = {"limit": "window", "failures": self.policy.max_failures}
        else:  # under both, or locked already as long as it should be
            return self.refused_until(row) or now, False
        result = db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == account_key, which)
            .values(
                locked_at=case((Lockout.locked_until > now, Lockout.locked_at), else_=now),
                locked_until=until,
            )
        )
        db.session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return self._refused_now(account_key, now), False
        if login:  # a decoy (unknown login) locks silently
            record(
                Tag.LOCKED,
                outcome="locked",
                origin=origin,
                subject=login,
                subject_key=account_key,
                details={**details, "until": until.isoformat()},
            )
        return until, True

    def _cap_end(self, row: Lockout, now: datetime) -> datetime | None:
        """When the day's cap lifts, or None while the day is under it."""
        if row.day_started_at is None or row.day_started_at <= now - DAY:
            return None
        return row.day_started_at + DAY if row.day_failures >= self.policy.max_failures_per_day else None

    def _refused_now(self, account_key: str, now: datetime) -> datetime:
        """The end of what refuses the account, read afresh (now when nothing does any more)."""
        row = db.session.get(Lockout, account_key, populate_existing=True)
        return (self.refused_until(row) if row is not None else None) or now

    @staticmethod
    def _ensure_row(account_key: str, login: str) -> None:
        """The account's row, created by the first claim: one statement whether it exists or not."""
        insert = insert_for(db.session.get_bind().dialect.name)
        db.session.execute(
            insert(Lockout)
            .values(account_key=account_key, login=login, failures=0)
            .on_conflict_do_nothing(index_elements=["account_key"])
        )
