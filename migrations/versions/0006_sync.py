"""password sync: the queue of writes to sync targets

Revision ID: 0006_sync
Revises: 0005
Create Date: 2026-11-29 21:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_sync'
down_revision = '0006_languages'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sync_write',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('change_id', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=32), nullable=False),
        sa.Column('account_key', sa.String(length=64), nullable=False),
        sa.Column('account_login', sa.String(length=256), nullable=False),
        sa.Column('lookups', sa.JSON(), nullable=False),
        sa.Column('how', sa.String(length=16), nullable=False),
        sa.Column('must_change', sa.Boolean(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('settled_at', sa.DateTime(), nullable=True),
        sa.Column('claimed_by', sa.String(length=64), nullable=True),
        sa.Column('claimed_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.create_index('ix_sync_write_status_next', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_sync_write_account_target', ['account_key', 'target'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_write_change_id'), ['change_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sync_write', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_write_change_id'))
        batch_op.drop_index('ix_sync_write_account_target')
        batch_op.drop_index('ix_sync_write_status_next')
    op.drop_table('sync_write')
