"""One leader among processes for a job only one of them may do (the reminder tick).

On PostgreSQL the leader holds a session-level advisory lock on a connection it keeps
open; when the process dies the connection closes and the server releases the lock, so a
standby's next try takes it. That connection can also drop while the leader lives (a network
blip, a server restart): the leader finds out only at its next check, so a standby that takes
the lock over waits until the old leader must have stopped before it works (`lead`).
On SQLite, whose processes share one machine, an OS file lock beside the database file plays
the same part (the kernel drops it when the process dies).
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
    # Whether the lead can be lost while the leader lives, without its knowing until it
    # checks (`still_held`).
    lost_unnoticed: bool

    async def try_acquire(self) -> bool:
        """Become the leader if nobody is; True when this process leads now."""
        ...

    async def still_held(self) -> bool:
        """Whether this process still leads (a dropped connection ends a PostgreSQL lead)."""
        ...

    async def release(self) -> None: ...


class PostgresLeadership:
    lost_unnoticed = True  # its connection can drop while the process lives

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
    lost_unnoticed = False  # the kernel holds the lock for as long as the process lives

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
    lost_unnoticed = False

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
    lead, left on losing it), stand by again if the lead is lost; return once ``stopped``.

    Every process checks its lead, and tries for it, every ``retry`` seconds; a check that
    has not answered within ``retry`` counts as a lost lead. A lead taken over from another
    process that may not know yet that it lost it (`lost_unnoticed`) is worked only after
    three times that: one period until the old leader's next check, one for that check to
    answer or time out, one for the old leader to finish the work in hand (a sending round),
    so the two never work at once."""
    stood_by = False  # someone else led meanwhile
    while not stopped.is_set():
        if not await leadership.try_acquire():
            stood_by = True
            await _wait(stopped, retry)
            continue
        if stood_by and leadership.lost_unnoticed:
            log.info("taking over the lead of %s in %gs", leadership.role, 3 * retry)
            await _wait(stopped, 3 * retry)
            if stopped.is_set() or not await _still_held(leadership, retry):
                await _release(leadership, retry)
                continue
        log.info("leading %s", leadership.role)
        try:
            async with work():
                while not stopped.is_set() and await _still_held(leadership, retry):
                    await _wait(stopped, retry)
        finally:
            await _release(leadership, retry)
        if not stopped.is_set():
            log.warning("lost the lead of %s; standing by", leadership.role)
            stood_by = True
            await _wait(stopped, retry)


async def _still_held(leadership: Leadership, within: float) -> bool:
    """A check that does not answer in time (a connection cut off without a word) is a lost
    lead: the standby counts on it (`lead`)."""
    try:
        return await asyncio.wait_for(leadership.still_held(), timeout=within)
    except TimeoutError:
        log.warning("leadership of %s: no answer within %gs", leadership.role, within)
        return False


async def _release(leadership: Leadership, within: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(leadership.release(), timeout=within)


async def _wait(stopped: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), timeout=seconds)
