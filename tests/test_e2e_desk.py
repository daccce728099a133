"""End to end: the chief's desk, the reporter's verdict, and buttons that must not work."""

from __future__ import annotations

from bot.callbacks import TicketButton
from bot.lifecycle import Status

from conftest import World
from factories import make_jpeg


async def reported(world: World, caption: str = "汾阳路13号 旱厕堵了", seed: int = 1):  # type: ignore[no-untyped-def]
    await world.captain.send_photo(world.intake, make_jpeg(seed=seed), caption=caption)
    return await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")


async def claimed(world: World):  # type: ignore[no-untyped-def]
    card = await reported(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    return await world.emulator.wait_for(chief, contains="已认领")


async def resolved(world: World):  # type: ignore[no-untyped-def]
    chief = world.chiefs["fenyang"]
    desk = await claimed(world)
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已疏通")
    return await world.emulator.wait_for(world.intake, method="sendPhoto")


async def test_the_chief_rejects_with_a_reason(world: World) -> None:
    card = await reported(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="↩️ 退回")
    await world.emulator.wait_for(chief, contains="原因")
    await chief.send_text(chief, "这是物业的责任 <请找物业>")
    told = await world.emulator.wait_for(world.intake, contains="被退回")
    assert "这是物业的责任 <请找物业>" in told.body
    ticket = await world.ticket(1)
    assert ticket.status == Status.REJECTED and ticket.reason == "这是物业的责任 <请找物业>"


async def test_resolving_asks_for_a_photo_not_text(world: World) -> None:
    chief = world.chiefs["fenyang"]
    desk = await claimed(world)
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_text(chief, "修好了")
    await world.emulator.wait_for(chief, contains="请发一张处理后的照片")
    assert (await world.ticket(1)).status == Status.CLAIMED


async def test_unsatisfied_reopens_with_the_reporters_comment(world: World) -> None:
    ask = await resolved(world)
    await world.captain.press(ask, text="😞 不满意")
    question = await world.emulator.wait_for(world.intake, contains="哪里还没解决")
    await world.captain.send_text(world.intake, "还是堵的，味道很大", reply_to=question)
    back = await world.emulator.wait_for(world.chiefs["fenyang"], contains="返工")
    assert "还是堵的，味道很大" in back.body
    assert back.button_texts == ["✅ 已处理", "↩️ 退回", "🔀 转派", "📝 备注"]
    ticket = await world.ticket(1)
    assert ticket.status == Status.REOPENED and ticket.rating == "unsatisfied"


async def test_only_the_reporter_may_judge_the_fix(world: World) -> None:
    ask = await resolved(world)
    query = await world.captain2.press(ask, text="😊 满意")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "不能" in answer["text"]
    assert (await world.ticket(1)).status == Status.RESOLVED


async def test_another_stations_chief_cannot_claim(world: World) -> None:
    card = await reported(world)
    data = card.buttons[0][0]["callback_data"]
    intruder = world.chiefs["hushan"]
    query = await intruder.press_data(card.message_id, data, chat=world.chiefs["fenyang"])
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"]
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_a_stale_claim_button_on_a_claimed_ticket(world: World) -> None:
    card = await reported(world)
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    await world.emulator.wait_for(chief, contains="已认领")
    query = await chief.press(card, text="✋ 认领")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"] and "处理中" in answer["text"]
    assert [e.action for e in await world.events(1)].count("claim") == 1


async def test_forged_and_malformed_buttons_change_nothing(world: World) -> None:
    card = await reported(world)
    chief = world.chiefs["fenyang"]
    for data in ("t:claim:999", "t:claim:abc", "t:explode:1", "garbage", "p:x", "",
                 TicketButton(action="ok", ticket=1).pack()):
        query = await chief.press_data(card.message_id, data)
        answer = await world.emulator.wait_for_callback_answer(query)
        assert answer["show_alert"], data
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_tickets_lists_open_work_most_urgent_first_with_pages(world: World) -> None:
    for seed in range(7):
        await world.captain.send_photo(
            world.intake, make_jpeg(seed=seed), caption=f"汾阳路{seed + 1}号 垃圾没人清"
        )
        await world.emulator.wait_for(world.intake, contains=f"#{seed + 1}")
    chief = world.chiefs["fenyang"]
    await chief.command(chief, "/tickets")
    first = await world.emulator.wait_for(chief, contains="共 7 件")
    assert "第 1/2 页" in first.body
    assert first.body.index("#1 ") < first.body.index("#5 ")
    assert "#6 " not in first.body
    await chief.press(first, text="下一页 ▶")
    second = await world.emulator.wait_for(chief, method="editMessageText")
    assert "#6 " in second.body and "#7 " in second.body


async def test_tickets_is_for_chiefs(world: World) -> None:
    await world.captain.start_bot()
    await world.captain.command(world.captain, "/tickets")
    answer = await world.emulator.wait_for(world.captain, contains="是给站长、站长（协助）用的")
    assert "/tickets" in answer.body


async def test_a_blocked_reporter_loses_nothing(world: World) -> None:
    await world.captain.start_bot()
    await world.settle()
    await world.captain.block_bot()
    await resolved_privately(world)
    failed = [m for m in await world.outbox() if m.status == "failed"]
    assert failed and "blocked" in (failed[0].last_error or "")
    assert (await world.ticket(1)).status == Status.RESOLVED


async def resolved_privately(world: World) -> None:
    chief = world.chiefs["fenyang"]
    desk = await claimed(world)
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已疏通")
    await world.emulator.wait_for(chief, contains="等待报告人确认")
    await world.settle()


async def test_a_429_delays_but_loses_nothing(world: World) -> None:
    world.emulator.rate_limit(method="sendMessage", times=2, retry_after=1)
    await world.captain.send_photo(world.intake, make_jpeg(seed=3), caption="汾阳路13号 旱厕堵了")
    ack = await world.emulator.wait_for(world.intake, contains="#1", timeout=10)
    assert "汾阳路社区工作站" in ack.body
    await world.settle(deferred_too=True)
    outbox = await world.outbox()
    assert all(m.status == "sent" for m in outbox)
    [ack_row] = [m for m in outbox if m.chat_id == world.intake.id]
    assert ack_row.attempts == 3 and "retry after" in (ack_row.last_error or "").lower()
