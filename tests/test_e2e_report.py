"""End to end through the emulator: a captain's report travels to the chief and back."""

from __future__ import annotations

from bot.lifecycle import Status

from conftest import World
from factories import make_jpeg


async def report(world: World, caption: str | None, *, seed: int = 1):  # type: ignore[no-untyped-def]
    return await world.captain.send_photo(world.intake, make_jpeg(seed=seed), caption=caption)


async def test_photo_with_full_caption_becomes_a_routed_ticket(world: World) -> None:
    sent = await report(world, "汾阳路13号 旱厕堵了")

    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert ack.reply_to == sent.message_id
    assert "汾阳路13号" in ack.body
    assert "汾阳路社区工作站" in ack.body

    chief = world.chiefs["fenyang"]
    card = await world.emulator.wait_for(chief, method="sendPhoto")
    assert "旱厕堵了" in card.body and "王阿姨" in card.body
    assert card.button_texts == ["✋ 认领", "↩️ 退回", "🔀 转派", "📝 备注"]
    pin = await world.emulator.wait_for(chief, method="sendLocation")
    assert pin.json["location"]["latitude"] > 36

    [ticket] = await world.tickets()
    assert ticket.status == Status.ASSIGNED
    assert ticket.station_key == "fenyang"
    assert ticket.description == "旱厕堵了"


async def test_the_whole_cycle_claim_resolve_confirm(world: World) -> None:
    await report(world, "地址：汾阳路13号；描述：旱厕堵了")
    chief = world.chiefs["fenyang"]
    card = await world.emulator.wait_for(chief, method="sendPhoto")

    query = await chief.press(card, text="✋ 认领")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert "#1" in answer["text"]
    claimed = await world.emulator.wait_for(chief, contains="已认领")
    await world.emulator.wait_for(world.intake, contains="认领")

    await chief.press(claimed, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=9), caption="已疏通")
    await world.emulator.wait_for(chief, contains="等待报告人确认")

    ask = await world.emulator.wait_for(world.intake, method="sendPhoto")
    assert "已疏通" in ask.body
    assert ask.button_texts == ["😊 满意", "😞 不满意"]
    await world.captain.press(ask, text="😊 满意")
    await world.emulator.wait_for(world.intake, contains="已办结")
    await world.emulator.wait_for(chief, contains="满意")

    ticket = await world.ticket(1)
    assert ticket.status == Status.CLOSED and ticket.rating == "satisfied"

    # buttons on a closed ticket are stale: an alert, and nothing changes
    again = await world.captain.press(ask, text="😞 不满意")
    assert (await world.emulator.wait_for_callback_answer(again))["show_alert"]
    late = await chief.press(claimed, text="↩️ 退回")
    assert "已办结" in (await world.emulator.wait_for_callback_answer(late))["text"]
    assert (await world.ticket(1)).status == Status.CLOSED
    actions = [e.action for e in await world.events(1)]
    assert actions == ["report", "locate", "claim", "resolve", "confirm"]
