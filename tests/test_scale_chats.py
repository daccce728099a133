"""Two workers on one database and one Redis behave as one bot in a chat: an album whose
parts reach both at once is one report with every photo and the caption, and a chat's
updates are handled one at a time (a button tapped twice at once takes one step).

The workers are two complete bots (built as `gridbot` builds them, started, never polling);
the test takes the updates from the emulator and hands each to the worker a load balancer
would have chosen, at the same moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import Update
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlmodel import col, select

from bot.app import Gridbot, build
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import Group, User
from bot.emulator.records import BotMessage
from bot.isolation import ChatLocks
from bot.settings import Settings, SettingsError, load_settings
from storage import repo
from storage.models import OutboxMessage, ReceivedUpdate, Ticket

from conftest import TOKEN
from factories import corrupt_jpeg, make_jpeg

INTAKE = -1001000000002


@dataclass
class Workers:
    emulator: BotAPIEmulator
    first: Gridbot
    second: Gridbot
    courier: Bot  # takes the updates from the emulator, as Telegram's side of a webhook
    captain: User
    intake: Group
    offset: int = 0

    async def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` updates the emulator has for the bot."""
        taken: list[dict[str, Any]] = []
        for _ in range(100):
            batch = await self.courier.get_updates(offset=self.offset, timeout=1)
            for update in batch:
                self.offset = update.update_id + 1
                taken.append(update.model_dump(mode="json", exclude_none=True))
            if len(taken) >= count:
                assert len(taken) == count, taken
                return taken
        raise AssertionError(f"{len(taken)} of {count} updates came")

    async def feed(self, worker: Gridbot, update: dict[str, Any]) -> None:
        await worker.dp.feed_update(
            worker.bot, Update.model_validate(update, context={"bot": worker.bot})
        )

    async def at_once(self, *deliveries: tuple[Gridbot, dict[str, Any]]) -> None:
        await asyncio.gather(*(self.feed(worker, update) for worker, update in deliveries))

    async def settle(self) -> None:
        """Every update handled and every message sent."""
        unexpected = await self.courier.get_updates(offset=self.offset, timeout=0)  # confirms
        assert not unexpected, unexpected
        for _ in range(200):
            async with self.first.sessions() as session:
                open_updates = await session.exec(
                    select(ReceivedUpdate).where(col(ReceivedUpdate.handled_at).is_(None))
                )
                pending = await session.exec(
                    select(OutboxMessage).where(col(OutboxMessage.status) == "pending")
                )
                if open_updates.first() is None and pending.first() is None:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the workers did not settle")

    def said_in(self, chat: Group | User) -> list[BotMessage]:
        return [m for m in self.emulator.sent if m.chat_id == chat.id]


@pytest.fixture
async def workers(
    database_url: str, deployment: Deployment, tmp_path: Path,
    redis_fsm: Callable[[], RedisStorage],
) -> AsyncIterator[Workers]:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        captain = emulator.user(200000001, "王阿姨")
        chiefs = [emulator.user(s.chief, f"{s.name[:3]}站长") for s in deployment.stations]
        intake = emulator.group(INTAKE, "汾阳路片区报事群", members=[captain, *chiefs])
        settings = Settings(
            bot_token=SecretStr(TOKEN), api_base=emulator.base_url, data_dir=tmp_path / "data",
            database_url=database_url, send_limits=False,
        )  # fmt: skip
        apps = [
            build(settings, deployment, fsm_storage=redis_fsm(), album_quiet=0.3,
                  sender_poll_interval=0.1, reminder_tick=timedelta(0))
            for _ in (1, 2)
        ]  # fmt: skip
        for app in apps:
            await app.dp.emit_startup(bot=app.bot)
        courier = Bot(TOKEN, session=emulator.aiogram_session())
        found = Workers(emulator, apps[0], apps[1], courier, captain, intake)
        try:
            for chief in chiefs:
                await chief.start_bot()
            for update in await found.take(len(chiefs)):
                await found.feed(found.first, update)
            await found.settle()
            yield found
        finally:
            await courier.session.close()
            for app in apps:
                await app.dp.emit_shutdown(bot=app.bot)


# --- albums -----------------------------------------------------------------------------------


@pytest.mark.parametrize("caption_at", ["first", "second"])
async def test_an_album_split_between_two_workers_is_one_ticket_with_every_photo(
    workers: Workers, caption_at: str
) -> None:
    w = workers
    photos = [make_jpeg(seed=s) for s in (21, 22, 23, 24)]
    await w.captain.send_album(w.intake, photos, caption="金水路8号 垃圾堆了三天")
    parts = await w.take(4)
    with_caption = w.first if caption_at == "first" else w.second
    other = w.second if with_caption is w.first else w.first
    # The caption's part and one more at one worker, two parts at the other, all at once,
    # the last part first (webhooks deliver out of order).
    await w.at_once(
        (other, parts[3]), (with_caption, parts[0]), (other, parts[1]), (with_caption, parts[2])
    )
    await w.emulator.wait_for(w.intake, contains="#1")
    await w.settle()

    async with w.first.sessions() as session:
        [ticket] = (await session.exec(select(Ticket))).all()
        stored = await repo.photos_of(session=session, ticket_id=ticket.id or 0, kind="report")
    assert len(stored) == 4
    assert ticket.address_text == "金水路8号" and ticket.description == "垃圾堆了三天"
    assert ticket.station_key is not None
    assert len([m for m in w.said_in(w.intake) if "#1" in m.body]) == 1
    assert not [m for m in w.said_in(w.intake) if "#2" in m.body]


