"""A chat the bot can no longer write to: recorded, never retried, and the office told once."""

from __future__ import annotations

from conftest import World
from factories import make_jpeg


def gone_notices(world: World) -> list[str]:
    return [m for m in world.said_in(world.office) if "无法再" in m]


async def report(world: World, seed: int, caption: str) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=seed), caption=caption)
    await world.settle()


async def test_a_chief_who_blocked_the_bot_is_reported_to_the_office_once(world: World) -> None:
    chief = world.chiefs["fenyang"]
    await chief.block_bot()
    await report(world, 1, "汾阳路13号 旱厕堵了")
    await report(world, 2, "汾阳路21号 路灯不亮")

    [notice] = gone_notices(world)
    assert chief.full_name in notice and "屏蔽" in notice
    assert "汾阳路社区工作站的站长" in notice  # the office sees why it matters
    after_block = [m for m in await world.outbox() if m.chat_id == chief.id][1:]  # 1: greeting
    assert len(after_block) == 4  # two cards, two pins: each tried once, never retried
    assert all(m.status == "failed" and m.attempts == 1 for m in after_block)
    assert all("blocked" in (m.last_error or "") for m in after_block)

    # unblocked, the desk works again; blocked a second time, the office hears again
    await chief.start_bot()
    await report(world, 3, "汾阳路5号 楼道灯坏了")
    assert any("#3" in m for m in world.said_in(chief))
    await chief.block_bot()
    await report(world, 4, "汾阳路7号 下水道反味")
    assert len(gone_notices(world)) == 2


async def resolve_first_ticket(world: World) -> None:
    chief = world.chiefs["fenyang"]
    [card] = [m for m in world.emulator.sent if m.chat_id == chief.id and m.method == "sendPhoto"]
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="已疏通")
    await world.settle()


async def test_a_group_that_removed_the_bot_is_reported_to_the_office(world: World) -> None:
    await report(world, 1, "汾阳路13号 旱厕堵了")
    await world.captain.remove_bot_from(world.intake)
    await resolve_first_ticket(world)  # the captain is asked to confirm in the group thread
    [notice] = gone_notices(world)
    assert str(world.intake.id) in notice and "移出" in notice


async def test_the_office_is_not_told_about_itself(world: World) -> None:
    await world.captain.remove_bot_from(world.office)
    await world.chiefs["fenyang"].block_bot()
    await report(world, 1, "汾阳路13号 旱厕堵了")
    office = [m for m in await world.outbox() if m.chat_id == world.office.id]
    # the one notice about the chief could not reach the office either; nothing more was tried
    assert len(office) == 1 and office[0].status == "failed"
