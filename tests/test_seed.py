"""`gridbot seed`: a synthetic history whose every ticket is what the bot would have left —
its events allowed by the lifecycle table, in time order, ending in the ticket's status, its
columns those the events set — the same for the same seed, refused on a database with tickets,
and bad numbers or dates answered with a clear line."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from bot.app import prepare_database
from bot.cli import app
from bot.dedup import cell_of
from bot.deployment import Deployment, load_deployment
from bot.lifecycle import FINAL_STATUSES, TRANSITIONS, Action, Role, Status
from reports.seed import (
    MESSAGE_IDS,
    UNTABLED,
    AlreadySeeded,
    SeedError,
    SeedPlan,
    SeedResult,
    parse_until,
    seed_history,
)
from storage.db import create_engine, session_factory
from storage.models import Person, Ticket, TicketEvent, TicketFollower

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"
UNTIL = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Monday 2026-11-23 00:00 in Shanghai
WORKING = {Status.ASSIGNED, Status.CLAIMED, Status.REOPENED}


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return load_deployment(SAMPLE)


async def seed(
    url: str, deployment: Deployment, *, tickets: int = 2_000, weeks: int = 8, seed: int = 1,
    append: bool = False,
) -> SeedResult:
    engine = create_engine(url)
    try:
        await prepare_database(engine, session_factory(engine), deployment)
        plan = SeedPlan(tickets=tickets, weeks=weeks, until=UNTIL, seed=seed)
        return await seed_history(engine, deployment, plan, append=append)
    finally:
        await engine.dispose()


async def load(url: str) -> tuple[list[Ticket], dict[int, list[TicketEvent]], list[Person],
                                  list[TicketFollower]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            tickets = list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())
            events: dict[int, list[TicketEvent]] = defaultdict(list)
            for event in (await session.exec(
                select(TicketEvent).order_by(col(TicketEvent.id))
            )).all():
                events[event.ticket_id].append(event)
            people = list((await session.exec(select(Person).order_by(col(Person.id)))).all())
            followers = list((await session.exec(select(TicketFollower))).all())
            return tickets, events, people, followers
    finally:
        await engine.dispose()


def problems_of(ticket: Ticket, events: list[TicketEvent], deployment: Deployment,
                reports_merged: int) -> list[str]:
    """Everything wrong with one ticket's history, as lines (none for a good ticket)."""
    found: list[str] = []

    def wrong(what: str) -> None:
        found.append(f"#{ticket.id} {ticket.status}: {what}")

    if not events:
        return [f"#{ticket.id}: no events"]
    first, last = events[0], events[-1]
    if (first.action, first.from_status, first.to_status, first.station_key) != (
        "report", None, Status.NEW, None
    ) or first.at != ticket.created_at or first.actor_id != ticket.reporter_id:
        wrong(f"starts with {first.action} {first.from_status}→{first.to_status}")
    if ticket.status != last.to_status:
        wrong(f"last event ends in {last.to_status}")
    for before, event in zip(events, events[1:], strict=False):
        if event.at < before.at:
            wrong(f"{event.action} at {event.at} before {before.action} at {before.at}")
        if event.from_status != before.to_status:
            wrong(f"{event.action} from {event.from_status} after {before.to_status}")
        if not isinstance(event.details, dict):
            wrong(f"{event.action} has details {event.details!r}")
        if event.station_key != ticket.station_key:
            wrong(f"{event.action} at station {event.station_key}")
        if event.action in UNTABLED:
            if event.from_status != event.to_status:
                wrong(f"{event.action} changed the status")
            continue
        rule = TRANSITIONS.get((Status(event.from_status), Action(event.action)))
        if rule is None or rule.target != event.to_status:
            wrong(f"{event.action} {event.from_status}→{event.to_status} is not in the table")
        elif Role(event.role) not in rule.roles:
            wrong(f"{event.role} may not {event.action}")
    if last.at >= UNTIL:
        wrong(f"an event after the end of the history: {last.at}")

    def at(action: str) -> list[datetime]:
        return [event.at for event in events if event.action == action]

    located = at(Action.LOCATE)
    category = deployment.category(ticket.category_key)
    if ticket.status == Status.DUPLICATE:
        if ticket.duplicate_of is None or ticket.due_at is not None or located:
            wrong("a merged repeat is located, due or points nowhere")
    elif ticket.duplicate_of is not None or ticket.due_at != ticket.created_at + category.sla:
        wrong(f"due {ticket.due_at}, duplicate of {ticket.duplicate_of}")
    if ticket.claimed_at != (at(Action.CLAIM) or [None])[0]:
        wrong(f"claimed_at {ticket.claimed_at}")
    if ticket.resolved_at != (at(Action.RESOLVE) or [None])[-1]:
        wrong(f"resolved_at {ticket.resolved_at}")
    closing = [e for e in events if e.action in (Action.CONFIRM, Action.AUTO_CLOSE, Action.REJECT)]
    closed = closing[-1].at if ticket.status in (Status.CLOSED, Status.REJECTED) else None
    if ticket.closed_at != closed:
        wrong(f"closed_at {ticket.closed_at}, expected {closed}")
    verdicts = [e.action for e in events if e.action in (
        Action.CONFIRM, Action.DISPUTE, Action.AUTO_CLOSE)]
    rating = {Action.CONFIRM: "satisfied", Action.DISPUTE: "unsatisfied"}.get(
        Action(verdicts[-1])) if verdicts else None
    if ticket.rating != rating:
        wrong(f"rating {ticket.rating}, expected {rating}")
    if ticket.reports != 1 + len(at("merged_in")) or reports_merged != len(at("merged_in")):
        wrong(f"{ticket.reports} reports, {reports_merged} merged into it")
    escalations = at("escalate")
    if len(escalations) > 1 or ticket.escalated_at != (escalations or [None])[0]:
        wrong(f"escalated at {escalations}, column {ticket.escalated_at}")
    rounds = [i for i, e in enumerate(events) if e.to_status in (
        Status.ASSIGNED, Status.REOPENED) and e.from_status != e.to_status]
    since = events[rounds[-1]:] if rounds else []
    if ticket.reminders_sent != sum(e.action in ("remind", "escalate") for e in since):
        wrong(f"{ticket.reminders_sent} reminders sent")
    status, next_at = Status(ticket.status), ticket.next_reminder_at
    # waiting for the chief or the reporter: looked at again after the end (a claimed ticket
    # taken out of 挂账 is not reminded any more)
    waiting = status in (Status.ASSIGNED, Status.REOPENED, Status.RESOLVED) or (
        status is Status.CLAIMED and next_at is not None
    )
    if waiting and (next_at is None or next_at < UNTIL):
        wrong(f"next reminder {next_at}")
    if (status in FINAL_STATUSES or status is Status.PARKED) and ticket.next_reminder_at:
        wrong(f"a reminder due at {ticket.next_reminder_at}")
    assert ticket.lat is not None and ticket.lon is not None
    if ticket.cell != cell_of(ticket.lat, ticket.lon) or not ticket.address:
        wrong("no place, or the wrong cell")
    return found


