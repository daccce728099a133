"""What the database benchmarks share: JSON-line output, a progress bar on stderr, and a scratch
database per run (a SQLite file in a temporary directory, or a throwaway PostgreSQL database).

Not a benchmark itself; the scripts beside it import it (`import benchkit`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.console import stderr
from storage.db import is_sqlite


def emit(bench: str, metric: str, value: object, unit: str, **extra: object) -> None:
    """One figure as a JSON line on stdout: {"bench", "metric", "value", "unit", ...extra}."""
    if isinstance(value, float):
        value = round(value, 6 if abs(value) < 0.01 else 3)
    line = {"bench": bench, "metric": metric, "value": value, "unit": unit, **extra}
    print(json.dumps(line, ensure_ascii=False), flush=True)


def progress(label: str) -> Progress:
    """A fill progress bar on stderr, so stdout stays pure JSON lines."""
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=stderr(), transient=True,
    )


@asynccontextmanager
async def scratch_database(url: str | None, directory: Path, name: str) -> AsyncIterator[str]:
    """An empty database for one run, removed afterwards.

    No ``url``: ``directory/name.db`` (SQLite), deleted afterwards. A SQLite ``url`` is used
    as given (it should not exist yet). A PostgreSQL ``url`` names a server and a database to
    connect to as an administrator: a database ``gridbot_bench_<name>_<random>`` is created
    there and dropped at the end, so nothing of the caller's is touched.
    """
    if url is None:
        path = directory / f"{name}.db"
        try:
            yield f"sqlite+aiosqlite:///{path}"
        finally:  # a 1M-ticket file is large: gone before the next size is filled
            for leftover in (path, path.with_name(path.name + "-wal"),
                             path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        return
    if is_sqlite(url):
        yield url
        return
    admin_url = make_url(url)
    database = f"gridbot_bench_{name}_{uuid.uuid4().hex[:8]}".lower()
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{database}"'))
        try:
            yield admin_url.set(database=database).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                drop = f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
                await connection.execute(text(drop))
    finally:
        await admin.dispose()
