"""`gridbot locate`: what the bot reads from a caption, the candidates, and where it goes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from bot.deployment import Deployment
from bot.geocoding import GeocoderChain, load_gazetteer
from bot.grids import Grids
from bot.locating import Gazetteer
from bot.placing import Finding, Placer
from bot.settings import load_settings
from storage import repo
from storage.db import create_engine, is_sqlite, session_factory


async def explain(
    text: str, deployment: Deployment, *, console: Console, as_json: bool, online: bool
) -> int:
    """Print the explanation; 0 when the text is placed on a station, 1 otherwise."""
    gazetteer, origin = await _gazetteer(deployment)
    geocoders = None
    if online and deployment.geocoding.providers:
        url = load_settings().effective_database_url
        geocoders = GeocoderChain.from_deployment(
            deployment, sessions=session_factory(create_engine(url)),
            city=deployment.geocoding.city,
        )
    placer = Placer(
        grids=Grids.of(deployment),
        geocoders=geocoders,
        nearest_within_m=deployment.routing.nearest_station_within_m,
        min_confidence=deployment.geocoding.min_confidence,
    )
    placer.use_gazetteer(gazetteer)
    try:
        assert placer.locator is not None
        explanation = placer.locator.explain(text)
        finding = await placer.from_text(text)
    finally:
        if geocoders is not None:
            await geocoders.close()
    placed = finding.place is not None and finding.place.station_key is not None
    if as_json:
        data: dict[str, Any] = explanation.as_dict()
        data["gazetteer"] = origin
        data["decision"] = _decision(finding)
        console.print_json(json.dumps(data, ensure_ascii=False, default=str))
    else:
        _print(console, explanation, finding, origin, deployment)
    return 0 if placed else 1


async def _gazetteer(deployment: Deployment) -> tuple[Gazetteer, str]:
    """The bot's own gazetteer (the database) when there is one, else the deployment's CSV."""
    url = load_settings().effective_database_url
    database = make_url(url).database
    exists = bool(database) and await asyncio.to_thread(Path(str(database)).exists)
    if not is_sqlite(url) or exists:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                if await repo.count_gazetteer(session=session):
                    return await load_gazetteer(session), f"database {make_url(url)!r}"
        except Exception:  # no such table yet, or no database server: use the file
            pass
        finally:
            await engine.dispose()
    return Gazetteer.from_csv(deployment.gazetteer), f"file {deployment.gazetteer}"


def _decision(finding: Finding) -> dict[str, Any]:
    place = finding.place
    return {
        "place": asdict(place) if place else None,
        "routed": finding.routed if place else None,
        "distance_m": finding.distance_m,
        "guess": asdict(finding.guess) if finding.guess else None,
        "failures": [asdict(f) for f in finding.failures],
        "outcome": (
            "station" if place and place.station_key
            else "triage" if place or finding.failures
            else "ask the captain"
        ),
    }


def _print(
    console: Console, explanation: Any, finding: Finding, origin: str, deployment: Deployment
) -> None:
    console.print(Text(f"Text:        {explanation.text}"))
    console.print(Text(f"Address:     {explanation.span or '(none recognised)'}"))
    console.print(Text(f"Normalised:  {explanation.normalised}"))
    console.print(Text(f"Gazetteer:   {origin}", style="dim"))
    table = Table(title=f"Candidates (trusted from {explanation.min_confidence:.2f})")
    for column in ("score", "how", "matched", "address", "station"):
        table.add_column(column)
    for match in explanation.candidates:
        table.add_row(
            f"{match.score:.2f}", match.how, match.matched, match.place.address,
            match.place.station_key or "—",
        )
    console.print(table)
    decision = _decision(finding)
    place = finding.place
    if place is not None and place.station_key:
        station = deployment.station(place.station_key)
        where = f"{place.lat:.6f}, {place.lon:.6f}"
        routed = "" if finding.routed == "inside" else (
            f", nearest grid {finding.distance_m:.0f} m away"
        )
        console.print(Text(
            f"→ {place.address} ({where}) from {place.source} ({place.how}, "
            f"{place.confidence:.2f}) → {station.key} {station.name}{routed}",
            style="bold green",
        ))
    elif decision["outcome"] == "triage":
        console.print(Text("→ no station: the street office triages it", style="bold yellow"))
    else:
        guess = f" (unsure guess: {finding.guess.address})" if finding.guess else ""
        console.print(Text(f"→ not placed: the bot asks the captain{guess}", style="bold red"))
    for failure in finding.failures:
        console.print(Text(f"  provider {failure.provider}: {failure.reason}", style="yellow"))
