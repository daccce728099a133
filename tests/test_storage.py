"""Storage on every configured database: migrations, constraints, and the queries' promises."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, select

from bot.outbox import message_records
from storage import repo
from storage.db import (
    SessionFactory,
    create_engine,
    is_sqlite,
    migrate,
    session_factory,
    type_changed,
)
from storage.models import OutboxMessage, ReceivedUpdate, Ticket
from storage.sqlite_engine import GOES_FIRST

from processes import wait_until

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    await migrate(engine)
    await migrate(engine)  # a second start finds nothing to do
    yield session_factory(engine)
    await engine.dispose()


async def a_person(sessions: SessionFactory, telegram_id: int = 7) -> int:
    async with sessions() as session:
        person = await repo.upsert_person(
            session=session,
            telegram_id=telegram_id,
            name="王阿姨",
            username=None,
            language="zh_CN",
            now=NOW,
        )
        await session.commit()
        assert person.id is not None
        return person.id


def a_ticket(reporter_id: int, message_id: int, **fields: object) -> Ticket:
    values: dict[str, object] = {
        "category_key": "sanitation",
        "reporter_id": reporter_id,
        "source_chat_id": -100,
        "source_message_id": message_id,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Ticket(**values)  # type: ignore[arg-type]


async def test_sqlite_runs_in_wal_mode(database_url: str, sessions: SessionFactory) -> None:
    if not is_sqlite(database_url):
        pytest.skip("a SQLite property")
    async with sessions() as session:
        mode = (await session.exec(sa.text("PRAGMA journal_mode"))).one()  # type: ignore[call-overload]
    assert mode[0] == "wal"


async def test_one_message_makes_one_ticket(sessions: SessionFactory) -> None:
    reporter = await a_person(sessions)
    async with sessions() as session:
        await repo.add_ticket(session=session, ticket=a_ticket(reporter, 1))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(IntegrityError):
            await repo.add_ticket(session=session, ticket=a_ticket(reporter, 1))


async def test_times_come_back_as_aware_utc(sessions: SessionFactory) -> None:
    reporter = await a_person(sessions)
    shanghai_morning = datetime.fromisoformat("2026-11-02T17:00:00+08:00")
    async with sessions() as session:
        await repo.add_ticket(
            session=session, ticket=a_ticket(reporter, 2, due_at=shanghai_morning)
        )
        await session.commit()
    async with sessions() as session:
        [ticket] = await repo.all_tickets(session=session)
    assert ticket.due_at == shanghai_morning and ticket.due_at.tzinfo == UTC


async def test_a_person_is_created_once_and_kept_up_to_date(sessions: SessionFactory) -> None:
    first = await a_person(sessions)
    async with sessions() as session:
        again = await repo.upsert_person(
            session=session,
            telegram_id=7,
            name="王秀英",
            username="wxy",
            language=None,
            now=NOW,
        )
        await session.commit()
    assert again.id == first and again.name == "王秀英"


async def test_open_tickets_most_overdue_first_in_pages(sessions: SessionFactory) -> None:
    reporter = await a_person(sessions)
    async with sessions() as session:
        await repo.sync_stations(session=session, stations=[("fenyang", "汾阳路", 1)])
        for n, hours in enumerate([30, 5, 70, 1, 12]):
            await repo.add_ticket(
                session=session,
                ticket=a_ticket(
                    reporter,
                    10 + n,
                    status="assigned",
                    station_key="fenyang",
                    due_at=NOW + timedelta(hours=hours),
                ),
            )
        await repo.add_ticket(
            session=session,
            ticket=a_ticket(reporter, 99, status="closed", station_key="fenyang", due_at=NOW),
        )
        await session.commit()
    async with sessions() as session:
        page, total = await repo.open_tickets_for_station(
            session=session, station_key="fenyang", statuses=["assigned"], offset=0, limit=3
        )
        rest, _ = await repo.open_tickets_for_station(
            session=session, station_key="fenyang", statuses=["assigned"], offset=3, limit=3
        )
    assert total == 5
    hours = [int((t.due_at - NOW).total_seconds() // 3600) for t in page + rest]  # type: ignore[operator]
    assert hours == [1, 5, 12, 30, 70]


async def test_an_update_is_handled_once(sessions: SessionFactory) -> None:
    async with sessions() as session:
        assert await repo.record_update(session=session, update_id=5, payload=dict, now=NOW)
        await session.commit()
    async with sessions() as session:  # received again before it was handled: still due
        assert await repo.record_update(session=session, update_id=5, payload=dict, now=NOW)
        await repo.mark_updates_handled(session=session, handled=[(5, NOW, None)])
        await session.commit()
    async with sessions() as session:
        assert not await repo.record_update(session=session, update_id=5, payload=dict, now=NOW)


async def test_outbox_gives_due_messages_oldest_first_keeping_each_chats_order(
    sessions: SessionFactory,
) -> None:
    """Chat 1's second message waits for its time (a 429, say): its third, due, waits with it;
    its first went before it and is due."""
    messages = [(0, 0), (1, 0), (1, 60), (2, 0), (3, -60), (1, 0), (2, 0)]
    async with sessions() as session:
        for n, (chat_id, delay) in enumerate(messages):
            await repo.enqueue(
                session=session,
                message=OutboxMessage(
                    chat_id=chat_id,
                    kind="message",
                    payload={"text": str(n)},
                    created_at=NOW,
                    not_before=NOW + timedelta(seconds=delay),
                ),
            )
        await session.commit()
    async with sessions() as session:
        due = await repo.due_messages(session=session, now=NOW, limit=10)
        assert [m.payload["text"] for m in due] == ["0", "1", "3", "4", "6"]
        one_each = await repo.due_messages(session=session, now=NOW, limit=10, per_chat=1)
        assert [m.payload["text"] for m in one_each] == ["0", "1", "3", "4"]
        later = await repo.due_messages(session=session, now=NOW + timedelta(minutes=2), limit=10)
        assert [m.payload["text"] for m in later] == ["0", "1", "2", "3", "4", "5", "6"]


async def test_the_migrations_build_what_the_models_describe(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)

    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": type_changed})
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
    await engine.dispose()


# --- SQLite writers in one process take turns (storage.db.WriterTurns) ----------------------


@pytest.fixture
async def sqlite_tally(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine whose writers give up after half a second, with a table to write."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}", busy_seconds=0.5)
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE tally (n INTEGER)"))
    yield engine
    await engine.dispose()


async def tally(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return list(
            (await connection.execute(sa.text("SELECT n FROM tally ORDER BY n"))).scalars()
        )


async def write(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.text("INSERT INTO tally VALUES (:n)"), {"n": n})


async def test_sqlite_writers_wait_for_the_one_writing_and_readers_do_not(
    sqlite_tally: AsyncEngine,
) -> None:
    async with sqlite_tally.connect() as first:
        await first.execute(sa.text("INSERT INTO tally VALUES (1)"))
        waiting = asyncio.create_task(write(sqlite_tally, 2))
        assert await tally(sqlite_tally) == []  # reading goes on meanwhile
        assert not waiting.done()
        await first.commit()
    async with asyncio.timeout(5):
        await waiting
    assert await tally(sqlite_tally) == [1, 2]


async def test_a_sqlite_writer_left_waiting_too_long_is_told_the_database_is_locked(
    sqlite_tally: AsyncEngine,
) -> None:
    """One task holding a write open while it writes elsewhere would wait on itself: it is
    refused after the busy timeout, as SQLite would refuse it, not left hanging."""
    async with sqlite_tally.connect() as first:
        await first.execute(sa.text("INSERT INTO tally VALUES (1)"))
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            await write(sqlite_tally, 2)
        await first.commit()
    await write(sqlite_tally, 3)  # the refused writer gave nothing away it did not have
    assert await tally(sqlite_tally) == [1, 3]


async def test_a_sqlite_writer_marked_to_go_first_goes_before_those_waiting(
    sqlite_tally: AsyncEngine,
) -> None:
    async def write_first(engine: AsyncEngine, n: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text("INSERT INTO tally VALUES (:n)").execution_options(**GOES_FIRST),
                {"n": n},
            )

    async with sqlite_tally.connect() as holding:
        await holding.execute(sa.text("INSERT INTO tally VALUES (1)"))
        turns = (await holding.get_raw_connection()).dbapi_connection.turns
        waiting = []
        for n, start in enumerate([write, write, write_first], start=2):
            waiting.append(asyncio.create_task(start(sqlite_tally, n)))
            await wait_until(lambda: turns.waiting == len(waiting))
        await holding.commit()
    async with asyncio.timeout(5):
        await asyncio.gather(*waiting)
    async with sqlite_tally.connect() as connection:
        order = await connection.execute(sa.text("SELECT n FROM tally ORDER BY rowid"))
        assert list(order.scalars()) == [1, 4, 2, 3]


@pytest.mark.parametrize("ending", ["rollback", "close", "error"])
async def test_a_sqlite_write_that_is_not_committed_gives_the_turn_back(
    sqlite_tally: AsyncEngine, ending: str
) -> None:
    connection = await sqlite_tally.connect()
    await connection.execute(sa.text("INSERT INTO tally VALUES (1)"))
    if ending == "rollback":
        await connection.rollback()
    elif ending == "error":
        with pytest.raises(sa.exc.OperationalError):
            await connection.execute(sa.text("INSERT INTO no_such_table VALUES (1)"))
        await connection.rollback()
    await connection.close()
    async with asyncio.timeout(5):
        await write(sqlite_tally, 2)
    assert await tally(sqlite_tally) == [2]


async def test_sqlite_statements_bring_back_rows_counts_and_ids_as_the_driver_does(
    sqlite_tally: AsyncEngine,
) -> None:
    """Each statement is one trip to aiosqlite's thread, or, after a transaction's first
    write, none (storage.sqlite_engine): what SQLAlchemy reads from the cursor afterwards must
    still be there either way."""
    async with sqlite_tally.begin() as connection:
        inserted = await connection.execute(sa.text("INSERT INTO tally VALUES (5)"))
        assert inserted.lastrowid == 1 and inserted.rowcount == 1
        many = await connection.execute(
            sa.text("INSERT INTO tally VALUES (:n)"), [{"n": 6}, {"n": 7}, {"n": 8}]
        )
        assert many.rowcount == 3
        returned = await connection.execute(
            sa.text("INSERT INTO tally VALUES (9), (10) RETURNING n * 2")
        )
        assert sorted(returned.scalars()) == [18, 20]
        changed = await connection.execute(sa.text("UPDATE tally SET n = n + 100 WHERE n > 7"))
        assert changed.rowcount == 3
        with pytest.raises(sa.exc.OperationalError, match="no such column"):
            await connection.execute(sa.text("SELECT missing_column FROM tally"))
        streamed = await connection.stream(sa.text("SELECT n FROM tally ORDER BY n"))
        assert [n async for n in streamed.scalars()] == [5, 6, 7, 108, 109, 110]
    assert await tally(sqlite_tally) == [5, 6, 7, 108, 109, 110]


@pytest.mark.parametrize("opened_by", ["first write", "savepoint"])
async def test_a_sqlite_writer_meeting_another_process_s_lock_waits_off_the_event_loop(
    sqlite_tally: AsyncEngine, tmp_path: Path, opened_by: str
) -> None:
    """Another process (here a plain sqlite3 connection) holds the write lock and lets go
    from the event loop a moment later: the writer waiting for it in SQLite's busy handler
    must wait on aiosqlite's thread, or the loop could never let go and it would time out."""
    other = sqlite3.connect(tmp_path / "turns.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO tally VALUES (1)")
    asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
    try:
        async with sqlite_tally.begin() as connection:
            if opened_by == "savepoint":
                async with connection.begin_nested():
                    await connection.execute(sa.text("INSERT INTO tally VALUES (2)"))
            else:
                await connection.execute(sa.text("INSERT INTO tally VALUES (2)"))
            await connection.execute(sa.text("INSERT INTO tally VALUES (3)"))
    finally:
        other.close()
    assert await tally(sqlite_tally) == [1, 2, 3]


