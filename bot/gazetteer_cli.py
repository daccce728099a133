"""`gridbot gazetteer`: import the district's known addresses into the database (replacing the
old ones in one transaction) and show what is there. Mounted by bot/cli.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from bot.console import stderr, stdout
from bot.geocoding import GazetteerImport, import_gazetteer, rows_to_import
from bot.locating import Gazetteer, GazetteerFormatError, GazetteerProblem
from bot.settings import SettingsError, load_settings
from storage import repo
from storage.db import create_engine, migrate, session_factory

app = typer.Typer(
    name="gazetteer",
    help="The district's known addresses, kept in the database.",
    no_args_is_help=True,
    add_completion=False,
)

MAX_PROBLEMS_SHOWN = 50




def _database_url_or_exit() -> str:
    try:
        return load_settings().effective_database_url
    except SettingsError as exc:
        for line in exc.lines:
            stderr().print(Text(line))
        raise typer.Exit(1) from None


def _print_problems(console: Console, problems: tuple[GazetteerProblem, ...]) -> None:
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        # Text, not markup: addresses from the file are printed verbatim.
        console.print(Text(f"  {problem}", style="yellow"))
    if len(problems) > MAX_PROBLEMS_SHOWN:
        console.print(Text(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", style="yellow"))


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns address, aliases (separated by |), lat, lon (WGS-84) and "
            "an optional station key.",
            show_default=False,
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Import nothing if any row has a problem."),
    ] = False,
) -> None:
    """Replace the gazetteer in the database with FILE, in one transaction: the bot keeps the
    old one until the new one is complete. Bad rows are listed with their line numbers."""
    url = _database_url_or_exit()
    out, err = stdout(), stderr()
    try:
        gazetteer = Gazetteer.from_csv(file)
    except GazetteerFormatError as exc:
        err.print(Text(f"✗ {exc}; the gazetteer in the database is unchanged"))
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(Text(f"✗ {file}: cannot be read ({exc.strerror or exc}); nothing changed"))
        raise typer.Exit(1) from None
    rows, problems = rows_to_import(gazetteer)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        out.print(Text(f"{file}: {len(problems)} {noun}:", style="bold"))
        _print_problems(out, problems)
    if not rows:
        err.print(Text(f"✗ {file}: no usable rows; the gazetteer in the database is unchanged"))
        raise typer.Exit(1)
    if strict and problems:
        err.print(Text("✗ --strict: nothing imported; the gazetteer in the database is unchanged"))
        raise typer.Exit(1)
    result = asyncio.run(_import(url, gazetteer, total=len(rows), console=out))
    out.print(
        Text(
            f"✓ imported {result.imported} addresses ({result.aliases} aliases) from {file}, "
            f"replacing {result.replaced}; {len(result.problems)} rows with problems",
            style="bold green",
        )
    )


async def _import(
    url: str, gazetteer: Gazetteer, *, total: int, console: Console
) -> GazetteerImport:
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        progress = Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), console=console
        )
        with progress:
            task = progress.add_task("import", total=total)
            async with sessions() as session:
                result = await import_gazetteer(
                    session,
                    gazetteer,
                    now=datetime.now(UTC),
                    on_batch=lambda written: progress.advance(task, written),
                )
                await session.commit()
        return result
    finally:
        await engine.dispose()


@app.command("stats")
def stats_command() -> None:
    """How many addresses and aliases the gazetteer holds, per station, and when imported."""
    url = _database_url_or_exit()
    stats = asyncio.run(_stats(url))
    out = stdout()
    if stats.addresses == 0:
        out.print(
            Text(
                "The gazetteer is empty. Import one with `gridbot gazetteer import FILE`; the bot "
                "also imports the deployment file's gazetteer on its first start."
            )
        )
        return
    when = f"{stats.imported_at:%Y-%m-%d %H:%M} UTC" if stats.imported_at else "unknown"
    out.print(
        Text(f"Gazetteer: {stats.addresses} addresses, {stats.aliases} aliases; imported {when}")
    )
    out.print(Text("By station column:", style="bold"))
    for key, count in sorted(stats.by_station.items(), key=lambda item: (item[0] is None, item)):
        label = key if key is not None else "(none: placed by the grids)"
        out.print(Text(f"  {label}: {count}"))


async def _stats(url: str) -> repo.GazetteerStats:
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session:
            return await repo.gazetteer_stats(session=session)
    finally:
        await engine.dispose()
