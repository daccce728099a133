"""SQLite under asyncio: what an engine on a SQLite file needs to keep up with a busy bot.

- **Pragmas** on every connection: WAL, foreign keys.
- **One trip per statement.** aiosqlite runs each connection's calls on a thread of its own,
  and SQLAlchemy's adapter makes one call per cursor operation (open, execute, fetch, close):
  each a hand-over to that thread and back through the event loop, so under load a statement
  waited for the loop four times. Here a statement is one call, and SQLAlchemy reads its rows,
  description, row count and last row id from what that call brought back.
- **No trip at all inside a write transaction** once its first write has taken SQLite's
  write lock: nothing can make such a statement wait any more (in WAL mode readers block no
  one), and a write transaction is short (the services read first, then write). It runs on
  the event loop's thread instead of holding every other writer up while its answer waits
  for the loop. Its first write, which may meet another process's lock in the busy handler,
  and its COMMIT, which may checkpoint the WAL to disk, still go to the thread.
- **Writers take turns** (`WriterTurns`).

SQLAlchemy makes its aiosqlite connections of one fixed class, so each new connection is
given a subclass of it (same layout) that does the above. It uses what SQLAlchemy's own
adapter uses of aiosqlite: the connection's worker queue (`_execute`) and its sqlite3
connection (`_conn`); the tests of `tests/test_storage.py` run every statement through it.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import EMPTY_DICT, await_only

__all__ = ["GOES_FIRST", "WriterTurns", "configure"]

_FIRST = "gridbot_goes_first"
# Execution options for a transaction's first write whose writer goes before the others
# waiting for their turn (`WriterTurns`).
GOES_FIRST = {_FIRST: True}


def configure(engine: AsyncEngine, *, busy_seconds: float) -> None:
    """Set up a new SQLite engine; ``busy_seconds``: how long a writer waits for its turn."""
    turns = WriterTurns(busy_seconds)
    connection_class = type(
        "TurnTakingConnection", (_OneTripConnection,), {"__slots__": (), "turns": turns}
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
            dbapi_connection.__class__ = connection_class

    sync = engine.sync_engine
    event.listen(sync, "connect", on_connect)
    turns.install(engine)


_HANDED_OVER = object()  # the turn is on its way to the writer just woken


class WriterTurns:
    """SQLite lets one connection write at a time. This process's writers wait for their
    turn here, in order, woken the moment the writer before them has committed, instead of in
    SQLite's busy handler, which sleeps in steps of up to 100 ms and so wakes long after the
    database is free: under a burst of reports most of the bot's time went to those sleeps.
    (Processes sharing one SQLite file still meet each other in the busy handler.)

    The turn is taken where Python's sqlite3 opens its transaction, before the first INSERT,
    UPDATE, DELETE or REPLACE, and given back once the transaction has ended: after its
    COMMIT or ROLLBACK has run, so the next writer never finds the database still locked.
    Writers wait in order, except one whose first write is marked `GOES_FIRST`: the
    outbox's records, which every chat's next message waits for.
    """

    _WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._holder: object | None = None  # the DBAPI connection whose turn it is
        self._locked: object | None = None  # the holder, once a write has taken SQLite's lock
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap
        self._order = itertools.count()

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        # A transaction left open: given back when its connection goes back to the pool, or
        # is thrown away (a broken connection).
        for name in ("reset", "checkin", "invalidate", "close"):
            event.listen(sync.pool, name, self._returned)

    @property
    def waiting(self) -> int:
        """How many writers wait for their turn."""
        return len(self._waiting)

    def has_lock(self, dbapi_connection: object) -> bool:
        """Whether ``dbapi_connection`` has its turn and has written in it: SQLite's write
        lock is its until the transaction ends, so nothing it runs can wait."""
        return self._locked is dbapi_connection

    def ran(self, dbapi_connection: object, statement: str) -> None:
        """``statement`` has run on ``dbapi_connection``."""
        if self._holder is dbapi_connection and self._WRITES.match(statement):
            self._locked = dbapi_connection

    def ended(self, dbapi_connection: object) -> None:
        """The connection's transaction is over (committed or rolled back)."""
        if self._holder is not None and self._holder is dbapi_connection:
            self._locked = None
            self._pass_on()

    def _before_execute(
        self, connection: Connection, _cursor: Any, statement: str, _parameters: Any,
        context: Any, _executemany: bool,
    ) -> None:  # fmt: skip
        holder = connection.connection.dbapi_connection
        if self._holder is not holder and self._WRITES.match(statement):
            first = context is not None and bool(context.execution_options.get(_FIRST))
            await_only(self._take(holder, first=first))

    async def _take(self, holder: object, *, first: bool) -> None:
        if self._holder is None and not self._waiting:
            self._holder = holder
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (0 if first else 1, next(self._order), woken)
        heapq.heappush(self._waiting, entry)
        try:
            async with asyncio.timeout(self.timeout):
                await woken
        except BaseException as error:
            if woken.done() and not woken.cancelled():
                self._pass_on()  # handed the turn just as it gave up: on to the next
            else:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
            if isinstance(error, TimeoutError):
                raise sa.exc.OperationalError(
                    "BEGIN", None, sqlite3.OperationalError("database is locked")
                ) from None
            raise
        self._holder = holder

    def _pass_on(self) -> None:
        """The turn to the first writer still waiting, or to nobody."""
        while self._waiting:
            _, _, woken = heapq.heappop(self._waiting)
            if not woken.done():
                woken.set_result(None)
                self._holder = _HANDED_OVER
                return
        self._holder = None

    def _returned(self, dbapi_connection: object, *_args: Any) -> None:
        self.ended(dbapi_connection)


# --- one trip per statement -------------------------------------------------------------------


class _Finished:
    """A statement's cursor after the trip: its attributes, already closed."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(
        self, description: Any = None, rowcount: int = -1, lastrowid: int | None = None
    ) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    def close(self) -> None:
        """Closed on the thread already."""


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Finished, list[Any] | None]:
    """On aiosqlite's thread: the statement from cursor to close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters if parameters is not None else ())
        rows = cursor.fetchall() if cursor.description else None
        return _Finished(cursor.description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # nothing left to close on the thread

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No cursor opened here (the base class makes a trip for one): each statement opens
        # and closes its own on the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Finished()  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: str, parameters: Any, *, many: bool) -> None:
        aiosqlite_connection: Any = self._connection
        sqlite_connection: sqlite3.Connection = aiosqlite_connection._conn
        adapted: Any = self._adapt_connection
        turns: WriterTurns = adapted.turns
        async with adapted._execute_mutex:
            if sqlite_connection.in_transaction and turns.has_lock(adapted):
                # Inside a write transaction that has its lock: nothing can make it wait,
                # and every other writer waits for it, so no trip to the thread and back.
                finished, rows = _run(sqlite_connection, operation, parameters, many)
            else:
                finished, rows = await aiosqlite_connection._execute(
                    _run, sqlite_connection, operation, parameters, many
                )
                turns.ran(adapted, operation)
        self._cursor = finished  # type: ignore[assignment]
        self._rows = collections.deque(rows or ())


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """An aiosqlite connection whose statements make one trip, and which tells its engine's
    `WriterTurns` when a transaction has ended (`configure` makes a subclass per engine)."""

    __slots__ = ()
    _cursor_cls = _OneTripCursor
    turns: WriterTurns

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.turns.ended(self)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.turns.ended(self)