async def test_many_sqlite_connections_at_once_each_get_their_own_answers(
    sqlite_tally: AsyncEngine,
) -> None:
    await asyncio.gather(*(write(sqlite_tally, n) for n in range(20)))

    async def count_below(limit: int) -> int:
        async with sqlite_tally.connect() as connection:
            result = await connection.execute(
                sa.text("SELECT count(*) FROM tally WHERE n < :limit"), {"limit": limit}
            )
            return int(result.scalar_one())

    assert await asyncio.gather(*(count_below(n) for n in range(20))) == list(range(20))


# --- small writes committed together (storage.db.GroupCommit, the outbox's records) ----------


async def pending_messages(sessions: SessionFactory, count: int) -> list[int]:
    async with sessions() as session:
        messages = [
            OutboxMessage(
                chat_id=n, kind="message", payload={"text": str(n)}, created_at=NOW,
                not_before=NOW,
            )
            for n in range(count)
        ]
        session.add_all(messages)
        await session.commit()
        return [m.id or 0 for m in messages]


async def test_what_became_of_messages_sent_at_once_is_recorded_for_each(
    sessions: SessionFactory,
) -> None:
    records = message_records(sessions)
    sent, deferred, failed = await pending_messages(sessions, 3)
    later = NOW + timedelta(seconds=30)
    await asyncio.gather(
        records.add((sent, dict(status="sent", attempts=1, sent_at=NOW, sent_message_id=77))),
        records.add((deferred, dict(attempts=1, not_before=later, last_error="timeout"))),
        records.add((failed, dict(status="failed", attempts=1, last_error="chat not found"))),
    )
    async with sessions() as session:
        rows = {m.id: m for m in await repo.outbox_of(session=session)}
    assert (rows[sent].status, rows[sent].sent_message_id, rows[sent].sent_at) == (
        "sent", 77, NOW
    )
    assert (rows[deferred].status, rows[deferred].not_before) == ("pending", later)
    assert (rows[failed].status, rows[failed].last_error) == ("failed", "chat not found")


