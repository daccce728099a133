"""End to end: the guided report in private chat (/report) — photos, place, category,
description, summary — with back and cancel, albums, a stale form, bad input at every step,
an English-speaking reporter, and the form kept in a real Redis across a restart."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from pydantic import SecretStr

from bot.app import Gridbot, build
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import User
from bot.emulator.records import BotMessage
from bot.lifecycle import Status
from bot.settings import Settings
from storage import repo

from conftest import TOKEN, World, running_world
from factories import corrupt_jpeg, fake_pdf, make_jpeg


@pytest.fixture(params=["memory", "redis"])
async def guided_world(
    request: pytest.FixtureRequest, database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[World]:
    """The world, its conversation state in memory or in the real Redis server."""
    storage = None
    if request.param == "redis":
        storage = request.getfixturevalue("redis_fsm")()
    async with running_world(database_url, deployment, tmp_path, fsm_storage=storage) as world:
        yield world


async def said(world: World, user: User, contains: str) -> BotMessage:
    return await world.emulator.wait_for(user, contains=contains)


async def start_form(world: World, user: User) -> BotMessage:
    await user.command(user, "/report")
    return await said(world, user, "1/5")


async def to_category(world: World, user: User, *, seed: int = 1) -> BotMessage:
    """/report, a photo, a confident address: the category question."""
    await start_form(world, user)
    await user.send_photo(user, make_jpeg(seed=seed))
    await said(world, user, "已收到 1 张照片")
    await user.send_text(user, "汾阳路13号")
    return await said(world, user, "3/5")


async def to_summary(world: World, user: User, *, seed: int = 1) -> BotMessage:
    category = await to_category(world, user, seed=seed)
    await user.press(category, text="环境卫生")
    await said(world, user, "4/5")
    await user.send_text(user, "旱厕堵了")
    return await said(world, user, "5/5")


# --- the whole form -------------------------------------------------------------------------


async def test_a_guided_report_with_suggestions_back_and_submit(guided_world: World) -> None:
    world, captain = guided_world, guided_world.captain
    first = await start_form(world, captain)
    assert "照片" in first.body and "✖ 取消" in first.button_texts

    await captain.send_photo(captain, make_jpeg(seed=1))
    got = await said(world, captain, "已收到 1 张照片")
    assert {"下一步 ▶", "✖ 取消"} <= set(got.button_texts)
    await captain.press(got, text="下一步 ▶")
    where = await said(world, captain, "2/5")
    assert "◀ 返回" in where.button_texts

    # An address the gazetteer cannot be sure of: up to five places to pick from.
    await captain.send_text(captain, "金秋小区3号楼")
    suggest = await said(world, captain, "是下面哪一个")
    assert "金秋小区二期3号楼" in suggest.button_texts
    assert len([b for b in suggest.button_texts if "金秋" in b]) <= 5
    await captain.press(suggest, text="金秋小区二期3号楼")
    category = await said(world, captain, "3/5")
    assert "金秋小区二期3号楼" in category.body
    assert {"环境卫生", "公共设施", "安全隐患", "其他"} <= set(category.button_texts)

    # Back to the place: it is kept, and 下一步 goes on with it.
    await captain.press(category, text="◀ 返回")
    again = await said(world, captain, "2/5")
    assert "现在是：金秋小区二期3号楼" in again.body
    await captain.press(again, text="下一步 ▶")
    category = await said(world, captain, "3/5")
    await captain.press(category, text="环境卫生")
    describe = await said(world, captain, "4/5")
    assert "跳过" in describe.button_texts
    await captain.send_text(captain, "车库积水，一直没人管")
    summary = await said(world, captain, "5/5")
    for part in ("照片 1 张", "金秋小区二期3号楼", "金水路社区工作站", "环境卫生", "车库积水"):
        assert part in summary.body
    assert {"✅ 提交", "◀ 返回", "✖ 取消"} <= set(summary.button_texts)
    assert await world.tickets() == []  # nothing is a ticket before 提交

    query = await captain.press(summary, text="✅ 提交")
    ack = await said(world, captain, "已登记：工单 #1")
    assert ack.reply_to == summary.message_id and "金水路社区工作站" in ack.body
    assert "#1" in (await world.emulator.wait_for_callback_answer(query))["text"]
    card = await world.emulator.wait_for(world.chiefs["jinshui"], method="sendPhoto")
    assert "车库积水" in card.body and "金秋小区二期3号楼" in card.body
    [ticket] = await world.tickets()
    assert ticket.status == Status.ASSIGNED and ticket.station_key == "jinshui"
    assert ticket.category_key == "sanitation" and ticket.description == "车库积水，一直没人管"
    assert ticket.address_text == "金秋小区3号楼" and ticket.address == "金秋小区二期3号楼"
    assert (ticket.source_chat_id, ticket.source_message_id) == (captain.id, summary.message_id)
    assert [e.action for e in await world.events(1)][:2] == ["report", "locate"]
    async with world.app.sessions() as session:
        assert len(await repo.photos_of(session=session, ticket_id=1, kind="report")) == 1


async def test_cancel_at_every_step_leaves_nothing(guided_world: World) -> None:
    world, captain = guided_world, guided_world.captain
    for steps in range(5):
        message = await start_form(world, captain)
        if steps >= 1:
            await captain.send_photo(captain, make_jpeg(seed=2))
            message = await said(world, captain, "已收到")
        if steps >= 2:
            await captain.send_text(captain, "汾阳路13号")
            message = await said(world, captain, "3/5")
        if steps >= 3:
            await captain.press(message, text="其他")
            message = await said(world, captain, "4/5")
        if steps >= 4:
            await captain.press(message, text="跳过")
            message = await said(world, captain, "5/5")
        await captain.press(message, text="✖ 取消")
        await said(world, captain, "已取消")
    # An input after cancelling is not taken for a form that is gone.
    await captain.send_text(captain, "汾阳路13号")
    await world.settle()
    assert await world.tickets() == []
    assert "已取消" in world.said_in(captain)[-1]


async def test_cancel_works_from_an_earlier_message_and_with_the_command(world: World) -> None:
    captain = world.captain
    first = await start_form(world, captain)
    await captain.send_photo(captain, make_jpeg(seed=3))
    await said(world, captain, "已收到")
    await captain.press(first, text="✖ 取消")  # on the form's first message
    await said(world, captain, "已取消")

    await to_category(world, captain)
    await captain.command(captain, "/cancel")
    await said(world, captain, "已取消")
    await captain.send_text(captain, "其他")
    await world.settle()
    assert await world.tickets() == []


async def test_back_from_the_summary_to_the_photos_and_forward_again(world: World) -> None:
    captain = world.captain
    summary = await to_summary(world, captain)
    message = summary
    for step in ("4/5", "3/5", "2/5", "已收到 1 张照片"):
        await captain.press(message, text="◀ 返回")
        message = await said(world, captain, step)
    assert "◀ 返回" not in message.button_texts  # the first step has no way back
    for step in ("2/5", "3/5", "4/5", "5/5"):
        await captain.press(message, text="下一步 ▶")
        message = await said(world, captain, step)
    assert message.body == summary.body  # everything kept
    await captain.press(message, text="✅ 提交")
    await said(world, captain, "已登记：工单 #1")
    assert (await world.ticket(1)).description == "旱厕堵了"


# --- albums -----------------------------------------------------------------------------------


async def test_an_album_in_private_is_one_step_and_one_ticket(world: World) -> None:
    captain = world.captain
    await start_form(world, captain)
    await captain.send_album(captain, [make_jpeg(seed=s) for s in (4, 5, 6)])
    got = await said(world, captain, "已收到 3 张照片")
    await world.settle()
    assert len([m for m in world.said_in(captain) if "已收到" in m]) == 1
    await captain.press(got, text="下一步 ▶")
    await said(world, captain, "2/5")
    await captain.send_location(captain, 36.155, 120.435)  # in 兴城路's grid
    category = await said(world, captain, "3/5")
    await captain.press(category, text="公共设施")
    describe = await said(world, captain, "4/5")
    await captain.press(describe, text="跳过")
    summary = await said(world, captain, "5/5")
    assert "照片 3 张" in summary.body and "兴城路社区工作站" in summary.body
    assert "无描述" in summary.body
    await captain.press(summary, text="✅ 提交")
    await said(world, captain, "已登记：工单 #1")
    [ticket] = await world.tickets()
    assert ticket.station_key == "xingcheng" and ticket.location_source == "location"
    assert ticket.description == "" and ticket.category_key == "facilities"
    async with world.app.sessions() as session:
        assert len(await repo.photos_of(session=session, ticket_id=1, kind="report")) == 3


async def test_an_album_in_a_group_is_one_report(world: World) -> None:
    await world.captain.send_album(
        world.intake, [make_jpeg(seed=s) for s in (7, 8)], caption="金水路8号 垃圾堆了三天"
    )
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.settle()
    [ticket] = await world.tickets()
    async with world.app.sessions() as session:
        assert len(await repo.photos_of(session=session, ticket_id=ticket.id or 0,
                                        kind="report")) == 2


async def test_photos_then_straight_to_the_address_skips_the_next_button(world: World) -> None:
    captain = world.captain
    await start_form(world, captain)
    await captain.send_photo(captain, make_jpeg(seed=9))
    await said(world, captain, "已收到 1 张照片")
    await captain.send_photo(captain, make_jpeg(seed=10))
    await said(world, captain, "已收到 2 张照片")
    await captain.send_text(captain, "虎山路5号")  # no 下一步: the address moves the form on
    category = await said(world, captain, "3/5")
    assert "虎山路5号" in category.body


# --- a stale form -----------------------------------------------------------------------------


async def test_a_form_left_for_half_an_hour_expires_politely(world: World) -> None:
    captain = world.captain
    now = datetime.now(UTC)
    world.clock.set(now)
    category = await to_category(world, captain)
    world.clock.set(now + timedelta(minutes=29))  # still there after 29 minutes
    await captain.press(category, text="其他")
    describe = await said(world, captain, "4/5")

    world.clock.set(now + timedelta(minutes=29 + 31))
    await captain.send_text(captain, "旱厕堵了")
    await said(world, captain, "表单已过期，请重新 /report")
    await captain.press(describe, text="跳过")  # the form is gone: its buttons are stale
    await world.settle()
    assert not any("5/5" in m for m in world.said_in(captain))
    assert await world.tickets() == []

    await to_summary(world, captain, seed=11)  # a new form works as ever


async def test_pressing_a_button_of_a_stale_form_says_it_expired(world: World) -> None:
    captain = world.captain
    now = datetime.now(UTC)
    world.clock.set(now)
    summary = await to_summary(world, captain)
    world.clock.set(now + timedelta(hours=2))
    await captain.press(summary, text="✅ 提交")
    await said(world, captain, "表单已过期")
    await world.settle()
    assert await world.tickets() == []


# --- bad input at every step ------------------------------------------------------------------


async def test_the_photo_step_refuses_what_is_not_a_photo(world: World) -> None:
    captain = world.captain
    await start_form(world, captain)
    await captain.send_document(
        captain, fake_pdf(), file_name="通知.pdf", mime_type="application/pdf"
    )
    assert "不是照片" in (await said(world, captain, "照片")).body
    await captain.send_photo(captain, corrupt_jpeg())
    assert "损坏" in (await said(world, captain, "损坏")).body
    await captain.send_sticker(captain)
    await said(world, captain, "请先发一张现场照片")
    await captain.send_text(captain, "汾阳路13号")  # no photo yet: not an address
    await said(world, captain, "请先发一张现场照片")
    await captain.send_location(captain, 36.155, 120.435)
    refused = await said(world, captain, "请先发一张现场照片")
    assert "✖ 取消" in refused.button_texts  # the way out is on every answer
    # Still at the first step: a good photo is taken.
    await captain.send_photo(captain, make_jpeg(seed=12))
    await said(world, captain, "已收到 1 张照片")


async def test_a_picture_sent_as_a_file_is_taken_without_its_gps(world: World) -> None:
    captain = world.captain
    await start_form(world, captain)
    await captain.send_document(
        captain, make_jpeg(seed=13, gps=(36.16, 120.41)), file_name="IMG_0003.jpg",
        mime_type="image/jpeg",
    )
    await said(world, captain, "已收到 1 张照片")
    await captain.send_text(captain, "虎山路5号")
    category = await said(world, captain, "3/5")
    await captain.press(category, text="其他")
    await captain.press(await said(world, captain, "4/5"), text="跳过")
    await captain.press(await said(world, captain, "5/5"), text="✅ 提交")
    await said(world, captain, "已登记：工单 #1")
    async with world.app.sessions() as session:
        [photo] = await repo.photos_of(session=session, ticket_id=1, kind="report")
    assert photo.as_document


async def test_the_place_step_refuses_what_is_not_a_place(world: World) -> None:
    captain = world.captain
    await start_form(world, captain)
    await captain.send_photo(captain, make_jpeg(seed=14))
    got = await said(world, captain, "已收到")
    await captain.press(got, text="下一步 ▶")
    await said(world, captain, "2/5")
    await captain.send_sticker(captain)
    await said(world, captain, "请输入地址")
    await captain.send_photo(captain, make_jpeg(seed=15))
    await said(world, captain, "请输入地址")
    await captain.send_text(captain, "幸福路99号")
    unknown = await said(world, captain, "没找到")
    assert "幸福路99号" in unknown.body
    await captain.send_text(captain, "汾阳路" * 100)
    await said(world, captain, "地址太长")
    await captain.send_text(captain, "<b>金秋</b>小区 & <script>")
    hostile = await said(world, captain, "没找到")
    assert "<b>金秋</b>小区 & <script>" in hostile.body  # shown as typed, not as markup
    await captain.send_text(captain, "金秋小区3号楼")
    suggest = await said(world, captain, "是下面哪一个")
    await captain.press_data(suggest, suggest.buttons[0][0]["callback_data"][:-1] + "9")
    await said(world, captain, "请输入地址")  # a forged 10th suggestion changes nothing
    await captain.press(suggest, text="金秋小区一期3号楼")
    await said(world, captain, "3/5")


async def test_the_category_description_and_summary_steps_refuse_the_wrong_input(
    world: World,
) -> None:
    captain = world.captain
    category = await to_category(world, captain)
    await captain.send_text(captain, "随便什么")
    await said(world, captain, "请点下面的按钮选一个类别")
    await captain.send_sticker(captain)
    refused = await said(world, captain, "请点下面的按钮选一个类别")
    assert "环境卫生" in refused.button_texts  # the choices come again with the refusal
    forged = category.buttons[0][0]["callback_data"].rsplit(":", 1)[0] + ":nosuchkey"
    await captain.press_data(category, forged)
    await said(world, captain, "请点下面的按钮选一个类别")
    await captain.send_text(captain, "安全隐患")  # a category typed by its name is taken
    await said(world, captain, "4/5")

    world.emulator.client_checks = False  # a modified client sends 5000 characters
    await captain.send_text(captain, "旱厕" * 2500)
    assert "5000" in (await said(world, captain, "太长")).body
    await captain.send_sticker(captain)
    await said(world, captain, "请用文字说说")
    hostile = "<b>旱厕</b> & 化粪池 <script>alert(1)</script>"
    await captain.send_text(captain, hostile)
    summary = await said(world, captain, "5/5")
    assert hostile in summary.body and "&lt;b&gt;" in (summary.source or "")  # escaped

    await captain.send_text(captain, "好了")
    await said(world, captain, "请点“提交”登记")
    await captain.send_photo(captain, make_jpeg(seed=16))
    await said(world, captain, "请点“提交”登记")
    await captain.press(summary, text="✅ 提交")
    await said(world, captain, "已登记：工单 #1")
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    assert hostile in card.body
    ticket = await world.ticket(1)
    assert ticket.description == hostile and ticket.category_key == "safety"


async def test_a_button_of_an_earlier_step_changes_nothing(world: World) -> None:
    captain = world.captain
    category = await to_category(world, captain)
    await captain.press(category, text="环境卫生")
    describe = await said(world, captain, "4/5")
    query = await captain.press(category, text="公共设施")  # the category question again
    answer = await world.emulator.wait_for_callback_answer(query)
    assert "前面步骤的按钮" in answer["text"] and answer["show_alert"]
    await captain.press(category, text="◀ 返回")  # and its 返回
    await world.settle()
    await captain.press(describe, text="跳过")
    summary = await said(world, captain, "5/5")
    assert "环境卫生" in summary.body
    await captain.press(describe, text="跳过")  # a second press of the same button
    await world.settle()
    assert len([m for m in world.said_in(captain) if "5/5" in m]) == 1


async def test_submit_pressed_twice_makes_one_ticket(world: World) -> None:
    captain = world.captain
    summary = await to_summary(world, captain)
    first = await captain.press(summary, text="✅ 提交")
    second = await captain.press(summary, text="✅ 提交")  # at once: handled side by side
    await said(world, captain, "已登记：工单 #1")
    await world.settle()
    assert len(await world.tickets()) == 1
    assert len([m for m in world.said_in(captain) if "已登记" in m]) == 1
    for query in (first, second):
        assert "#1" in (await world.emulator.wait_for_callback_answer(query))["text"]
    later = await captain.press(summary, text="✅ 提交")  # and once more, long after
    assert "已提交：工单 #1" in (await world.emulator.wait_for_callback_answer(later))["text"]
    await world.settle()
    assert len(await world.tickets()) == 1


async def test_two_summaries_of_one_form_make_one_ticket(world: World) -> None:
    captain = world.captain
    old = await to_summary(world, captain)
    await captain.press(old, text="◀ 返回")
    describe = await said(world, captain, "4/5")
    await captain.press(describe, text="下一步 ▶")
    new = await said(world, captain, "5/5")
    stale = await captain.press(old, text="✅ 提交")  # the summary before going back
    assert "前面步骤" in (await world.emulator.wait_for_callback_answer(stale))["text"]
    await captain.press(new, text="✅ 提交")
    await said(world, captain, "已登记：工单 #1")
    await world.settle()
    assert len(await world.tickets()) == 1


async def test_help_mentions_the_guided_report(world: World) -> None:
    await world.captain.command(world.captain, "/help")
    assert "/report" in (await said(world, world.captain, "📖")).body
    for language in ("zh", "en"):
        commands = await world.app.bot.get_my_commands(language_code=language)
        assert "report" in {c.command for c in commands}


# --- in English ---------------------------------------------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


async def test_an_english_speaking_reporter_sees_english_throughout(world: World) -> None:
    mary = world.emulator.user(200000009, "Mary", language_code="en")
    await mary.command(mary, "/report")
    await said(world, mary, "1/5")
    await mary.send_sticker(mary)
    await said(world, mary, "Please send a photo")
    await mary.send_photo(mary, make_jpeg(seed=17))
    got = await said(world, mary, "1 photo(s) received")
    await mary.press(got, text="Next ▶")
    await said(world, mary, "(2/5)")
    await mary.send_text(mary, "金秋小区3号楼")
    suggest = await said(world, mary, "Is it one of these?")
    await mary.press(suggest, text="金秋小区二期3号楼")
    category = await said(world, mary, "(3/5)")
    assert {"Sanitation", "Public facilities", "Safety hazard", "Other"} <= set(
        category.button_texts
    )
    await mary.press(category, text="◀ Back")
    again = await said(world, mary, "(2/5)")
    await mary.press(again, text="Next ▶")
    category = await said(world, mary, "(3/5)")
    await mary.press(category, text="Sanitation")
    describe = await said(world, mary, "(4/5)")
    await mary.press(describe, text="Skip")
    summary = await said(world, mary, "(5/5)")
    assert "Sanitation" in summary.body and "1 photo(s)" in summary.body
    query = await mary.press(summary, text="✅ Submit")
    ack = await said(world, mary, "Registered: ticket #1")
    assert ack.reply_to == summary.message_id
    assert "Submitted: ticket #1" in (await world.emulator.wait_for_callback_answer(query))["text"]
    await world.settle()

    # Only the district's own names are Chinese: addresses, stations, the example address.
    names = ["金秋小区二期3号楼", "金秋小区一期3号楼", "金秋小区3号楼", "金秋小区", "汾阳路13号",
             *(s.name for s in world.app.deployment.stations)]
    for message in [m for m in world.emulator.sent if m.chat_id == mary.id]:
        shown = message.body + " ".join(message.button_texts)
        for name in names:
            shown = shown.replace(name, "")
        assert not CJK.search(shown), shown
    assert (await world.ticket(1)).language == "en"


# --- Redis: any worker, or the bot after a restart, continues the form --------------------


async def test_a_form_in_redis_survives_a_restart_of_the_bot(
    database_url: str, deployment: Deployment, tmp_path: Path,
    redis_fsm: Callable[[], RedisStorage],
) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        captain = emulator.user(200000001, "王阿姨")
        chief = emulator.user(deployment.station("fenyang").chief, "张站长")
        await chief.start_bot()
        settings = Settings(
            bot_token=SecretStr(TOKEN), api_base=emulator.base_url,
            data_dir=tmp_path / "data", database_url=database_url,
        )

        async def running(storage: RedisStorage) -> tuple[Gridbot, asyncio.Task[None]]:
            app = build(settings, deployment, fsm_storage=storage, sender_poll_interval=0.1,
                        reminder_tick=timedelta(0))
            polling = asyncio.create_task(
                app.dp.start_polling(app.bot, handle_signals=False, polling_timeout=1)
            )
            await asyncio.wait_for(app.started.wait(), timeout=20)
            return app, polling

        first, polling = await running(redis_fsm())
        await captain.command(captain, "/report")
        await emulator.wait_for(captain, contains="1/5")
        await captain.send_album(captain, [make_jpeg(seed=18), make_jpeg(seed=19)])
        await emulator.wait_for(captain, contains="已收到 2 张照片")
        await captain.send_text(captain, "汾阳路13号")
        category = await emulator.wait_for(captain, contains="3/5")

        # The form is small JSON in Redis: photos by file_id, no bytes.
        storage = first.dp.storage
        assert isinstance(storage, RedisStorage)
        key = StorageKey(bot_id=int(TOKEN.split(":")[0]), chat_id=captain.id, user_id=captain.id)
        assert await storage.get_state(key) == "GuidedReport:category"
        raw = await storage.redis.get(storage.key_builder.build(key, "data"))
        assert raw is not None and len(raw) < 4096
        form = json.loads(raw)["form"]
        assert len(form["photos"]) == 2 and {"file_id", "file_unique_id"} <= set(form["photos"][0])

        await first.dp.stop_polling()
        await asyncio.wait_for(polling, timeout=20)

        second, polling = await running(redis_fsm())  # a new process: nothing in its memory
        try:
            await captain.press(category, text="环境卫生")
            describe = await emulator.wait_for(captain, contains="4/5")
            await captain.send_text(captain, "旱厕堵了")
            summary = await emulator.wait_for(captain, contains="5/5")
            assert "照片 2 张" in summary.body
            await captain.press(summary, text="✅ 提交")
            await emulator.wait_for(captain, contains="已登记：工单 #1")
            await emulator.wait_for(chief, method="sendPhoto")
            async with second.sessions() as session:
                [ticket] = await repo.all_tickets(session=session)
                assert ticket.station_key == "fenyang" and ticket.description == "旱厕堵了"
                assert len(await repo.photos_of(session=session, ticket_id=ticket.id or 0,
                                                kind="report")) == 2
            await captain.press(describe, text="跳过")  # the finished form's buttons are stale
        finally:
            await second.dp.stop_polling()
            await asyncio.wait_for(polling, timeout=20)


async def test_gridbot_redis_url_puts_conversations_in_redis(
    tmp_path: Path, deployment: Deployment, redis_url: str
) -> None:
    settings = Settings(
        bot_token=SecretStr(TOKEN), data_dir=tmp_path, redis_url=redis_url,
    )
    app = build(settings, deployment)
    try:
        assert isinstance(app.dp.storage, RedisStorage)
        assert await app.dp.storage.redis.ping()
    finally:
        await app.dp.storage.close()
        await app.bot.session.close()
        await app.engine.dispose()
    plain = build(Settings(bot_token=SecretStr(TOKEN), data_dir=tmp_path), deployment)
    assert not isinstance(plain.dp.storage, RedisStorage)
    await plain.bot.session.close()
    await plain.engine.dispose()
