"""answers by question: an index on enrollment_answer.question_id

A stranger's decoy questions are drawn from the active questions and the retired ones
someone still answers (selfservice.portal.recovery._decoy_pool); the index keeps that
"still answered" test a lookup, not a scan of every answer, so it costs no telling time.

Revision ID: 0010_answer_question
Revises: 0009_code_purpose
Create Date: 2026-11-30 10:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010_answer_question'
down_revision = '0009_code_purpose'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('enrollment_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_answer_question_id'), ['question_id'], unique=False)


def downgrade():
    with op.batch_alter_table('enrollment_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_answer_question_id'))
