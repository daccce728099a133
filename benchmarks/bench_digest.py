"""One week's digest over 100k and 1M tickets of history: it must take seconds, and grow with
the week, not with the history.

Each database holds `--history` tickets made by `gridbot seed` (reports/seed.py) on the sample
district, at the same pace (`--per-week` reports a week) so that only the length of the history
differs: 100k tickets are half a year, 1M five years. A run is `week_figures` for the last full
week before the history ends (2026-W47), for the whole district and for one station, each on a
fresh session, as `gridbot digest` and the weekly delivery call it; a first, untimed run warms
the caches. With reports.documents present, also the files' drawing (chart, map, PDF, XLSX,
CSV) for the district. The sizes take turns, so a machine busy with something else slows them
alike.

    .venv/bin/python benchmarks/bench_digest.py [--history 100000 1000000] [--per-week 4000]
        [--runs 5] [--seed 1] [--cache-dir DIR] [--postgres postgresql+asyncpg://…/postgres]

Prints JSON lines: {"bench": "digest", "metric": ..., "value": ..., "unit": ..., "history": N,
...}; progress goes to stderr. Seeded SQLite files are kept in --cache-dir (default: the
temporary directory's gridbot-bench-digest), named by size, pace, seed and generator version,
so a second run starts at once; with --postgres each size is seeded into a throwaway database
on that server instead (not kept).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchkit
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.app import prepare_database
from bot.deployment import Deployment, load_deployment
from reports.figures import week_figures
from reports.seed import SEED_FORMAT, SeedPlan, seed_history
from reports.week import Week
from storage.db import create_engine, session_factory
from storage.models import Ticket

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"
UNTIL = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Monday 2026-11-23 00:00 in Shanghai
STATION = "fenyang"


def emit(metric: str, value: object, unit: str, **extra: object) -> None:
    benchkit.emit("digest", metric, value, unit, **extra)


@dataclass
class Size:
    """One seeded database and the timings taken on it."""

    history: int
    weeks: int
    engine: AsyncEngine
    timings: dict[str, list[float]] = field(default_factory=dict)


# --- seeding ---------------------------------------------------------------------------------


async def seed_into(url: str, deployment: Deployment, history: int, weeks: int,
                    seed: int) -> None:
    """Seed `history` tickets into an empty database, with a progress bar on stderr."""
    engine = create_engine(url)
    try:
        await prepare_database(engine, session_factory(engine), deployment)
        plan = SeedPlan(tickets=history, weeks=weeks, until=UNTIL, seed=seed)
        started = time.perf_counter()
        with benchkit.progress(f"seeding {history:,} tickets") as bar:
            task = bar.add_task("seed", total=history)
            result = await seed_history(
                engine, deployment, plan, on_progress=lambda n: bar.advance(task, n)
            )
        emit("seed_seconds", time.perf_counter() - started, "s", history=history, weeks=weeks,
             events=result.events, backend=engine.dialect.name)
    finally:
        await engine.dispose()


async def cached_sqlite(directory: Path, deployment: Deployment, history: int, weeks: int,
                        seed: int) -> str:
    """A seeded SQLite file for this size, made once: written under a temporary name and
    renamed when complete, so an interrupted seed is never taken for a finished one."""
    until = UNTIL.astimezone(deployment.zone)
    path = directory / f"digest-{history}-{weeks}w-seed{seed}-v{SEED_FORMAT}-{until:%Y%m%d}.db"
    partial = await asyncio.to_thread(cache_slot, path)
    if partial is None:
        emit("seed_cached", str(path), "file", history=history, weeks=weeks)
    else:
        await seed_into(f"sqlite+aiosqlite:///{partial}", deployment, history, weeks, seed)
        await asyncio.to_thread(partial.rename, path)  # disposed: its WAL is checkpointed
    return f"sqlite+aiosqlite:///{path}"


def cache_slot(path: Path) -> Path | None:
    """None when ``path`` is seeded already, else the clean temporary file to seed."""
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    for leftover in (partial, partial.with_name(partial.name + "-wal"),
                     partial.with_name(partial.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return partial


# --- timing -----------------------------------------------------------------------------------


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await action()
    return time.perf_counter() - started, result


async def figures_once(size: Size, deployment: Deployment, week: Week,
                       station: str | None) -> tuple[float, Any]:
    async def compute() -> Any:
        async with session_factory(size.engine)() as session:
            return await week_figures(session=session, deployment=deployment, week=week,
                                      station=station, now=UNTIL)

    return await timed(compute)


def can_render() -> bool:
    try:
        from reports.documents import render  # noqa: F401
    except ImportError:
        return False
    return True


def render_once(figures: Any, deployment: Deployment, directory: Path) -> float:
    """Draw and write the digest's files (chart, map, PDF, XLSX, CSV) for these figures."""
    from bot.grids import Grids
    from bot.i18n import Translator
    from reports.documents import render

    translator = Translator()
    started = time.perf_counter()
    render(figures, deployment=deployment, grids=Grids.of(deployment),
           translate=translator.bind(translator.normalise_locale(deployment.language)),
           directory=directory)
    return time.perf_counter() - started


