"""Fixtures: a real database (SQLite by default, PostgreSQL with SELFSERVICE_TEST_DATABASE=postgres),
the builtin directory seeded from tests/fixtures/people.py, and a real slapd (tests/slapd.py)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from selfservice import create_app
from selfservice.directory.builtin import BuiltinDirectory, NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db, limiter
from selfservice.portal.question_bank import seed_question_bank
from tests.fixtures.people import PEOPLE, Person
from tests.scratch import scratch_postgres

pytest_plugins = ["tests.slapd", "tests.samba", "tests.faultproxy", "tests.doctor.district"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``row_locks`` races in the SQLite pass: one writer at a time cannot race."""
    if os.environ.get("SELFSERVICE_TEST_DATABASE", "sqlite") == "postgres":
        return
    kept = [item for item in items if item.get_closest_marker("row_locks") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


#: Cheap argon2 for speed; tests of the real parameters build their own hasher.
FAST_HASHING = {"ARGON2_MEMORY_KIB": 1024, "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1}


def base_settings(database_url: str, tmp_path: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path),
        "RATELIMIT_STORAGE_URI": "memory://",
        "SESSION_COOKIE_SECURE": True,
        "DISTRICT_NAME": "Springfield Schools",
        # Staff sign in with a password alone in tests; tests/auth/test_second_factor.py turns
        # the second factor on (the default for admin and ITS) and goes through it.
        "STAFF_SECOND_FACTOR": {"admin": "off", "its": "off", "support": "off", "employee": "off"},
        **FAST_HASHING,
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the session; each test starts from empty tables."""
    if os.environ.get("SELFSERVICE_TEST_DATABASE", "sqlite") == "postgres":
        yield from _postgres_database()
    else:
        yield from _sqlite_database(tmp_path_factory.mktemp("db"))


def _sqlite_database(folder: Any) -> Iterator[str]:
    url = f"sqlite:///{folder / 'test.sqlite'}"
    _migrate(url, folder)
    yield url


def _postgres_database() -> Iterator[str]:
    with scratch_postgres("selfservice_test") as url:
        _migrate(url, None)
        yield url


def _migrate(url: str, folder: Any) -> None:
    import tempfile

    app = create_app(base_settings(url, folder or tempfile.mkdtemp()))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def empty_tables() -> None:
    """Delete every row (Core deletes: the audit log's ORM guard does not apply), reseed the questions."""
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()
    seed_question_bank(db.session)


def seed_builtin(directory: BuiltinDirectory, people: list[Person] = PEOPLE) -> None:
    for person in people:
        fields = {field.name: getattr(person, field.name) for field in dataclasses.fields(person)}
        directory.create(
            NewAccount(**{**fields, "kind": AccountKind(person.kind), "groups": list(person.groups)})
        )


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(database_url: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[AppFactory]:
    """Build an app on the test database: ``make_app(directory="openldap", SETTING=value)``."""
    apps: list[Flask] = []

    def factory(directory: str = "builtin", **overrides: Any) -> Flask:
        settings = base_settings(database_url, tmp_path)
        if directory == "openldap":
            settings.update(request.getfixturevalue("ldap_directory_settings"))
        if directory == "ad":
            settings.update(request.getfixturevalue("ad_directory_settings"))
        settings.update({"DIRECTORY": directory, **overrides})
        app = create_app(settings)
        with app.app_context():
            empty_tables()
            if directory == "builtin":
                seed_builtin(app.extensions["selfservice.directory"])
        if app.config["RATELIMIT_STORAGE_URI"] == "memory://":
            limiter.reset()  # counts are per process: start each test from zero
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        # The LDAP adapter keeps its service connection open between requests.
        close = getattr(app.extensions.get("selfservice.directory"), "close", None)
        if close is not None:
            close()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """GET ``path`` and return the CSRF token of its first form."""
    response = client.get(path)
    match = CSRF_FIELD.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1)


def post_form(
    client: FlaskClient, path: str, data: dict[str, Any], *, form_path: str | None = None, **kwargs: Any
) -> Any:
    """POST ``data`` to ``path`` with the CSRF token a browser would have."""
    token = csrf_token(client, form_path or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, login: str = "s1000001", password: str | None = None) -> Any:
        password = password if password is not None else person(login).password
        return post_form(self.client, "/login", {"login": login, "password": password})

    def logout(self) -> Any:
        return post_form(self.client, "/logout", {}, form_path="/")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


def person(login: str) -> Person:
    return next(p for p in PEOPLE if p.login == login)


@pytest.fixture
def ldap_directory_settings(slapd: Any, ldap_directory: Any) -> dict[str, Any]:
    """Settings for an app on the real slapd, its seed accounts restored first."""
    return slapd.settings()


@pytest.fixture
def ad_directory_settings(samba_ad: Any, ad_directory: Any) -> dict[str, Any]:
    """Settings for an app on the real Samba AD DC, its seed accounts restored first."""
    return samba_ad.settings()
