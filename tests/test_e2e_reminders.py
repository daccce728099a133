"""End to end with a moved clock: the chief is reminded, the office told (督办), never twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.emulator.records import BotMessage
from bot.scheduler import ReminderTicker
from storage.db import create_engine, session_factory

from conftest import World
from factories import make_jpeg

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday, 09:00 in the district


async def reported_at(world: World, moment: datetime) -> None:
    world.clock.set(moment)
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    await world.settle()


def reminders(world: World) -> list[str]:
    return [m.body for m in world.emulator.sent
            if m.chat_id == world.chiefs["fenyang"].id and "提醒" in m.body]


async def tick_at(world: World, moment: datetime) -> int:
    world.clock.set(moment)
    written = await world.app.ticker.tick()
    await world.settle()
    return written


async def test_reminders_follow_the_cadence_and_escalate_once(world: World) -> None:
    await reported_at(world, MORNING)
    assert await tick_at(world, MORNING + timedelta(hours=1)) == 0  # first_after is 2h
    assert await tick_at(world, MORNING + timedelta(hours=2, minutes=1)) == 1
    assert await tick_at(world, MORNING + timedelta(hours=2, minutes=2)) == 0  # never twice
    assert len(reminders(world)) == 1 and "第 1 次" in reminders(world)[0]
    await tick_at(world, MORNING + timedelta(hours=6, minutes=2))
    await tick_at(world, MORNING + timedelta(hours=10, minutes=2))  # 19:02, the 3rd
    assert len(reminders(world)) == 3
    assert world.said_in(world.office) == []
    # 23:02 is inside quiet hours (22:00-08:00): nothing until the morning...
    assert await tick_at(world, MORNING + timedelta(hours=14, minutes=2)) == 0
    # ...when, three reminders having gone unanswered, the street office is told
    assert await tick_at(world, MORNING + timedelta(hours=23, minutes=1)) >= 1  # 08:01
    [escalation] = world.said_in(world.office)
    assert "督办" in escalation and "#1" in escalation and "已提醒站长 4 次" in escalation
    # the deadline (24h) passes at 09:00: still only one escalation
    await tick_at(world, MORNING + timedelta(hours=25))
    assert len(world.said_in(world.office)) == 1


async def test_reminders_stop_when_the_ticket_is_resolved(world: World) -> None:
    await reported_at(world, MORNING)
    chief = world.chiefs["fenyang"]
    [card] = [m for m in world.emulator.sent if m.chat_id == chief.id and m.method == "sendPhoto"]
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=2), caption="已疏通")
    await world.emulator.wait_for(chief, contains="等待报告人确认")
    # the next look is the auto-close, when the reporter has not answered in 72h
    assert await tick_at(world, MORNING + timedelta(days=3, minutes=-1)) == 0
    assert reminders(world) == []
    ticket = await world.ticket(1)
    assert ticket.next_reminder_at == MORNING + timedelta(days=3)


async def test_two_schedulers_on_one_database_send_each_reminder_once(world: World) -> None:
    world.clock.set(MORNING)
    for n in range(1, 7):
        await world.captain.send_photo(
            world.intake, make_jpeg(seed=n), caption=f"汾阳路{n}号 路灯不亮"
        )
        await world.emulator.wait_for(world.intake, contains=f"#{n}")
    await world.settle()
    other_engine = create_engine(world.app.settings.effective_database_url)
    other = ReminderTicker(
        sessions=session_factory(other_engine), deployment=world.app.deployment,
        notifier=world.app.tickets.notifier, clock=world.clock,
    )
    world.clock.set(MORNING + timedelta(hours=2, minutes=1))
    try:
        written = await asyncio.gather(world.app.ticker.tick(), other.tick())
    finally:
        await other_engine.dispose()
    await world.settle()
    assert sum(written) == 6
    assert len(reminders(world)) == 6


async def report_and_card(world: World, n: int, caption: str) -> BotMessage:
    chief = world.chiefs["fenyang"]
    await world.captain.send_photo(world.intake, make_jpeg(seed=n), caption=caption)
    await world.emulator.wait_for(world.intake, contains=f"#{n}")
    await world.settle()
    cards = [m for m in world.emulator.sent if m.chat_id == chief.id and m.method == "sendPhoto"]
    return cards[-1]


async def test_reminders_stop_when_rejected_merged_or_closed_and_restart_on_reopen(
    world: World,
) -> None:
    chief = world.chiefs["fenyang"]
    world.clock.set(MORNING)
    rejected = await report_and_card(world, 1, "汾阳路13号 旱厕堵了")
    await report_and_card(world, 2, "汾阳路21号 路灯不亮")
    fixed = await report_and_card(world, 3, "汾阳路5号 楼道灯坏了")
    reopened = await report_and_card(world, 4, "汾阳路7号 井盖松动")

    await chief.press(rejected, text="↩️ 退回")
    await world.emulator.wait_for(chief, contains="原因")
    await chief.send_text(chief, "物业负责")
    await chief.command(chief, "/merge 2 4")
    await world.emulator.wait_for(chief, contains="并入")
    for card, comment in ((fixed, None), (reopened, "还是松的")):
        await chief.press(card, text="✋ 认领")
        desk = await world.emulator.wait_for(chief, contains="已认领")
        await chief.press(desk, text="✅ 已处理")
        await world.emulator.wait_for(chief, contains="处理后的现场照片")
        await chief.send_photo(chief, make_jpeg(seed=40), caption="修好了")
        ask = await world.emulator.wait_for(world.intake, method="sendPhoto")
        if comment is None:
            await world.captain.press(ask, text="😊 满意")
            await world.emulator.wait_for(world.intake, contains="已办结")
        else:
            await world.captain.press(ask, text="😞 不满意")
            question = await world.emulator.wait_for(world.intake, contains="哪里还没解决")
            world.clock.set(MORNING + timedelta(hours=1))  # reopened an hour later
            await world.captain.send_text(world.intake, comment, reply_to=question)
            await world.emulator.wait_for(chief, contains="返工")
    await world.settle()

    # 11:01: the first round would have come for all four; none comes, since #4 was reopened
    # at 10:00 and starts a new round of first_after (2 h) from there
    assert await tick_at(world, MORNING + timedelta(hours=2, minutes=1)) == 0
    # 12:01: the reopened #4 is reminded; rejected #1, merged #2 and closed #3 never are
    assert await tick_at(world, MORNING + timedelta(hours=3, minutes=1)) == 1
    [reminder] = reminders(world)
    assert "#4" in reminder
    await tick_at(world, MORNING + timedelta(days=2))
    assert all("#4" in r for r in reminders(world))
