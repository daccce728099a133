"""One leader at a time (bot.leadership), even when a PostgreSQL leader loses its lock without
knowing: its connection is cut while the process lives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.leadership import PostgresLeadership, lead
from storage.db import create_engine

from processes import wait_until

RETRY = 0.5  # how often each process checks its lead, or tries for it
FINISHING = 0.2  # how long the old leader takes to finish the work in hand once it knows


class Watched(PostgresLeadership):
    """A leadership whose checks can be waited for, and whose connection can be cut."""

    def __init__(self, engine: AsyncEngine, role: str) -> None:
        super().__init__(engine, role)
        self.checked = asyncio.Event()
        self.pid: int | None = None

    async def try_acquire(self) -> bool:
        got = await super().try_acquire()
        if got and self._connection is not None:
            self.pid = await self._connection.scalar(sa.text("SELECT pg_backend_pid()"))
            await self._connection.commit()
        return got

    async def still_held(self) -> bool:
        held = await super().still_held()
        if held:
            self.checked.set()
        return held


async def test_a_standby_works_only_once_a_leader_cut_off_from_the_database_has_stopped(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a lock that can be lost unnoticed is PostgreSQL's")
    engine = create_engine(database_url)
    stopped = asyncio.Event()
    working: dict[str, tuple[float, float | None]] = {}  # who: (began, ended)
    loop = asyncio.get_running_loop()

    def work(who: str) -> Callable[[], AbstractAsyncContextManager[None]]:
        @asynccontextmanager
        async def working_as() -> AsyncIterator[None]:
            working[who] = (loop.time(), None)
            try:
                yield
            finally:
                if not stopped.is_set():
                    await asyncio.sleep(FINISHING)  # a sending round in hand
                working[who] = (working[who][0], loop.time())

        return working_as

    old, new = Watched(engine, "test-role"), Watched(engine, "test-role")
    tasks = [
        asyncio.create_task(lead(old, work=work("old"), stopped=stopped, retry=RETRY)),
    ]
    try:
        await wait_until(lambda: "old" in working, within=10)
        tasks.append(
            asyncio.create_task(lead(new, work=work("new"), stopped=stopped, retry=RETRY))
        )
        await asyncio.sleep(RETRY * 1.5)  # the new one has tried and stood by
        assert "new" not in working
        old.checked.clear()
        await asyncio.wait_for(old.checked.wait(), timeout=10)
        async with engine.connect() as admin:  # just after a check: the longest time unnoticed
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": old.pid})
        await wait_until(lambda: "new" in working, within=10)
        old_began, old_ended = working["old"]
        new_began, _ = working["new"]
        assert old_ended is not None and old_ended <= new_began
    finally:
        stopped.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        await engine.dispose()
