"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and a running world.

A *world* is the local Bot API emulator, the real aiogram bot polling it, the sample
deployment, and the people of the demo district: captains, chiefs, the street office.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from pydantic import SecretStr
from redis import Redis
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.app import Gridbot, build
from bot.deployment import Deployment, load_deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import Group, User
from bot.settings import Settings
from storage import repo
from storage.models import OutboxMessage, ReceivedUpdate, Ticket, TicketEvent

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"
TOKEN = "123456789:AAEmulatorTokenForTheGridbotTests_xyz"
POSTGRES_URL = os.environ.get("GRIDBOT_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("GRIDBOT_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("GRIDBOT_TEST_REDIS_URL")
REQUIRE_REDIS = os.environ.get("GRIDBOT_REQUIRE_REDIS") == "1"

DATABASES = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "GRIDBOT_REQUIRE_POSTGRES=1 but GRIDBOT_TEST_POSTGRES_URL is not set: "
            "CI must exercise PostgreSQL, not skip it"
        )
    if REQUIRE_REDIS and not REDIS_URL:
        raise pytest.UsageError(
            "GRIDBOT_REQUIRE_REDIS=1 but GRIDBOT_TEST_REDIS_URL is not set: "
            "CI must exercise Redis, not skip it"
        )


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gridbot.db'}"
        return
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    name = f"gridbot_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """The Redis server CI starts (GRIDBOT_TEST_REDIS_URL); tests needing it skip elsewhere."""
    if not REDIS_URL:
        pytest.skip("GRIDBOT_TEST_REDIS_URL is not set (.ci/run starts a Redis server)")
    return REDIS_URL


@pytest.fixture
def redis_fsm(redis_url: str) -> Iterator[Callable[[], RedisStorage]]:
    """FSM storages on the test Redis, under a key prefix of this test's own that is deleted
    afterwards. Each call connects anew, as a restarted bot does, to the same keys."""
    prefix = f"gridbot-test-{uuid.uuid4().hex[:12]}"

    def storage() -> RedisStorage:
        return RedisStorage.from_url(redis_url, key_builder=DefaultKeyBuilder(prefix=prefix))

    yield storage
    with Redis.from_url(redis_url) as redis:
        keys = list(redis.scan_iter(match=f"{prefix}:*"))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def deployment() -> Deployment:
    return load_deployment(SAMPLE)


def sample_deployment_with(directory: Path, **changes: Any) -> Deployment:
    """The sample deployment with some top-level sections replaced, written to ``directory``."""
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    here = SAMPLE.parent
    for station in data["stations"]:
        station["area"] = str(here / station["area"])
    data["gazetteer"] = str(here / data["gazetteer"])
    if data.get("routing", {}).get("boundary"):
        data["routing"]["boundary"] = str(here / data["routing"]["boundary"])
    data.update(changes)
    path = directory / "deployment.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_deployment(path)


class Clock:
    """The bot's clock, moved by tests instead of sleeping; follows real time until set."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        self.fixed = moment


@dataclass
class World:
    emulator: BotAPIEmulator
    app: Gridbot
    clock: Clock
    intake: Group
    other_intake: Group
    office: Group
    stranger_group: Group
    captain: User
    captain2: User
    chiefs: dict[str, User]

    async def tickets(self) -> list[Ticket]:
        async with self.app.sessions() as session:
            return list((await session.exec(select(Ticket).order_by(Ticket.id))).all())

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.app.sessions() as session:
            found = await session.get(Ticket, ticket_id)
            assert found is not None
            return found

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        async with self.app.sessions() as session:
            query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
            return list((await session.exec(query.order_by(TicketEvent.id))).all())

    async def outbox(self) -> list[OutboxMessage]:
        async with self.app.sessions() as session:
            return list((await session.exec(select(OutboxMessage))).all())

    def said_in(self, chat: Group | User) -> list[str]:
        """Everything the bot has said in a chat so far (texts and captions)."""
        return [m.body for m in self.emulator.sent if m.chat_id == chat.id]

    async def settle(self, *, deferred_too: bool = False) -> None:
        """Every update taken and handled, and every due outbox message dealt with; with
        ``deferred_too``, also those a 429 put off (their time comes on the real clock)."""
        for _ in range(500):
            await self.emulator.wait_until_idle()
            if await self._quiet() and not (deferred_too and await self._deferred()):
                return
            self.app.sender.wake()
            await asyncio.wait_for(self.app.sender.idle.wait(), timeout=10)
            await asyncio.sleep(0.01)  # let a handler that is mid-way reach its commit
        raise AssertionError(f"the bot did not settle: {await self._unsettled()}")

    async def _unsettled(self) -> str:
        """What is still waiting: updates not taken or not handled, messages due."""
        async with self.app.sessions() as session:
            unhandled = await session.exec(
                select(ReceivedUpdate.update_id).where(col(ReceivedUpdate.handled_at).is_(None))
            )
            due = await repo.due_messages(session=session, now=self.clock(), limit=20)
        return (
            f"updates not taken {[u['update_id'] for u in self.emulator.pending_updates()]}, "
            f"not handled {list(unhandled.all())}, messages due "
            f"{[(m.id, m.chat_id, m.kind, m.status, m.attempts, m.last_error) for m in due]}"
        )

    async def _deferred(self) -> bool:
        return any(m.status == "pending" for m in await self.outbox())

    async def _quiet(self) -> bool:
        if self.emulator.pending_updates():
            return False
        async with self.app.sessions() as session:
            unhandled = await session.exec(
                select(ReceivedUpdate).where(col(ReceivedUpdate.handled_at).is_(None))
            )
            if unhandled.first() is not None:
                return False
            due = await repo.due_messages(session=session, now=self.clock(), limit=1)
            return not due


