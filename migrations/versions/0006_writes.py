"""pending password changes: the durable intent before a directory write; the health probe row

Revision ID: 0006_writes
Revises: 0005
Create Date: 2026-11-29 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_writes'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pending_change',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('login', sa.String(length=128), nullable=False),
    sa.Column('how', sa.String(length=16), nullable=False),
    sa.Column('must_change', sa.Boolean(), nullable=False),
    sa.Column('token_nonce', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous_stamp', sa.String(length=80), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.Column('settled_by', sa.String(length=16), nullable=True),
    sa.Column('note', sa.String(length=120), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_change'))
    )
    with op.batch_alter_table('pending_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_change_account_key'), ['account_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_change_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_change_state'), ['state'], unique=False)
    op.create_table('health_probe',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_probe'))
    )


def downgrade():
    op.drop_table('health_probe')
    with op.batch_alter_table('pending_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_change_state'))
        batch_op.drop_index(batch_op.f('ix_pending_change_started_at'))
        batch_op.drop_index(batch_op.f('ix_pending_change_account_key'))

    op.drop_table('pending_change')
