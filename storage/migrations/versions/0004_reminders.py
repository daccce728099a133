"""reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 04:28:56.731808
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0003): no table rebuild on SQLite.
    op.add_column('ticket', sa.Column('next_reminder_at', storage.models.UTCDateTime(),
                                      nullable=True))
    op.add_column('ticket', sa.Column('reminders_sent', sa.Integer(), server_default='0',
                                      nullable=False))
    op.add_column('ticket', sa.Column('escalated_at', storage.models.UTCDateTime(),
                                      nullable=True))
    op.add_column('ticket', sa.Column('expected_by', storage.models.UTCDateTime(),
                                      nullable=True))
    op.create_index('ix_ticket_next_reminder_at', 'ticket', ['next_reminder_at'])


def downgrade() -> None:
    op.drop_index('ix_ticket_next_reminder_at', 'ticket')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('expected_by')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('reminders_sent')
        batch_op.drop_column('next_reminder_at')