async def test_a_record_the_database_refuses_fails_its_writers_and_the_next_is_written(
    sessions: SessionFactory,
) -> None:
    records = message_records(sessions)
    first, second, third = await pending_messages(sessions, 3)
    results = await asyncio.gather(
        records.add((first, dict(status=None))),  # NOT NULL: the database refuses it
        records.add((second, dict(status="sent"))),
        return_exceptions=True,
    )
    assert all(isinstance(result, IntegrityError) for result in results)
    await records.add((third, dict(status="sent")))
    async with sessions() as session:
        statuses = {m.id: m.status for m in await repo.outbox_of(session=session)}
    assert statuses == {first: "pending", second: "pending", third: "sent"}


async def test_updates_handled_at_once_are_marked_each_with_its_error(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        for update_id in (1, 2, 3):
            assert await repo.record_update(
                session=session, update_id=update_id, payload=dict, now=NOW
            )
        await session.commit()
    async with sessions() as session:
        await repo.mark_updates_handled(
            session=session, handled=[(1, NOW, None), (3, NOW, "KeyError: " + "x" * 600)]
        )
        await session.commit()
    async with sessions() as session:
        assert [u.update_id for u in await repo.unhandled_updates(session=session)] == [2]
        errors = {
            u.update_id: u.error
            for u in (await session.exec(select(ReceivedUpdate))).all()
        }
    assert errors[1] is None and errors[3] is not None and len(errors[3]) == 512
