"""held sync writes: a change's encrypted password held with its intent until the change is settled

Revision ID: 0007_held_sync
Revises: 0006_limits
Create Date: 2026-11-30 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_held_sync'
down_revision = '0006_limits'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('pending_change_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True)
        )
        batch_op.create_index(batch_op.f('ix_sync_write_pending_change_id'), ['pending_change_id'], unique=False)


def downgrade():
    # Held writes belong to changes nobody settled yet: without the column they would be
    # released to nobody, so their (encrypted) passwords go with it.
    op.execute("DELETE FROM sync_write WHERE status = 'held'")
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_write_pending_change_id'))
        batch_op.drop_column('pending_change_id')
