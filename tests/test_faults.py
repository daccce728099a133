"""Fault tests with real processes: kill -9 mid-way, restart, and count what happened.

The scheduler and the bot run as separate `python -m bot` processes against this test's
database and its Bot API emulator, with the real clock (no quiet hours in this deployment,
so the time of day cannot matter).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from bot.app import build, prepare_database
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import User
from bot.settings import Settings
from storage.db import create_engine, session_factory
from storage.models import Person, Ticket, TicketEvent

from conftest import TOKEN, sample_deployment_with
from factories import make_jpeg
from processes import GridbotProcess, wait_until

INTAKE = -1001000000002
NO_QUIET_HOURS = {"first_after": "2h", "every": "4h", "escalate_after": 3}
REMINDER = re.compile(r"提醒（第 (\d+) 次）：工单 #(\d+)")


@pytest.fixture
def district(tmp_path: Path) -> Deployment:
    return sample_deployment_with(tmp_path, reminders=NO_QUIET_HOURS)


def process_env(database_url: str, deployment: Deployment, **extra: str) -> dict[str, str]:
    return {
        "GRIDBOT_DATABASE_URL": database_url,
        "GRIDBOT_CONFIG": str(deployment.base_dir / "deployment.yaml"),
        "GRIDBOT_TICK_SECONDS": "0.5",
        "GRIDBOT_STANDBY_RETRY_SECONDS": "0.3",
        "GRIDBOT_LOG_LEVEL": "INFO",
        "GRIDBOT_SEND_LIMITS": "false",  # the emulator is not Telegram: count, do not pace
        **extra,
    }


async def seed_due_tickets(
    database_url: str, deployment: Deployment, *, first: int, count: int
) -> None:
    """``count`` assigned tickets whose first reminder is a minute overdue."""
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await prepare_database(engine, sessions, deployment)
        async with sessions() as session:
            reporter = (
                await session.exec(select(Person).where(Person.telegram_id == 200000001))
            ).first()
            if reporter is None:
                reporter = Person(telegram_id=200000001, name="王阿姨", created_at=now)
                session.add(reporter)
                await session.flush()
            stations = [s.key for s in deployment.stations]
            rows = [
                {
                    "status": "assigned", "category_key": "other", "reporter_id": reporter.id,
                    "station_key": stations[n % len(stations)], "description": "路灯不亮",
                    "address": f"汾阳路{n}号", "source_chat_id": INTAKE,
                    "source_message_id": n, "created_at": now - timedelta(hours=3),
                    "updated_at": now - timedelta(hours=3), "due_at": now + timedelta(days=3),
                    "next_reminder_at": now - timedelta(minutes=1),
                }
                for n in range(first, first + count)
            ]  # fmt: skip
            await session.exec(sa.insert(Ticket), params=rows)  # type: ignore[call-overload]
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's own connection to the database the processes share."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def reminders_written(ledger: AsyncEngine) -> Counter[int]:
    """Reminder events per ticket (written in the same transaction as the outbox message)."""
    async with session_factory(ledger)() as session:
        rows = await session.exec(
            select(TicketEvent.ticket_id).where(col(TicketEvent.action) == "remind")
        )
        return Counter(rows.all())


async def wait_for_reminders(
    ledger: AsyncEngine, total: int, *, processes: list[GridbotProcess], within: float = 120
) -> Counter[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        written = await reminders_written(ledger)
        if sum(written.values()) >= total:
            await asyncio.sleep(1.5)  # three more ticks: nothing further may appear
            return await reminders_written(ledger)
        logs = "\n".join(p.tail() for p in processes)
        assert loop.time() < deadline, f"{sum(written.values())}/{total} reminders\n{logs}"
        assert any(p.alive for p in processes), f"every scheduler died\n{logs}"
        await asyncio.sleep(0.2)


def leader(processes: list[GridbotProcess]) -> GridbotProcess:
    [leading] = [p for p in processes if "leading scheduler" in p.output()]
    return leading


async def test_killing_the_scheduler_mid_tick_neither_loses_nor_doubles_a_reminder(
    database_url: str, district: Deployment, tmp_path: Path, ledger: AsyncEngine
) -> None:
    due = 2000
    await seed_due_tickets(database_url, district, first=1, count=due)
    env = process_env(database_url, district)
    first = await GridbotProcess("scheduler", env=env, log=tmp_path / "first.log").start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not sum((await reminders_written(ledger)).values()):
            assert first.alive and loop.time() < deadline, first.tail()
            await asyncio.sleep(0.005)
    finally:
        first.kill()
        await first.reap()
    interrupted = sum((await reminders_written(ledger)).values())
    assert 0 < interrupted < due, "the tick ended before it could be interrupted"

    second = await GridbotProcess("scheduler", env=env, log=tmp_path / "second.log").start()
    try:
        written = await wait_for_reminders(ledger, due, processes=[second])
    finally:
        assert await second.stop() == 0, second.tail()
    assert len(written) == due and set(written.values()) == {1}

    # and through the bot's outbox, each chief hears of each of their tickets once
    async with delivering(database_url, district, tmp_path) as (emulator, chiefs):
        await wait_until(lambda: len(heard(emulator, chiefs)) >= due)
        told = heard(emulator, chiefs)
    assert len(told) == due and set(Counter(told).values()) == {1}


async def test_two_schedulers_on_one_database_remind_once_and_a_standby_takes_over(
    database_url: str, district: Deployment, tmp_path: Path, ledger: AsyncEngine
) -> None:
    env = process_env(database_url, district)
    await seed_due_tickets(database_url, district, first=1, count=300)
    schedulers = [
        await GridbotProcess("scheduler", env=env, log=tmp_path / f"s{n}.log").start()
        for n in (1, 2)
    ]
    try:
        written = await wait_for_reminders(ledger, 300, processes=schedulers)
        assert len(written) == 300 and set(written.values()) == {1}

        leading = leader(schedulers)
        leading.kill()
        await leading.reap()
        [standby] = [p for p in schedulers if p is not leading]
        await seed_due_tickets(database_url, district, first=301, count=300)
        written = await wait_for_reminders(ledger, 600, processes=[standby])
        assert len(written) == 600 and set(written.values()) == {1}
        assert "leading scheduler" in standby.output()
    finally:
        for process in schedulers:
            if process.alive:
                await process.stop()


async def test_killing_the_bot_during_a_burst_of_50_reports_loses_and_doubles_none(
    database_url: str, district: Deployment, tmp_path: Path, ledger: AsyncEngine
) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        captains = [emulator.user(200000100 + n, f"楼院长{n}") for n in range(10)]
        intake = emulator.group(INTAKE, "汾阳路片区报事群", members=captains)
        env = process_env(
            database_url, district, GRIDBOT_BOT_TOKEN=TOKEN,
            GRIDBOT_API_BASE=emulator.base_url, GRIDBOT_DATA_DIR=str(tmp_path / "data"),
        )  # fmt: skip
        first = await GridbotProcess("run", env=env, log=tmp_path / "first.log").start()
        await wait_until(lambda: emulator.calls["getUpdates"] > 0, within=60)

        async def report(n: int) -> None:
            captain = captains[n % len(captains)]
            await captain.send_photo(
                intake, make_jpeg(seed=n), caption=f"汾阳路{n + 1}号 第{n + 1}处路灯不亮"
            )

        burst = asyncio.gather(*(report(n) for n in range(50)))
        try:
            await wait_until(lambda: len(acks(emulator)) >= 5, within=60)
        finally:
            first.kill()
            await first.reap()
            await burst
        assert len(acks(emulator)) < 50, "the burst was over before the kill"

        second = await GridbotProcess("run", env=env, log=tmp_path / "second.log").start()
        try:
            await wait_until(lambda: len(set(acks(emulator))) >= 50, within=120)
        finally:
            assert await second.stop() == 0, second.tail()

    async with session_factory(ledger)() as session:
        tickets = (await session.exec(select(Ticket))).all()
        assert (await session.exec(select(func.count()).select_from(Person))).one() >= 10
    assert len(tickets) == 50
    assert len({t.source_message_id for t in tickets}) == 50
    assert sorted(set(acks(emulator))) == list(range(1, 51))


def acks(emulator: BotAPIEmulator) -> list[int]:
    """Ticket numbers the bot announced in the intake group."""
    numbers = []
    for message in emulator.sent:
        if message.chat_id == INTAKE and (found := re.search(r"#(\d+)", message.body)):
            numbers.append(int(found.group(1)))
    return numbers


def heard(emulator: BotAPIEmulator, chiefs: list[User]) -> list[int]:
    """Ticket numbers of the reminders the chiefs received."""
    ids = {chief.id for chief in chiefs}
    return [
        int(found.group(2))
        for m in emulator.sent
        if m.chat_id in ids and (found := REMINDER.search(m.body))
    ]


@asynccontextmanager
async def delivering(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[tuple[BotAPIEmulator, list[User]]]:
    """The emulator with the district's chiefs, and a bot sending the outbox to them."""
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        chiefs = [emulator.user(s.chief, f"{s.name[:3]}站长") for s in deployment.stations]
        for chief in chiefs:
            await chief.start_bot()
        emulator.group(-1001000000001, "兴城路街道办", members=chiefs)
        settings = Settings(
            bot_token=SecretStr(TOKEN), api_base=emulator.base_url,
            data_dir=tmp_path / "data", database_url=database_url, send_limits=False,
        )  # fmt: skip
        app = build(settings, deployment, reminder_tick=timedelta(0))
        app.sender.start()
        try:
            yield emulator, chiefs
        finally:
            await app.sender.stop()
            await app.bot.session.close()
            await app.engine.dispose()