@pytest.fixture
async def world(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[World]:
    async with running_world(database_url, deployment, tmp_path) as world:
        yield world


async def district_people(emulator: BotAPIEmulator, deployment: Deployment) -> dict[str, Any]:
    """The district's people and chats on the emulator, named as World holds them: two
    captains, each station's chief (who has pressed Start), two intake groups, the street
    office and a group that is not the district's, everyone a member of every group."""
    captain = emulator.user(200000001, "王阿姨", language_code="zh-hans")
    captain2 = emulator.user(200000002, "李大爷", language_code="zh-hans")
    chiefs = {
        s.key: emulator.user(s.chief, f"{s.name[:3]}站长", language_code="zh-hans")
        for s in deployment.stations
    }
    members = [captain, captain2, *chiefs.values()]
    for chief in chiefs.values():
        await chief.start_bot()
    return {
        "captain": captain, "captain2": captain2, "chiefs": chiefs,
        "intake": emulator.group(-1001000000002, "汾阳路片区报事群", members=members),
        "other_intake": emulator.group(-1001000000003, "虎山路片区报事群", members=members),
        "office": emulator.group(-1001000000001, "兴城路街道办", members=members),
        "stranger_group": emulator.group(-1001000000099, "广场舞队", members=members),
    }  # fmt: skip


@asynccontextmanager
async def running_world(
    database_url: str, deployment: Deployment, tmp_path: Path, *, privacy_mode: bool = False,
    floods_refused: bool = False, paced: bool = False, fsm_storage: BaseStorage | None = None,
) -> AsyncIterator[World]:
    """The emulator, the bot polling it, and the district's people; stopped on exit.

    ``floods_refused``: the emulator answers floods with 429 as Telegram does; ``paced``: the
    bot paces its sending to Telegram's limits. Both are off by default so tests run fast.
    ``fsm_storage``: where conversation state lives (default: in memory).
    """
    async with BotAPIEmulator(realistic_limits=floods_refused) as emulator:
        emulator.add_bot(
            TOKEN, username="gridbot_test_bot", can_read_all_group_messages=not privacy_mode
        )
        people = await district_people(emulator, deployment)
        clock = Clock()
        settings = Settings(
            bot_token=SecretStr(TOKEN),
            api_base=emulator.base_url,
            data_dir=tmp_path / "data",
            database_url=database_url,
            send_limits=paced,
        )
        app = build(
            settings, deployment, clock=clock, album_quiet=0.3, sender_poll_interval=0.1,
            reminder_tick=timedelta(0),  # tests move the clock and tick by hand
            fsm_storage=fsm_storage,
        )
        polling = asyncio.create_task(
            app.dp.start_polling(app.bot, handle_signals=False, polling_timeout=1)
        )
        await asyncio.wait_for(app.started.wait(), timeout=20)
        world = World(emulator=emulator, app=app, clock=clock, **people)
        await world.settle()  # the chiefs' /start greetings
        try:
            yield world
        finally:
            await app.dp.stop_polling()
            await asyncio.wait_for(polling, timeout=20)


async def office_member(world: World) -> User:
    """A street office clerk: a Person with role "office", made directly in the database."""
    clerk = world.emulator.user(300000001, "街道办小张", language_code="zh-hans")
    await clerk.start_bot()
    await world.emulator.wait_for(clerk)  # the greeting
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=clerk.id)
        assert person is not None
        person.role = "office"
        session.add(person)
        await session.commit()
    return clerk
