"""Migration 0006_languages: the shipped questions gain their es, ht and fr wording on upgrade."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from selfservice import create_app
from selfservice.extensions import db
from selfservice.portal.models import Question
from selfservice.portal.question_bank import SEED_BANK


def test_upgrade_translates_the_shipped_questions_and_keeps_an_admins_wording(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    with app.app_context():
        upgrade(revision="0005")
        first = SEED_BANK[0]["en"]
        table = sa.table("question", sa.column("text"), sa.column("translations", sa.JSON))
        db.session.execute(table.update().where(table.c.text == first).values(translations={"es": "¿Mía?"}))
        db.session.commit()
        upgrade()
        by_text = {q.text: q.translations for q in db.session.scalars(sa.select(Question))}
        assert by_text[first] == {"es": "¿Mía?", "ht": SEED_BANK[0]["ht"], "fr": SEED_BANK[0]["fr"]}
        for seed in SEED_BANK[1:]:
            assert by_text[seed["en"]] == {code: seed[code] for code in ("es", "ht", "fr")}
        db.session.remove()
        downgrade(revision="0005")
        kept = dict(db.session.execute(sa.select(table.c.text, table.c.translations)).all())
        assert kept[first] == {"es": "¿Mía?"}
        assert kept[SEED_BANK[1]["en"]] == {}
        db.engine.dispose()
