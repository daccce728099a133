"""One reminder tick with 100k and 1M open tickets, 1k due: it must cost O(due), not O(open).

Each database holds `--open` working tickets spread over the sample district's stations, with
their next reminder spread over the coming two days (a tenth are resolved, waiting for the
reporter, with no reminder at all), and `--due` of them with their reminder in the past. The
schema is the real one (Alembic), so are the indexes. A run is one `ReminderTicker.tick()` as
the scheduler calls it, on a fixed clock (11:00 in Shanghai, outside the quiet hours); between
runs, untimed, a fresh set of `--due` tickets is made due. Also shown: the plan of the claiming
UPDATE (it must search the `next_reminder_at` index) and one claim of a batch alone. A first,
untimed tick warms the caches as a running bot's earlier ticks would. All sizes are filled
first, then take turns ticking, so a machine busy with something else slows them alike.

    .venv/bin/python benchmarks/bench_tick.py [--open 100000 1000000] [--due 1000] [--runs 5]
        [--database-url postgresql+asyncpg://user:pass@host/postgres]

Prints JSON lines: {"bench": "tick", "metric": ..., "value": ..., "unit": ..., ...}; the fill's
progress goes to stderr. Without --database-url each size gets a SQLite file (WAL) in a
temporary directory; with a PostgreSQL URL each size gets a throwaway database on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchkit
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.dedup import cell_of
from bot.deployment import Deployment, load_deployment
from bot.i18n import Translator
from bot.notify import Notifier
from bot.scheduler import BATCH as TICK_BATCH
from bot.scheduler import LEASE, ReminderTicker
from storage import repo
from storage.db import create_engine, migrate, session_factory
from storage.models import Person, Ticket

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: outside the quiet hours
INSERT_BATCH = 10_000
CAPTAINS = 500
REMINDED = ("assigned", "claimed", "reopened")  # statuses with a next reminder
STATUSES = (*REMINDED, "resolved")
STATUS_WEIGHTS = (50, 35, 5, 10)
SOUTH, NORTH, WEST, EAST = 36.14, 36.19, 120.39, 120.45
WORDS = ["下水道冒水", "路灯不亮", "垃圾堆积", "井盖松动", "旱厕堵了", "路面塌陷", "楼道灯坏了"]
CLAIM_SQL = re.compile(r"^\s*UPDATE ticket SET next_reminder_at", re.IGNORECASE)


def emit(metric: str, value: object, unit: str, **extra: object) -> None:
    benchkit.emit("tick", metric, value, unit, **extra)


# --- filling --------------------------------------------------------------------------------


def people(deployment: Deployment) -> list[dict[str, Any]]:
    """Captains who report (ids 1..CAPTAINS) and each station's chief."""
    rows: list[dict[str, Any]] = [
        {"telegram_id": 300_000_000 + n, "name": f"网格长{n}", "language": "zh_CN",
         "role": "captain", "private_chat_started": False, "created_at": NOW - timedelta(days=90)}
        for n in range(CAPTAINS)
    ]
    rows += [
        {"telegram_id": s.chief, "name": f"{s.name[:3]}站长", "language": "zh_CN",
         "role": "chief", "station_key": s.key, "private_chat_started": True,
         "created_at": NOW - timedelta(days=90)}
        for s in deployment.stations
    ]
    return rows


