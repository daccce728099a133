"""dedup: cells, report counts, followers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 03:57:57.847715
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ticket_follower',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('via_ticket_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.ForeignKeyConstraint(['via_ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'via_ticket_id', name='uq_follower')
    )
    op.create_index('ix_ticket_follower_ticket_id', 'ticket_follower', ['ticket_id'])
    # Plain ADD COLUMN, not a batch rebuild: SQLite's rebuild of `ticket` breaks the foreign
    # keys of photos and events pointing at it.
    op.add_column('ticket', sa.Column('reports', sa.Integer(), nullable=False,
                                      server_default='1'))
    op.add_column('ticket', sa.Column('cell', sa.BigInteger(), nullable=True))
    op.create_index('ix_ticket_cell_status', 'ticket', ['cell', 'status', 'closed_at'])


def downgrade() -> None:
    op.drop_index('ix_ticket_cell_status', 'ticket')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('cell')
        batch_op.drop_column('reports')
    op.drop_index('ix_ticket_follower_ticket_id', 'ticket_follower')
    op.drop_table('ticket_follower')
