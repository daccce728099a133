"""One leader among processes for a job only one of them may do (the reminder tick).

On PostgreSQL the leader holds a session-level advisory lock on a connection it keeps
open; when the process dies the connection closes and the server releases the lock, so a
standby's next try takes it. On SQLite, whose processes share one machine, an OS file lock
beside the database file plays the same part (the kernel drops it when the process dies).
Any other database (in-memory SQLite) has one process by nature: it always leads.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from filelock import FileLock, Timeout
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lock_key(role: str) -> int:
    """A stable 32-bit advisory lock key per role (the same in every process and release)."""
    return zlib.crc32(f"gridbot:{role}".encode())


class Leadership(Protocol):
    role: str

    async def try_acquire(self) -> bool:
        """Become the leader if nobody is; True when this process leads now."""
        ...

    async def still_held(self) -> bool:
        """Whether this process still leads (a dropped connection ends a PostgreSQL lead)."""
        ...

    async def release(self) -> None: ...


class PostgresLeadership:
    def __init__(self, engine: AsyncEngine, role: str) -> None:
        self.engine = engine
        self.role = role
        self._connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._connection is None:
            self._connection = await self.engine.connect()
        got = await self._connection.scalar(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(self.role)}
        )
        await self._connection.commit()  # the lock is the session's, not the transaction's
        if not got:
            await self._close()
        return bool(got)

    async def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = await self._connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND objid = :key AND granted"
                ),
                {"key": lock_key(self.role)},
            )
            await self._connection.commit()
        except Exception:  # the connection is gone, and the lock with it
            log.exception("leadership of %s: lost the database connection", self.role)
            await self._close()
            return False
        return bool(held)

    async def release(self) -> None:
        if self._connection is None:
            return
        with suppress(Exception):
            await self._connection.execute(
                sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(self.role)}
            )
            await self._connection.commit()
        await self._close()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):
                await connection.close()


class FileLeadership:
    def __init__(self, path: Path, role: str) -> None:
        self.role = role
        self.path = path
        # Not thread-local: acquired in a worker thread, checked and released in the loop's.
        self._lock = FileLock(path, timeout=0, thread_local=False)

    async def try_acquire(self) -> bool:
        try:
            await asyncio.to_thread(self._lock.acquire)
        except Timeout:
            return False
        return True

    async def still_held(self) -> bool:
        return self._lock.is_locked

    async def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()


class SoleLeadership:
    def __init__(self, role: str) -> None:
        self.role = role

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def leadership_for(engine: AsyncEngine, role: str) -> Leadership:
    url = make_url(str(engine.url))
    if url.get_backend_name() == "postgresql":
        return PostgresLeadership(engine, role)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileLeadership(Path(f"{url.database}.{role}.lock"), role)
    return SoleLeadership(role)


async def lead(
    leadership: Leadership,
    *,
    work: Callable[[], AbstractAsyncContextManager[object]],
    stopped: asyncio.Event,
    retry: float = 5.0,
) -> None:
    """Stand by until this process leads, do ``work`` while it does (entered on taking the
    lead, left on losing it), stand by again if the lead is lost; return once ``stopped``."""
    while not stopped.is_set():
        if not await leadership.try_acquire():
            await _wait(stopped, retry)
            continue
        log.info("leading %s", leadership.role)
        try:
            async with work():
                while not stopped.is_set() and await leadership.still_held():
                    await _wait(stopped, retry)
        finally:
            await leadership.release()
        if not stopped.is_set():
            log.warning("lost the lead of %s; standing by", leadership.role)
            await _wait(stopped, retry)


async def _wait(stopped: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), timeout=seconds)