def ticket_rows(
    deployment: Deployment, count: int, due: int, rng: random.Random
) -> Any:  # an iterator of batches (lists of row dicts)
    stations = [s.key for s in deployment.stations]
    categories = [(c.key, c.sla) for c in deployment.categories]
    chats = deployment.intake_chats
    due_at = set(rng.sample(range(count), due))
    batch: list[dict[str, Any]] = []
    for n in range(count):
        status = "claimed" if n in due_at else rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        category, sla = rng.choice(categories)
        created = NOW - timedelta(seconds=rng.uniform(600, 30 * 86_400))
        deadline = created + sla
        overdue = deadline < NOW
        if status == "resolved":
            next_at = None
        elif n in due_at:
            next_at = NOW - timedelta(seconds=rng.uniform(1, 7_200))
        else:
            next_at = NOW + timedelta(seconds=rng.uniform(60, 2 * 86_400))
        lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
        batch.append({
            "status": status, "category_key": category, "station_key": rng.choice(stations),
            "reporter_id": rng.randint(1, CAPTAINS), "description": rng.choice(WORDS),
            "address": f"汾阳路{rng.randint(1, 400)}号", "lat": lat, "lon": lon,
            "cell": cell_of(lat, lon), "location_source": "gazetteer", "location_confidence": 1.0,
            "source_chat_id": chats[n % len(chats)], "source_message_id": n + 1,
            "language": "zh_CN", "created_at": created, "updated_at": created,
            "due_at": deadline, "claimed_at": created if status == "claimed" else None,
            "resolved_at": NOW - timedelta(hours=1) if status == "resolved" else None,
            "next_reminder_at": next_at, "reminders_sent": rng.randint(0, 3),
            # what is past its deadline was escalated when it passed
            "escalated_at": deadline if overdue else None,
        })
        if len(batch) == INSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def fill(engine: AsyncEngine, deployment: Deployment, count: int, due: int) -> None:
    """Stations (as the bot syncs them), people, then `count` tickets in one transaction."""
    sessions = session_factory(engine)
    async with sessions() as session:
        await repo.sync_stations(
            session=session, stations=[(s.key, s.name, s.chief) for s in deployment.stations]
        )
        await session.commit()
    rng = random.Random(count)
    with benchkit.progress(f"filling {count:,} tickets") as bar:
        task = bar.add_task("fill", total=count)
        async with engine.begin() as connection:
            await connection.execute(sa.insert(Person), people(deployment))
            for batch in ticket_rows(deployment, count, due, rng):
                await connection.execute(sa.insert(Ticket), batch)
                bar.advance(task, len(batch))
    if engine.dialect.name == "postgresql":  # autovacuum would have, on a live server
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE"))


async def make_due(engine: AsyncEngine, ids: list[int], rng: random.Random) -> None:
    """Put these tickets' next reminder in the past (as time passing would)."""
    update = (
        sa.update(Ticket)
        .where(col(Ticket.id) == sa.bindparam("due_id"))
        .values(next_reminder_at=sa.bindparam("due_time"))
    )
    rows = [
        {"due_id": i, "due_time": NOW - timedelta(seconds=rng.uniform(1, 7_200))} for i in ids
    ]
    async with engine.begin() as connection:
        await connection.execute(update, rows)


