"""The weekly digest's figures: what a week did, by station and in total, from SQL aggregates.

Everything is counted from the append-only event history and the tickets' timestamps over
time-indexed columns, so a week costs what that week (and the few weeks after it) holds, not
the whole history, and the same week always gives the same figures.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from reports.week import Week
from storage import weekly
from storage.weekly import Window

if TYPE_CHECKING:
    from bot.deployment import Deployment

TREND_WEEKS = 12
OLDEST_OPEN = 10
OVERDUE_LISTED = 300  # the PDF lists at most this many overdue tickets, most overdue first


@dataclass(frozen=True)
class Counts:
    """One station's (or the district's) week."""

    received: int = 0  # reports captains sent (each becomes a ticket; repeats included)
    opened: int = 0  # those not merged as repeats of another ticket within the week
    merged: int = 0  # tickets merged as duplicates during the week
    claimed: int = 0  # tickets a chief claimed during the week
    resolved: int = 0
    closed: int = 0  # confirmed by the reporter or closed after silence
    reopened: int = 0  # disputed by the reporter or reopened by the office
    rejected: int = 0
    escalated: int = 0  # 督办 sent to the office
    open_at_end: int = 0  # not yet resolved when the week ended (parked included)
    overdue_at_end: int = 0  # of those, past their deadline (parked ones aside)
    parked_at_end: int = 0  # 挂账
    due: int = 0  # tickets whose deadline fell in the week
    due_met: int = 0  # of those, resolved by the deadline
    satisfied: int = 0  # 满意 answers given in the week
    rated: int = 0  # 满意 + 不满意 answers given in the week
    claim_hours_median: float | None = None  # report → claim, for the week's claims
    claim_hours_p90: float | None = None
    resolve_hours_median: float | None = None  # report → resolution, for the week's resolutions
    resolve_hours_p90: float | None = None

    @property
    def compliance(self) -> float | None:
        """Share of the week's deadlines met; None when no deadline fell in the week."""
        return self.due_met / self.due if self.due else None

    @property
    def satisfaction(self) -> float | None:
        """Share 满意 among the week's ratings; None when nobody rated."""
        return self.satisfied / self.rated if self.rated else None


@dataclass(frozen=True)
class StationWeek:
    key: str | None  # None: reports never placed on a grid (the office's triage)
    name: str
    this: Counts
    previous: Counts


@dataclass(frozen=True)
class OpenTicket:
    """A ticket still open when the week ended."""

    id: int
    station_key: str | None
    category_key: str
    place: str  # located address, else what the captain wrote, else ""
    status: str  # its state at the week's end
    created_at: datetime
    due_at: datetime | None
    overdue: bool  # deadline passed before the week's end


@dataclass(frozen=True)
class Hotspot:
    """A place reported again and again in the week."""

    place: str
    reports: int
    ticket_ids: tuple[int, ...]


@dataclass(frozen=True)
class TrendPoint:
    week: str  # 2026-W47
    opened: int
    resolved: int
    open_at_end: int  # tickets still open when that week ended


@dataclass(frozen=True)
class WeekTicket:
    """A ticket reported in the week, as the XLSX/CSV list and the map show it."""

    id: int
    created_at: datetime
    station_key: str | None
    category_key: str
    status: str  # at the week's end
    place: str
    description: str
    lat: float | None
    lon: float | None
    reports: int  # captains who reported it (merged repeats included)
    due_at: datetime | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: str | None


@dataclass(frozen=True)
class WeekFigures:
    """Everything the digest shows for one week, for the district or one station."""

    week: Week
    station: str | None  # a station's own digest, or None for the whole district
    generated_at: datetime
    total: Counts
    previous_total: Counts
    stations: tuple[StationWeek, ...]
    categories: tuple[tuple[str, int], ...]  # (category key, reports), most first
    oldest_open: tuple[OpenTicket, ...]
    overdue: tuple[OpenTicket, ...]  # every ticket overdue at the week's end, oldest first
    hotspots: tuple[Hotspot, ...]
    trend: tuple[TrendPoint, ...]  # 12 weeks, oldest first, ending with this one
    tickets: tuple[WeekTicket, ...] = field(default=())


# --- computing ---------------------------------------------------------------------------


