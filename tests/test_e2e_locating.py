"""End to end: places that come from somewhere other than the caption's words."""

from __future__ import annotations

from bot.lifecycle import Status

from conftest import World
from factories import make_jpeg


async def test_a_file_photo_with_gps_and_no_address_is_placed_by_its_exif(world: World) -> None:
    await world.captain.send_document(
        world.intake, make_jpeg(seed=20, gps=(36.155, 120.435)), file_name="IMG_1.jpg",
        mime_type="image/jpeg", caption="井盖松了，踩上去会响",
    )
    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert "兴城路社区工作站" in ack.body
    ticket = await world.ticket(1)
    assert ticket.station_key == "xingcheng" and ticket.location_source == "exif"


async def test_a_compressed_photo_has_no_gps_so_the_address_is_asked(world: World) -> None:
    # Telegram strips EXIF from photos sent as photos: the emulator recompresses like it.
    await world.captain.send_photo(
        world.intake, make_jpeg(seed=21, gps=(36.155, 120.435)), caption="井盖松了"
    )
    await world.emulator.wait_for(world.intake, contains="还缺地址")
    assert (await world.ticket(1)).status == Status.NEW


async def test_a_venue_answers_where(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=22), caption="垃圾桶倒了")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    await world.captain.send_venue(
        world.intake, 36.155, 120.435, title="兴城路菜场", address="兴城路", reply_to=ask
    )
    ack = await world.emulator.wait_for(world.intake, contains="兴城路社区工作站")
    assert "兴城路菜场" in ack.body
    ticket = await world.ticket(1)
    assert ticket.location_source == "venue"


async def test_a_forged_location_changes_nothing(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=23), caption="路灯不亮")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    await world.captain.send_location(world.intake, 0.0, 0.0, reply_to=ask)
    await world.settle()
    ticket = await world.ticket(1)
    assert ticket.status == Status.NEW or ticket.station_key is None
