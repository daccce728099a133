"""`gridbot digest`: one week's digest (chart, map, PDF, XLSX, CSV) written to a directory,
with a progress bar, for the district or one station. Mounted by bot/cli.py."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from bot.console import stderr, stdout
from bot.deployment import Deployment
from bot.i18n import Translator
from bot.settings import Settings
from reports.digest import DigestFiles, directory_for, produce
from reports.week import Week


def digest(
    week: Annotated[
        str, typer.Option("--week", help="2026-W47, last (the week before this one) or this.")
    ] = "last",
    station: Annotated[
        str | None,
        typer.Option("--station", help="A station's key or name; the whole district without."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory for the files (default: <data dir>/digests/<week>).",
            file_okay=False,
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--config", help="Deployment file (default: $GRIDBOT_CONFIG).")
    ] = None,
) -> None:
    """Write one week's digest (chart and map PNG, PDF, XLSX, CSV) and say where it is."""
    from bot.cli import deployment_or_exit, resolve_config_path, settings_or_exit
    from bot.digest import DigestError, find_station, read_week

    settings = settings_or_exit()
    deployment = deployment_or_exit(resolve_config_path(file))
    translator = Translator()
    try:
        chosen = read_week(week, deployment=deployment, now=datetime.now(UTC))
    except DigestError as error:
        _fail(f"--week: {_plain(translator.get(error.message_key, 'en', **error.params))}")
    key = None
    if station is not None:
        key = find_station(deployment, station)
        if key is None:
            known = ", ".join(f"{s.key} ({s.name})" for s in deployment.stations)
            _fail(f"--station: no station {station!r}; the stations are: {known}")
    directory = out or directory_for(settings.data_dir, chosen, key)
    problem = _unwritable(directory)
    if problem:
        _fail(f"--out: cannot write the digest to {directory}: {problem}")
    files = asyncio.run(_produce(settings, deployment, translator, chosen, key, directory))
    console = stdout()
    console.print(Text(f"✓ the digest of {chosen.label} is in {files.directory}", style="bold"))
    for path in (files.pdf, files.xlsx, files.csv, files.chart, files.map):
        console.print(Text(f"  {path}"))
    console.print(Text(_plain(files.summary)))


async def _produce(
    settings: Settings, deployment: Deployment, translator: Translator, week: Week,
    station: str | None, directory: Path,
) -> DigestFiles:
    from bot.grids import Grids
    from reports.documents import STEPS
    from storage.db import create_engine, migrate, session_factory

    engine = create_engine(settings.effective_database_url)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=stderr(), transient=False,
    )
    names = ("figures", *STEPS)
    try:
        await migrate(engine)  # a new data directory: an empty, but valid, week
        with progress:
            task = progress.add_task(f"digest {week.label}: figures", total=len(names))

            def step(name: str) -> None:  # told from the drawing thread; rich locks
                if name not in names:
                    return
                done = names.index(name) + 1
                upcoming = names[done] if done < len(names) else "done"
                progress.update(
                    task, completed=done, description=f"digest {week.label}: {upcoming}"
                )

            return await produce(
                sessions=session_factory(engine), deployment=deployment,
                grids=Grids.of(deployment), translator=translator, week=week,
                directory=directory, now=datetime.now(UTC), station=station, step=step,
                font=settings.font,
            )
    finally:
        await engine.dispose()


def _fail(message: str) -> NoReturn:
    stderr().print(Text(f"✗ {message}; no digest was made"))
    raise typer.Exit(1)


def _unwritable(directory: Path) -> str | None:
    """Why the digest cannot be written to ``directory`` (made beside it, then moved in), or
    None when it can."""
    if directory.exists() and not directory.is_dir():
        return "it is a file"
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent)
        os.rmdir(probe)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _plain(html_text: str) -> str:
    """A Telegram HTML message as a terminal shows it."""
    return unescape(re.sub(r"</?[a-z][^>]*>", "", html_text))
