"""code purpose: a mailed code is bound to the flow that sent it (recovery or activation)

A new code voids only the live code of its own flow, and a check reads only that flow's
code. Codes mailed before this revision (they live CODE_MINUTES) belong to no flow and
stop working: the person asks for a new one.

Revision ID: 0009_code_purpose
Revises: 0008_counts
Create Date: 2026-11-30 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_code_purpose'
down_revision = '0008_counts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('verification_code', schema=None) as batch_op:
        batch_op.drop_column('purpose')
