"""Database engine, sessions and migrations (SQLite in WAL mode, PostgreSQL at scale)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import sqlite_engine

MIGRATIONS = Path(__file__).with_name("migrations")

SessionFactory = async_sessionmaker[AsyncSession]
Item = TypeVar("Item")
MIGRATION_LOCK = 0x67726964  # an advisory lock key of our own ("grid")
START_LOCK = MIGRATION_LOCK + 1  # held while a starting process prepares the database
BUSY_SECONDS = 30  # how long a SQLite writer waits for the one before it


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, busy_seconds: float = BUSY_SECONDS, **kwargs: Any) -> AsyncEngine:
    """An async engine; a SQLite one set up by `storage.sqlite_engine` (WAL, one trip to
    aiosqlite's thread per statement, writers taking turns) with a busy timeout."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread: a write transaction holding its lock runs on the event loop
        # (storage.sqlite_engine), the rest on aiosqlite's thread.
        engine = create_async_engine(
            url, connect_args={"timeout": busy_seconds, "check_same_thread": False}, **kwargs
        )
        sqlite_engine.configure(engine, busy_seconds=busy_seconds)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


class GroupCommit(Generic[Item]):
    """Small writes that come at about the same moment, committed in one transaction (a group
    commit) instead of each queueing for SQLite's one writer, or PostgreSQL's fsync, alone.

    ``write(session, items)`` writes a batch. A writer waits for the commit that holds its
    item, so what it does next can count on it; a failed commit fails every writer in it.
    While one batch is being written, the next gathers.
    """

    def __init__(
        self, sessions: SessionFactory,
        write: Callable[[AsyncSession, list[Item]], Awaitable[None]], *, name: str,
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.write = write
        self.name = name
        self._pending: list[tuple[Item, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> None:
        """Write ``item`` with whatever else is waiting; back once it is committed."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, committed))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_pending(), name=self.name)
        await committed

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.sessions() as session:
                    await self.write(session, [item for item, _ in batch])
                    await session.commit()
            except Exception as error:
                for _, committed in batch:
                    if not committed.done():
                        committed.set_exception(error)
            else:
                for _, committed in batch:
                    if not committed.done():
                        committed.set_result(None)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (safe to call at every start, and from
    several processes starting at once: on PostgreSQL they take turns)."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade)


@asynccontextmanager
async def one_start_at_a_time(engine: AsyncEngine) -> AsyncIterator[None]:
    """Processes starting at once on one database (a compose file's workers and scheduler)
    prepare it in turn: on a new database their first inserts of the same stations would
    collide. A PostgreSQL advisory lock, or a file lock beside a SQLite database."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": START_LOCK})
            try:
                yield
            finally:
                # A session lock outlives transactions: give it back before the connection
                # returns to the pool (a broken connection has dropped it already).
                await connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": START_LOCK}
                )
        return
    if url.database in (None, "", ":memory:"):
        yield
        return
    # flock, not filelock: the lock belongs to the open file, so engines of one process (the
    # tests) exclude each other as processes do.
    descriptor = os.open(f"{url.database}.start.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def type_changed(
    context: Any, inspected: Any, metadata: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic's type comparison, except that SQLite ignores VARCHAR lengths, so a
    length-only difference there is no change (and rebuilding tables for it breaks keys)."""
    declared = getattr(metadata_type, "impl", metadata_type)  # AutoString wraps a String
    if (
        context.dialect.name == "sqlite"
        and isinstance(inspected_type, sa.String)
        and isinstance(declared, sa.String)
    ):
        return False
    return None  # compare as Alembic does
