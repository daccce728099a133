"""The weekly digest's queries: aggregates over one week of the event history.

Each query reads the week's events through ``ix_ticketevent_at`` (or the tickets' deadline
and status indexes) and the touched tickets' own events through ``ix_ticketevent_ticket_id``,
so its cost follows what happened in and after the week, not how long the history is.
A ticket's station for a step is the station recorded on that event (``station_key``); a
report is credited to the first station its ticket was placed at before the week ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Ticket, TicketEvent

EVENT = TicketEvent.__table__  # type: ignore[attr-defined]
TICKET = Ticket.__table__  # type: ignore[attr-defined]
HOTSPOTS = 10
# What "open" means, as bot.lifecycle.OPEN_STATUSES says (a test keeps the two equal): not
# yet resolved, parked (挂账) included.
OPEN = ("assigned", "claimed", "new", "parked", "reopened")


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, and the station whose figures are wanted (None: all of them)."""

    start: datetime
    end: datetime
    station: str | None = None


def _station_is(column: Any, station: str | None) -> Any:
    return sa.true() if station is None else column == station


def _place(ticket: Any = TICKET) -> Any:
    """Where a ticket is: its located address, else what the captain wrote."""
    return sa.func.coalesce(ticket.c.address, ticket.c.address_text, "")


async def _rows(session: AsyncSession, statement: Any) -> Sequence[Any]:
    return (await session.exec(statement)).all()  # type: ignore[no-any-return]


async def _one(session: AsyncSession, statement: Any) -> int:
    return int((await session.exec(statement)).one()[0] or 0)


async def step_counts(
    *, session: AsyncSession, window: Window
) -> list[tuple[str | None, str, int]]:
    """(station, step, tickets) for the window's steps, each ticket counted once per step:
    "claimed" (an assigned ticket taken on, also by answering 处理中; not coming back from
    挂账), "resolved", "closed" (after silence; a 满意 is "satisfied"), "reopened" (by the
    office; a 不满意 is "disputed"), "rejected", "merged", "escalated". An event that leaves the
    state as it was (a note, a reminder) is no step."""
    e = EVENT
    step = sa.case(
        (e.c.action == "escalate", "escalated"),
        (e.c.action == "confirm", "satisfied"),
        (e.c.action == "dispute", "disputed"),
        (e.c.from_status.is_not_distinct_from(e.c.to_status), None),
        (sa.and_(e.c.to_status == "claimed", e.c.from_status == "assigned"), "claimed"),
        (e.c.to_status == "duplicate", "merged"),
        (e.c.to_status.in_(["resolved", "closed", "reopened", "rejected"]), e.c.to_status),
        else_=None,
    ).label("step")
    steps = (
        sa.select(e.c.station_key, step, e.c.ticket_id)
        .where(e.c.at >= window.start, e.c.at < window.end,
               _station_is(e.c.station_key, window.station))
    ).subquery("steps")
    statement = (
        sa.select(steps.c.station_key, steps.c.step, sa.func.count(sa.distinct(steps.c.ticket_id)))
        .where(steps.c.step.is_not(None))
        .group_by(steps.c.station_key, steps.c.step)
    )
    return [(row[0], row[1], row[2]) for row in await _rows(session, statement)]


def _bucket(at: Any, ends: Sequence[datetime]) -> tuple[Any, Any]:
    """Which of the consecutive windows ending at ``ends`` a moment falls in (0, 1, …), and
    that window's end: windows are given by their bounds, so a week that is not 7 × 24 hours
    (a daylight-saving change) is still one week."""
    index = sa.case(*((at < end, n) for n, end in enumerate(ends)), else_=None)
    bound = sa.case(*((at < end, sa.literal(end, EVENT.c.at.type)) for end in ends), else_=None)
    return index, bound


def _reports(start: datetime, ends: Sequence[datetime]) -> Any:
    """The reports from ``start`` to the last of ``ends``: (ticket_id, bucket, station,
    merged, category_key, place, duplicate_of), one row each.

    ``bucket``: which window (see _bucket); ``station``: the first station the ticket was
    placed at before its window ended (None if it was still waiting for the office);
    ``merged``: merged into another ticket by then.
    """
    e, first, merged = EVENT.alias("e"), EVENT.alias("first"), EVENT.alias("merged")
    bucket, bound = _bucket(e.c.at, ends)
    reports = (
        sa.select(e.c.ticket_id, bucket.label("bucket"), bound.label("bound"))
        .where(e.c.at >= start, e.c.at < ends[-1], e.c.action == "report")
    ).subquery("report_events")
    station = (
        sa.select(first.c.station_key)
        .where(first.c.ticket_id == reports.c.ticket_id, first.c.station_key.is_not(None),
               first.c.at < reports.c.bound)
        .order_by(first.c.at, first.c.id)
        .limit(1)
        .scalar_subquery()
    )
    was_merged = sa.exists().where(
        merged.c.ticket_id == reports.c.ticket_id, merged.c.action == "mark_duplicate",
        merged.c.at < reports.c.bound,
    )
    t = TICKET
    return (
        sa.select(
            reports.c.ticket_id.label("ticket_id"), reports.c.bucket.label("bucket"),
            station.label("station"), sa.case((was_merged, 1), else_=0).label("merged"),
            t.c.category_key.label("category_key"), _place(t).label("place"),
            t.c.duplicate_of.label("duplicate_of"),
        )
        .select_from(reports.join(t, t.c.id == reports.c.ticket_id))
    ).subquery("reports")


