"""Acceptance for scaling out: two `gridbot webhook` workers and two `gridbot scheduler`
processes on one PostgreSQL database and one Redis are one bot.

Telegram's side is the emulator in webhook mode behind a balancer that misbehaves as
Telegram and load balancers do: every update goes to one worker and, at the same moment, to
the other, and every second one is posted once more after it was answered (a redelivery).
Through it comes a burst of photo reports from many captains at once, an album, a guided
report in private chat (each step to both workers) and chiefs claiming their cards. Then
every ticket falls due for a reminder while both schedulers run.

Counted afterwards in the database and in what the emulator received: exactly one ticket
per report, each acknowledged once, each claim taken once, each reminder written and
delivered once.
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import Group, User
from bot.emulator.records import BotMessage
from bot.webhook import SECRET_HEADER, update_path
from storage import repo
from storage.db import create_engine, session_factory
from storage.models import Ticket, TicketEvent

from conftest import SAMPLE, TOKEN, sample_deployment_with
from factories import make_jpeg
from processes import GridbotProcess, free_port

SECRET = "scale-workers-Secret_0123456789"
INTAKE = -1001000000002
NO_QUIET_HOURS = {"first_after": "2h", "every": "4h", "escalate_after": 3}
REMINDER = re.compile(r"提醒（第 (\d+) 次）：工单 #(\d+)")
ACK = re.compile(r"#(\d+)")
CAPTAINS = 12
REPORTS_EACH = 2
WAIT = 60.0  # generous: four processes and the test share two cores


@dataclass
class Balancer:
    """What the emulator's webhook posts to: each update to one worker and at once to the
    other; every second update also posted again, to the first, once it was answered."""

    ports: list[int]
    client: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)
    posted: int = 0
    redeliveries: set[asyncio.Task[int]] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        turn, self.posted = self.posted, self.posted + 1
        first, second = self.ports[turn % 2], self.ports[(turn + 1) % 2]
        headers = {
            "Content-Type": "application/json",
            SECRET_HEADER: request.headers[SECRET_HEADER],
        }
        answers = await asyncio.gather(
            self.post(first, request.path, body, headers),
            self.post(second, request.path, body, headers),
        )
        if turn % 2 == 0:
            again = asyncio.create_task(self.post(first, request.path, body, headers))
            self.redeliveries.add(again)
        return web.Response(status=min(answers))

    async def post(self, port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
        async with self.client.post(
            f"http://127.0.0.1:{port}{path}", data=body, headers=headers
        ) as answer:
            await answer.read()
            self.statuses[answer.status] += 1
            return answer.status


@dataclass
class Cluster:
    emulator: BotAPIEmulator
    captains: list[User]
    chiefs: dict[str, User]
    intake: Group
    balancer: Balancer
    processes: list[GridbotProcess]
    ledger: AsyncEngine

    @property
    def schedulers(self) -> list[GridbotProcess]:
        return [p for p in self.processes if p.args[0] == "scheduler"]

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in self.processes)

    async def until(
        self, condition: Callable[[], Any], what: str, detail: Callable[[], object] = str
    ) -> None:
        """Wait for a condition (a function, or a coroutine function) on real time: the
        processes run on the machine's clock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            done = condition()
            if asyncio.iscoroutine(done):
                done = await done
            if done:
                return
            dead = [p.log.name for p in self.processes if not p.alive]
            assert not dead, f"{dead} died while waiting for {what}\n{self.logs()}"
            assert loop.time() < deadline, (
                f"timed out waiting for {what} ({detail()})\n{self.logs()}"
            )
            await asyncio.sleep(0.1)

    async def said(self, user: User, contains: str) -> BotMessage:
        return await self.emulator.wait_for(user, contains=contains, timeout=WAIT)

    async def tickets(self) -> list[Ticket]:
        async with session_factory(self.ledger)() as session:
            return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())

    async def events(self, action: str) -> Counter[int]:
        async with session_factory(self.ledger)() as session:
            rows = await session.exec(
                select(TicketEvent.ticket_id).where(col(TicketEvent.action) == action)
            )
            return Counter(rows.all())

    def acks(self) -> list[int]:
        """Ticket numbers the bot announced in the intake group, one per announcement."""
        return [
            int(found.group(1))
            for m in self.emulator.sent
            if m.chat_id == INTAKE and m.method == "sendMessage"
            and (found := ACK.search(m.body))
        ]  # fmt: skip

    def reminders_heard(self) -> list[int]:
        ids = {chief.id for chief in self.chiefs.values()}
        return [
            int(found.group(2))
            for m in self.emulator.sent
            if m.chat_id in ids and (found := REMINDER.search(m.body))
        ]


