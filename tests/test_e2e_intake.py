"""End to end: the ways a report arrives in a group, and what the bot does with bad input."""

from __future__ import annotations

from sqlmodel import select

from bot.lifecycle import Status
from bot.photos import inspect_image
from storage import repo
from storage.models import ReceivedUpdate

from conftest import World
from factories import big_blob, corrupt_jpeg, fake_pdf, make_jpeg


async def test_missing_address_then_a_reply_completes_the_ticket(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="旱厕堵了")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    [ticket] = await world.tickets()
    assert ticket.status == Status.NEW and ticket.description == "旱厕堵了"

    await world.captain.send_text(world.intake, "汾阳路13号", reply_to=ask)
    ack = await world.emulator.wait_for(world.intake, contains="汾阳路社区工作站")
    assert "#1" in ack.body
    await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    ticket = await world.ticket(1)
    assert ticket.status == Status.ASSIGNED and ticket.address == "汾阳路13号"


async def test_missing_address_then_a_shared_location(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=2), caption="路灯不亮")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    # a point in the south-east of the district: 兴城路's grid
    await world.captain.send_location(world.intake, 36.155, 120.435, reply_to=ask)
    ack = await world.emulator.wait_for(world.intake, contains="兴城路社区工作站")
    assert "附近" in ack.body  # the nearest known address, read back for people
    await world.emulator.wait_for(world.chiefs["xingcheng"], method="sendPhoto")
    ticket = await world.ticket(1)
    assert ticket.station_key == "xingcheng" and ticket.location_source == "location"


async def test_an_unknown_address_is_asked_again_and_then_found(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=3), caption="幸福路99号 井盖丢了")
    ask = await world.emulator.wait_for(world.intake, contains="没找到")
    assert "幸福路99号" in ask.body
    await world.captain.send_text(world.intake, "金水路8号", reply_to=ask)
    await world.emulator.wait_for(world.intake, contains="#1")
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_a_text_report_without_a_photo_is_asked_for_one(world: World) -> None:
    await world.captain.send_text(world.intake, "汾阳路13号 旱厕堵了，好几天没人管")
    ask = await world.emulator.wait_for(world.intake, contains="照片")
    assert "汾阳路13号" in ask.body
    assert await world.tickets() == []


async def test_ordinary_chat_in_the_group_is_left_alone(world: World) -> None:
    await world.captain.send_text(world.intake, "大家早上好！今天天气不错")
    await world.captain2.send_text(world.intake, "明天社区有包饺子活动")
    await world.settle()
    assert world.said_in(world.intake) == []
    assert await world.tickets() == []


async def test_a_group_that_is_not_an_intake_chat_is_ignored(world: World) -> None:
    await world.captain.send_photo(
        world.stranger_group, make_jpeg(seed=4), caption="汾阳路13号 旱厕堵了"
    )
    await world.captain.send_text(world.stranger_group, "汾阳路13号 旱厕堵了")
    await world.settle()
    assert world.said_in(world.stranger_group) == []
    assert await world.tickets() == []
    async with world.app.sessions() as session:
        stored = (await session.exec(select(ReceivedUpdate))).all()
    assert str(world.stranger_group.id) not in repr([r.payload for r in stored])


async def test_an_album_makes_one_ticket_with_all_its_photos(world: World) -> None:
    photos = [make_jpeg(seed=s) for s in (5, 6, 7)]
    await world.captain.send_album(world.intake, photos, caption="金水路8号 垃圾堆了三天")
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.settle()
    [ticket] = await world.tickets()
    assert ticket.station_key is not None
    async with world.app.sessions() as session:
        assert len(await repo.photos_of(session=session, ticket_id=1, kind="report")) == 3
    assert len([m for m in world.said_in(world.intake) if "#1" in m]) == 1


async def test_a_redelivered_update_makes_no_second_ticket(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=8), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.settle()
    async with world.app.sessions() as session:
        received = (await session.exec(select(ReceivedUpdate))).all()
    world.emulator.redeliver(max(r.update_id for r in received))
    await world.settle()
    assert len(await world.tickets()) == 1
    assert len([m for m in world.said_in(world.intake) if "#1" in m]) == 1