async def count_due(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        due = col(Ticket.next_reminder_at) <= NOW
        result = await connection.execute(sa.select(sa.func.count()).where(due))
        return int(result.scalar_one())


# --- the claim on its own, and its plan ------------------------------------------------------


async def claim_once(engine: AsyncEngine, *, capture: bool = False) -> tuple[float, Any]:
    """One batch claimed as the tick claims it, then rolled back; with `capture`, also the
    UPDATE statement and parameters the database received."""
    captured: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if CLAIM_SQL.match(statement) and not captured:
            captured.append((statement, parameters))

    if capture:
        sa.event.listen(engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with session_factory(engine)() as session:
            started = time.perf_counter()
            await repo.claim_due_reminders(
                session=session, now=NOW, lease_until=NOW + LEASE, limit=TICK_BATCH
            )
            seconds = time.perf_counter() - started
            await session.rollback()
    finally:
        if capture:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", listen)
    return seconds, captured[0] if captured else None


async def claim_plan(
    engine: AsyncEngine, statement: str, parameters: Any
) -> tuple[bool, list[str]]:
    """The database's plan for the claiming UPDATE, and whether it reaches the tickets through
    an index only (no full scan of the ticket table)."""
    sqlite = engine.dialect.name == "sqlite"
    explain = ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement
    async with engine.connect() as connection:
        rows = (await connection.exec_driver_sql(explain, tuple(parameters))).all()
        await connection.rollback()
    if sqlite:
        lines = [str(row[-1]) for row in rows]
        scans = [line for line in lines if re.match(r"SCAN ticket\b(?! USING)", line)]
        indexed = any("ix_ticket_next_reminder_at" in line for line in lines)
    else:
        lines = [str(row[0]) for row in rows]
        scans = [line for line in lines if "Seq Scan on ticket" in line]
        indexed = any("ix_ticket_next_reminder_at" in line for line in lines)
    return indexed and not scans, lines


# --- the sizes -----------------------------------------------------------------------------


@dataclass
class Size:
    """One filled database and its ticker, and the figures of its timed ticks."""

    count: int
    engine: AsyncEngine
    ticker: ReminderTicker
    fresh: list[int]  # tickets to make due, `due` per run
    rng: random.Random
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)


async def prepare(
    engine: AsyncEngine, deployment: Deployment, count: int, due: int, runs: int
) -> Size:
    """Fill one database, show the claim's plan and cost, and build its ticker."""
    await migrate(engine)
    started = time.perf_counter()
    await fill(engine, deployment, count, due)
    emit("fill_seconds", time.perf_counter() - started, "s", open=count)

    async with engine.connect() as connection:
        reminded = (await connection.execute(
            sa.select(col(Ticket.id)).where(col(Ticket.status).in_(REMINDED))
            .where(col(Ticket.next_reminder_at) > NOW)
        )).scalars().all()
    rng = random.Random(count + 1)
    fresh = rng.sample([i for i in reminded if i is not None], due * runs)

    _, captured = await claim_once(engine, capture=True)  # warms the statement cache too
    uses_index, plan = await claim_plan(engine, *captured)
    emit("plan_uses_index", uses_index, "bool", open=count, plan=plan)
    claim_seconds, _ = await claim_once(engine)
    emit("claim_batch_ms", claim_seconds * 1000, "ms", open=count, batch=TICK_BATCH)

    translator = Translator()
    clock = lambda: NOW  # noqa: E731 - the fixed clock
    ticker = ReminderTicker(
        sessions=session_factory(engine), deployment=deployment, clock=clock,
        notifier=Notifier(
            translator=translator, deployment=deployment, clock=clock,
            group_locale=translator.normalise_locale(deployment.language),
        ),
    )
    return Size(count=count, engine=engine, ticker=ticker, fresh=fresh, rng=rng)


async def tick(size: Size, run: int, due: int) -> None:
    """Run 0 acts on the set the fill made due and is not counted: it warms the caches, as
    the ticks before it would have on a running bot. Later runs first make a fresh set due."""
    if run:
        await make_due(size.engine, size.fresh[(run - 1) * due : run * due], size.rng)
    if (waiting := await count_due(size.engine)) != due:
        raise SystemExit(f"{waiting} tickets due before run {run}, expected {due}")
    cpu_started, started = time.process_time(), time.perf_counter()
    written = await size.ticker.tick()
    if run:
        size.wall.append(time.perf_counter() - started)
        size.cpu.append(time.process_time() - cpu_started)
        size.written.append(written)
    if (left := await count_due(size.engine)) != 0:
        raise SystemExit(f"{left} tickets still due after run {run}")


def report(size: Size, due: int) -> None:
    extra = {"open": size.count, "due": due}
    wall = statistics.median(size.wall)
    emit("tick_seconds", wall, "s", **extra, runs=[round(t, 3) for t in size.wall])
    # CPU well below the wall time means waiting: for the disk, or for a busy machine.
    emit("tick_cpu_seconds", statistics.median(size.cpu), "s", **extra,
         runs=[round(t, 3) for t in size.cpu])
    emit("reminders_written", statistics.median(size.written), "messages", **extra,
         runs=size.written)
    emit("per_due_ms", wall / due * 1000, "ms", **extra)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="open tickets in each database")
    parser.add_argument("--due", type=int, default=1_000, help="tickets due at each tick")
    parser.add_argument("--runs", type=int, default=5, help="timed ticks per size (median)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server to create scratch databases on "
                             "(default: SQLite files in a temporary directory)")
    args = parser.parse_args()
    deployment = load_deployment(SAMPLE)
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-tick-") as tmp:
        async with AsyncExitStack() as stack:
            sizes = []
            for count in args.open:
                url = await stack.enter_async_context(
                    benchkit.scratch_database(args.database_url, Path(tmp), f"tick{count}")
                )
                engine = create_engine(url)
                stack.push_async_callback(engine.dispose)
                sizes.append(await prepare(engine, deployment, count, args.due, args.runs))
            # The sizes take turns, so a machine busy with something else slows them alike.
            for run in range(args.runs + 1):
                for size in sizes:
                    await tick(size, run, args.due)
            for size in sizes:
                report(size, args.due)
    if len(sizes) >= 2:
        small = min(sizes, key=lambda s: s.count)
        large = max(sizes, key=lambda s: s.count)
        ratio = {"large": large.count, "small": small.count, "due": args.due}
        emit("tick_ratio", statistics.median(large.wall) / statistics.median(small.wall), "x",
             **ratio)
        emit("tick_cpu_ratio", statistics.median(large.cpu) / statistics.median(small.cpu), "x",
             **ratio)


if __name__ == "__main__":
    asyncio.run(main())
