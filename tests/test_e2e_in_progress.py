"""End to end with a moved clock: the chief answers a reminder with ⏳ 处理中 and a day; no
reminder until that day has ended, the deadline still escalates, bad answers are asked again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.callbacks import ExpectedDay, TicketButton
from bot.emulator.records import BotMessage
from bot.lifecycle import Role, Status
from storage import repo

from conftest import World
from factories import make_jpeg

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # 09:00 in the district
LAMP = "汾阳路13号 路灯不亮"  # 公共设施: 72 h, due Thursday 09:00
TOILET = "汾阳路13号 旱厕堵了"  # 环境卫生: 24 h, due Tuesday 09:00
QUICK_PICKS = ["今天", "明天", "后天", "一周内"]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in the district in November 2026 (the 2nd is a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def reported(world: World, caption: str = LAMP) -> BotMessage:
    world.clock.set(MONDAY)
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption=caption)
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    await world.settle()
    return card


async def tick_at(world: World, moment: datetime) -> int:
    world.clock.set(moment)
    written = await world.app.ticker.tick()
    await world.settle()
    return written


def reminders(world: World) -> list[str]:
    return [b for b in world.said_in(world.chiefs["fenyang"]) if b.startswith("⏰")]


async def first_reminder(world: World) -> BotMessage:
    assert await tick_at(world, at(2, 11, 1)) == 1  # first_after is 2h
    return await world.emulator.wait_for(world.chiefs["fenyang"], contains="⏰")


async def question(world: World) -> BotMessage:
    """The next "#1 预计哪天处理好？" (or its English), known by its quick picks."""
    return await world.emulator.wait_for(
        world.chiefs["fenyang"], predicate=lambda m: len(m.button_texts) == 4 and "#1" in m.body
    )


async def claimed_desk(world: World) -> BotMessage:
    card = await reported(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    return await world.emulator.wait_for(chief, contains="已认领")


async def expect_events(world: World) -> int:
    return [e.action for e in await world.events(1)].count("expect")


async def test_in_progress_until_tomorrow_pauses_reminders_until_that_day_ends(
    world: World,
) -> None:
    await reported(world)
    reminder = await first_reminder(world)
    assert reminder.button_texts == ["✋ 认领", "↩️ 退回", "⏳ 处理中", "🔀 转派", "📝 备注"]
    chief = world.chiefs["fenyang"]

    # On an assigned ticket 处理中 claims it, as ✋ 认领 would, and asks which day
    await chief.press(reminder, text="⏳ 处理中")
    await world.emulator.wait_for(chief, contains="您已认领工单 #1")
    await world.emulator.wait_for(world.intake, contains="已由汾阳路社区工作站认领")
    ask = await question(world)
    assert "#1" in ask.body and "预计哪天处理好" in ask.body and "下周三" in ask.body
    assert ask.button_texts == QUICK_PICKS
    assert (await world.ticket(1)).status == Status.CLAIMED

    await chief.press(ask, text="明天")
    done = await world.emulator.wait_for(chief, contains="11月3日周二")
    assert "#1" in done.body and "不再提醒" in done.body and "督办" not in done.body
    ticket = await world.ticket(1)
    assert ticket.expected_by == at(3, 23, 59) + timedelta(seconds=59)
    assert ticket.status == Status.CLAIMED  # a promise, not a step of the lifecycle
    [event] = [e for e in await world.events(1) if e.action == "expect"]
    assert event.role == Role.CHIEF and event.from_status == event.to_status == Status.CLAIMED
    assert "2026-11-03" in (event.note or "")

    # Nothing through the rest of today and all of tomorrow...
    for moment in (at(2, 15, 1), at(2, 19, 1), at(3, 8, 1), at(3, 13, 0), at(3, 21, 59)):
        assert await tick_at(world, moment) == 0, moment
    assert len(reminders(world)) == 1
    # ...and the night after is quiet: the next reminder is the first morning after the day
    assert await tick_at(world, at(4, 0, 30)) == 0
    assert await tick_at(world, at(4, 8, 1)) == 1
    assert len(reminders(world)) == 2 and "第 2 次" in reminders(world)[-1]
    assert world.said_in(world.office) == []


async def test_a_day_after_the_deadline_still_escalates_when_the_deadline_passes(
    world: World,
) -> None:
    await reported(world, TOILET)
    reminder = await first_reminder(world)
    chief = world.chiefs["fenyang"]
    await chief.press(reminder, text="⏳ 处理中")
    await chief.press(await question(world), text="后天")
    done = await world.emulator.wait_for(chief, contains="11月4日周三")
    assert "期限是 11月3日 09:00" in done.body and "督办" in done.body

    assert await tick_at(world, at(2, 15, 1)) == 0
    assert await tick_at(world, at(3, 8, 59)) == 0
    assert world.said_in(world.office) == []
    assert await tick_at(world, at(3, 9, 1)) == 2  # the deadline: a reminder and 督办
    [escalation] = world.said_in(world.office)
    assert "督办" in escalation and "#1" in escalation
    assert "站长预计 11月4日周三 处理好" in escalation
    assert len(reminders(world)) == 2


async def test_a_typed_day_after_answers_that_are_asked_again(world: World) -> None:
    desk = await claimed_desk(world)
    assert desk.button_texts == ["✅ 已处理", "↩️ 退回", "⏳ 处理中", "🔀 转派", "📝 备注"]
    chief = world.chiefs["fenyang"]
    await chief.press(desk, text="⏳ 处理中")
    await question(world)

    await chief.send_text(chief, "3号楼")
    await world.emulator.wait_for(chief, contains="没看懂“3号楼”")
    await chief.send_text(chief, "<b>soon</b> & later")
    html = await world.emulator.wait_for(chief, contains="没看懂")
    assert "<b>soon</b> & later" in html.body  # shown as typed: escaped, not markup
    await chief.send_text(chief, "很快" * 1000)
    long = await world.emulator.wait_for(chief, contains="没看懂")
    assert "…" in long.body and len(long.body) < 200
    await chief.send_text(chief, "11月1日")
    passed = await world.emulator.wait_for(chief, contains="已经过去了")
    assert "11月1日周日" in passed.body
    await chief.send_text(chief, "2027-03-01")
    await world.emulator.wait_for(chief, contains="超过 90 天")
    await chief.send_photo(chief, make_jpeg(seed=9))
    await world.emulator.wait_for(chief, contains="请用文字回复一个日期")
    assert await expect_events(world) == 0
    assert (await world.ticket(1)).expected_by is None

    await chief.send_text(chief, "12月5日")  # still asked: the question stayed open
    done = await world.emulator.wait_for(chief, contains="12月5日周六")
    assert "期限是 11月5日 09:00" in done.body  # later than the deadline: 督办 all the same
    ticket = await world.ticket(1)
    assert ticket.expected_by == datetime(2026, 12, 5, 23, 59, 59, tzinfo=SHANGHAI)
    assert ticket.next_reminder_at == at(5, 9)  # the deadline comes first

    await chief.send_text(chief, "明天")  # answered: no longer a date to take
    await world.settle()
    assert await expect_events(world) == 1
    assert (await world.ticket(1)).expected_by == ticket.expected_by


async def test_the_same_pick_twice_is_one_answer(world: World) -> None:
    desk = await claimed_desk(world)
    chief = world.chiefs["fenyang"]
    await chief.press(desk, text="⏳ 处理中")
    ask = await question(world)
    await chief.press(ask, text="明天")
    await world.emulator.wait_for(chief, contains="11月3日周二")
    again = await chief.press(ask, text="明天")
    answer = await world.emulator.wait_for_callback_answer(again)
    assert "再点一次" in answer["text"]
    await world.settle()
    assert await expect_events(world) == 1
    assert sum("11月3日周二" in b for b in world.said_in(chief)) == 1


async def test_cancel_closes_the_question(world: World) -> None:
    desk = await claimed_desk(world)
    chief = world.chiefs["fenyang"]
    await chief.press(desk, text="⏳ 处理中")
    ask = await question(world)
    await chief.command(chief, "/cancel")
    await world.emulator.wait_for(chief, contains="已取消")
    await chief.send_text(chief, "明天")
    await world.settle()
    late = await chief.press(ask, text="后天")
    assert "再点一次" in (await world.emulator.wait_for_callback_answer(late))["text"]
    await world.settle()
    assert (await world.ticket(1)).expected_by is None and await expect_events(world) == 0


async def test_in_progress_on_a_resolved_ticket_is_refused(world: World) -> None:
    desk = await claimed_desk(world)
    chief = world.chiefs["fenyang"]
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已修好")
    await world.emulator.wait_for(chief, contains="等待报告人确认")
    query = await chief.press(desk, text="⏳ 处理中")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "待确认" in answer["text"] and "不能" in answer["text"]
    await world.settle()
    assert not any("预计哪天" in b for b in world.said_in(chief))


async def test_only_the_stations_chief_says_when(world: World) -> None:
    card = await reported(world)
    fenyang, intruder = world.chiefs["fenyang"], world.chiefs["hushan"]
    forged = TicketButton(action="progress", ticket=1).pack()
    query = await intruder.press_data(card.message_id, forged, chat=fenyang)
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "不能" in answer["text"]
    await world.settle()
    ticket = await world.ticket(1)
    assert ticket.status == Status.ASSIGNED and ticket.claimed_at is None  # not claimed either

    # A quick pick without an open question changes nothing; nor does a forged far day
    pick = await fenyang.press_data(card.message_id, ExpectedDay(ticket=1, days=1).pack())
    assert "再点一次" in (await world.emulator.wait_for_callback_answer(pick))["text"]
    await fenyang.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(fenyang, contains="已认领")
    query = await intruder.press_data(desk.message_id, forged, chat=fenyang)  # claimed now
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "不能" in answer["text"]
    await world.settle()
    assert not any("预计哪天" in b for b in world.said_in(intruder))
    await fenyang.press(desk, text="⏳ 处理中")
    ask = await question(world)
    far = await fenyang.press_data(ask.message_id, ExpectedDay(ticket=1, days=500).pack())
    answer = await world.emulator.wait_for_callback_answer(far)
    assert answer["show_alert"] and "超过 90 天" in answer["text"]
    await world.settle()
    assert await expect_events(world) == 0


async def test_a_reopen_starts_a_new_round_without_the_old_day(world: World) -> None:
    desk = await claimed_desk(world)
    chief = world.chiefs["fenyang"]
    await chief.press(desk, text="⏳ 处理中")
    await chief.press(await question(world), text="一周内")
    await world.emulator.wait_for(chief, contains="11月9日周一")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="换了灯泡")
    verdict = await world.emulator.wait_for(world.intake, method="sendPhoto")
    world.clock.set(at(3, 10))
    await world.captain.press(verdict, text="😞 不满意")
    ask = await world.emulator.wait_for(world.intake, contains="哪里还没解决")
    await world.captain.press(ask, text="跳过")
    await world.emulator.wait_for(chief, contains="返工")
    ticket = await world.ticket(1)
    assert ticket.status == Status.REOPENED and ticket.expected_by is None
    assert ticket.next_reminder_at == at(3, 12)  # first_after from the reopen, not the 9th


async def test_an_english_speaking_chief_reads_english(world: World) -> None:
    chief = world.chiefs["fenyang"]
    chief.language_code = "en"
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=chief.id)
        assert person is not None
        person.language = "en"
        session.add(person)
        await session.commit()
    await reported(world)
    assert await tick_at(world, at(2, 11, 1)) == 1
    reminder = await world.emulator.wait_for(chief, contains="Reminder")
    assert "⏳ In progress" in reminder.button_texts
    await chief.press(reminder, text="⏳ In progress")
    ask = await world.emulator.wait_for(chief, contains="Which day do you expect ticket #1")
    assert ask.button_texts == ["Today", "Tomorrow", "In 2 days", "Within a week"]
    await chief.send_text(chief, "soonish")
    await world.emulator.wait_for(chief, contains='could not read "soonish"')
    await chief.send_text(chief, "tomorrow")
    done = await world.emulator.wait_for(chief, contains="Tue, Nov 3")
    assert "No reminders until then." in done.body
    assert not any(ch in done.body for ch in "的天提醒")  # no Chinese left in it
