"""End to end: the reporter's view — /my, judging a fix from there, being told of every step,
and a fix nobody answered closing by itself (moved clock, ticked by hand)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.app import prepare_database
from bot.callbacks import MyPage
from bot.emulator.players import User
from bot.emulator.records import BotMessage
from bot.lifecycle import Action, Role, Status

from conftest import World
from factories import draw_problem_scene, make_jpeg, photograph

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday, 09:00 in the district
THREE_DAYS = timedelta(hours=72)  # the sample deployment's feedback.auto_close_after


async def report(world: World, caption: str = "汾阳路13号 旱厕堵了", *, seed: int = 1,
                 by: User | None = None) -> BotMessage:
    """A captain's photo report; returns the chief's card."""
    await (by or world.captain).send_photo(world.intake, make_jpeg(seed=seed), caption=caption)
    return await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")


async def resolve(world: World, card: BotMessage) -> None:
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已疏通")
    await world.emulator.wait_for(chief, contains="等待报告人确认")
    await world.settle()


async def started(world: World, user: User) -> None:
    """The user pressed Start; the greeting is taken, so the next wait sees what follows."""
    await user.start_bot()
    await world.emulator.wait_for(user)


async def my(world: World, captain: User | None = None) -> BotMessage:
    captain = captain or world.captain
    await captain.command(captain, "/my")
    return await world.emulator.wait_for(
        captain, predicate=lambda m: "我报的事" in m.body or "还没有报过事" in m.body
    )


async def tick_at(world: World, moment: datetime) -> int:
    world.clock.set(moment)
    written = await world.app.ticker.tick()
    await world.settle()
    return written


# --- /my --------------------------------------------------------------------------------------


async def test_my_without_reports_says_how_to_report(world: World) -> None:
    await started(world, world.captain)
    answer = await my(world)
    assert "还没有报过事" in answer.body and "汾阳路13号 旱厕堵了" in answer.body
    assert answer.buttons == []


async def test_my_lists_only_my_tickets_newest_first_in_pages(world: World) -> None:
    await started(world, world.captain)
    for n in range(1, 8):
        await world.captain.send_photo(
            world.intake, make_jpeg(seed=n), caption=f"汾阳路{n}号 垃圾没人清"
        )
        await world.emulator.wait_for(world.intake, contains=f"#{n}")
    await world.captain2.send_photo(
        world.intake, make_jpeg(seed=20), caption="汾阳路20号 路灯不亮"
    )
    await world.emulator.wait_for(world.intake, contains="#8")

    first = await my(world)
    assert "共 7 件" in first.body and "第 1/2 页" in first.body
    assert first.body.index("#7 ") < first.body.index("#3 ")  # newest first
    assert "#2 " not in first.body and "#8 " not in first.body  # page 2; not mine
    line = next(row for row in first.body.splitlines() if "#7 " in row)
    assert line.startswith("🟢") and "汾阳路7号" in line and "待认领" in line
    assert first.button_texts == ["下一页 ▶"]

    await world.captain.press(first, text="下一页 ▶")
    second = await world.emulator.wait_for(world.captain, method="editMessageText")
    assert "#2 " in second.body and "#1 " in second.body and "第 2/2 页" in second.body
    assert second.button_texts == ["◀ 上一页"]
    await world.captain.press(second, text="◀ 上一页")
    back = await world.emulator.wait_for(world.captain, method="editMessageText")
    assert "第 1/2 页" in back.body and "#7 " in back.body

    # a page past the end (a stale button after tickets changed, or forged) shows the last
    query = await world.captain.press_data(first.message_id, MyPage(page=99).pack())
    await world.emulator.wait_for_callback_answer(query)
    last = await world.emulator.wait_for(world.captain, method="editMessageText")
    assert "第 2/2 页" in last.body


async def test_my_shows_what_a_captain_typed_escaped_and_shortened(world: World) -> None:
    await started(world, world.captain)
    await world.captain.send_photo(
        world.intake, make_jpeg(seed=3), caption="地址：<b>幸福</b>&<i>小区 99号楼；描述：车库积水"
    )
    await world.emulator.wait_for(world.intake, contains="#1")
    answer = await my(world)
    line = next(row for row in answer.body.splitlines() if "#1 " in row)
    assert "<b>幸福</b>&<i>" in line  # shown as typed, not as markup
    assert "待定位" in line


async def test_my_tells_a_merged_report_which_ticket_it_follows(world: World) -> None:
    drain = draw_problem_scene(101, place_seed=7)
    await world.captain.send_photo(
        world.intake, photograph(drain, seed=1), caption="汾阳路13号 下水道冒水了，路面全是污水"
    )
    await world.emulator.wait_for(world.intake, contains="已登记：工单 #1")
    await started(world, world.captain2)
    await world.captain2.send_photo(
        world.intake, photograph(drain, seed=2), caption="汾阳路13号门口下水道堵了，污水漫出来"
    )
    await world.emulator.wait_for(world.intake, contains="已经有工单")
    answer = await my(world, world.captain2)
    assert "#2 " in answer.body and "并入 #1" in answer.body


# --- judging the fix from /my ----------------------------------------------------------------


async def test_satisfied_from_my_closes_the_ticket(world: World) -> None:
    await started(world, world.captain)
    await resolve(world, await report(world))
    asked = await world.emulator.wait_for(world.captain, method="sendPhoto")  # in private now
    assert asked.button_texts == ["😊 满意", "😞 不满意"]

    listing = await my(world)
    assert "待确认" in listing.body and "请点下面的按钮" in listing.body
    assert listing.button_texts == ["😊 #1 满意", "😞 #1 不满意"]
    query = await world.captain.press(listing, text="😊 #1 满意")
    assert "#1" in (await world.emulator.wait_for_callback_answer(query))["text"]
    await world.emulator.wait_for(world.chiefs["fenyang"], contains="满意")
    ticket = await world.ticket(1)
    assert ticket.status == Status.CLOSED and ticket.rating == "satisfied"

    again = await my(world)
    assert "已办结" in again.body and again.buttons == []
    # the old button again: answered politely, nothing changes
    query = await world.captain.press(listing, text="😞 #1 不满意")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "已办结" in answer["text"]
    assert (await world.ticket(1)).status == Status.CLOSED


async def test_unsatisfied_from_my_reopens_with_a_comment(world: World) -> None:
    await started(world, world.captain)
    await resolve(world, await report(world))
    listing = await my(world)
    await world.captain.press(listing, text="😞 #1 不满意")
    await world.emulator.wait_for(world.captain, contains="哪里还没解决")
    await world.captain.send_text(world.captain, "还是堵的 <script>alert(1)</script>")
    back = await world.emulator.wait_for(world.chiefs["fenyang"], contains="返工")
    assert "还是堵的 <script>alert(1)</script>" in back.body
    await world.emulator.wait_for(world.captain, contains="已退回汾阳路社区工作站返工")
    ticket = await world.ticket(1)
    assert ticket.status == Status.REOPENED and ticket.rating == "unsatisfied"
    assert ticket.next_reminder_at is not None  # the chief is reminded again


async def test_someone_elses_rating_button_is_refused(world: World) -> None:
    await started(world, world.captain)
    await started(world, world.captain2)
    await resolve(world, await report(world))
    listing = await my(world)
    data = listing.buttons[0][0]["callback_data"]
    query = await world.captain2.press_data(listing.message_id, data, chat=world.captain)
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "不能" in answer["text"]
    assert (await world.ticket(1)).status == Status.RESOLVED


# --- auto-close -------------------------------------------------------------------------------


async def test_a_fix_nobody_answered_closes_itself_after_the_delay(world: World) -> None:
    world.clock.set(MORNING)
    await resolve(world, await report(world))
    resolved = await world.ticket(1)
    assert resolved.next_reminder_at == MORNING + THREE_DAYS

    assert await tick_at(world, MORNING + THREE_DAYS - timedelta(minutes=1)) == 0
    assert (await world.ticket(1)).status == Status.RESOLVED
    assert await tick_at(world, MORNING + THREE_DAYS) >= 2
    told = await world.emulator.wait_for(world.intake, contains="自动办结")
    assert "#1" in told.body and "3天" in told.body  # not started: told in the report's thread
    chief = await world.emulator.wait_for(world.chiefs["fenyang"], contains="自动办结")
    assert "报告人3天内未确认" in chief.body

    ticket = await world.ticket(1)
    assert ticket.status == Status.CLOSED and ticket.rating is None
    assert ticket.closed_at == MORNING + THREE_DAYS and ticket.next_reminder_at is None
    [event] = [e for e in await world.events(1) if e.action == Action.AUTO_CLOSE]
    assert event.role == Role.SYSTEM and event.actor_id is None
    assert (event.from_status, event.to_status) == (Status.RESOLVED, Status.CLOSED)
    assert event.note == "no answer from the reporter within 72h"
    # closed once: a later tick finds nothing
    assert await tick_at(world, MORNING + THREE_DAYS + timedelta(hours=5)) == 0


async def test_a_reporter_in_private_hears_of_the_auto_close_in_private(world: World) -> None:
    await started(world, world.captain)
    world.clock.set(MORNING)
    await resolve(world, await report(world))
    await tick_at(world, MORNING + THREE_DAYS)
    told = await world.emulator.wait_for(world.captain, contains="自动办结")
    assert "如果问题还在，请重新报事" in told.body


async def test_no_auto_close_once_the_reporter_answered(world: World) -> None:
    world.clock.set(MORNING)
    await resolve(world, await report(world))
    ask = await world.emulator.wait_for(world.intake, method="sendPhoto")
    await world.captain.press(ask, text="😊 满意")
    await world.emulator.wait_for(world.intake, contains="已办结")
    assert (await world.ticket(1)).next_reminder_at is None
    assert await tick_at(world, MORNING + THREE_DAYS + timedelta(minutes=1)) == 0
    ticket = await world.ticket(1)
    assert ticket.status == Status.CLOSED and ticket.rating == "satisfied"
    assert Action.AUTO_CLOSE not in [e.action for e in await world.events(1)]


async def test_a_dispute_before_the_delay_means_reminders_not_a_close(world: World) -> None:
    world.clock.set(MORNING)
    await resolve(world, await report(world))
    ask = await world.emulator.wait_for(world.intake, method="sendPhoto")
    world.clock.set(MORNING + timedelta(hours=1))
    await world.captain.press(ask, text="😞 不满意")
    skip = await world.emulator.wait_for(world.intake, contains="哪里还没解决")
    await world.captain.press(skip, text="跳过")
    await world.emulator.wait_for(world.chiefs["fenyang"], contains="返工")
    await tick_at(world, MORNING + THREE_DAYS)
    ticket = await world.ticket(1)
    assert ticket.status == Status.REOPENED
    assert Action.AUTO_CLOSE not in [e.action for e in await world.events(1)]
    assert any("提醒" in body for body in world.said_in(world.chiefs["fenyang"]))


async def test_an_auto_close_due_at_night_waits_for_the_morning(world: World) -> None:
    late = datetime(2026, 11, 2, 23, 0, tzinfo=SHANGHAI)  # the chief resolves late at night
    world.clock.set(late)
    await resolve(world, await report(world))
    assert await tick_at(world, late + THREE_DAYS) == 0  # 23:00: quiet hours (22:00-08:00)
    ticket = await world.ticket(1)
    assert ticket.status == Status.RESOLVED
    assert ticket.next_reminder_at == datetime(2026, 11, 6, 8, 0, tzinfo=SHANGHAI)
    assert await tick_at(world, datetime(2026, 11, 6, 8, 0, tzinfo=SHANGHAI)) >= 2
    assert (await world.ticket(1)).status == Status.CLOSED


async def test_followers_hear_of_the_auto_close(world: World) -> None:
    world.clock.set(MORNING)
    drain = draw_problem_scene(101, place_seed=7)
    await world.captain.send_photo(
        world.intake, photograph(drain, seed=1), caption="汾阳路13号 下水道冒水了，路面全是污水"
    )
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    await started(world, world.captain2)
    await world.captain2.send_photo(
        world.intake, photograph(drain, seed=2), caption="汾阳路13号门口下水道堵了，污水漫出来"
    )
    await world.emulator.wait_for(world.intake, contains="已经有工单")
    await resolve(world, card)
    await tick_at(world, MORNING + THREE_DAYS)
    news = [b for b in world.said_in(world.captain2) if "您反映的问题" in b]
    assert news and "#1" in news[-1] and "已办结" in news[-1]


async def test_a_fix_resolved_before_auto_close_existed_is_still_closed(world: World) -> None:
    world.clock.set(MORNING)
    await resolve(world, await report(world))
    async with world.app.sessions() as session:  # as an older version left it
        ticket = await session.get(type(await world.ticket(1)), 1)
        assert ticket is not None
        ticket.next_reminder_at = None
        session.add(ticket)
        await session.commit()
    await prepare_database(world.app.engine, world.app.sessions, world.app.deployment)
    assert (await world.ticket(1)).next_reminder_at == MORNING  # looked at by the next tick
    assert await tick_at(world, MORNING + timedelta(hours=1)) == 0  # not yet: 72h from then
    assert (await world.ticket(1)).next_reminder_at == MORNING + THREE_DAYS
    await tick_at(world, MORNING + THREE_DAYS)
    assert (await world.ticket(1)).status == Status.CLOSED
