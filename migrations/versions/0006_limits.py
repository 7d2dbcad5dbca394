"""limits: breaches counted per (address or account, limit, endpoint, minute); daily failure cap

Breaches used to be one audit event each; they become counts. Existing breach events
are converted into counts and removed from the audit log (the counts keep what they said).

Revision ID: 0006_limits
Revises: 0005
Create Date: 2026-11-29 22:00:00.000000

"""
import json
from collections import Counter
from datetime import datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_limits'
down_revision = '0006_api'
branch_labels = None
depends_on = None

BREACH_TAG = 'ratelimit:request:breach'


def upgrade():
    breach = op.create_table('rate_limit_breach',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('minute', sa.DateTime(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('limit_name', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_breach')),
    sa.UniqueConstraint('minute', 'scope', 'key', 'limit_name', 'endpoint', name='uq_breach')
    )
    with op.batch_alter_table('rate_limit_breach', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_breach_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_rate_limit_breach_minute'), ['minute'], unique=False)
    _convert_breach_events(breach)
    with op.batch_alter_table('lockout', schema=None) as batch_op:
        batch_op.add_column(sa.Column('day_started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('day_failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('day_noticed', sa.Boolean(), server_default=sa.false(), nullable=False))


def _convert_breach_events(breach):
    connection = op.get_bind()
    events = sa.table('audit_event', sa.column('created_at', sa.DateTime()), sa.column('tag', sa.String()),
                      sa.column('ip', sa.String()), sa.column('details', sa.JSON()))
    counts = Counter()
    rows = connection.execute(
        sa.select(events.c.created_at, events.c.ip, events.c.details).where(events.c.tag == BREACH_TAG)
    )
    for created_at, ip, details in rows:
        if isinstance(created_at, str):
            created_at = datetime.fromisoformat(created_at)
        if isinstance(details, str):
            details = json.loads(details)
        details = details or {}
        minute = created_at.replace(second=0, microsecond=0, tzinfo=None)
        key = (minute, 'ip', (ip or '?')[:128], str(details.get('limit', '?'))[:128],
               str(details.get('endpoint', '?'))[:64])
        counts[key] += 1
    if counts:
        op.bulk_insert(breach, [
            {'minute': m, 'scope': s, 'key': k, 'limit_name': li, 'endpoint': e, 'count': n}
            for (m, s, k, li, e), n in counts.items()
        ])
        connection.execute(sa.delete(events).where(events.c.tag == BREACH_TAG))


def downgrade():
    with op.batch_alter_table('lockout', schema=None) as batch_op:
        batch_op.drop_column('day_noticed')
        batch_op.drop_column('day_failures')
        batch_op.drop_column('day_started_at')
    with op.batch_alter_table('rate_limit_breach', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_breach_minute'))
        batch_op.drop_index(batch_op.f('ix_rate_limit_breach_key'))
    op.drop_table('rate_limit_breach')