async def test_every_ticket_is_what_its_events_left(
    database_url: str, deployment: Deployment
) -> None:
    result = await seed(database_url, deployment)
    tickets, events, people, followers = await load(database_url)

    assert [t.id for t in tickets] == list(range(1, 2_001))
    assert result.tickets == 2_000 and result.first_id == 1 and result.last_id == 2_000
    assert result.events == sum(len(e) for e in events.values())
    merged_into = Counter(t.duplicate_of for t in tickets if t.duplicate_of is not None)
    problems = [line for t in tickets
                for line in problems_of(t, events[t.id or 0], deployment, merged_into[t.id])]
    assert problems == []
    start = UNTIL - timedelta(weeks=8)
    assert all(start <= t.created_at < UNTIL for t in tickets)
    assert [t.created_at for t in tickets] == sorted(t.created_at for t in tickets)
    assert len({(t.source_chat_id, t.source_message_id) for t in tickets}) == 2_000
    assert all(t.source_message_id > MESSAGE_IDS for t in tickets)

    # a merged repeat: a follower of the original, near it
    by_id = {t.id: t for t in tickets}
    assert {(f.ticket_id, f.via_ticket_id) for f in followers} == {
        (t.duplicate_of, t.id) for t in tickets if t.duplicate_of is not None
    }
    for ticket in tickets:
        if ticket.duplicate_of is not None:
            original = by_id[ticket.duplicate_of]
            assert original.id is not None and ticket.id is not None
            assert original.id < ticket.id and original.station_key == ticket.station_key
            assert abs((ticket.lat or 0) - (original.lat or 0)) < 2e-4
            assert events[ticket.id][-1].details["into"] == original.id
            assert ticket.id in [e.details.get("from") for e in events[original.id]]

    # people: chiefs act for their station, captains report
    roles = {p.id: p.role for p in people}
    chiefs = {p.station_key: p.id for p in people if p.role == "chief"}
    assert len(chiefs) == len(deployment.stations) and Counter(roles.values())["captain"] >= 100
    for ticket in tickets:
        assert roles[ticket.reporter_id] == "captain"
        for event in events[ticket.id or 0]:
            if event.role == Role.CHIEF:
                assert event.actor_id == chiefs[ticket.station_key]
            if event.role == Role.SYSTEM:
                assert event.actor_id is None

    # the mix a digest has to show
    statuses = Counter(t.status for t in tickets)
    actions = Counter(e.action for es in events.values() for e in es)
    assert 0.07 < statuses["duplicate"] / 2_000 < 0.14
    assert 0.015 < statuses["rejected"] / 2_000 < 0.05
    assert statuses["parked"] and actions["unpark"] and actions["reopen"] and actions["dispute"]
    assert actions["remind"] and actions["escalate"] and actions["auto_close"]
    assert actions["expect"] and actions["confirm"] > actions["dispute"]
    late = [t for t in tickets if t.resolved_at and t.due_at and t.resolved_at > t.due_at]
    open_late = [t for t in tickets if t.status in WORKING and t.due_at and t.due_at < UNTIL]
    assert late and open_late
    last_week = [t for t in tickets if t.created_at >= UNTIL - timedelta(weeks=1)]
    assert sum(t.status in WORKING for t in last_week) > 0.02 * len(last_week)
    assert sum(t.status == "closed" for t in tickets) > 0.6 * 2_000
    # hotspots: some places are reported again and again
    assert Counter(t.address for t in tickets).most_common(1)[0][1] >= 10

    # the shape of a week: daytime and weekdays
    local = [t.created_at.astimezone(deployment.zone) for t in tickets]
    day = sum(8 <= moment.hour < 20 for moment in local)
    assert day > 0.75 * len(local)
    weekdays = Counter(moment.weekday() for moment in local)
    assert min(weekdays[d] for d in range(5)) > max(weekdays[5], weekdays[6])


