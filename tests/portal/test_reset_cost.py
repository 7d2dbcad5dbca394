"""What one self-service reset costs the database, the directory and zxcvbn (issue 17).

Each request of the walk is metered: SQL statements sent (the engine's
``before_cursor_execute``: every statement, the session store's too), account lookups at
the directory (``get``, ``find``, ``find_by``) and zxcvbn scorings. The ceilings below are
today's counts: a change that adds a statement, a lookup or a scoring to a step fails here
and has to say why in this file. Times are not asserted (they go in bench/).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from selfservice.extensions import db
from selfservice.security import passwords as password_policy
from tests.conftest import AppFactory
from tests.conftest import csrf_token as page_csrf
from tests.portal.test_recovery import NEW_PASSWORD, enroll, enrolled_answers, mailed_code, pinned_ids

LOOKUPS = ("get", "find", "find_by")

#: Ceilings per request: (SQL statements, account lookups, zxcvbn scorings). A commit that
#: writes audit events also writes the dashboard's counts (``selfservice.audit.counts``):
#: an upsert of the counts, and one of the holder's last activity for the holder's own
#: events. That is 2 of the statements of each POST below and 3 of the last one.
STUDENT_CEILINGS = {
    "GET /forgot": (0, 0, 0),
    "POST /forgot": (7, 1, 0),
    "GET /forgot/questions": (2, 0, 0),
    "POST /forgot/questions": (12, 1, 0),
    "GET /forgot/reset": (2, 1, 0),
    "POST /forgot/reset": (18, 1, 1),
}
PARENT_CEILINGS = {
    **STUDENT_CEILINGS,
    "POST /forgot/questions": (15, 1, 0),
    "GET /forgot/code": (0, 0, 0),
    "POST /forgot/code": (8, 1, 0),
}
#: The directory's rows are not in the portal's database on slapd: fewer statements.
LDAP_STATEMENTS_SAVED = {
    "POST /forgot": 1,
    "POST /forgot/questions": 1,
    "GET /forgot/reset": 1,
    "POST /forgot/code": 1,
    "POST /forgot/reset": 3,
}


class Meter:
    """Counts per request label, while :meth:`step` is open."""

    def __init__(self, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
        self.label = ""
        self.counts: dict[str, Counter[str]] = {}
        with app.app_context():
            self.engine = db.engine
        directory = app.extensions["selfservice.directory"]
        for name in LOOKUPS:
            monkeypatch.setattr(directory, name, self._counted("lookups", getattr(directory, name)))
        monkeypatch.setattr(password_policy, "zxcvbn", self._counted("zxcvbn", password_policy.zxcvbn))

    def _counted(self, what: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._add(what)
            return function(*args, **kwargs)

        return wrapper

    def _add(self, what: str, *_args: Any) -> None:
        if self.label:
            self.counts.setdefault(self.label, Counter())[what] += 1

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.counts.setdefault(label, Counter())
        listener = functools.partial(self._add, "statements")
        event.listen(self.engine, "before_cursor_execute", listener)
        self.label = label
        try:
            yield
        finally:
            self.label = ""
            event.remove(self.engine, "before_cursor_execute", listener)

    def table(self) -> dict[str, tuple[int, int, int]]:
        return {
            label: (counts["statements"], counts["lookups"], counts["zxcvbn"])
            for label, counts in self.counts.items()
        }


def _get(meter: Meter, client: FlaskClient, path: str, label: str) -> str:
    with meter.step(label):
        return page_csrf(client, path)


def _post(meter: Meter, client: FlaskClient, path: str, label: str, data: dict[str, str]) -> str:
    token = data.pop("csrf_token")
    with meter.step(label):
        response = client.post(path, data={"csrf_token": token, **data})
    assert response.status_code == 303, (label, response.status_code)
    return str(response.headers["Location"])


def walk(app: Flask, meter: Meter, login: str) -> dict[str, tuple[int, int, int]]:
    """A whole reset, as a browser makes it, every request metered; the person signs in after."""
    client = app.test_client()
    token = _get(meter, client, "/forgot", "GET /forgot")
    assert _post(meter, client, "/forgot", "POST /forgot", {"csrf_token": token, "login": login})
    token = _get(meter, client, "/forgot/questions", "GET /forgot/questions")
    known = enrolled_answers(app, login)
    answers = {f"answer_{n}": known[qid] for n, qid in enumerate(pinned_ids(client, app), start=1)}
    location = _post(
        meter, client, "/forgot/questions", "POST /forgot/questions", {"csrf_token": token, **answers}
    )
    if location == "/forgot/code":
        token = _get(meter, client, location, "GET /forgot/code")
        code = mailed_code(app)
        location = _post(meter, client, location, "POST /forgot/code", {"csrf_token": token, "code": code})
    assert location.startswith("/forgot/reset/")
    token = _get(meter, client, location, "GET /forgot/reset")
    done = {"csrf_token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert _post(meter, client, location, "POST /forgot/reset", done) == "/forgot/done"
    with app.app_context():
        assert app.extensions["selfservice.directory"].authenticate(login, NEW_PASSWORD) is not None
    return meter.table()


def ceilings(base: dict[str, tuple[int, int, int]], directory: str) -> dict[str, tuple[int, int, int]]:
    if directory != "openldap":
        return base
    return {
        label: (statements - LDAP_STATEMENTS_SAVED.get(label, 0), lookups, scorings)
        for label, (statements, lookups, scorings) in base.items()
    }


def over(
    measured: dict[str, tuple[int, int, int]], allowed: dict[str, tuple[int, int, int]]
) -> dict[str, Any]:
    """Requests whose count passes its ceiling, with both; a request of the walk with no ceiling too."""
    return {
        label: {"measured": counts, "ceiling": allowed.get(label)}
        for label, counts in measured.items()
        if label not in allowed or any(m > c for m, c in zip(counts, allowed[label], strict=True))
    }


DIRECTORIES = [
    pytest.param("builtin", id="builtin"),
    pytest.param("openldap", id="openldap", marks=[pytest.mark.ldap, pytest.mark.slow]),
]


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_a_student_reset_stays_within_its_statements_lookups_and_scorings(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "s1000001")
    measured = walk(app, Meter(app, monkeypatch), "s1000001")
    assert over(measured, ceilings(STUDENT_CEILINGS, directory)) == {}, str(measured)


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_a_parent_reset_with_a_mailed_code_stays_within_its_counts(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, directory: str
) -> None:
    app = make_app(directory=directory)
    enroll(app, "p2000001")
    measured = walk(app, Meter(app, monkeypatch), "p2000001")
    assert over(measured, ceilings(PARENT_CEILINGS, directory)) == {}, str(measured)


#: LDAP searches per request of a student's reset on slapd: a lookup is one search (its
#: entry; recovery never reads group membership), the write reads the stamp and proves the
#: service connection alive first, and reads the account's ppolicy lock just before the
#: reset (an administrator's permanent lock is written back after it: ppolicy removes any
#: lock on a reset, and the account read earlier in the request may be stale by then).
#: The first password page of a process also reads the password rules (the naming
#: context, then the ppolicy entries; cached after).
LDAP_SEARCH_CEILINGS = {
    "GET /forgot": 0,
    "POST /forgot": 1,
    "GET /forgot/questions": 0,
    "POST /forgot/questions": 1,
    "GET /forgot/reset": 3,
    "POST /forgot/reset": 4,
}


@pytest.mark.ldap
@pytest.mark.slow
def test_a_reset_on_ldap_reads_no_group_membership(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(directory="openldap")
    enroll(app, "s1000001")
    meter = Meter(app, monkeypatch)
    search = ldap3.Connection.search

    def counted(
        connection: ldap3.Connection, base: str, search_filter: str, *args: Any, **kwargs: Any
    ) -> Any:
        meter._add("groups" if "member=" in search_filter else "searches")
        return search(connection, base, search_filter, *args, **kwargs)

    monkeypatch.setattr(ldap3.Connection, "search", counted)
    walk(app, meter, "s1000001")
    searches = {label: counts["searches"] for label, counts in meter.counts.items()}
    assert sum(counts["groups"] for counts in meter.counts.values()) == 0, meter.counts
    assert searches == LDAP_SEARCH_CEILINGS
    with app.app_context():  # sign-in still reads them
        assert app.extensions["selfservice.directory"].find("admin1").roles


def test_the_meter_sees_what_a_reset_does(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The meter is no test that cannot fail: a reset does read, write and score."""
    app = make_app()
    enroll(app, "s1000001")
    measured = walk(app, Meter(app, monkeypatch), "s1000001")
    assert measured["POST /forgot/reset"][0] > 0
    assert measured["POST /forgot/reset"][1] >= 1
    assert measured["POST /forgot/reset"][2] >= 1
