"""languages: each account's chosen language; the shipped questions in es, ht and fr

Revision ID: 0006_languages
Revises: 0005
Create Date: 2026-11-29 22:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_languages'
down_revision = '0006_writes'
branch_labels = None
depends_on = None

_question = sa.table(
    "question",
    sa.column("id", sa.Integer),
    sa.column("text", sa.String),
    sa.column("translations", sa.JSON),
)


def upgrade():
    op.create_table('account_language',
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('chosen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account_key', name=op.f('pk_account_language'))
    )
    _translate_seed_questions()


def _translate_seed_questions():
    """Add the shipped wording to the shipped questions; a translation an admin wrote stays."""
    from selfservice.portal.question_bank import SEED_BANK, seed_translations

    shipped = {seed["en"]: seed_translations(seed) for seed in SEED_BANK}
    bind = op.get_bind()
    for row in bind.execute(sa.select(_question.c.id, _question.c.text, _question.c.translations)):
        if row.text not in shipped:
            continue
        merged = shipped[row.text] | {code: text for code, text in (row.translations or {}).items() if text}
        bind.execute(_question.update().where(_question.c.id == row.id).values(translations=merged))


def downgrade():
    from selfservice.portal.question_bank import SEED_BANK, seed_translations

    shipped = {seed["en"]: seed_translations(seed) for seed in SEED_BANK}
    bind = op.get_bind()
    for row in bind.execute(sa.select(_question.c.id, _question.c.text, _question.c.translations)):
        ours = shipped.get(row.text, {})
        kept = {code: text for code, text in (row.translations or {}).items() if ours.get(code) != text}
        bind.execute(_question.update().where(_question.c.id == row.id).values(translations=kept))
    op.drop_table('account_language')
