"""`gridbot seed`: fill the configured database with a synthetic history on the deployment's
district (reports/seed.py), for demos and benchmarks. Mounted by bot/cli.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy.engine import make_url

from bot.console import stderr, stdout
from bot.deployment import Deployment

if TYPE_CHECKING:
    from reports.seed import SeedPlan

SAMPLE = Path(__file__).with_name("sample") / "deployment.yaml"


def seed(
    tickets: Annotated[
        int, typer.Option("--tickets", min=1, help="How many reports to make.",
                          show_default=False)
    ],
    weeks: Annotated[
        int, typer.Option("--weeks", min=1, help="Over how many weeks before --until.",
                          show_default=False)
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="The same seed (and --until) makes the same history.")
    ] = 1,
    until: Annotated[
        str | None,
        typer.Option("--until", help="When the history ends: 2026-11-23 (midnight in the "
                     "district) or 2026-11-23T09:30. Default: now.", show_default=False),
    ] = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add to a database that has tickets already, "
                           "after its largest ids.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--config", help="Deployment file (default: $GRIDBOT_CONFIG, else the "
                     "sample district).", show_default=False),
    ] = None,
) -> None:
    """Fill the database with a synthetic history: reports shaped by hour and weekday, merged
    repeats, claims, reminders and escalations, resolutions, ratings, reopenings, rejections,
    parked and overdue tickets, the last ones still open."""
    from bot.cli import deployment_or_exit, settings_or_exit
    from reports.seed import SeedError, SeedPlan, parse_until

    settings = settings_or_exit()
    path = file or settings.config or SAMPLE
    deployment = deployment_or_exit(path)
    end = datetime.now(UTC)
    if until is not None:
        try:
            end = parse_until(until, zone=deployment.zone)
        except SeedError as error:
            _fail(f"--until: {error}")
    try:
        plan = SeedPlan(tickets=tickets, weeks=weeks, until=end, seed=seed)
    except SeedError as error:
        _fail(str(error))
    console = stdout()
    url = settings.effective_database_url
    console.print(Text(
        f"Seeding {make_url(url).render_as_string(hide_password=True)} with {tickets:,} "
        f"tickets over {weeks} weeks on {path} (seed {seed})"
    ))
    asyncio.run(_seed(url, deployment, plan, append=append, console=console))


def _fail(message: str) -> NoReturn:
    stderr().print(Text(f"✗ {message}; nothing was written"))
    raise typer.Exit(1)


async def _seed(
    url: str, deployment: Deployment, plan: SeedPlan, *, append: bool, console: Console
) -> None:
    from bot.app import prepare_database
    from reports.seed import AlreadySeeded, SeedError, seed_history
    from storage.db import create_engine, session_factory

    engine = create_engine(url)
    started = time.perf_counter()
    try:
        await prepare_database(engine, session_factory(engine), deployment)
        progress = Progress(
            TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=console,
        )
        task = progress.add_task("seed", total=plan.tickets)

        def advance(written: int) -> None:
            progress.start()  # shown once the database is found fit (then a no-op)
            progress.advance(task, written)

        try:
            result = await seed_history(
                engine, deployment, plan, append=append, on_progress=advance
            )
        finally:
            if progress.live.is_started:
                progress.stop()
    except AlreadySeeded as error:
        _fail(f"{error}: seed a fresh database, or pass --append to add after #{error.last_id}")
    except SeedError as error:
        _fail(str(error))
    finally:
        await engine.dispose()
    zone = deployment.zone
    console.print(Text(
        f"✓ seeded {result.tickets:,} tickets (#{result.first_id}–#{result.last_id}) with "
        f"{result.events:,} events, {result.followers:,} followers of merged repeats and "
        f"{result.people:,} new people, in {time.perf_counter() - started:.1f} s",
        style="bold green",
    ))
    console.print(Text(
        f"  from {result.start.astimezone(zone):%Y-%m-%d %H:%M} to "
        f"{result.until.astimezone(zone):%Y-%m-%d %H:%M} ({deployment.timezone})"
    ))
    console.print(Text("  tickets by status: " + ", ".join(
        f"{status} {count:,}" for status, count in result.statuses.items()
    )))
    console.print(Text("  events by action: " + ", ".join(
        f"{action} {count:,}" for action, count in result.actions.items()
    )))
