"""people and invitations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 06:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0003): no table rebuild on SQLite.
    op.add_column('person', sa.Column('building', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
    op.add_column('person', sa.Column('language_chosen', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    op.add_column('person', sa.Column('joined_at', storage.models.UTCDateTime(),
                                      nullable=True))
    op.create_table('invitation',
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('station_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('building', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('used_by', sa.Integer(), nullable=True),
    sa.Column('used_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['station_key'], ['station.key'], ),
    sa.ForeignKeyConstraint(['used_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('token')
    )


def downgrade() -> None:
    op.drop_table('invitation')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('joined_at')
        batch_op.drop_column('language_chosen')
        batch_op.drop_column('building')
