"""inbox claims: who is handling a received update, and since when

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0003): no table rebuild on SQLite. Rows from before have no
    # claim, so the next start replays them as it always did.
    op.add_column('received_update', sa.Column(
        'claimed_at', storage.models.UTCDateTime(), nullable=True))
    op.add_column('received_update', sa.Column(
        'claimed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
    # Workers look for unhandled updates every so often: a partial index keeps that to the
    # few rows still open, however long the inbox grows.
    op.create_index(
        'ix_received_update_unhandled', 'received_update', ['update_id'],
        sqlite_where=sa.text('handled_at IS NULL'),
        postgresql_where=sa.text('handled_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_received_update_unhandled', 'received_update')
    with op.batch_alter_table('received_update') as batch:
        batch.drop_column('claimed_by')
        batch.drop_column('claimed_at')
