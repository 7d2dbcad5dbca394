"""Migrations: a fresh database goes to head, back to base and up again; models and migrations agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade

from selfservice import create_app
from selfservice.extensions import db
from tests.scratch import scratch_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on a brand-new, empty database of each kind."""
    if request.param == "sqlite":
        yield _app(f"sqlite:///{tmp_path / 'fresh.sqlite'}", tmp_path)
        return
    with scratch_postgres("selfservice_migrations") as url:
        app = _app(url, tmp_path)
        try:
            yield app
        finally:
            with app.app_context():
                db.engine.dispose()


def _app(url: str, tmp_path: Path) -> Flask:
    return create_app({"TESTING": True, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path)})


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade()
        expected = {table.name for table in db.metadata.sorted_tables}
        assert table_names() == expected
        downgrade(revision="base")
        assert table_names() == set()
        upgrade()
        assert table_names() == expected
        assert db.session.execute(sa.text("SELECT count(*) FROM question")).scalar_one() >= 15


def test_models_and_migrations_agree(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == [], "models and migrations differ: write a migration"


def test_breach_events_become_counts_per_minute(empty_app: Flask) -> None:
    """0006_limits turns one audit row per refused request into one counted row per key and minute."""
    with empty_app.app_context():
        upgrade(revision="0005")
        insert = sa.text(
            "INSERT INTO audit_event (created_at, tag, outcome, ip, details)"
            " VALUES (:at, 'ratelimit:request:breach', 'refused', :ip, :details)"
        )
        details = '{"limit": "10 per 1 minute", "endpoint": "auth.login", "key": "x", "method": "POST"}'
        for at, ip in [
            ("2026-11-01 08:05:10", "203.0.113.5"),
            ("2026-11-01 08:05:50", "203.0.113.5"),
            ("2026-11-01 08:06:01", "203.0.113.5"),
            ("2026-11-01 08:05:30", "198.51.100.9"),
        ]:
            db.session.execute(insert, {"at": at, "ip": ip, "details": details})
        db.session.commit()
        upgrade()
        rows = db.session.execute(
            sa.text(
                "SELECT minute, key, limit_name, endpoint, count FROM rate_limit_breach ORDER BY key, minute"
            )
        ).all()
        left = db.session.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
    assert [(str(m)[:16], k, n) for m, k, _limit, _endpoint, n in rows] == [
        ("2026-11-01 08:05", "198.51.100.9", 1),
        ("2026-11-01 08:05", "203.0.113.5", 2),
        ("2026-11-01 08:06", "203.0.113.5", 1),
    ]
    assert {(limit, endpoint) for _m, _k, limit, endpoint, _n in rows} == {("10 per 1 minute", "auth.login")}
    assert left == 0


def counted_rows() -> dict[str, list[tuple[object, ...]]]:
    from selfservice.audit.models import AccountActivity, AuditCount, StaffActivity

    return {
        model.__tablename__: sorted(
            tuple(row) for row in db.session.execute(sa.select(*model.__table__.columns)).all()
        )
        for model in (AuditCount, AccountActivity, StaffActivity)
    }


def test_counts_backfill_gives_what_the_writer_keeps(empty_app: Flask) -> None:
    """0008_counts fills the dashboard's counts from the events already there, as the writer would have."""
    from selfservice.admin.seeding import seed_audit, seed_flood
    from selfservice.audit.services import record
    from selfservice.audit.tags import Tag

    with empty_app.app_context():
        upgrade()
        seed_audit(4_000, days=40)
        seed_flood(9_000, per_minute=2_000)
        record(Tag.PASSWORD_RESET, subject="s1", subject_key="k1", details={"how": None})
        record(Tag.LOGIN_SUCCESS, subject=None, subject_key="k2")
        written = counted_rows()
        assert all(written.values())
        db.session.remove()  # no open read transaction to hold up the DROP on PostgreSQL
        downgrade(revision="0006_limits")
        assert {"audit_count", "account_activity", "staff_activity"}.isdisjoint(table_names())
        upgrade()
        assert counted_rows() == written
