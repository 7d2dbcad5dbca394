"""sync lock state: the target's lock (and password stamp) read before a sync write

A sync target with ``unlock = false`` (and any target, for an administrator's lock) must
keep the account's lock through the password write. OpenLDAP's ppolicy lifts the lock on
the reset itself, so when the reply to the reset is lost the retry finds no lock to write
back: the state read before the first attempt is kept on the row to settle it from.

Revision ID: 0011_sync_lock_state
Revises: 0010_answer_question
Create Date: 2026-11-30 13:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_sync_lock_state'
down_revision = '0010_answer_question'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_before', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.drop_column('lock_before')
