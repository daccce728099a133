"""Dedup check latency with 10k and 1M stored tickets: it must cost O(nearby), not O(all).

A district keeps a few thousand open tickets however long it has run; what grows is the
history of closed ones. So both databases hold the same open tickets (with photos) spread
over the sample district, and differ in how many old closed tickets lie among them.
Each check is what the bot does for a new report: the cells around it, the open or recently
closed tickets there (`repo.nearby_tickets`), their photos' hashes, and `best_match`.

    .venv/bin/python benchmarks/bench_dedup.py [--checks 400] [--sizes 10000 1000000]

Prints JSON lines: {"bench": "dedup", "metric": ..., "value": ..., "unit": ..., ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.dedup import Sighting, best_match, cell_of, cells_around
from storage import repo
from storage.db import create_engine, migrate, session_factory

SOUTH, NORTH, WEST, EAST = 36.14, 36.19, 120.39, 120.45
OPEN_TICKETS = 3_000
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WORDS = ["下水道冒水", "路灯不亮", "垃圾堆积", "井盖松动", "旱厕堵了", "路面塌陷", "楼道灯坏了"]


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"bench": "dedup", "metric": metric, "value": round(value, 3),
                      "unit": unit, **extra}, ensure_ascii=False), flush=True)


def fill(path: Path, total: int, rng: random.Random) -> None:
    """Open tickets with photos, then old closed ones, written straight through sqlite3."""
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO person (id, telegram_id, name, language, role, private_chat_started, "
        "created_at) VALUES (1, 1, 'bench', 'zh_CN', 'captain', 0, ?)", (str(NOW)[:19],)
    )
    old = (NOW - timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S")
    recent = (NOW - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")

    def rows(count: int, status: str, when: str):  # type: ignore[no-untyped-def]
        for _ in range(count):
            lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
            yield (status, "sanitation", 1, rng.choice(WORDS), lat, lon, cell_of(lat, lon),
                   -100, rng.getrandbits(60), when, when, when if status == "closed" else None)

    insert = (
        "INSERT INTO ticket (status, category_key, reporter_id, description, lat, lon, cell, "
        "source_chat_id, source_message_id, created_at, updated_at, closed_at, language, "
        "reports) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'zh_CN', 1)"
    )
    db.executemany(insert, rows(OPEN_TICKETS, "assigned", recent))
    db.executemany(
        "INSERT INTO photo (ticket_id, kind, file_id, file_unique_id, sha256, size, width, "
        "height, phash, path, created_at, as_document) SELECT id, 'report', 'f' || id, "
        "'u' || id, printf('%064d', id), 1, 1, 1, printf('%016x', id * 2654435761 % 4294967296),"
        " 'p', created_at, 0 FROM ticket WHERE id <= ?", [(OPEN_TICKETS,)]
    )
    left = total - OPEN_TICKETS
    while left > 0:
        batch = min(left, 100_000)
        db.executemany(insert, rows(batch, "closed", old))
        left -= batch
    db.commit()
    db.close()


async def measure(path: Path, checks: int, rng: random.Random) -> list[float]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    timings = []
    try:
        for _ in range(checks):
            lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
            new = Sighting(lat=lat, lon=lon, address=None, category="sanitation",
                           description=rng.choice(WORDS), phashes=("0f0f0f0f0f0f0f0f",))
            started = time.perf_counter()
            async with sessions() as session:
                nearby = await repo.nearby_tickets(
                    session=session, cells=cells_around(lat, lon, 50.0),
                    closed_since=NOW - timedelta(days=14), exclude=0,
                )
                ids = [t.id or 0 for t in nearby]
                keys = await repo.photo_keys(session=session, ticket_ids=ids)
            best_match(
                new,
                [(t, Sighting(lat=t.lat or 0, lon=t.lon or 0, address=t.address,
                              category=t.category_key, description=t.description,
                              phashes=tuple(p for _, _, p in keys.get(t.id or 0, []) if p)))
                 for t in nearby],
                radius_m=50.0, merge_above=0.85, ask_above=0.6,
            )
            timings.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=400)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    medians = {}
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-dedup-") as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"dedup-{size}.db"
            engine = create_engine(f"sqlite+aiosqlite:///{path}")
            await migrate(engine)
            await engine.dispose()
            started = time.perf_counter()
            fill(path, size, random.Random(size))
            emit("fill_seconds", time.perf_counter() - started, "s", tickets=size)
            await measure(path, 20, random.Random(1))  # warm the caches and the code paths
            timings = await measure(path, args.checks, random.Random(7))
            timings.sort()
            median = statistics.median(timings) * 1000
            p95 = timings[int(len(timings) * 0.95) - 1] * 1000
            medians[size] = median
            emit("check_median", median, "ms", tickets=size, open=OPEN_TICKETS)
            emit("check_p95", p95, "ms", tickets=size, open=OPEN_TICKETS)
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        emit("median_ratio", medians[large] / medians[small], "x", large=large, small=small)


if __name__ == "__main__":
    asyncio.run(main())
