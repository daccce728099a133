"""weekly digest: events carry their station, time indexes, delivered weeks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 08:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0003): no table rebuild on SQLite.
    op.add_column('ticketevent', sa.Column(
        'station_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    # History before this revision: the ticket's station now is the best record there is.
    op.execute(
        "UPDATE ticketevent SET station_key = "
        "(SELECT ticket.station_key FROM ticket WHERE ticket.id = ticketevent.ticket_id)"
    )
    op.create_index('ix_ticketevent_at', 'ticketevent', ['at'])
    op.create_index('ix_ticket_due_at', 'ticket', ['due_at'])
    op.create_index('ix_ticket_created_at', 'ticket', ['created_at'])
    op.create_table(
        'weekly_digest',
        sa.Column('week', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('delivered_at', storage.models.UTCDateTime(), nullable=False),
        sa.Column('directory', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.PrimaryKeyConstraint('week'),
    )


def downgrade() -> None:
    op.drop_table('weekly_digest')
    op.drop_index('ix_ticket_created_at', 'ticket')
    op.drop_index('ix_ticket_due_at', 'ticket')
    op.drop_index('ix_ticketevent_at', 'ticketevent')
    with op.batch_alter_table('ticketevent') as batch_op:
        batch_op.drop_column('station_key')