async def test_a_place_outside_every_grid_goes_to_the_street_office(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=10), caption="青岛北站 广告牌松动")
    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert "街道" in ack.body
    triage = await world.emulator.wait_for(world.office, contains="待分派")
    assert "青岛北站" in triage.body
    ticket = await world.ticket(1)
    assert ticket.status == Status.NEW and ticket.station_key is None


# --- bad input: a clear answer, nothing changed, nothing lost ----------------------------


async def test_a_corrupt_jpeg_is_refused_politely(world: World) -> None:
    await world.captain.send_photo(world.intake, corrupt_jpeg(), caption="汾阳路13号 旱厕堵了")
    answer = await world.emulator.wait_for(world.intake, contains="照片")
    assert "损坏" in answer.body
    assert await world.tickets() == []
    # and the bot still works
    await world.captain.send_photo(world.intake, make_jpeg(seed=11), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")


async def test_a_document_that_is_not_a_picture_is_refused(world: World) -> None:
    await world.captain.send_document(
        world.intake, fake_pdf(), file_name="通知.pdf", mime_type="application/pdf",
        caption="汾阳路13号 旱厕堵了",
    )
    answer = await world.emulator.wait_for(world.intake)
    assert "不是照片" in answer.body
    assert await world.tickets() == []


async def test_a_25_mb_file_is_refused_as_too_large(world: World) -> None:
    await world.captain.send_document(
        world.intake, big_blob(25 * 1024 * 1024), file_name="IMG_0001.jpg",
        mime_type="image/jpeg", caption="汾阳路13号 旱厕堵了",
    )
    answer = await world.emulator.wait_for(world.intake)
    assert "太大" in answer.body
    assert await world.tickets() == []


async def test_a_picture_sent_as_a_file_reaches_the_chief_without_its_gps(
    world: World,
) -> None:
    await world.captain.send_document(
        world.intake, make_jpeg(seed=12, gps=(36.16, 120.41)), file_name="IMG_0002.jpg",
        mime_type="image/jpeg", caption="虎山路5号 路面塌陷",
    )
    await world.emulator.wait_for(world.intake, contains="#1")
    card = await world.emulator.wait_for(world.chiefs["hushan"], method="sendPhoto")
    largest = card.json["photo"][-1]
    shown = world.emulator.files.get(largest["file_id"])
    assert shown is not None and inspect_image(shown.data).gps is None
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_a_5000_character_caption_is_refused(world: World) -> None:
    world.emulator.client_checks = False  # official clients stop at 4096; a modified one won't
    await world.captain.send_photo(
        world.intake, make_jpeg(seed=13), caption="汾阳路13号 " + "旱厕堵了" * 1250
    )
    answer = await world.emulator.wait_for(world.intake)
    assert "太长" in answer.body
    assert await world.tickets() == []


async def test_a_5000_character_text_is_left_alone(world: World) -> None:
    world.emulator.client_checks = False
    await world.captain.send_text(world.intake, "汾阳路13号 旱厕堵了" * 500)
    await world.settle()
    assert world.said_in(world.intake) == []


async def test_markup_in_a_caption_is_shown_as_typed(world: World) -> None:
    caption = "汾阳路13号 <b>旱厕</b> & 化粪池 <script>alert(1)</script>"
    await world.captain.send_photo(world.intake, make_jpeg(seed=14), caption=caption)
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    assert "<b>旱厕</b> & 化粪池 <script>alert(1)</script>" in card.body
    assert (await world.ticket(1)).description == "<b>旱厕</b> & 化粪池 <script>alert(1)</script>"


async def test_the_same_photo_posted_again_is_answered_with_the_first_ticket(
    world: World,
) -> None:
    photo = make_jpeg(seed=15)
    await world.captain.send_photo(world.intake, photo, caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="已登记：工单 #1")
    await world.captain2.send_photo(world.intake, photo, caption="汾阳路13号 厕所又堵了！")
    again = await world.emulator.wait_for(world.intake, contains="已经有工单")
    assert "#1" in again.body and "共 2 人反映" in again.body
    assert [t.status for t in await world.tickets()] == [Status.ASSIGNED, Status.DUPLICATE]