async def test_an_album_into_a_form_split_between_two_workers_is_one_step(
    workers: Workers,
) -> None:
    w, captain = workers, workers.captain
    await captain.command(captain, "/report")
    [start] = await w.take(1)
    await w.feed(w.second, start)
    await w.emulator.wait_for(captain, contains="1/5")
    await captain.send_album(captain, [make_jpeg(seed=s) for s in (31, 32, 33)])
    parts = await w.take(3)
    await w.at_once((w.first, parts[1]), (w.second, parts[0]), (w.second, parts[2]))
    await w.emulator.wait_for(captain, contains="已收到 3 张照片")
    await w.settle()
    assert len([m for m in w.said_in(captain) if "已收到" in m.body]) == 1


async def test_an_album_with_a_corrupt_part_split_between_two_workers_is_refused_once(
    workers: Workers,
) -> None:
    w = workers
    photos = [make_jpeg(seed=25), corrupt_jpeg(seed=26), make_jpeg(seed=27)]
    hostile = "汾阳路13号 <b>旱厕</b>堵了 & 臭"
    await w.captain.send_album(w.intake, photos, caption=hostile)
    parts = await w.take(3)
    await w.at_once((w.second, parts[2]), (w.first, parts[0]), (w.second, parts[1]))
    answer = await w.emulator.wait_for(w.intake, contains="照片")
    assert "损坏" in answer.body
    await w.settle()
    assert len([m for m in w.said_in(w.intake) if "损坏" in m.body]) == 1
    async with w.first.sessions() as session:
        assert (await session.exec(select(Ticket))).all() == []
    # and the chat is free for the next report, whichever worker takes it
    await w.captain.send_album(w.intake, [make_jpeg(seed=28), make_jpeg(seed=29)], caption=hostile)
    again = await w.take(2)
    await w.at_once((w.second, again[0]), (w.first, again[1]))
    await w.emulator.wait_for(w.intake, contains="#1")
    await w.settle()
    async with w.first.sessions() as session:
        [ticket] = (await session.exec(select(Ticket))).all()
    assert ticket.description == "<b>旱厕</b>堵了 & 臭"  # kept as typed; escaped when shown


# --- one chat's updates one at a time ---------------------------------------------------------


async def test_a_button_tapped_twice_at_once_on_two_workers_takes_one_step(
    workers: Workers,
) -> None:
    w, captain = workers, workers.captain
    await captain.command(captain, "/report")
    await w.feed(w.first, (await w.take(1))[0])
    await w.emulator.wait_for(captain, contains="1/5")
    await captain.send_photo(captain, make_jpeg(seed=41))
    await w.feed(w.second, (await w.take(1))[0])
    got = await w.emulator.wait_for(captain, contains="已收到 1 张照片")
    await w.settle()

    taps = [await captain.press(got, text="下一步 ▶") for _ in (1, 2)]
    first_tap, second_tap = await w.take(2)
    await w.at_once((w.first, first_tap), (w.second, second_tap))
    await w.emulator.wait_for(captain, contains="2/5")
    await w.settle()
    assert len([m for m in w.said_in(captain) if "2/5" in m.body]) == 1
    answers = [await w.emulator.wait_for_callback_answer(tap) for tap in taps]
    assert sorted(bool(a.get("text")) for a in answers) == [False, True]
    [told] = [a for a in answers if a.get("text")]
    assert "前面步骤的按钮" in told["text"]


async def test_two_photos_in_quick_succession_on_two_workers_are_both_kept(
    workers: Workers,
) -> None:
    """Each photo's handler reads the form, fetches the photo, then stores the form: at the
    same time on two workers, the second would store over the first without the chat's
    turn."""
    w, captain = workers, workers.captain
    await captain.command(captain, "/report")
    await w.feed(w.first, (await w.take(1))[0])
    await w.emulator.wait_for(captain, contains="1/5")
    for seed in (51, 52):
        await captain.send_photo(captain, make_jpeg(seed=seed))
    first_photo, second_photo = await w.take(2)
    await w.at_once((w.first, first_photo), (w.second, second_photo))
    await w.emulator.wait_for(captain, contains="已收到 2 张照片")
    await w.settle()
    received = [m.body for m in w.said_in(captain) if "已收到" in m.body]
    assert len(received) == 2
    assert "已收到 1 张照片" in received[0] and "已收到 2 张照片" in received[1]


async def test_a_chats_turn_lasts_while_its_update_is_handled_and_ends_with_a_dead_worker(
    redis_url: str,
) -> None:
    """The lock is a lease: renewed while the update is handled (longer than the lease
    here), gone a lease after its worker stopped renewing it."""
    redis = Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    locks = ChatLocks(redis, prefix=prefix, lease=0.3)
    key = StorageKey(bot_id=1, chat_id=INTAKE, user_id=200000001)
    try:
        async with locks.lock(key):
            for _ in range(4):  # three leases' time, the lock still ours
                await asyncio.sleep(0.3)
                assert await redis.exists(f"{prefix}:{INTAKE}:200000001:lock")
        assert not await redis.exists(f"{prefix}:{INTAKE}:200000001:lock")

        dead = redis.lock(f"{prefix}:{INTAKE}:200000001:lock", timeout=0.3)
        assert await dead.acquire()  # a worker takes the turn and dies holding it
        began = asyncio.get_running_loop().time()
        async with locks.lock(key):
            waited = asyncio.get_running_loop().time() - began
        assert 0.1 < waited < 1.5
    finally:
        await redis.aclose()


def test_the_redis_prefix_is_a_plain_word() -> None:
    assert load_settings(redis_prefix="gridbot-fenyang").redis_prefix == "gridbot-fenyang"
    for bad in ("", "a b", "fsm:*", "x" * 65):
        with pytest.raises(SettingsError, match="GRIDBOT_REDIS_PREFIX"):
            load_settings(redis_prefix=bad)
