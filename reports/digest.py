"""One week's digest made whole: the figures, the pictures and documents in a directory, and
the short summary message the street office reads first."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Protocol

from babel.dates import format_interval
from babel.numbers import format_percent

from bot.deployment import Deployment
from bot.grids import Grids
from reports.figures import StationWeek, WeekFigures, week_figures
from reports.week import Week
from storage.db import SessionFactory

Step = Callable[[str], None]  # told what is being made now (a progress bar, a log)
PLACE_SHOWN = 40  # characters of a hotspot's place in the summary; the PDF has it whole


class Translate(Protocol):
    def get(self, key: str, locale: str, /, **params: Any) -> str: ...

    def bind(self, locale: str) -> Callable[..., str]: ...

    def normalise_locale(self, language_code: str | None) -> str: ...


@dataclass(frozen=True)
class DigestFiles:
    """A produced digest: where its files are, and what the chat message says."""

    directory: Path
    summary: str  # Telegram HTML, in the reader's language
    title: str  # "兴城路街道 周报 2026-W47" (HTML-escaped): captions of the photo and documents
    chart: Path
    map: Path
    pdf: Path
    xlsx: Path
    csv: Path
    figures: WeekFigures


def directory_for(data_dir: Path, week: Week, station: str | None = None) -> Path:
    """``<data dir>/digests/2026-W47`` for the district, ``…/2026-W47-fenyang`` for a station."""
    return data_dir / "digests" / (week.label + (f"-{station}" if station else ""))


async def produce(
    *,
    sessions: SessionFactory,
    deployment: Deployment,
    grids: Grids,
    translator: Translate,
    week: Week,
    directory: Path,
    now: datetime,
    station: str | None = None,
    locale: str | None = None,
    step: Step | None = None,
    font: Path | None = None,
) -> DigestFiles:
    """Count the week, draw and write its files into ``directory`` and say it in ``locale``
    (default: the deployment's language, which the documents are always written in).
    ``step`` hears "figures" once they are counted, then each of reports.documents.STEPS
    once drawn or written; ``font``: the CJK font (GRIDBOT_FONT), else Debian's.

    The drawing is CPU work (matplotlib, reportlab): it runs in a thread, so a bot producing
    a digest keeps answering. The files are written beside ``directory`` and moved in whole,
    so a sender never picks up half a PDF from a digest being made again.
    """
    from reports.documents import render  # matplotlib and reportlab: only when drawing

    documents_locale = translator.normalise_locale(deployment.language)
    async with sessions() as session:
        figures = await week_figures(
            session=session, deployment=deployment, week=week, station=station, now=now
        )
    if step is not None:
        step("figures")
    directory.parent.mkdir(parents=True, exist_ok=True)
    making = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}")
    try:
        rendered = await asyncio.to_thread(
            render, figures, deployment=deployment, grids=grids,
            translate=translator.bind(documents_locale), directory=making, step=step,
            font=font,
        )
        await asyncio.to_thread(_move_in, making, directory)
    finally:
        await asyncio.to_thread(shutil.rmtree, making, ignore_errors=True)
    locale = locale or documents_locale
    return DigestFiles(
        directory=directory,
        summary=summary(figures, deployment=deployment, translator=translator, locale=locale),
        title=title(figures, deployment=deployment, translator=translator, locale=locale),
        chart=directory / rendered.chart.name,
        map=directory / rendered.map.name,
        pdf=directory / rendered.pdf.name,
        xlsx=directory / rendered.xlsx.name,
        csv=directory / rendered.csv.name,
        figures=figures,
    )


def _move_in(made: Path, directory: Path) -> None:
    """Put a freshly made directory where an older one of the same digest may be."""
    try:
        made.rename(directory)  # nothing there yet
        return
    except OSError:
        pass
    old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
    with suppress(FileNotFoundError):
        directory.rename(old)
    made.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


# --- the message ---------------------------------------------------------------------------


def scope_name(figures: WeekFigures, deployment: Deployment) -> str:
    """Whose week it is, HTML-escaped: the station's name, else the street office's."""
    if figures.station is not None:
        station = next((s for s in deployment.stations if s.key == figures.station), None)
        return escape(station.name if station else figures.station)
    return escape(deployment.street_office.name)


def title(
    figures: WeekFigures, *, deployment: Deployment, translator: Translate, locale: str
) -> str:
    return translator.get(
        "digest.message_title", locale, scope=scope_name(figures, deployment),
        week=figures.week.label,
    )


def summary(
    figures: WeekFigures, *, deployment: Deployment, translator: Translate, locale: str
) -> str:
    """The chat message (Telegram HTML): the week and its dates; received, opened and resolved
    with the change against the week before; open and overdue at the week's end; deadline
    compliance and satisfaction; the station with the most overdue tickets (the district's
    digest); the place reported most often. Names and places are escaped."""

    def t(key: str, **params: Any) -> str:
        return translator.get(key, locale, **params)

    def change(now: int, before: int) -> str:
        if now > before:
            return t("digest.up", n=now - before)
        if now < before:
            return t("digest.down", n=before - now)
        return t("digest.same")

    def share(value: float | None, missing: str) -> str:
        return format_percent(value, locale=locale) if value is not None else t(missing)

    week, this, before = figures.week, figures.total, figures.previous_total
    lines = [
        t("digest.heading", title=title(
            figures, deployment=deployment, translator=translator, locale=locale
        ), dates=format_interval(week.monday, week.sunday, "yMMMd", locale=locale)),
        t(
            "digest.flow",
            received=this.received, received_change=change(this.received, before.received),
            opened=this.opened, opened_change=change(this.opened, before.opened),
            resolved=this.resolved, resolved_change=change(this.resolved, before.resolved),
        ),
        t("digest.open", open=this.open_at_end, overdue=this.overdue_at_end),
        t(
            "digest.rates",
            compliance=share(this.compliance, "digest.no_deadlines"),
            satisfaction=share(this.satisfaction, "digest.no_ratings"),
        ),
    ]
    if figures.station is None:
        worst = worst_station(figures.stations)
        lines.append(
            t("digest.worst", station=escape(worst.name), overdue=worst.this.overdue_at_end)
            if worst is not None
            else t("digest.no_overdue")
        )
    if figures.hotspots:
        spot = figures.hotspots[0]
        place = spot.place if len(spot.place) <= PLACE_SHOWN else spot.place[:PLACE_SHOWN] + "…"
        lines.append(t("digest.hotspot", place=escape(place), reports=spot.reports))
    lines.append(t("digest.attached"))
    return "\n".join(lines)


def worst_station(stations: tuple[StationWeek, ...]) -> StationWeek | None:
    """The station with the most tickets overdue at the week's end (the first of equals, in
    the deployment's order); None when nothing is overdue."""
    worst = max(stations, key=lambda s: s.this.overdue_at_end, default=None)
    return worst if worst is not None and worst.this.overdue_at_end > 0 else None