async def test_times_are_stored_as_the_bot_stores_them(tmp_path: Path,
                                                       deployment: Deployment) -> None:
    """SQLite compares times as text: the seed's must read exactly like the bot's own."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'seeded.db'}"
    await seed(url, deployment, tickets=50, weeks=1)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            session.add(TicketEvent(ticket_id=1, at=UNTIL, role="office", action="note",
                                    to_status="closed"))
            await session.commit()
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text(
                "SELECT at, details FROM ticketevent WHERE action IN ('note', 'report') "
                "ORDER BY id DESC LIMIT 2"
            ))).all()
            times = (await connection.execute(sa.text(
                "SELECT created_at, due_at FROM ticket WHERE id = 1"
            ))).one()
    finally:
        await engine.dispose()
    (bot_at, bot_details), (seed_at, seed_details) = rows
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
    assert re.fullmatch(pattern, bot_at) and re.fullmatch(pattern, seed_at)
    assert all(re.fullmatch(pattern, value) for value in times)
    assert bot_details == seed_details == "{}"


def dump(rows: list[Any]) -> list[dict[str, Any]]:
    return [row.model_dump() for row in rows]


async def test_the_same_seed_makes_the_same_history(
    tmp_path: Path, deployment: Deployment
) -> None:
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    await seed(urls[0], deployment, tickets=500, weeks=3)
    await seed(urls[1], deployment, tickets=500, weeks=3)
    await seed(urls[2], deployment, tickets=500, weeks=3, seed=2)
    first, second, other = [await load(url) for url in urls]
    assert dump(first[0]) == dump(second[0])
    assert [dump(first[1][n]) for n in first[1]] == [dump(second[1][n]) for n in second[1]]
    assert dump(first[2]) == dump(second[2]) and dump(first[3]) == dump(second[3])
    assert dump(first[0]) != dump(other[0])


async def test_a_second_seed_is_refused_unless_appended(
    database_url: str, deployment: Deployment
) -> None:
    await seed(database_url, deployment, tickets=300, weeks=2)
    with pytest.raises(AlreadySeeded, match="already holds 300 tickets"):
        await seed(database_url, deployment, tickets=300, weeks=2, seed=2)
    result = await seed(database_url, deployment, tickets=200, weeks=2, seed=2, append=True)
    assert (result.first_id, result.last_id) == (301, 500)
    assert result.people == 0  # the people of the first seed report again
    tickets, events, people, followers = await load(database_url)
    assert [t.id for t in tickets] == list(range(1, 501))
    assert len({p.telegram_id for p in people}) == len(people)
    event_ids = [e.id for es in events.values() for e in es]
    assert len(set(event_ids)) == len(event_ids)
    merged_into = Counter(t.duplicate_of for t in tickets if t.duplicate_of is not None)
    assert [line for t in tickets
            for line in problems_of(t, events[t.id or 0], deployment, merged_into[t.id])] == []

    # the bot's next ticket and event take the next ids (PostgreSQL's sequences moved on)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            ticket = Ticket(category_key="other", reporter_id=people[0].id or 0,
                            source_chat_id=1, source_message_id=1, created_at=UNTIL,
                            updated_at=UNTIL)
            session.add(ticket)
            await session.flush()
            event = TicketEvent(ticket_id=ticket.id or 0, at=UNTIL, role="reporter",
                                action="report", to_status="new")
            session.add(event)
            await session.commit()
            assert ticket.id == 501 and event.id == max(event_ids) + 1
    finally:
        await engine.dispose()


def test_plans_and_dates_are_checked(deployment: Deployment) -> None:
    zone = deployment.zone
    assert parse_until("2026-11-23", zone=zone) == UNTIL
    assert parse_until(" 2026-11-23T09:30 ", zone=zone) == datetime(2026, 11, 23, 1, 30,
                                                                      tzinfo=UTC)
    assert parse_until("2026-11-23T09:30+00:00", zone=zone) == datetime(2026, 11, 23, 9, 30,
                                                                          tzinfo=UTC)
    for text in ("", "yesterday", "2026-13-01", "2026-11-23 25:00", "<b>1</b>", "9" * 500):
        with pytest.raises(SeedError, match="is not a date"):
            parse_until(text, zone=zone)
    for tickets, weeks in ((0, 1), (-5, 1), (1, 0), (1, -1), (10**9, 1), (1, 10**6)):
        with pytest.raises(SeedError, match="must be between"):
            SeedPlan(tickets=tickets, weeks=weeks, until=UNTIL)
    with pytest.raises(SeedError, match="aware"):
        SeedPlan(tickets=1, weeks=1, until=datetime(2026, 11, 23))  # noqa: DTZ001


# --- through the command line ------------------------------------------------------------------


@pytest.fixture
def environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(GRIDBOT_DATA_DIR=str(tmp_path / "data"), GRIDBOT_DATABASE_URL=database_url)
    return env


def gridbot_seed(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["seed", *args], env=env)


def ticket_count(url: str) -> int:
    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                if not await connection.run_sync(
                    lambda sync: sa.inspect(sync).has_table("ticket")
                ):
                    return 0
                query = sa.select(sa.func.count()).select_from(Ticket)
                return int((await connection.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_gridbot_seed_fills_the_database_and_says_what_it_wrote(
    environment: dict[str, str], database_url: str
) -> None:
    result = gridbot_seed(environment, "--tickets", "400", "--weeks", "2", "--until",
                          "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "✓ seeded 400 tickets (#1–#400) with" in result.stdout
    assert "from 2026-11-09 00:00 to 2026-11-23 00:00 (Asia/Shanghai)" in result.stdout
    assert "tickets by status: closed" in result.stdout and "merged_in" in result.stdout
    assert ticket_count(database_url) == 400

    again = gridbot_seed(environment, "--tickets", "400", "--weeks", "2")
    assert again.exit_code == 1
    assert ("✗ the database already holds 400 tickets (up to #400): seed a fresh database, "
            "or pass --append to add after #400; nothing was written") in again.stderr
    assert ticket_count(database_url) == 400

    more = gridbot_seed(environment, "--tickets", "100", "--weeks", "1", "--append",
                        "--seed", "7")
    assert more.exit_code == 0, more.output
    assert "✓ seeded 100 tickets (#401–#500)" in more.stdout
    assert ticket_count(database_url) == 500


@pytest.mark.parametrize(("args", "says"), [
    (["--tickets", "0", "--weeks", "2"], "Invalid value for '--tickets'"),
    (["--tickets", "-3", "--weeks", "2"], "Invalid value for '--tickets'"),
    (["--tickets", "many", "--weeks", "2"], "Invalid value for '--tickets'"),
    (["--tickets", "10", "--weeks", "0"], "Invalid value for '--weeks'"),
    (["--tickets", "10"], "Missing option '--weeks'"),
    (["--weeks", "3"], "Missing option '--tickets'"),
])
def test_bad_numbers_are_refused_by_name(
    environment: dict[str, str], database_url: str, args: list[str], says: str
) -> None:
    result = gridbot_seed(environment, *args)
    assert result.exit_code == 2
    assert says in result.stderr
    assert ticket_count(database_url) == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--until", "next tuesday"], "✗ --until: 'next tuesday' is not a date: write 2026-11-23 "
                                  "or 2026-11-23T09:30; nothing was written"),
    (["--until", "2026-02-30"], "✗ --until: '2026-02-30' is not a date"),
    (["--until", "<b>2026</b>"], "✗ --until: '<b>2026</b>' is not a date"),
    (["--weeks", "5000"], "✗ weeks must be between 1 and 1040, not 5000; nothing was written"),
    (["--tickets", "999999999"], "✗ tickets must be between 1 and 20,000,000"),
    (["--config", "/nonexistent/deploy.yaml"], "/nonexistent/deploy.yaml"),
])
def test_bad_dates_and_sizes_get_one_clear_line(
    environment: dict[str, str], database_url: str, args: list[str], says: str
) -> None:
    result = gridbot_seed(environment, "--tickets", "10", "--weeks", "2", *args)
    assert result.exit_code == 1
    assert says in result.stderr
    assert "Traceback" not in result.output
    assert ticket_count(database_url) == 0