def _week_reports(window: Window) -> Any:
    return _reports(window.start, [window.end])


async def report_counts(
    *, session: AsyncSession, window: Window
) -> dict[str | None, tuple[int, int]]:
    """{station: (reports received, of them not merged as repeats)}."""
    r = _week_reports(window)
    statement = (
        sa.select(r.c.station, sa.func.count(), sa.func.sum(1 - r.c.merged))
        .where(_station_is(r.c.station, window.station))
        .group_by(r.c.station)
    )
    return {row[0]: (row[1], int(row[2] or 0)) for row in await _rows(session, statement)}


async def top_categories(
    *, session: AsyncSession, window: Window, limit: int = 10
) -> list[tuple[str, int]]:
    r = _week_reports(window)
    count = sa.func.count().label("n")
    statement = (
        sa.select(r.c.category_key, count)
        .where(_station_is(r.c.station, window.station))
        .group_by(r.c.category_key)
        .order_by(count.desc(), r.c.category_key)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await _rows(session, statement)]


async def hotspots(
    *, session: AsyncSession, window: Window, limit: int = HOTSPOTS
) -> list[tuple[str, int, tuple[int, ...]]]:
    """Places reported at least twice in the window: (place, reports, ticket ids), the
    ticket ids being the tickets the reports became (a merged repeat names its original)."""
    r = _week_reports(window)
    count = sa.func.count().label("n")
    mine = sa.and_(_station_is(r.c.station, window.station), r.c.place != "")
    statement = (
        sa.select(r.c.place, count)
        .where(mine)
        .group_by(r.c.place)
        .having(count >= 2)
        .order_by(count.desc(), r.c.place)
        .limit(limit)
    )
    places = [(row[0], row[1]) for row in await _rows(session, statement)]
    if not places:
        return []
    ticket = sa.func.coalesce(r.c.duplicate_of, r.c.ticket_id)
    members = await _rows(session, sa.select(r.c.place, ticket).where(
        mine, r.c.place.in_([place for place, _ in places])
    ).distinct())
    ids: dict[str, set[int]] = {}
    for place, ticket_id in members:
        ids.setdefault(place, set()).add(ticket_id)
    return [(place, n, tuple(sorted(ids.get(place, ())))) for place, n in places]


def _state_at(moment: datetime) -> Any:
    """Every ticket reported before ``moment`` that was open then, with its state then:
    (ticket_id, station_key, status).

    A ticket nothing happened to since ``moment`` is as it is now (the status index finds the
    open ones); a ticket touched since is read from its last event before ``moment``. The cost
    is the open tickets plus the events since ``moment``.
    """
    open_now = list(OPEN)
    t, later = TICKET, EVENT.alias("later")
    untouched = (
        sa.select(t.c.id.label("ticket_id"), t.c.station_key.label("station_key"),
                  t.c.status.label("status"))
        .where(t.c.status.in_(open_now), t.c.created_at < moment,
               ~sa.exists().where(later.c.ticket_id == t.c.id, later.c.at >= moment))
    )
    since, before = EVENT.alias("since"), EVENT.alias("before")
    touched = sa.select(since.c.ticket_id).where(since.c.at >= moment)
    ranked = (
        sa.select(
            before.c.ticket_id, before.c.station_key, before.c.to_status,
            sa.func.row_number().over(
                partition_by=before.c.ticket_id,
                order_by=(before.c.at.desc(), before.c.id.desc()),
            ).label("rank"),
        )
        .where(before.c.ticket_id.in_(touched), before.c.at < moment)
    ).subquery("ranked")
    touched_then = (
        sa.select(ranked.c.ticket_id, ranked.c.station_key, ranked.c.to_status.label("status"))
        .where(ranked.c.rank == 1, ranked.c.to_status.in_(open_now))
    )
    return sa.union_all(untouched, touched_then).subquery("state")


def _overdue(state: Any, moment: datetime) -> Any:
    """Past its deadline at ``moment`` and not parked (挂账 is counted on its own)."""
    t = TICKET
    return sa.and_(t.c.due_at.is_not(None), t.c.due_at < moment, state.c.status != "parked")


