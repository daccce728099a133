"""The digest's figures against a small week computed by hand, on every configured database.

The district is in Asia/Shanghai (UTC+8): week 2026-W47 runs from Monday 16 November 00:00
to Monday 23 November 00:00 local time, i.e. 15 Nov 16:00 – 22 Nov 16:00 UTC.

Ten tickets (F = fenyang, J = jinshui; times local):
 1  F  Mon 16 10:00 reported, claimed 12:00, resolved Tue 10:00, confirmed 满意 Tue 12:00
 2  F  Sat 21 20:00 reported, claimed Sun 08:00 (due Sun 20:00 passes), resolved in W48
 3  J  Mon 16 06:00 reported (Sunday 22:00 UTC: W46 by UTC, W47 here), claimed 09:00,
       resolved Tue 09:00, disputed 不满意 10:00, resolved Wed 09:00, auto-closed Sat 09:00
 4  F  Mon 23 07:00 reported (still Sunday in UTC): W48, not this week
 5  F  Wed 18 10:00 reported at 虎山路1号, merged into 6 at 10:30
 6  J  Wed 18 09:00 reported at 虎山路1号, rejected Thu 19
 7  F  reported in W46, claimed in W46, escalated 督办 Tue 17, still claimed
 8  J  reported in W46, parked (挂账) in W46
 9  F  reported in W45, resolved and closed in W46, reopened by the office Wed 18
10  —  Fri 20 reported without a place: waits for the office
11  J  reported in W46, reassigned to F Thu 19 (its deadline passed in W46), still assigned
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.deployment import Deployment
from bot.lifecycle import OPEN_STATUSES
from reports.figures import Counts, WeekFigures, week_figures
from reports.week import Week, WeekError
from storage import repo, weekly
from storage.db import SessionFactory, create_engine, migrate, session_factory
from storage.models import Ticket, TicketEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
W47 = Week(2026, 47, SHANGHAI)
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
SLA = {"sanitation": 24, "facilities": 72, "other": 72, "safety": 12}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 moment in Shanghai, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


# (ticket, category, place, [(when, action, from, to, station after)])
STORIES: list[tuple[int, str, str, list[tuple[datetime, str, str | None, str, str | None]]]] = [
    (1, "sanitation", "汾阳路1号", [
        (local(16, 10), "report", None, "new", None),
        (local(16, 10), "locate", "new", "assigned", "fenyang"),
        (local(16, 12), "claim", "assigned", "claimed", "fenyang"),
        (local(17, 10), "resolve", "claimed", "resolved", "fenyang"),
        (local(17, 12), "confirm", "resolved", "closed", "fenyang"),
    ]),
    (2, "sanitation", "汾阳路2号", [
        (local(21, 20), "report", None, "new", None),
        (local(21, 20), "locate", "new", "assigned", "fenyang"),
        (local(22, 8), "claim", "assigned", "claimed", "fenyang"),
        (local(22, 9), "note", "claimed", "claimed", "fenyang"),
        (local(24, 10), "resolve", "claimed", "resolved", "fenyang"),
    ]),
    (3, "facilities", "金水路3号", [
        (local(16, 6), "report", None, "new", None),
        (local(16, 6), "locate", "new", "assigned", "jinshui"),
        (local(16, 9), "claim", "assigned", "claimed", "jinshui"),
        (local(17, 9), "resolve", "claimed", "resolved", "jinshui"),
        (local(17, 10), "dispute", "resolved", "reopened", "jinshui"),
        (local(17, 11), "remind", "reopened", "reopened", "jinshui"),
        (local(18, 9), "resolve", "reopened", "resolved", "jinshui"),
        (local(21, 9), "auto_close", "resolved", "closed", "jinshui"),
    ]),
    (4, "sanitation", "汾阳路4号", [
        (local(23, 7), "report", None, "new", None),
        (local(23, 7), "locate", "new", "assigned", "fenyang"),
    ]),
    (5, "other", "虎山路1号", [
        (local(18, 10), "report", None, "new", None),
        (local(18, 10), "locate", "new", "assigned", "fenyang"),
        (local(18, 10, 30), "mark_duplicate", "assigned", "duplicate", "fenyang"),
    ]),
    (6, "other", "虎山路1号", [
        (local(18, 9), "report", None, "new", None),
        (local(18, 9), "locate", "new", "assigned", "jinshui"),
        (local(19, 9), "reject", "assigned", "rejected", "jinshui"),
    ]),
    (7, "sanitation", "汾阳路7号", [
        (local(10, 9), "report", None, "new", None),
        (local(10, 9), "locate", "new", "assigned", "fenyang"),
        (local(10, 11), "claim", "assigned", "claimed", "fenyang"),
        (local(17, 9), "escalate", "claimed", "claimed", "fenyang"),
    ]),
    (8, "facilities", "金水路8号", [
        (local(11, 9), "report", None, "new", None),
        (local(11, 9), "locate", "new", "assigned", "jinshui"),
        (local(11, 10), "claim", "assigned", "claimed", "jinshui"),
        (local(12, 10), "park", "claimed", "parked", "jinshui"),
    ]),
    (9, "sanitation", "汾阳路9号", [
        (local(5, 9), "report", None, "new", None),
        (local(5, 9), "locate", "new", "assigned", "fenyang"),
        (local(5, 10), "claim", "assigned", "claimed", "fenyang"),
        (local(9, 10), "resolve", "claimed", "resolved", "fenyang"),
        (local(9, 12), "confirm", "resolved", "closed", "fenyang"),
        (local(18, 15), "reopen", "closed", "reopened", "fenyang"),
    ]),
    (10, "safety", "", [
        (local(20, 9), "report", None, "new", None),
    ]),
    (11, "facilities", "金水路11号", [
        (local(12, 9), "report", None, "new", None),
        (local(12, 9), "locate", "new", "assigned", "jinshui"),
        (local(19, 9), "reassign", "assigned", "assigned", "fenyang"),
    ]),
]


def ticket_of(number: int, category: str, place: str, story: list[Any], reporter: int) -> Ticket:
    """The ticket as the bot would have left it after its story (the last step's state)."""
    created, last = story[0][0], story[-1]
    stamps: dict[str, datetime] = {}
    for when, action, _, to, _station in story:
        if to == "claimed" and action == "claim":
            stamps["claimed_at"] = when
        elif to == "resolved":
            stamps["resolved_at"] = when
        elif to in ("closed", "rejected", "duplicate"):
            stamps["closed_at"] = when
    placed = last[4] is not None
    return Ticket(
        id=number, status=last[3], category_key=category, station_key=last[4],
        reporter_id=reporter, description=f"问题{number}", address=place or None,
        source_chat_id=-1001000000002, source_message_id=number, created_at=created,
        updated_at=last[0], due_at=created + timedelta(hours=SLA[category]) if placed else None,
        reports=2 if number == 6 else 1,
        rating="satisfied" if number in (1, 9) else None, **stamps,
    )


@pytest.fixture
async def sessions(database_url: str, deployment: Deployment) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        await repo.sync_stations(session=session, stations=[
            (s.key, s.name, s.chief) for s in deployment.stations
        ])
        reporter = await repo.upsert_person(
            session=session, telegram_id=555, name="老王", username=None, language="zh_CN",
            now=NOW,
        )
        await session.flush()
        for number, category, place, story in STORIES:
            session.add(ticket_of(number, category, place, story, reporter.id or 0))
        await session.flush()
        merged = await session.get(Ticket, 5)
        assert merged is not None
        merged.duplicate_of = 6
        session.add(merged)
        for number, _, _, story in STORIES:
            for when, action, before, after, station in story:
                session.add(TicketEvent(
                    ticket_id=number, at=when, station_key=station, role="system",
                    action=action, from_status=before, to_status=after,
                ))
        await session.commit()
    yield sessions
    await engine.dispose()


async def figures_for(
    sessions: SessionFactory, deployment: Deployment, week: Week = W47,
    station: str | None = None,
) -> WeekFigures:
    async with sessions() as session:
        return await week_figures(
            session=session, deployment=deployment, week=week, station=station, now=NOW
        )


def station(figures: WeekFigures, key: str | None) -> Counts:
    return next(s.this for s in figures.stations if s.key == key)


async def test_the_districts_week_as_counted_by_hand(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment)
    total = figures.total
    assert (total.received, total.opened, total.merged) == (6, 5, 1)
    assert (total.claimed, total.resolved, total.closed) == (3, 2, 2)
    assert (total.reopened, total.rejected, total.escalated) == (2, 1, 1)
    assert (total.open_at_end, total.overdue_at_end, total.parked_at_end) == (6, 4, 1)
    assert (total.due, total.due_met, total.compliance) == (3, 2, pytest.approx(2 / 3))
    assert (total.satisfied, total.rated, total.satisfaction) == (1, 2, 0.5)
    # claims after 2, 12 and 3 hours; resolutions after 24, 27 and 51 hours
    assert total.claim_hours_median == pytest.approx(3)
    assert total.claim_hours_p90 == pytest.approx(10.2)
    assert total.resolve_hours_median == pytest.approx(27)
    assert total.resolve_hours_p90 == pytest.approx(46.2)


async def test_each_station_gets_its_own_steps(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment)
    fenyang, jinshui, waiting = (
        station(figures, "fenyang"), station(figures, "jinshui"), station(figures, None)
    )
    assert (fenyang.received, fenyang.opened, fenyang.merged) == (3, 2, 1)
    assert (fenyang.claimed, fenyang.resolved, fenyang.closed, fenyang.reopened) == (2, 1, 1, 1)
    assert (fenyang.open_at_end, fenyang.overdue_at_end, fenyang.escalated) == (4, 4, 1)
    assert (fenyang.due, fenyang.due_met) == (2, 1)
    assert (fenyang.claim_hours_median, fenyang.claim_hours_p90) == (7, pytest.approx(11))
    assert (jinshui.received, jinshui.opened, jinshui.rejected) == (2, 2, 1)
    assert (jinshui.resolved, jinshui.closed, jinshui.reopened) == (1, 1, 1)
    assert (jinshui.open_at_end, jinshui.overdue_at_end, jinshui.parked_at_end) == (1, 0, 1)
    assert (jinshui.due, jinshui.due_met, jinshui.satisfaction) == (1, 1, 0.0)
    assert jinshui.resolve_hours_median == pytest.approx(39)
    # the report without a place is the office's: its own row
    assert (waiting.received, waiting.open_at_end) == (1, 1)
    # every station of the deployment has a row, even a quiet one
    assert [s.key for s in figures.stations][:8] == [s.key for s in deployment.stations]
    assert station(figures, "dongli") == Counts()


async def test_lists_categories_hotspots_and_the_oldest_open(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment)
    assert figures.categories == (
        ("other", 2), ("sanitation", 2), ("facilities", 1), ("safety", 1)
    )
    assert [(h.place, h.reports, h.ticket_ids) for h in figures.hotspots] == [
        ("虎山路1号", 2, (6,))
    ]
    assert [t.id for t in figures.oldest_open] == [9, 7, 8, 11, 10, 2]
    assert [(t.id, t.status) for t in figures.overdue] == [
        (9, "reopened"), (7, "claimed"), (11, "assigned"), (2, "claimed")
    ]
    # the week's own tickets, as they stood when it ended (4 belongs to the next week)
    assert [(t.id, t.status) for t in figures.tickets] == [
        (1, "closed"), (2, "claimed"), (3, "closed"), (5, "duplicate"), (6, "rejected"),
        (10, "new"),
    ]


async def test_compares_with_the_week_before_and_trends_back(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment)
    before = figures.previous_total
    # W46: tickets 7, 8 and 11 reported, 7 and 8 claimed, 8 parked, 9 resolved and confirmed
    assert (before.received, before.claimed, before.resolved, before.closed) == (3, 2, 1, 1)
    assert (before.open_at_end, before.parked_at_end) == (3, 1)
    trend = {p.week: p for p in figures.trend}
    assert len(figures.trend) == 12 and figures.trend[-1].week == "2026-W47"
    assert (trend["2026-W47"].opened, trend["2026-W47"].resolved) == (5, 2)
    assert trend["2026-W47"].open_at_end == 6
    # walked back by each week's flow, it meets the count made directly for W46
    assert trend["2026-W46"].open_at_end == before.open_at_end == 3
    assert trend["2026-W45"].open_at_end == 1  # ticket 9, reported in W45
    assert trend["2026-W44"].open_at_end == 0


async def test_the_next_week_sees_what_happened_at_its_start(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment, week=W47.next())
    # 4 was reported on Monday 07:00 local, still Sunday in UTC
    assert figures.total.received == 1
    assert figures.total.resolved == 1  # 2, in W48


async def test_a_stations_digest_is_that_station_alone(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment, station="fenyang")
    assert [s.key for s in figures.stations] == ["fenyang"]
    assert figures.total == station(figures, "fenyang")
    assert (figures.total.received, figures.total.open_at_end) == (3, 4)
    assert {t.id for t in figures.tickets} == {1, 2, 5}
    assert {t.id for t in figures.oldest_open} == {9, 7, 11, 2}
    assert figures.hotspots == ()  # 虎山路1号 was reported once here
    # 11 came over from jinshui in W47: before it, fenyang had 7 open
    assert figures.trend[-2].open_at_end == figures.previous_total.open_at_end == 1


async def test_a_reassigned_ticket_leaves_its_old_station_in_the_trend(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment, station="jinshui")
    assert figures.total.open_at_end == 1  # 8, parked; 11 went to fenyang
    assert figures.trend[-2].open_at_end == figures.previous_total.open_at_end == 2


async def test_the_same_week_gives_the_same_figures_later(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    first = await figures_for(sessions, deployment)
    async with sessions() as session:  # life goes on: ticket 7 is resolved a month later
        session.add(TicketEvent(
            ticket_id=7, at=local(30, 9) + timedelta(days=20), station_key="jinshui",
            role="chief", action="resolve", from_status="claimed", to_status="resolved",
        ))
        ticket = await session.get(Ticket, 7)
        assert ticket is not None
        ticket.status, ticket.station_key = "resolved", "jinshui"
        session.add(ticket)
        await session.commit()
    again = await figures_for(sessions, deployment)
    assert again.total == first.total
    assert again.stations == first.stations
    assert again.trend == first.trend


async def test_an_empty_week_is_all_zero(
    sessions: SessionFactory, deployment: Deployment
) -> None:
    figures = await figures_for(sessions, deployment, week=Week(2025, 1, SHANGHAI))
    assert figures.total == Counts()
    assert figures.total.compliance is None and figures.total.satisfaction is None
    assert figures.tickets == () and figures.hotspots == () and figures.oldest_open == ()


def test_open_means_what_the_lifecycle_says() -> None:
    assert set(weekly.OPEN) == {str(s) for s in OPEN_STATUSES}


@pytest.mark.parametrize(
    ("text", "label"),
    [("2026-W47", "2026-W47"), ("2026w47", "2026-W47"), (" 2026-W01 ", "2026-W01"),
     ("last", "2026-W48"), ("", "2026-W48"), ("this", "2026-W49"), ("2020-W53", "2020-W53")],
)
def test_weeks_are_read_as_written(text: str, label: str) -> None:
    assert Week.parse(text, tz=SHANGHAI, now=NOW).label == label


@pytest.mark.parametrize(
    "text", ["2026-W54", "2026-W00", "2025-W53", "yesterday", "2026-47", "<b>2026-W47</b>",
             "2026-W47; DROP TABLE ticket", "9" * 500]
)
def test_weeks_that_do_not_exist_are_refused(text: str) -> None:
    with pytest.raises(WeekError):
        Week.parse(text, tz=SHANGHAI, now=NOW)


def test_a_week_is_local_monday_to_monday() -> None:
    assert W47.start == datetime(2026, 11, 15, 16, 0, tzinfo=UTC)
    assert W47.end == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert Week.containing(local(23, 7), tz=SHANGHAI).label == "2026-W48"
    assert Week(2021, 1, SHANGHAI).previous().label == "2020-W53"
