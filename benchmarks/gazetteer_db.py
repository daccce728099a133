"""Gazetteer in the database at district and city scale: import (replace) and load times, and
nearest-address lookups for reverse geocoding. Prints JSON; never part of the test run.

    .venv/bin/python benchmarks/gazetteer_db.py [--sizes 2000 200000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.geocoding import NearbyAddresses, import_gazetteer, load_gazetteer
from bot.locating import Gazetteer, GazetteerEntry
from storage.db import create_engine, migrate, session_factory

ROADS = ["汾阳路", "金水路", "虎山路", "兴城路", "书院路", "九水路", "京口路", "巨峰路", "峰山路"]


def synthetic(size: int) -> Gazetteer:
    """`size` addresses on a grid of roads around Licang, a tenth with an alias."""
    rng = random.Random(7)
    entries = []
    for n in range(size):
        road = f"{ROADS[n % len(ROADS)]}{n // len(ROADS) // 500 or ''}"
        number = n // len(ROADS) % 500 + 1
        aliases = (f"{road} No.{number}",) if n % 10 == 0 else ()
        entries.append(
            GazetteerEntry(
                address=f"{road}{number}号",
                aliases=aliases,
                lat=36.10 + rng.random() * 0.15,
                lon=120.35 + rng.random() * 0.15,
                station_key=None,
                line=n + 2,
            )
        )
    return Gazetteer(entries)


async def measure(size: int, url: str) -> dict[str, float | int]:
    gazetteer = synthetic(size)
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        started = time.perf_counter()
        async with sessions() as session:
            await import_gazetteer(session, gazetteer, now=datetime.now(UTC))
            await session.commit()
        imported = time.perf_counter() - started
        started = time.perf_counter()
        async with sessions() as session:
            loaded = await load_gazetteer(session)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        nearby = NearbyAddresses(loaded)
        index_seconds = time.perf_counter() - started
        rng = random.Random(11)
        points = [(36.10 + rng.random() * 0.15, 120.35 + rng.random() * 0.15) for _ in range(2000)]
        started = time.perf_counter()
        found = sum(1 for lat, lon in points if nearby.nearest(lat, lon, within_m=150))
        lookup_seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {
        "entries": size,
        "import_s": round(imported, 3),
        "load_s": round(load_seconds, 3),
        "nearby_index_s": round(index_seconds, 3),
        "reverse_lookups_per_s": round(len(points) / lookup_seconds),
        "reverse_hits": found,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 200_000])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for size in args.sizes:
            url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / f'{size}.db'}"
            results.append(await measure(size, url))
    print(json.dumps({"benchmark": "gazetteer_db", "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