async def week_tickets(size: Size, week: Week) -> int:
    async with size.engine.connect() as connection:
        created = col(Ticket.created_at)
        query = sa.select(sa.func.count()).where(created >= week.start, created < week.end)
        return int((await connection.execute(query)).scalar_one())


def report(size: Size, key: str, metric: str, **extra: object) -> None:
    runs = size.timings.get(key, [])
    if runs:
        emit(metric, statistics.median(runs), "s", history=size.history, weeks=size.weeks,
             **extra, runs=[round(r, 3) for r in runs])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="tickets of history in each database")
    parser.add_argument("--per-week", type=int, default=4_000,
                        help="reports a week (the same for every size)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size and scope")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "gridbot-bench-digest",
                        help="where seeded SQLite files are kept between runs")
    parser.add_argument("--postgres", default=None,
                        help="PostgreSQL server to seed throwaway databases on instead")
    parser.add_argument("--no-render", action="store_true", help="time the figures only")
    args = parser.parse_args()
    deployment = load_deployment(SAMPLE)
    week = Week.parse("last", tz=deployment.zone, now=UNTIL)

    with tempfile.TemporaryDirectory(prefix="gridbot-bench-digest-") as tmp:
        async with AsyncExitStack() as stack:
            sizes = []
            for history in sorted(args.history):
                weeks = max(1, math.ceil(history / args.per_week))
                if args.postgres:
                    url = await stack.enter_async_context(
                        benchkit.scratch_database(args.postgres, Path(tmp), f"digest{history}")
                    )
                    await seed_into(url, deployment, history, weeks, args.seed)
                else:
                    url = await cached_sqlite(args.cache_dir, deployment, history, weeks,
                                              args.seed)
                engine = create_engine(url)
                stack.push_async_callback(engine.dispose)
                size = Size(history, weeks, engine)
                emit("week_tickets", await week_tickets(size, week), "tickets",
                     history=history, weeks=weeks, week=week.label)
                sizes.append(size)

            scopes: list[tuple[str, str | None]] = [("district", None), (STATION, STATION)]
            figures: dict[int, Any] = {}
            for run in range(args.runs + 1):  # run 0 warms the caches, untimed
                for size in sizes:
                    for scope, station in scopes:
                        seconds, result = await figures_once(size, deployment, week, station)
                        if station is None:
                            figures[size.history] = result
                        if run:
                            size.timings.setdefault(scope, []).append(seconds)
            for size in sizes:
                total = figures[size.history].total
                for scope, _ in scopes:
                    report(size, scope, "figures_seconds", scope=scope, week=week.label,
                           backend=size.engine.dialect.name)
                emit("week_received", total.received, "reports", history=size.history,
                     week=week.label, resolved=total.resolved, open_at_end=total.open_at_end)

            if not args.no_render and not can_render():
                emit("render_skipped", "reports.documents.render is not there", "note")
            elif not args.no_render:
                for run in range(min(args.runs, 3)):
                    for size in sizes:
                        seconds = await asyncio.to_thread(
                            render_once, figures[size.history], deployment,
                            Path(tmp) / f"render-{size.history}-{run}",
                        )
                        size.timings.setdefault("render", []).append(seconds)
                for size in sizes:
                    report(size, "render", "render_seconds", scope="district", week=week.label)
                    if "render" in size.timings:
                        whole = (statistics.median(size.timings["district"])
                                 + statistics.median(size.timings["render"]))
                        emit("digest_seconds", whole, "s", history=size.history,
                             scope="district", week=week.label)

    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for scope, _ in scopes:
            emit("figures_ratio", statistics.median(large.timings[scope])
                 / statistics.median(small.timings[scope]), "x", large=large.history,
                 small=small.history, scope=scope, history_ratio=large.history / small.history)


if __name__ == "__main__":
    asyncio.run(main())
