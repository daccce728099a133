"""End to end: 🔀 转派 with a reason and 📝 备注 (by the chief or the street office), the street
office's /open and its overrides, and every way to press a button one should not."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from bot.callbacks import MoveTo, OpenPage, TicketButton
from bot.cli import app as cli
from bot.emulator.players import User
from bot.emulator.records import BotMessage
from bot.lifecycle import Action, Role, Status

from conftest import World, office_member
from factories import draw_problem_scene, make_jpeg, photograph

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday, 09:00 in the district
OFFICE = "兴城路街道办事处"


async def report(
    world: World, caption: str = "汾阳路13号 旱厕堵了", *, seed: int = 1
) -> BotMessage:
    """The captain's report at 09:00; returns the fenyang chief's card."""
    world.clock.set(MORNING)
    await world.captain.send_photo(world.intake, make_jpeg(seed=seed), caption=caption)
    return await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")


async def alert(world: World, query: str) -> str:
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"], answer
    return str(answer["text"])


async def reassign(
    world: World, who: User, message: BotMessage, *, to: str = "金水路社区工作站",
    reason: str = "属于金水路的管辖范围",
) -> None:
    """Press 🔀 转派 on ``message``, pick ``to``, give ``reason``."""
    await who.press(message, text="🔀 转派")
    choice = await world.emulator.wait_for(who, contains="转派到哪个工作站")
    await who.press(choice, text=to)
    await world.emulator.wait_for(who, contains="的原因")
    await who.send_text(who, reason)


# --- 🔀 转派 ----------------------------------------------------------------------------------


async def test_the_chief_reassigns_a_claimed_ticket_with_a_reason(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    assert card.button_texts == ["✋ 认领", "↩️ 退回", "🔀 转派", "📝 备注"]
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    due_before = (await world.ticket(1)).due_at

    world.clock.set(MORNING + timedelta(minutes=30))
    await chief.press(desk, text="🔀 转派")
    choice = await world.emulator.wait_for(chief, contains="转派到哪个工作站")
    assert "#1" in choice.body and "汾阳路社区工作站" in choice.body
    assert "汾阳路社区工作站" not in choice.button_texts and len(choice.button_texts) == 7
    await chief.press(choice, text="金水路社区工作站")
    await world.emulator.wait_for(chief, contains="转派到金水路社区工作站的原因")
    await chief.send_text(chief, "<b>不归我们管</b> & 属于金水路")

    new_chief = world.chiefs["jinshui"]
    moved = await world.emulator.wait_for(new_chief, method="sendPhoto")
    assert "#1" in moved.body and "由汾阳路社区工作站转来" in moved.body
    assert "<b>不归我们管</b> & 属于金水路" in moved.body  # escaped, shown as typed
    assert moved.button_texts == ["✋ 认领", "↩️ 退回", "🔀 转派", "📝 备注"]
    await world.emulator.wait_for(new_chief, method="sendLocation")
    away = await world.emulator.wait_for(chief, contains="已转派给金水路社区工作站")
    assert "<b>不归我们管</b>" in away.body
    told = await world.emulator.wait_for(world.intake, contains="已转交金水路社区工作站处理")
    assert "不归我们管" not in told.body  # the reason stays between the stations

    ticket = await world.ticket(1)
    assert (ticket.status, ticket.station_key, ticket.claimed_at) == (
        Status.ASSIGNED, "jinshui", None
    )
    assert ticket.due_at == due_before  # the resident's deadline is kept
    assert ticket.reminders_sent == 0
    assert ticket.next_reminder_at == MORNING + timedelta(hours=2, minutes=30)
    [event] = [e for e in await world.events(1) if e.action == Action.REASSIGN]
    assert event.role == Role.CHIEF and event.details == {"from": "fenyang", "to": "jinshui"}
    assert (event.from_status, event.to_status) == (Status.CLAIMED, Status.ASSIGNED)
    assert event.note == "<b>不归我们管</b> & 属于金水路"

    # reminders now go to the new chief, and only to them
    world.clock.set(MORNING + timedelta(hours=2, minutes=31))
    assert await world.app.ticker.tick() == 1
    await world.settle()
    reminder = await world.emulator.wait_for(new_chief, contains="提醒")
    assert "#1" in reminder.body
    assert not any("提醒" in body for body in world.said_in(chief))

    # the old chief's buttons are no longer theirs; the new chief's work
    query = await chief.press(desk, text="🔀 转派")
    assert "不能" in await alert(world, query)
    query = await chief.press(choice, text="金水路社区工作站")  # the old choice, again
    assert "不能" in await alert(world, query)
    await new_chief.press(moved, text="✋ 认领")
    await world.emulator.wait_for(new_chief, contains="已认领")
    assert (await world.ticket(1)).status == Status.CLAIMED


async def test_a_reason_must_be_words_and_a_long_one_is_cut_politely(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="🔀 转派")
    choice = await world.emulator.wait_for(chief, contains="转派到哪个工作站")
    await chief.press(choice, text="虎山路社区工作站")
    await world.emulator.wait_for(chief, contains="的原因")

    await chief.send_photo(chief, make_jpeg(seed=9))  # not words: asked again
    await world.emulator.wait_for(chief, contains="请用文字回复")
    await chief.command(chief, "/tickets")  # a command is no answer either
    await world.emulator.wait_for(chief, contains="待办工单")
    assert (await world.ticket(1)).station_key == "fenyang"
    # 5000 characters: the Telegram client sends 4096 and then the rest
    await chief.send_text(chief, "长" * 4096)
    cut = await world.emulator.wait_for(chief, contains="写得太长了")
    assert "4096 字" in cut.body and "前 1024 字" in cut.body
    await world.emulator.wait_for(world.chiefs["hushan"], method="sendPhoto")
    await chief.send_text(chief, "长" * 904)  # no longer an answer to anything
    await world.settle()
    ticket = await world.ticket(1)
    assert ticket.station_key == "hushan"
    [event] = [e for e in await world.events(1) if e.action == Action.REASSIGN]
    assert event.note == "长" * 1024


async def test_cancel_leaves_the_ticket_where_it_was(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="🔀 转派")
    choice = await world.emulator.wait_for(chief, contains="转派到哪个工作站")
    await chief.press(choice, text="虎山路社区工作站")
    await world.emulator.wait_for(chief, contains="的原因")
    await chief.command(chief, "/cancel")
    await world.emulator.wait_for(chief, contains="取消")
    await chief.send_text(chief, "原因写在这里")
    await world.settle()
    assert (await world.ticket(1)).station_key == "fenyang"


async def test_forged_and_stale_reassign_buttons_change_nothing(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await world.captain.start_bot()
    await world.settle()
    for who, data in (
        (world.captain, TicketButton(action="move", ticket=1).pack()),  # a captain
        (world.captain, MoveTo(ticket=1, station="jinshui").pack()),
        (world.chiefs["hushan"], MoveTo(ticket=1, station="hushan").pack()),  # another chief
        (chief, MoveTo(ticket=1, station="fenyang").pack()),  # to where it is
        (chief, MoveTo(ticket=1, station="nowhere").pack()),  # no such station
        (chief, MoveTo(ticket=99, station="jinshui").pack()),  # no such ticket
        (chief, "r:1"),  # malformed
    ):
        query = await who.press_data(card.message_id, data, chat=chief)
        await alert(world, query)
    query = await chief.press_data(card.message_id, MoveTo(ticket=1, station="fenyang").pack())
    assert "已经由汾阳路社区工作站负责" in await alert(world, query)
    ticket = await world.ticket(1)
    assert (ticket.station_key, ticket.status) == ("fenyang", Status.ASSIGNED)
    assert Action.REASSIGN not in [e.action for e in await world.events(1)]


async def test_a_finished_ticket_cannot_be_reassigned(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="↩️ 退回")
    await world.emulator.wait_for(chief, contains="原因")
    await chief.send_text(chief, "这是物业的事")
    await world.emulator.wait_for(world.intake, contains="被退回")
    query = await chief.press(card, text="🔀 转派")
    assert "已退回" in await alert(world, query)


# --- 📝 备注 ----------------------------------------------------------------------------------


async def test_a_chiefs_note_is_history_not_news_for_the_reporter(
    world: World, database_url: str
) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await world.settle()
    said_in_group = len(world.said_in(world.intake))
    await chief.press(card, text="📝 备注")
    await world.emulator.wait_for(chief, contains="报告人看不到")
    await chief.send_photo(chief, make_jpeg(seed=9))
    await world.emulator.wait_for(chief, contains="请用文字回复")
    await chief.send_text(chief, "联系了物业 <i>王经理</i> & 明天上门")
    await world.emulator.wait_for(chief, contains="已记下工单 #1 的备注")
    await world.settle()

    ticket = await world.ticket(1)
    assert ticket.status == Status.ASSIGNED  # a note is no step of the lifecycle
    [note] = [e for e in await world.events(1) if e.action == Action.NOTE]
    assert note.role == Role.CHIEF and note.from_status == note.to_status == Status.ASSIGNED
    assert note.note == "联系了物业 <i>王经理</i> & 明天上门"
    assert len(world.said_in(world.intake)) == said_in_group  # the reporter hears nothing

    env = {"GRIDBOT_DATABASE_URL": database_url, "COLUMNS": "300"}
    shown = await asyncio.to_thread(CliRunner().invoke, cli, ["ticket", "show", "1"], env=env)
    assert shown.exit_code == 0, shown.output
    [row] = [line for line in shown.output.splitlines() if "联系了物业" in line]
    assert "汾阳路站长" in row and "chief" in row and " note " in row
    assert "联系了物业 <i>王经理</i> & 明天上门" in row
    as_json = await asyncio.to_thread(
        CliRunner().invoke, cli, ["ticket", "show", "1", "--json"], env=env
    )
    [event] = [e for e in json.loads(as_json.output)["events"] if e["action"] == "note"]
    assert event["note"] == "联系了物业 <i>王经理</i> & 明天上门" and event["role"] == "chief"


async def test_a_long_note_is_kept_to_its_first_1024_characters(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="📝 备注")
    await world.emulator.wait_for(chief, contains="报告人看不到")
    await chief.send_text(chief, "<b>" * 1365)  # 4095 characters of markup
    await world.emulator.wait_for(chief, contains="已记下工单 #1 的备注")
    cut = await world.emulator.wait_for(chief, contains="写得太长了")
    assert "4095 字" in cut.body
    [note] = [e for e in await world.events(1) if e.action == Action.NOTE]
    assert note.note == ("<b>" * 1365)[:1024]


async def test_a_note_by_someone_else_is_refused(world: World) -> None:
    card = await report(world)
    for who in (world.captain, world.chiefs["hushan"]):
        query = await who.press_data(
            card.message_id, TicketButton(action="note", ticket=1).pack(),
            chat=world.chiefs["fenyang"],
        )
        assert "不能" in await alert(world, query)
    assert Action.NOTE not in [e.action for e in await world.events(1)]


# --- the street office: /open and its overrides -----------------------------------------------


async def test_open_lists_every_stations_open_tickets_for_the_office(world: World) -> None:
    clerk = await office_member(world)
    world.clock.set(MORNING)
    for n in range(1, 6):
        await world.captain.send_photo(
            world.intake, make_jpeg(seed=n), caption=f"汾阳路{n}号 垃圾没人清"
        )
        await world.emulator.wait_for(world.intake, contains=f"#{n}")
    for n in (6, 7):  # 金水路6、7号 lie in 兴城路's grid
        await world.captain.send_photo(
            world.intake, make_jpeg(seed=n), caption=f"金水路{n}号 路灯不亮"
        )
        await world.emulator.wait_for(world.intake, contains=f"#{n}")

    await clerk.command(clerk, "/open")
    listing = await world.emulator.wait_for(clerk, contains="未办结工单")
    assert "全部工作站" in listing.body and "共 7 件（第 1/2 页）" in listing.body
    assert "#1 汾阳路社区工作站｜汾阳路1号｜待认领" in listing.body  # 24h: the most urgent
    assert listing.button_texts == ["#1", "#2", "#3", "#4", "#5", "下一页 ▶"]
    await clerk.press(listing, text="下一页 ▶")
    second = await world.emulator.wait_for(clerk, method="editMessageText")
    assert "#6 兴城路社区工作站｜金水路6号" in second.body and "#7 " in second.body

    await clerk.command(clerk, "/open xingcheng")
    one = await world.emulator.wait_for(clerk, contains="未办结工单")
    assert "兴城路社区工作站未办结工单 共 2 件" in one.body and "#1 " not in one.body
    assert one.button_texts == ["#6", "#7"]
    await clerk.command(clerk, "/open 汾阳路社区工作站")
    by_name = await world.emulator.wait_for(clerk, contains="未办结工单")
    assert "共 5 件" in by_name.body
    await clerk.command(clerk, "/open <b>nowhere</b>")
    unknown = await world.emulator.wait_for(clerk, contains="没有叫")
    assert "“<b>nowhere</b>”" in unknown.body and "fenyang" in unknown.body
    await clerk.command(clerk, "/open dongli")
    await world.emulator.wait_for(clerk, contains="东李社区工作站没有未办结的工单")


async def test_open_is_for_the_office_only(world: World) -> None:
    await report(world)
    await world.captain.start_bot()
    await world.emulator.wait_for(world.captain)
    for who in (world.captain, world.chiefs["fenyang"]):
        await who.command(who, "/open")
        await world.emulator.wait_for(who, contains="是给街道工作人员用的")
        await who.command(who, "/open 1")
        await world.emulator.wait_for(who, contains="是给街道工作人员用的")
    for data in (OpenPage(station="", page=0).pack(), TicketButton(action="open", ticket=1).pack(),
                 TicketButton(action="reopen", ticket=1).pack()):
        query = await world.captain.press_data(1, data)
        await alert(world, query)
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_the_office_reassigns_from_its_card_but_may_not_claim(world: World) -> None:
    await report(world)
    clerk = await office_member(world)
    await clerk.command(clerk, "/open")
    listing = await world.emulator.wait_for(clerk, contains="未办结工单")
    await clerk.press(listing, text="#1")
    card = await world.emulator.wait_for(clerk, method="sendPhoto")
    assert "#1" in card.body and "汾阳路社区工作站" in card.body and "王阿姨" in card.body
    assert card.button_texts == ["↩️ 退回", "🔀 转派", "📝 备注"]

    query = await clerk.press_data(card.message_id, TicketButton(action="claim", ticket=1).pack())
    assert "不能" in await alert(world, query)  # claiming stays the chief's

    await reassign(world, clerk, card, to="虎山路社区工作站", reason="街道统一安排")
    await world.emulator.wait_for(world.chiefs["hushan"], method="sendPhoto")
    await world.emulator.wait_for(world.chiefs["fenyang"], contains="已转派给虎山路社区工作站")
    done = await world.emulator.wait_for(clerk, contains="现在：待认领")
    assert "#1" in done.body
    [event] = [e for e in await world.events(1) if e.action == Action.REASSIGN]
    assert event.role == Role.OFFICE


async def test_the_office_adds_a_note_the_chief_sees_and_the_card_shows(world: World) -> None:
    await report(world)
    clerk = await office_member(world)
    await clerk.command(clerk, "/open #1")
    card = await world.emulator.wait_for(clerk, method="sendPhoto")
    await clerk.press(card, text="📝 备注")
    await world.emulator.wait_for(clerk, contains="报告人看不到")
    await clerk.send_text(clerk, "请优先处理 <u>老人反映多次</u>")
    await world.emulator.wait_for(clerk, contains="已记下工单 #1 的备注")
    told = await world.emulator.wait_for(world.chiefs["fenyang"], contains="的备注")
    assert OFFICE in told.body and "请优先处理 <u>老人反映多次</u>" in told.body
    await clerk.command(clerk, "/open 1")
    again = await world.emulator.wait_for(clerk, method="sendPhoto")
    assert "街道办小张：请优先处理 <u>老人反映多次</u>" in again.body


async def test_the_office_reopens_a_closed_ticket_with_a_reason(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已疏通")
    ask = await world.emulator.wait_for(world.intake, method="sendPhoto")
    await world.captain.press(ask, text="😊 满意")
    await world.emulator.wait_for(world.intake, contains="已办结")
    assert (await world.ticket(1)).status == Status.CLOSED

    clerk = await office_member(world)
    await clerk.command(clerk, "/open 1")
    closed = await world.emulator.wait_for(clerk, method="sendPhoto")
    assert "已办结" in closed.body and closed.button_texts == ["🔁 重新打开", "📝 备注"]
    await clerk.press(closed, text="🔁 重新打开")
    await world.emulator.wait_for(clerk, contains="重新打开工单 #1 的原因")
    await clerk.send_text(clerk, "居民来电：<b>又堵了</b>")
    back = await world.emulator.wait_for(chief, contains="重新打开")
    assert OFFICE in back.body and "居民来电：<b>又堵了</b>" in back.body
    assert back.button_texts == ["✅ 已处理", "↩️ 退回", "🔀 转派", "📝 备注"]
    await world.emulator.wait_for(world.intake, contains="已由兴城路街道办事处重新打开")
    await world.emulator.wait_for(clerk, contains="现在：返工中")
    ticket = await world.ticket(1)
    assert ticket.status == Status.REOPENED and ticket.closed_at is None
    assert ticket.next_reminder_at is not None
    [event] = [e for e in await world.events(1) if e.action == Action.REOPEN]
    assert event.role == Role.OFFICE and event.note == "居民来电：<b>又堵了</b>"


async def test_the_office_rejects_with_the_reason_the_reporter_sees(world: World) -> None:
    await report(world)
    clerk = await office_member(world)
    await clerk.command(clerk, "/open 1")
    card = await world.emulator.wait_for(clerk, method="sendPhoto")
    await clerk.press(card, text="↩️ 退回")
    await world.emulator.wait_for(clerk, contains="原因")
    await clerk.send_text(clerk, "属于区住建局管理")
    told = await world.emulator.wait_for(world.intake, contains="被退回")
    assert "属于区住建局管理" in told.body
    await world.emulator.wait_for(clerk, contains="现在：已退回")
    assert (await world.ticket(1)).status == Status.REJECTED


async def test_reassigning_twice_from_one_old_choice_moves_it_once(world: World) -> None:
    card = await report(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="🔀 转派")
    choice = await world.emulator.wait_for(chief, contains="转派到哪个工作站")
    await chief.press(choice, text="金水路社区工作站")
    await chief.press(choice, text="金水路社区工作站")  # a double tap asks once more, harmless
    await world.emulator.wait_for(chief, contains="的原因")
    await chief.send_text(chief, "属于金水路")
    await world.emulator.wait_for(world.chiefs["jinshui"], method="sendPhoto")
    await chief.send_text(chief, "属于金水路")  # the same answer again, sent twice
    await world.settle()
    assert [e.action for e in await world.events(1)].count(Action.REASSIGN) == 1
    assert (await world.ticket(1)).station_key == "jinshui"


async def test_followers_hear_where_a_merged_problem_went(world: World) -> None:
    drain = draw_problem_scene(101, place_seed=7)
    await world.captain.send_photo(
        world.intake, photograph(drain, seed=1), caption="汾阳路13号 下水道冒水了，路面全是污水"
    )
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    await world.captain2.send_photo(
        world.intake, photograph(drain, seed=2), caption="汾阳路13号门口下水道堵了，污水漫出来"
    )
    await world.emulator.wait_for(world.intake, contains="已经有工单")
    await reassign(world, world.chiefs["fenyang"], card, to="兴城路社区工作站")
    await world.emulator.wait_for(world.chiefs["xingcheng"], method="sendPhoto")
    news = await world.emulator.wait_for(world.intake, contains="您反映的问题")
    assert "#1" in news.body and "待认领" in news.body
