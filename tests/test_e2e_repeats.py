"""End to end: five captains photograph one overflowing drain — the chief sees one ticket."""

from __future__ import annotations

from bot.emulator.records import BotMessage
from bot.lifecycle import Status

from conftest import World
from factories import draw_problem_scene, make_jpeg, photograph

DRAIN = draw_problem_scene(101, place_seed=7)


async def first_report(world: World) -> BotMessage:
    """The first captain's report of the drain; returns the chief's card."""
    await world.captain.send_photo(
        world.intake, photograph(DRAIN, seed=1), caption="汾阳路13号 下水道冒水了，路面全是污水"
    )
    await world.emulator.wait_for(world.intake, contains="已登记：工单 #1")
    return await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")


async def test_a_second_captains_report_is_merged_and_split_back_out(world: World) -> None:
    await first_report(world)
    await world.captain2.send_photo(
        world.intake, photograph(DRAIN, seed=2), caption="汾阳路13号门口下水道堵了，污水漫出来"
    )
    merged = await world.emulator.wait_for(world.intake, contains="已经有工单")
    assert "#1" in merged.body and "共 2 人反映" in merged.body
    assert merged.button_texts == ["不是同一问题"]
    told = await world.emulator.wait_for(world.chiefs["fenyang"], contains="又有人反映")
    assert "#1" in told.body and "#2" in told.body
    first, second = await world.tickets()
    assert (first.reports, second.status, second.duplicate_of) == (2, Status.DUPLICATE, 1)
    [merge] = [e for e in await world.events(2) if e.action == "mark_duplicate"]
    assert merge.details["score"] >= 0.85 and merge.details["signals"]

    # only the merged report's own captain (or the chief) may split it
    query = await world.captain.press(merged, text="不是同一问题")
    assert (await world.emulator.wait_for_callback_answer(query))["show_alert"]
    query = await world.captain2.press(merged, text="不是同一问题")
    assert "#2" in (await world.emulator.wait_for_callback_answer(query))["text"]
    await world.emulator.wait_for(world.chiefs["fenyang"], contains="新工单 #2")
    first, second = await world.tickets()
    assert (first.reports, second.status, second.duplicate_of) == (1, Status.ASSIGNED, None)


async def test_followers_hear_when_the_original_is_claimed(world: World) -> None:
    card = await first_report(world)
    await world.captain2.send_photo(
        world.intake, photograph(DRAIN, seed=3), caption="汾阳路13号 下水道冒污水"
    )
    await world.emulator.wait_for(world.intake, contains="已经有工单")
    chief = world.chiefs["fenyang"]
    await chief.press(card, text="✋ 认领")
    news = await world.emulator.wait_for(world.intake, contains="您反映的问题")
    assert "#1" in news.body and "处理中" in news.body


async def test_a_different_problem_at_the_same_address_is_not_merged(world: World) -> None:
    await first_report(world)
    lamp = draw_problem_scene(202, place_seed=7)
    await world.captain2.send_photo(
        world.intake, photograph(lamp, seed=4), caption="汾阳路13号 路灯不亮，晚上很黑"
    )
    await world.emulator.wait_for(world.intake, contains="已登记：工单 #2")
    assert [t.status for t in await world.tickets()] == [Status.ASSIGNED, Status.ASSIGNED]


async def test_an_unsure_repeat_is_asked_and_the_reporter_decides(world: World) -> None:
    await first_report(world)
    # the same spot, few words and a close-up that looks unlike the first photo: maybe
    await world.captain2.send_photo(
        world.intake, photograph(DRAIN, seed=5, how="close-up"), caption="汾阳路13号 污水"
    )
    asked = await world.emulator.wait_for(world.intake, contains="是同一个问题吗")
    assert asked.button_texts == ["是同一个问题", "不是"]
    query = await world.captain2.press(asked, text="是同一个问题")
    assert "#1" in (await world.emulator.wait_for_callback_answer(query))["text"]
    first, second = await world.tickets()
    assert (first.reports, second.status) == (2, Status.DUPLICATE)
    # a second press changes nothing
    again = await world.captain2.press(asked, text="不是")
    assert (await world.emulator.wait_for_callback_answer(again))["show_alert"]


async def test_an_unsure_repeat_the_reporter_calls_different_stays(world: World) -> None:
    await first_report(world)
    await world.captain2.send_photo(
        world.intake, photograph(DRAIN, seed=6, how="close-up"), caption="汾阳路13号 污水"
    )
    asked = await world.emulator.wait_for(world.intake, contains="是同一个问题吗")
    query = await world.captain2.press(asked, text="不是")
    assert "#2" in (await world.emulator.wait_for_callback_answer(query))["text"]
    first, second = await world.tickets()
    assert (first.reports, second.status) == (1, Status.ASSIGNED)


async def test_the_chief_merges_and_unmerges_by_hand(world: World) -> None:
    await first_report(world)
    await world.captain2.send_photo(
        world.intake, make_jpeg(seed=79), caption="金水路30号 垃圾桶满了"
    )
    await world.emulator.wait_for(world.intake, contains="已登记：工单 #2")
    chief = world.chiefs["jinshui"]
    await chief.command(chief, "/merge 2 1")
    done = await world.emulator.wait_for(chief, contains="并入")
    assert "#2" in done.body and "#1" in done.body
    assert (await world.ticket(2)).status == Status.DUPLICATE
    await chief.command(chief, "/unmerge 2")
    await world.emulator.wait_for(chief, contains="恢复为单独工单")
    assert (await world.ticket(2)).status == Status.ASSIGNED
    for bad in ("/merge", "/merge 2", "/merge 2 2", "/merge x y", "/merge 2 999999"):
        await chief.command(chief, bad)
        await world.emulator.wait_for(chief)
    assert (await world.ticket(2)).status == Status.ASSIGNED
    assert (await world.ticket(1)).reports == 1
