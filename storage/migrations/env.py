"""Alembic environment: runs on the connection handed over by storage.db.migrate (or a URL)."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.db import type_changed

config = context.config
target_metadata = SQLModel.metadata


def run_on(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=type_changed,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    # `alembic -x url=sqlite:///dev.db revision --autogenerate` from a developer's shell.
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///alembic-dev.db")
    with create_engine(url).connect() as sync_connection:
        run_on(sync_connection)
        sync_connection.commit()