async def week_figures(
    *, session: AsyncSession, deployment: Deployment, week: Week, station: str | None = None,
    now: datetime,
) -> WeekFigures:
    """The digest's figures for ``week``, for the whole district or one station."""
    window = Window(week.start, week.end, station)
    before = week.previous()
    this, total = await _counts(session, window)
    previous, previous_total = await _counts(session, Window(before.start, before.end, station))
    names = {s.key: s.name for s in deployment.stations}
    keys: list[str | None] = [station] if station is not None else [*names, None]
    stations = tuple(
        StationWeek(key=key, name=names.get(key, "") if key else "",
                    this=this.get(key, Counts()), previous=previous.get(key, Counts()))
        for key in keys
        if key is not None or _any(this.get(None), previous.get(None))
    )
    oldest = await weekly.open_tickets(
        session=session, window=window, overdue_only=False, limit=OLDEST_OPEN
    )
    overdue = await weekly.open_tickets(
        session=session, window=window, overdue_only=True, limit=OVERDUE_LISTED
    )
    spots = await weekly.hotspots(session=session, window=window)
    return WeekFigures(
        week=week,
        station=station,
        generated_at=now,
        total=total,
        previous_total=previous_total,
        stations=stations,
        categories=tuple(await weekly.top_categories(session=session, window=window)),
        oldest_open=tuple(_open(row, window) for row in oldest),
        overdue=tuple(_open(row, window) for row in overdue),
        hotspots=tuple(Hotspot(place, n, ids) for place, n, ids in spots),
        trend=await _trend(session, week, station, total.open_at_end),
        tickets=tuple(
            WeekTicket(**vars(row))
            for row in await weekly.week_tickets(session=session, window=window)
        ),
    )


async def _counts(
    session: AsyncSession, window: Window
) -> tuple[dict[str | None, Counts], Counts]:
    """Each station's Counts for the window (None: reports not yet placed on a grid), and
    the window's total: the stations' sums, with times over all of the window's steps."""
    values: dict[str | None, dict[str, float | int | None]] = defaultdict(dict)

    def add(station: str | None, name: str, amount: int) -> None:
        values[station][name] = int(values[station].get(name) or 0) + amount

    for station, step, tickets in await weekly.step_counts(session=session, window=window):
        for name in _FIGURES_OF_STEP.get(step, (step,)):
            add(station, name, tickets)
    for station, (received, opened) in (
        await weekly.report_counts(session=session, window=window)
    ).items():
        add(station, "received", received)
        add(station, "opened", opened)
    for station, (still_open, overdue, parked) in (
        await weekly.open_counts(session=session, window=window)
    ).items():
        add(station, "open_at_end", still_open)
        add(station, "overdue_at_end", overdue)
        add(station, "parked_at_end", parked)
    for station, (due, met) in (await weekly.deadlines(session=session, window=window)).items():
        add(station, "due", due)
        add(station, "due_met", met)
    hours: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for station, action, reported, done in await weekly.step_times(
        session=session, window=window
    ):
        hours[(station, action)].append((done - reported).total_seconds() / 3600)
    for (station, action), spans in hours.items():
        values[station].update(_times(action, spans))
    if window.station is not None:
        values = defaultdict(dict, {window.station: values.get(window.station, {})})
    counts = {station: Counts(**figures) for station, figures in values.items()}  # type: ignore[arg-type]
    summed = {
        f.name: sum(getattr(c, f.name) for c in counts.values())
        for f in fields(Counts) if isinstance(f.default, int)
    }
    for action in ("claim", "resolve"):
        spans = [h for (_, kind), some in hours.items() if kind == action for h in some]
        summed.update(_times(action, spans))
    return counts, Counts(**summed)  # type: ignore[arg-type]


def _times(action: str, spans: list[float]) -> dict[str, float | None]:
    """Median and 90th percentile of hours from report to ``action``."""
    if not spans:
        return {}
    # "inclusive": the 90th percentile lies within the observed times, as people expect.
    p90 = statistics.quantiles(spans, n=10, method="inclusive")[-1] if len(spans) > 1 else spans[0]
    return {f"{action}_hours_median": statistics.median(spans), f"{action}_hours_p90": p90}


# A reporter's answer is a rating as well as a step.
_FIGURES_OF_STEP = {
    "satisfied": ("satisfied", "rated", "closed"),
    "disputed": ("rated", "reopened"),
}


def _any(*counts: Counts | None) -> bool:
    return any(c is not None and c != Counts() for c in counts)


def _open(row: weekly.OpenRow, window: Window) -> OpenTicket:
    return OpenTicket(
        id=row.id, station_key=row.station_key, category_key=row.category_key,
        place=row.place, status=row.status, created_at=row.created_at, due_at=row.due_at,
        overdue=row.due_at is not None and row.due_at < window.end and row.status != "parked",
    )


async def _trend(
    session: AsyncSession, week: Week, station: str | None, open_at_end: int
) -> tuple[TrendPoint, ...]:
    """The 12 weeks ending with ``week``: reports opened, tickets resolved and the open
    count at each week's end, walked back from this week's count by each week's change."""
    weeks = [week.previous(back) for back in reversed(range(TREND_WEEKS))]
    counted = await weekly.trend(
        session=session, start=weeks[0].start, ends=[w.end for w in weeks], station=station
    )
    points: list[TrendPoint] = []
    still_open = open_at_end
    for some, figures in reversed(list(zip(weeks, counted, strict=True))):
        points.append(TrendPoint(some.label, figures.opened, figures.resolved, still_open))
        still_open -= figures.open_change
    return tuple(reversed(points))
