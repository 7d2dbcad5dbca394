"""counts: audit events counted per quarter hour; each account's and staff login's last activity

The dashboard reads these instead of counting raw audit events. The audit writer keeps
them from now on (selfservice.audit.counts); this fills them from the events already
there, and from the breach counts, in SQL on the server: one INSERT ... SELECT ... GROUP BY
per table, with the same rules as the writer (quarter hours in UTC, kind = details.how).

Revision ID: 0008_counts
Revises: 0007_held_sync
Create Date: 2026-11-30 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_counts'
down_revision = '0007_held_sync'
branch_labels = None
depends_on = None

BREACH_TAG = 'ratelimit:request:breach'
#: selfservice.audit.counts.HOLDER_TAGS and STAFF_TAGS as they were at this revision.
HOLDER_TAGS = (
    'auth:session:login',
    'account:password:change',
    'account:password:reset',
    'account:password:activation',
    'account:enrollment:save',
    'account:recovery:start',
    'account:recovery:verified',
    'account:selfservice:locked',
)
STAFF_TAGS = (
    'helpdesk:request:open',
    'helpdesk:request:update',
    'helpdesk:reset-link:issue',
    'helpdesk:request:escalate',
    'helpdesk:request:resolve',
    'admin:question:change',
    'account:selfservice:unlocked',
)


def upgrade():
    op.create_table('audit_count',
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tag', 'bucket', 'kind', name=op.f('pk_audit_count'))
    )
    op.create_table('account_activity',
    sa.Column('subject_key', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('subject_key', 'subject', name=op.f('pk_account_activity'))
    )
    with op.batch_alter_table('account_activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_activity_last_seen_at'), ['last_seen_at'], unique=False)
    op.create_table('staff_activity',
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('last_acted_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('actor', name=op.f('pk_staff_activity'))
    )
    with op.batch_alter_table('staff_activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_activity_last_acted_at'), ['last_acted_at'], unique=False)
    _backfill()


def _quarter_hour(column, dialect):
    """The start of the quarter hour (UTC, naive as stored) of a stored timestamp column."""
    if dialect == 'postgresql':
        return (f"date_trunc('hour', {column})"
                f" + CAST(floor(extract(minute from {column}) / 15) AS integer) * interval '15 minutes'")
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff', as SQLAlchemy writes it.
    return (f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"
            f" || ':00.000000'")


def _backfill():
    connection = op.get_bind()
    dialect = connection.dialect.name
    how = "details ->> 'how'" if dialect == 'postgresql' else "json_extract(details, '$.how')"
    holder = ', '.join(f"'{tag}'" for tag in HOLDER_TAGS)
    staff = ', '.join(f"'{tag}'" for tag in STAFF_TAGS)
    connection.exec_driver_sql(
        "INSERT INTO audit_count (tag, bucket, kind, count)"
        f" SELECT tag, {_quarter_hour('created_at', dialect)}, coalesce(substr({how}, 1, 32), ''), count(*)"
        " FROM audit_event GROUP BY 1, 2, 3"
    )
    # Breaches were never audit events after 0006_limits: their counts per minute join the same table.
    connection.exec_driver_sql(
        "INSERT INTO audit_count (tag, bucket, kind, count)"
        f" SELECT '{BREACH_TAG}', {_quarter_hour('minute', dialect)}, '', sum(count)"
        f" FROM rate_limit_breach GROUP BY 2"
    )
    connection.exec_driver_sql(
        "INSERT INTO account_activity (subject_key, subject, last_seen_at)"
        " SELECT subject_key, coalesce(subject, ''), max(created_at) FROM audit_event"
        f" WHERE tag IN ({holder}) AND subject_key IS NOT NULL AND subject_key != ''"
        " GROUP BY subject_key, coalesce(subject, '')"
    )
    connection.exec_driver_sql(
        "INSERT INTO staff_activity (actor, last_acted_at)"
        " SELECT actor, max(created_at) FROM audit_event"
        f" WHERE tag IN ({staff}) AND actor IS NOT NULL AND actor != ''"
        " GROUP BY actor"
    )


def downgrade():
    with op.batch_alter_table('staff_activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_activity_last_acted_at'))
    op.drop_table('staff_activity')
    with op.batch_alter_table('account_activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_activity_last_seen_at'))
    op.drop_table('account_activity')
    op.drop_table('audit_count')
