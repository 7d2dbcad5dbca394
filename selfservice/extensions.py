"""The Flask extensions, created unbound and initialised by the app factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from selfservice.limiter import Limiter

# Named constraints so Alembic migrations are stable across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Migrate:
    """Flask-Migrate, loaded with Alembic (about 15 MB) only when a migration runs.

    A web worker never migrates, so it never imports them; ``flask_migrate.upgrade()`` and
    the ``db`` commands find the real configuration on first use, as before.
    """

    def init_app(self, app: Flask, db: SQLAlchemy, directory: str) -> None:
        app.extensions["migrate"] = _DeferredMigrate(app, db, directory)


class _DeferredMigrate:
    def __init__(self, app: Flask, db: SQLAlchemy, directory: str) -> None:
        self.app, self.db, self.directory = app, db, directory

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in {"app", "db", "directory"}:
            raise AttributeError(name)
        from flask_migrate import Migrate as FlaskMigrate

        FlaskMigrate(self.app, self.db, directory=self.directory)  # puts the real config in its place
        return getattr(self.app.extensions["migrate"], name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter()