async def healthy(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/healthz") as answer,
        ):
            return answer.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite is the one-process default")
    return database_url


@asynccontextmanager
async def cluster(
    database_url: str, redis_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[Cluster]:
    prefix = f"gridbot-test-{uuid.uuid4().hex[:12]}"  # albums and forms of this test only
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        captains = [
            emulator.user(200000100 + n, f"楼院长{n}", language_code="zh-hans")
            for n in range(CAPTAINS)
        ]
        chiefs = {
            s.key: emulator.user(s.chief, f"{s.name[:3]}站长", language_code="zh-hans")
            for s in deployment.stations
        }
        intake = emulator.group(INTAKE, "汾阳路片区报事群", members=[*captains, *chiefs.values()])
        emulator.group(-1001000000001, "兴城路街道办", members=list(chiefs.values()))
        env = {
            "GRIDBOT_DATABASE_URL": database_url, "GRIDBOT_REDIS_URL": redis_url,
            "GRIDBOT_REDIS_PREFIX": prefix,
            "GRIDBOT_CONFIG": str(deployment.base_dir / "deployment.yaml"),
            "GRIDBOT_BOT_TOKEN": TOKEN, "GRIDBOT_API_BASE": emulator.base_url,
            "GRIDBOT_DATA_DIR": str(tmp_path / "data"), "GRIDBOT_WEBHOOK_SECRET": SECRET,
            "GRIDBOT_TICK_SECONDS": "0.5", "GRIDBOT_STANDBY_RETRY_SECONDS": "0.3",
            "GRIDBOT_SEND_LIMITS": "false", "GRIDBOT_LOG_LEVEL": "INFO",
        }  # fmt: skip
        ports = [free_port(), free_port()]
        processes = [
            GridbotProcess(
                "webhook",
                "--no-register",
                "--no-scheduler",
                env={**env, "GRIDBOT_WEBHOOK_PORT": str(port)},
                log=tmp_path / f"worker{n}.log",
            )  # fmt: skip
            for n, port in enumerate(ports)
        ] + [
            GridbotProcess("scheduler", env=env, log=tmp_path / f"scheduler{n}.log")
            for n in range(2)
        ]
        for process in processes:
            await process.start()
        balancer = Balancer(ports)
        runner = web.AppRunner(web.Application())
        runner.app.router.add_post("/{tail:.*}", balancer.forward)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", balancer_port := free_port())
        await site.start()
        ledger = create_engine(database_url)
        world = Cluster(
            emulator=emulator, captains=captains, chiefs=chiefs, intake=intake,
            balancer=balancer, processes=processes, ledger=ledger,
        )  # fmt: skip
        try:
            for port in ports:
                await world.until(functools.partial(healthy, port), f"worker on {port}")
            async with (
                aiohttp.ClientSession() as client,
                client.post(
                    f"{emulator.base_url}/bot{TOKEN}/setWebhook",
                    json={
                        "url": f"http://127.0.0.1:{balancer_port}{update_path(SECRET)}",
                        "secret_token": SECRET,
                        "max_connections": 40,
                    },
                ) as answer,
            ):
                assert answer.status == 200, await answer.text()
            for chief in chiefs.values():
                await chief.start_bot()
            yield world
        finally:
            for process in processes:
                if process.alive:
                    assert await process.stop() == 0, world.logs()
            await asyncio.gather(*balancer.redeliveries, return_exceptions=True)
            await runner.cleanup()
            await balancer.client.close()
            await ledger.dispose()
            async with Redis.from_url(redis_url) as redis:
                async for key in redis.scan_iter(match=f"{prefix}:*"):
                    await redis.delete(key)


async def guided_report(world: Cluster, captain: User) -> None:
    """/report in private chat, step by step; every step reaches both workers."""
    await captain.start_bot()
    await captain.command(captain, "/report")
    await world.said(captain, "1/5")
    await captain.send_photo(captain, make_jpeg(seed=900))
    await world.said(captain, "已收到 1 张照片")
    await captain.send_text(captain, "金秋小区二期3号楼")
    category = await world.said(captain, "3/5")
    await captain.press(category, text="环境卫生")
    await world.said(captain, "4/5")
    await captain.send_text(captain, "车库积水，一直没人管")
    summary = await world.said(captain, "5/5")
    await captain.press(summary, text="✅ 提交")
    await world.said(captain, "已登记：工单")


async def test_two_workers_and_two_schedulers_are_one_bot_under_duplicated_updates(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    district = sample_deployment_with(tmp_path, reminders=NO_QUIET_HOURS)
    with (SAMPLE.parent / "addresses.csv").open(encoding="utf-8") as handle:
        places = [line.split(",")[0] for line in handle.read().splitlines()[1:]]
    spread = places[:: len(places) // (CAPTAINS * REPORTS_EACH + 1)]  # far apart: no repeats

    async with cluster(postgres_url, redis_url, district, tmp_path) as world:

        async def captain_reports(n: int, captain: User) -> None:
            for k in range(REPORTS_EACH):
                index = n * REPORTS_EACH + k
                await captain.send_photo(
                    world.intake,
                    make_jpeg(seed=index),
                    caption=f"{spread[index]} 第{index + 1}处井盖松动",
                )

        album_captain, guided_captain = world.captains[0], world.captains[1]
        album_place = spread[CAPTAINS * REPORTS_EACH]
        await asyncio.gather(
            *(captain_reports(n, c) for n, c in enumerate(world.captains)),
            album_captain.send_album(
                world.intake,
                [make_jpeg(seed=800), make_jpeg(seed=801)],
                caption=f"{album_place} 楼道堆物堵住消防通道",
            ),
            guided_report(world, guided_captain),
        )
        reports = CAPTAINS * REPORTS_EACH + 2  # the album and the guided report too
        await world.until(
            lambda: len(set(world.acks())) >= reports - 1,
            "every group ack",
            lambda: [m.body[:60] for m in world.emulator.sent if m.chat_id == INTAKE],
        )

        tickets = await world.tickets()
        assert len(tickets) == reports, [(t.id, t.address, t.description) for t in tickets]
        assert len({(t.source_chat_id, t.source_message_id) for t in tickets}) == reports
        assert sorted(Counter(world.acks()).values()) == [1] * (reports - 1)  # said once each
        [album] = [t for t in tickets if t.address == album_place]
        async with session_factory(world.ledger)() as session:
            assert album.id is not None
            photos = await repo.photos_of(session=session, ticket_id=album.id, kind="report")
            assert len(photos) == 2
        assert world.balancer.statuses[200] >= 2 * world.balancer.posted  # none refused

        # Each chief claims their first card; the press reaches both workers at once.
        cards: dict[str, int] = {}
        for ticket in tickets:
            assert ticket.station_key is not None and ticket.id is not None, ticket
            cards.setdefault(ticket.station_key, ticket.id)
        for station, ticket_id in cards.items():
            chief = world.chiefs[station]
            card = await world.emulator.wait_for(
                chief, contains=f"#{ticket_id}", method="sendPhoto", timeout=WAIT
            )
            await chief.press(card, text=next(b for b in card.button_texts if "认领" in b))
        await world.until(
            lambda: world_has(world, "claim", len(cards)), "every claim to be recorded"
        )
        assert await world.events("claim") == Counter(cards.values())

        # Time passes (the processes keep the machine's clock): every ticket is now due.
        async with world.ledger.begin() as connection:
            await connection.execute(
                sa.update(Ticket).values(
                    next_reminder_at=sa.func.now() - sa.text("interval '1 minute'")
                )
            )
        await world.until(lambda: world_has(world, "remind", reports), "every reminder")
        await world.until(lambda: len(world.reminders_heard()) >= reports, "reminders heard")
        for scheduler in world.schedulers:
            assert await scheduler.stop() == 0, world.logs()  # any tick in hand is finished
        reminded = await world.events("remind")
        assert sorted(reminded) == [t.id for t in tickets] and set(reminded.values()) == {1}
        assert Counter(world.reminders_heard()) == Counter({t.id: 1 for t in tickets})


async def world_has(world: Cluster, action: str, count: int) -> bool:
    return sum((await world.events(action)).values()) >= count