async def open_counts(
    *, session: AsyncSession, window: Window
) -> dict[str | None, tuple[int, int, int]]:
    """{station: (open, overdue, parked)} when the window ended."""
    s, t = _state_at(window.end), TICKET
    overdue = sa.case((_overdue(s, window.end), 1), else_=0)
    parked = sa.case((s.c.status == "parked", 1), else_=0)
    statement = (
        sa.select(s.c.station_key, sa.func.count(), sa.func.sum(overdue), sa.func.sum(parked))
        .select_from(s.join(t, t.c.id == s.c.ticket_id))
        .where(_station_is(s.c.station_key, window.station))
        .group_by(s.c.station_key)
    )
    return {
        row[0]: (row[1], int(row[2] or 0), int(row[3] or 0))
        for row in await _rows(session, statement)
    }


@dataclass(frozen=True)
class OpenRow:
    id: int
    station_key: str | None
    category_key: str
    place: str
    status: str
    created_at: datetime
    due_at: datetime | None


async def open_tickets(
    *, session: AsyncSession, window: Window, overdue_only: bool, limit: int
) -> list[OpenRow]:
    """Tickets open when the window ended, oldest first (or most overdue first)."""
    s, t = _state_at(window.end), TICKET
    conditions = [_station_is(s.c.station_key, window.station)]
    if overdue_only:
        conditions.append(_overdue(s, window.end))
    order = (t.c.due_at, t.c.id) if overdue_only else (t.c.created_at, t.c.id)
    statement = (
        sa.select(t.c.id, s.c.station_key, t.c.category_key, _place(t), s.c.status,
                  t.c.created_at, t.c.due_at)
        .select_from(s.join(t, t.c.id == s.c.ticket_id))
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
    )
    return [OpenRow(*row) for row in await _rows(session, statement)]


async def deadlines(
    *, session: AsyncSession, window: Window
) -> dict[str | None, tuple[int, int]]:
    """{station: (deadlines that fell in the window, of them met)}.

    A deadline counts unless the ticket was merged or rejected before it; it is met when the
    ticket was resolved at or before it. The station is the ticket's at the deadline.
    """
    t, last, fix = TICKET, EVENT.alias("last"), EVENT.alias("fix")
    then = (
        sa.select(last.c.station_key, last.c.to_status)
        .where(last.c.ticket_id == t.c.id, last.c.at <= t.c.due_at)
        .order_by(last.c.at.desc(), last.c.id.desc())
        .limit(1)
    )
    station = then.with_only_columns(last.c.station_key).scalar_subquery()
    status = then.with_only_columns(last.c.to_status).scalar_subquery()
    met = sa.exists().where(
        fix.c.ticket_id == t.c.id, fix.c.action == "resolve", fix.c.at <= t.c.due_at
    )
    due = (
        sa.select(station.label("station"), status.label("status"),
                  sa.case((met, 1), else_=0).label("met"))
        .where(t.c.due_at >= window.start, t.c.due_at < window.end)
    ).subquery("due")
    statement = (
        sa.select(due.c.station, sa.func.count(), sa.func.sum(due.c.met))
        .where(sa.or_(due.c.status.is_(None), due.c.status.not_in(["duplicate", "rejected"])),
               _station_is(due.c.station, window.station))
        .group_by(due.c.station)
    )
    return {row[0]: (row[1], int(row[2] or 0)) for row in await _rows(session, statement)}


async def step_times(
    *, session: AsyncSession, window: Window
) -> list[tuple[str | None, str, datetime, datetime]]:
    """(station, "claim" | "resolve", reported at, done at) for the window's claims and
    resolutions: the few hundred rows a week has, for medians and percentiles."""
    e, t = EVENT, TICKET
    statement = (
        sa.select(e.c.station_key, e.c.action, t.c.created_at, e.c.at)
        .select_from(e.join(t, t.c.id == e.c.ticket_id))
        .where(e.c.at >= window.start, e.c.at < window.end,
               e.c.action.in_(["claim", "resolve"]),
               _station_is(e.c.station_key, window.station))
    )
    rows = await _rows(session, statement)
    return [(row[0], row[1], _aware(row[2]), _aware(row[3])) for row in rows]


