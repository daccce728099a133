"""`gridbot ticket show N`: one ticket whole — its place, people, photos and every event."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.settings import load_settings
from storage import repo
from storage.db import create_engine, session_factory

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("show")
def show(
    number: Annotated[int, typer.Argument(help="The ticket number, as in #12.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
) -> None:
    """Everything about one ticket, including why it was placed and merged where it was."""
    found = asyncio.run(_load(number))
    if found is None:
        Console(stderr=True).print(Text(f"no ticket #{number}"))
        raise typer.Exit(1)
    console = Console(highlight=False, soft_wrap=True)
    if as_json:
        console.print_json(json.dumps(found, ensure_ascii=False, default=str))
        return
    _print(console, found)


async def _load(number: int) -> dict[str, Any] | None:
    engine = create_engine(load_settings().effective_database_url)
    try:
        async with session_factory(engine)() as session:
            ticket = await repo.get_ticket(session=session, ticket_id=number)
            if ticket is None:
                return None
            reporter = await repo.get_person(session=session, person_id=ticket.reporter_id)
            events = await repo.events_of(session=session, ticket_id=number)
            photos = await repo.photos_of(session=session, ticket_id=number, kind="report")
            after = await repo.photos_of(session=session, ticket_id=number, kind="after")
            followers = await repo.followers_of(session=session, ticket_id=number)
            names = {}
            for event in events:
                if event.actor_id is not None and event.actor_id not in names:
                    person = await repo.get_person(session=session, person_id=event.actor_id)
                    names[event.actor_id] = person.name if person else "?"
    finally:
        await engine.dispose()
    return {
        "ticket": ticket.model_dump(),
        "reporter": reporter.name if reporter else None,
        "photos": [p.model_dump() for p in photos + after],
        "followers": [f.model_dump() for f in followers],
        "events": [
            {**e.model_dump(), "actor": names.get(e.actor_id or 0, "bot")} for e in events
        ],
    }


def _print(console: Console, found: dict[str, Any]) -> None:
    ticket = found["ticket"]
    console.print(Text(f"#{ticket['id']} {ticket['status']}", style="bold"))
    for label, key in (("address", "address"), ("typed", "address_text"),
                       ("description", "description"), ("station", "station_key"),
                       ("category", "category_key"), ("reports", "reports"),
                       ("duplicate of", "duplicate_of"), ("located by", "location_source"),
                       ("confidence", "location_confidence"), ("due", "due_at")):
        if ticket.get(key) not in (None, ""):
            console.print(Text(f"  {label:<12} {ticket[key]}"))
    console.print(Text(f"  {'reporter':<12} {found['reporter']}"))
    console.print(Text(f"  {'photos':<12} {len(found['photos'])}, "
                       f"followers {len(found['followers'])}"))
    table = Table(title="Events")
    for column in ("at", "who", "role", "action", "from → to", "note"):
        table.add_column(column)
    for event in found["events"]:
        table.add_row(
            f"{event['at']:%Y-%m-%d %H:%M:%S}", event["actor"], event["role"], event["action"],
            f"{event['from_status'] or '—'} → {event['to_status']}", event["note"] or "",
        )
    console.print(table)
