"""A captain's registered building as a location hint: one tap under "where is it?"."""

from __future__ import annotations

from bot.lifecycle import Status
from storage import repo

from conftest import World
from factories import make_jpeg


async def registered(world: World, building: str | None) -> None:
    """王阿姨 has reported before (so she is known) and registered her building."""
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=world.captain.id)
        assert person is not None
        person.building = building
        session.add(person)
        await session.commit()


async def report_without_address(world: World, seed: int) -> None:
    caption = "楼道灯坏了，晚上很黑"
    await world.captain.send_photo(world.intake, make_jpeg(seed=seed), caption=caption)


async def test_the_registered_building_is_offered_and_one_tap_places_the_report(
    world: World,
) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    await registered(world, "金水路8号")
    await report_without_address(world, 2)
    ask = await world.emulator.wait_for(world.intake, contains="登记的楼栋")
    assert "金水路8号" in ask.body and ask.button_texts == ["🏠 就在我登记的楼栋"]

    # only the reporter may answer for her report
    await world.captain2.press(ask, text="🏠 就在我登记的楼栋")
    await world.settle()
    assert (await world.ticket(2)).status == Status.NEW

    await world.captain.press(ask, text="🏠 就在我登记的楼栋")
    placed = await world.emulator.wait_for(world.intake, contains="#2")
    ticket = await world.ticket(2)
    assert ticket.status == Status.ASSIGNED and ticket.address == "金水路8号"
    assert ticket.station_key is not None
    assert world.app.deployment.station(ticket.station_key).name in placed.body
    # a second tap changes nothing
    await world.captain.press(ask, text="🏠 就在我登记的楼栋")
    await world.settle()
    assert len([m for m in world.said_in(world.intake) if "已登记：工单 #2" in m]) == 1


async def test_without_a_registered_building_there_is_no_button(world: World) -> None:
    await report_without_address(world, 3)
    ask = await world.emulator.wait_for(world.intake, contains="缺地址")
    assert ask.button_texts == [] and "登记的楼栋" not in ask.body


async def test_a_registered_building_with_markup_is_shown_as_text(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    await registered(world, "<b>金水路8号</b> & 后院")
    await report_without_address(world, 4)
    ask = await world.emulator.wait_for(world.intake, contains="登记的楼栋")
    assert "<b>金水路8号</b> & 后院" in ask.body  # escaped: shown as typed, not as markup