def _aware(value: Any) -> datetime:
    """Core selects bypass the ORM's type on some dialects' subqueries: make UTC aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _open_change(start: datetime, ends: Sequence[datetime], station: str | None) -> Any:
    """(bucket, change of the open count) per window: an event that brought a ticket into
    the open states counts +1, one that took it out −1.

    For a station, +1 where the event left the ticket open there, −1 where the ticket was open
    there before it: that needs the station before each event, read with LAG over the events
    of the tickets the station touched (their own events, and reassignments, the only step
    that moves a ticket from one station to another)."""
    open_now = list(OPEN)
    if station is None:
        e = EVENT
        bucket, _ = _bucket(e.c.at, ends)
        arrives, leaves = e.c.to_status.in_(open_now), e.c.from_status.in_(open_now)
        return (
            sa.select(bucket.label("bucket"), sa.func.sum(
                sa.case((arrives, 1), else_=0) - sa.case((leaves, 1), else_=0)
            ))
            .where(e.c.at >= start, e.c.at < ends[-1])
            .group_by("bucket")
        )
    step, touched = EVENT.alias("step"), EVENT.alias("touched")
    previous_station = sa.func.lag(step.c.station_key).over(
        partition_by=step.c.ticket_id, order_by=(step.c.at, step.c.id)
    )
    steps = (
        sa.select(step.c.at, step.c.station_key, step.c.from_status, step.c.to_status,
                  previous_station.label("previous_station"))
        .where(
            step.c.ticket_id.in_(sa.select(touched.c.ticket_id).where(
                touched.c.at >= start, touched.c.at < ends[-1],
                sa.or_(touched.c.station_key == station, touched.c.action == "reassign"),
            )),
            step.c.at < ends[-1],
        )
    ).subquery("steps")
    arrives = sa.and_(steps.c.to_status.in_(open_now), steps.c.station_key == station)
    leaves = sa.and_(steps.c.from_status.in_(open_now), steps.c.previous_station == station)
    bucket, _ = _bucket(steps.c.at, ends)
    return (
        sa.select(bucket.label("bucket"), sa.func.sum(
            sa.case((arrives, 1), else_=0) - sa.case((leaves, 1), else_=0)
        ))
        .where(steps.c.at >= start)
        .group_by("bucket")
    )


@dataclass(frozen=True)
class TrendWeek:
    opened: int  # reports not merged as repeats by the week's end
    resolved: int  # tickets resolved in the week
    open_change: int  # open at the week's end minus open at its start


async def trend(
    *, session: AsyncSession, start: datetime, ends: Sequence[datetime], station: str | None
) -> list[TrendWeek]:
    """For consecutive windows from ``start`` ending at ``ends``: what each opened and
    resolved, and by how much the open count changed (see _open_change). Three queries over
    the windows' events, however many windows."""
    r = _reports(start, ends)
    opened = await _rows(session, sa.select(r.c.bucket, sa.func.count()).where(
        r.c.merged == 0, _station_is(r.c.station, station)
    ).group_by(r.c.bucket))
    e = EVENT
    bucket, _ = _bucket(e.c.at, ends)
    resolved = await _rows(session, sa.select(
        bucket.label("bucket"), sa.func.count(sa.distinct(e.c.ticket_id))
    ).where(
        e.c.at >= start, e.c.at < ends[-1], e.c.action == "resolve",
        _station_is(e.c.station_key, station),
    ).group_by("bucket"))
    change = await _rows(session, _open_change(start, ends, station))
    counts = [dict((row[0], int(row[1] or 0)) for row in rows)
              for rows in (opened, resolved, change)]
    return [TrendWeek(*(c.get(n, 0) for c in counts)) for n in range(len(ends))]


@dataclass(frozen=True)
class TicketRow:
    id: int
    created_at: datetime
    station_key: str | None
    category_key: str
    status: str
    place: str
    description: str
    lat: float | None
    lon: float | None
    reports: int
    due_at: datetime | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: str | None


async def week_tickets(*, session: AsyncSession, window: Window) -> list[TicketRow]:
    """The tickets reported in the window, with their state and station when it ended."""
    t, last = TICKET, EVENT.alias("last")
    then = (
        sa.select(last.c.station_key, last.c.to_status)
        .where(last.c.ticket_id == t.c.id, last.c.at < window.end)
        .order_by(last.c.at.desc(), last.c.id.desc())
        .limit(1)
    )
    station = then.with_only_columns(last.c.station_key).scalar_subquery().label("station")
    status = then.with_only_columns(last.c.to_status).scalar_subquery().label("status")
    rows = (
        sa.select(t.c.id, t.c.created_at, station, t.c.category_key, status, _place(t),
                  t.c.description, t.c.lat, t.c.lon, t.c.reports, t.c.due_at, t.c.claimed_at,
                  t.c.resolved_at, t.c.closed_at, t.c.rating)
        .where(t.c.created_at >= window.start, t.c.created_at < window.end)
    ).subquery("week")
    statement = (
        sa.select(rows).where(_station_is(rows.c.station, window.station)).order_by(rows.c.id)
    )
    result = []
    for row in await _rows(session, statement):
        values = list(row)
        values[4] = values[4] or "new"
        result.append(TicketRow(*values))
    return result
