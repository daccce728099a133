"""The Bot API emulator, driven by the real aiogram Bot and Dispatcher as the gridbot uses them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from aiohttp import web
from PIL import Image

from bot.emulator import BotAPIEmulator, EmulatorEvent, EmulatorTimeout, Group, User
from bot.emulator.formatting import EntityParseError, parse_html, utf16_len

TOKEN = "123456:TEST-gridbot-token"
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jpeg(
    width: int = 1600, height: int = 1200, colour: tuple[int, int, int] = (90, 140, 60)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


async def reached(emulator: BotAPIEmulator, method: str, count: int = 1) -> None:
    """Yield to the loop until the emulator has received ``count`` calls of ``method``."""
    for _ in range(2000):
        if emulator.calls[method] >= count:
            return
        await asyncio.sleep(0.001)  # synchronising with the server task, not waiting for time
    raise AssertionError(f"{method} never reached the emulator")


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons
        ]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(clock=clock, webhook_retry_delays=(0.01, 0.02)) as emu:
        emu.add_bot(TOKEN, username="gridbot")
        yield emu


@pytest.fixture
async def bot(emulator: BotAPIEmulator) -> AsyncIterator[Bot]:
    client = Bot(TOKEN, session=emulator.aiogram_session())
    yield client
    await client.session.close()


@pytest.fixture
def captain(emulator: BotAPIEmulator) -> User:
    return emulator.user(100000011, "王", last_name="建国", username="wangjg")


@pytest.fixture
def chief(emulator: BotAPIEmulator) -> User:
    return emulator.user(100000001, "李站长")


@pytest.fixture
def station(emulator: BotAPIEmulator, captain: User, chief: User) -> Group:
    return emulator.group(-1001000000002, "汾阳路社区工作站", members=[captain, chief])


@pytest.fixture
async def polling(bot: Bot) -> AsyncIterator[Dispatcher]:
    """A small Dispatcher polling the emulator: echoes text, answers photos and buttons."""
    dp = Dispatcher()

    @dp.message(F.photo)
    async def on_photo(message: Message) -> None:
        assert message.photo is not None
        file = await bot.get_file(message.photo[-1].file_id)
        assert file.file_path is not None
        data = await bot.download_file(file.file_path)
        assert data is not None
        await message.reply(
            f"收到 <b>{len(data.read())}</b> 字节",
            parse_mode="HTML",
            reply_markup=keyboard(("认领", "claim:1"), ("驳回", "reject:1")),
        )

    @dp.message(F.text)
    async def on_text(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @dp.callback_query()
    async def on_press(query: CallbackQuery) -> None:
        await query.answer(f"ok {query.data}")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"已处理 {query.data}")

    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5)
    )
    yield dp
    await dp.stop_polling()
    await task


# -- getMe, auth, routing ---------------------------------------------------------------------


async def test_get_me_describes_the_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "gridbot", True)
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is True
    assert me.supports_inline_queries is False


async def test_unknown_token_and_unknown_method(emulator: BotAPIEmulator) -> None:
    stranger = Bot("999:nope", session=emulator.aiogram_session())
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await stranger.get_me()
    await stranger.session.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emulator.base_url}/bot{TOKEN}/sendTelepathy") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        # method names are case-insensitive; GET with a query string works too
        async with http.get(f"{emulator.base_url}/bot{TOKEN}/GETME?x=1") as response:
            assert (await response.json())["result"]["username"] == "gridbot"
        async with http.post(
            f"{emulator.base_url}/bot{TOKEN}/getUpdates", json={"timeout": 0}
        ) as response:
            assert await response.json() == {"ok": True, "result": []}


# -- getUpdates -------------------------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_a_user_writes(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await reached(emulator, "getUpdates")
    assert not poll.done()
    await captain.send_text(station, "汾阳路13号 旱厕堵了")
    updates = await asyncio.wait_for(poll, 5)
    assert loop.time() - started < 2
    assert [u.message.text for u in updates if u.message] == ["汾阳路13号 旱厕堵了"]
    message = updates[0].message
    assert message is not None and message.chat.id == station.id
    assert message.from_user is not None and message.from_user.id == captain.id


async def test_offset_confirms_and_negative_offset_forgets(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    for text in ("一", "二", "三", "四"):
        await captain.send_text(station, text)
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["一", "二"]
    again = await bot.get_updates(limit=2)  # nothing confirmed yet: same updates
    assert [u.update_id for u in again] == [u.update_id for u in first]
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["三", "四"]
    assert len(emulator.pending_updates()) == 2
    await captain.send_text(station, "五")
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["五"]
    assert [u["message"]["text"] for u in emulator.pending_updates()] == ["五"]


async def test_redelivered_update_arrives_again_unchanged(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    await captain.send_photo(station, jpeg(), caption="金水路 车库积水")
    [original] = await bot.get_updates()
    assert await bot.get_updates(offset=original.update_id + 1) == []
    await captain.send_text(station, "later")
    emulator.redeliver(original.update_id)
    batches = [await bot.get_updates(offset=original.update_id + 1)]
    batches.append(await bot.get_updates(offset=batches[-1][-1].update_id + 1))
    ids = [[u.update_id for u in batch] for batch in batches]
    assert ids == [[original.update_id + 1], [original.update_id]]
    assert batches[1][0] == original
    assert await bot.get_updates(offset=original.update_id + 1, timeout=0) == []


async def test_a_newer_poll_ends_the_waiting_one(emulator: BotAPIEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=20))
    await reached(emulator, "getUpdates")
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 5)
    assert await second == []


# -- the real Dispatcher end to end ----------------------------------------------------------


async def test_dispatcher_round_trip_with_photo_download_and_buttons(
    emulator: BotAPIEmulator, polling: Dispatcher, captain: User, station: Group
) -> None:
    await captain.send_text(station, "你好")
    echo = await emulator.wait_for(station, contains="echo")
    assert echo.text == "echo: 你好"

    report = await captain.send_photo(station, jpeg(), caption="汾阳路13号 旱厕堵了")
    reply = await emulator.wait_for(station, contains="字节")
    assert reply.reply_to == report.message_id
    largest = report.json["photo"][-1]
    assert reply.text == f"收到 {largest['file_size']} 字节"  # HTML parsed away
    assert reply.json["entities"] == [
        {"type": "bold", "offset": 3, "length": len(str(largest["file_size"]))}
    ]
    assert reply.button_texts == ["认领", "驳回"]

    query_id = await captain.press(reply, text="认领")
    answer = await emulator.wait_for_callback_answer(query_id)
    assert answer["text"] == "ok claim:1"
    edited = await emulator.wait_for(station, method="editMessageText")
    assert edited.text == "已处理 claim:1" and edited.buttons == []  # edit dropped the keyboard
    with pytest.raises(LookupError, match="no button"):
        await captain.press(reply, text="认领")  # the keyboard is gone now
    await emulator.wait_until_idle()
    assert emulator.calls["getFile"] == 1 and emulator.calls["answerCallbackQuery"] == 1


async def test_user_album_is_one_update_per_photo(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    sent = await captain.send_album(station, [jpeg(), jpeg(400, 300)], caption="地址：金水路")
    updates = await bot.get_updates()
    messages = [u.message for u in updates if u.message]
    assert len(messages) == 2
    assert {m.media_group_id for m in messages} == {sent[0].media_group_id}
    assert [m.caption for m in messages] == ["地址：金水路", None]
    assert [m.message_id for m in messages] == [r.message_id for r in sent]


# -- sending, editing, callbacks --------------------------------------------------------------


async def test_send_message_with_reply_and_keyboard(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    report = await captain.send_text(station, "楼道灯坏了")
    sent = await bot.send_message(
        station.id,
        "工单 <code>#12</code> 已登记 &amp; 已派给 <a href='tg://user?id=1'>李站长</a>",
        parse_mode="HTML",
        reply_parameters=ReplyParameters(message_id=report.message_id),
        reply_markup=keyboard(("查看", "view:12")),
    )
    assert sent.text == "工单 #12 已登记 & 已派给 李站长"
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == report.message_id
    assert sent.reply_markup is not None
    assert [e.type for e in sent.entities or []] == ["code", "text_link"]
    seen = await emulator.wait_for(station)
    assert (seen.chat_id, seen.message_id, seen.reply_to) == (
        station.id,
        sent.message_id,
        report.message_id,
    )
    assert seen.source is not None and "<code>" in seen.source
    assert emulator.messages_in(station)[-1]["text"] == sent.text
    # the deprecated reply_to_message_id still works, and a missing target is refused
    via_id = await bot.send_message(station.id, "再答", reply_to_message_id=report.message_id)
    assert via_id.reply_to_message is not None
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(station.id, "x", reply_to_message_id=99999)


async def test_send_photo_location_media_group_and_document(
    emulator: BotAPIEmulator, bot: Bot, captain: User, chief: User, station: Group
) -> None:
    await chief.start_bot()
    small = await bot.send_photo(chief.id, BufferedInputFile(jpeg(200, 100), "after.jpg"))
    assert small.photo is not None
    assert [(p.width, p.height) for p in small.photo] == [(90, 45), (200, 100)]  # no upscaling
    # a user's photo forwarded by file_id keeps the same sizes and ids
    report = await captain.send_photo(station, jpeg())
    by_id = await bot.send_photo(
        chief.id, report.json["photo"][-1]["file_id"], caption="<b>新工单</b>", parse_mode="HTML"
    )
    assert by_id.photo is not None
    assert [p.file_unique_id for p in by_id.photo] == [
        p["file_unique_id"] for p in report.json["photo"]
    ]
    assert by_id.caption == "新工单"

    pin = await bot.send_location(chief.id, latitude=31.2165, longitude=121.4539)
    assert pin.location is not None and pin.location.latitude == pytest.approx(31.2165)

    album = await bot.send_media_group(
        chief.id,
        media=[
            InputMediaPhoto(media=BufferedInputFile(jpeg(), "before.jpg"), caption="前"),
            InputMediaPhoto(media=BufferedInputFile(jpeg(640, 480), "after.jpg")),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert [m.caption for m in album] == ["前", None]

    doc = await bot.send_document(
        chief.id, BufferedInputFile(b"week,new\n1,3\n", "digest.csv"), caption="周报"
    )
    assert doc.document is not None
    assert (doc.document.file_name, doc.document.mime_type) == ("digest.csv", "text/csv")
    assert [m.method for m in emulator.sent] == [
        "sendPhoto",
        "sendPhoto",
        "sendLocation",
        "sendMediaGroup",
        "sendMediaGroup",
        "sendDocument",
    ]


async def test_edits_and_not_modified(
    emulator: BotAPIEmulator, bot: Bot, chief: User, clock: FakeClock
) -> None:
    await chief.start_bot()
    card = await bot.send_message(chief.id, "工单 #7", reply_markup=keyboard(("认领", "claim:7")))
    clock.now += 60
    edited = await bot.edit_message_text(
        chat_id=chief.id,
        message_id=card.message_id,
        text="工单 #7 已认领",
        reply_markup=keyboard(("解决", "resolve:7")),
    )
    assert isinstance(edited, Message)
    assert edited.edit_date == int(clock.now)
    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new"):
        await bot.edit_message_text(
            chat_id=chief.id,
            message_id=card.message_id,
            text="工单 #7 已认领",
            reply_markup=keyboard(("解决", "resolve:7")),
        )
    markup_only = await bot.edit_message_reply_markup(
        chat_id=chief.id, message_id=card.message_id, reply_markup=None
    )
    assert isinstance(markup_only, Message) and markup_only.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=chief.id, message_id=card.message_id, caption="x")
    photo = await bot.send_photo(chief.id, BufferedInputFile(jpeg(), "a.jpg"), caption="旧")
    recaptioned = await bot.edit_message_caption(
        chat_id=chief.id, message_id=photo.message_id, caption="新"
    )
    assert isinstance(recaptioned, Message) and recaptioned.caption == "新"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=chief.id, message_id=4242, text="?")
    assert await bot.delete_message(chief.id, card.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(chief.id, card.message_id)
    assert emulator.message(chief, card.message_id) is None


async def test_callback_answered_twice_or_forged(
    emulator: BotAPIEmulator, bot: Bot, chief: User
) -> None:
    await chief.start_bot()
    card = await bot.send_message(chief.id, "工单 #9", reply_markup=keyboard(("认领", "claim:9")))
    query_id = await chief.press(emulator.sent[-1], data="claim:9")
    [update] = [u for u in await bot.get_updates() if u.callback_query]
    assert update.callback_query is not None
    assert update.callback_query.data == "claim:9" and update.callback_query.id == query_id
    assert await bot.answer_callback_query(query_id, text="已认领") is True
    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("12345")
    with pytest.raises(LookupError):
        await chief.press(card.model_dump(), text="不存在的按钮")
    # forged data on a real message and a press on a message that no longer exists
    await chief.press_data(card.message_id, "claim:999999")
    await chief.press_data(4242, "claim:1")
    forged = [u.callback_query for u in await bot.get_updates(offset=update.update_id + 1)]
    assert [q.data for q in forged if q] == ["claim:999999", "claim:1"]
    assert forged[1] is not None and forged[1].message is not None
    assert forged[1].message.date == 0  # an InaccessibleMessage


# -- files ------------------------------------------------------------------------------------


async def test_get_file_and_download_a_users_photo(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    original = jpeg(2000, 1500)
    report = await captain.send_photo(station, original)
    sizes = report.json["photo"]
    assert [max(s["width"], s["height"]) for s in sizes] == [90, 320, 800, 1280]
    assert len({s["file_id"] for s in sizes}) == 4
    file = await bot.get_file(sizes[-1]["file_id"])
    assert file.file_path is not None and file.file_size == sizes[-1]["file_size"]
    data = await bot.download_file(file.file_path)
    assert data is not None
    with Image.open(data) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 960))
    # identical content, identical file_unique_id; other content, another one
    again = await captain.send_photo(station, original)
    other = await captain.send_photo(station, jpeg(colour=(1, 2, 3)))
    assert again.json["photo"][-1]["file_unique_id"] == sizes[-1]["file_unique_id"]
    assert other.json["photo"][-1]["file_unique_id"] != sizes[-1]["file_unique_id"]
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("not-a-file")


async def test_corrupt_user_photo_is_kept_raw(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    broken = jpeg()[:300]
    report = await captain.send_photo(station, broken, caption="坏图")
    [size] = report.json["photo"]
    assert size["width"] > 0 and size["height"] > 0
    file = await bot.get_file(size["file_id"])
    assert file.file_path is not None
    data = await bot.download_file(file.file_path)
    assert data is not None and data.read() == broken


async def test_big_document_cannot_be_fetched(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    big = await captain.send_document(
        station, b"\0" * (25 * 1024 * 1024), file_name="scan.pdf", mime_type="application/pdf"
    )
    assert big.json["document"]["file_size"] == 25 * 1024 * 1024
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big.json["document"]["file_id"])


async def test_bot_photo_that_is_not_an_image(
    emulator: BotAPIEmulator, bot: Bot, chief: User, captain: User, station: Group
) -> None:
    await chief.start_bot()
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chief.id, BufferedInputFile(b"%PDF-1.4 not a photo", "x.jpg"))
    corrupt = await captain.send_photo(station, jpeg()[:200])
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chief.id, BufferedInputFile(jpeg()[:200], "x.jpg"))
    assert corrupt.json["photo"]  # the user's copy was still accepted
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(chief.id, "AgACAgIAAxkBAAI-unknown")


# -- Telegram's error answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parse_mode", "description"),
    [
        ("   ", None, "Bad Request: message text is empty"),
        ("<b></b>", "HTML", "Bad Request: message text is empty"),
        ("长" * 4097, None, "Bad Request: message is too long"),
        ("<b>" + "长" * 4096 + "</b>", "HTML", None),  # tags do not count
        ("a < b", "HTML", 'can\'t parse entities: Unsupported start tag "" at byte offset 2'),
        ("<script>x</script>", "HTML", 'Unsupported start tag "script" at byte offset 0'),
        ("<b>bold", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", "HTML", 'Unmatched end tag at byte offset 4, expected "</b>"'),
        ("x</b>", "HTML", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", "HTML", 'Tag "span" must have class "tg-spoiler"'),
        ("A&B 小区", "HTML", 'can\'t parse entities: Unescaped "&"'),
        ("<a href='x'", "HTML", "Unclosed start tag"),
        ("A&B <b>小区</b>", None, None),  # no parse mode: anything goes
    ],
)
async def test_text_errors(
    bot: Bot, chief: User, text: str, parse_mode: str | None, description: str | None
) -> None:
    await chief.start_bot()
    if description is None:
        assert (await bot.send_message(chief.id, text, parse_mode=parse_mode)).message_id
        return
    with pytest.raises(TelegramBadRequest) as raised:
        await bot.send_message(chief.id, text, parse_mode=parse_mode)
    assert description in raised.value.message


async def test_caption_and_button_limits(bot: Bot, chief: User) -> None:
    await chief.start_bot()
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(chief.id, BufferedInputFile(jpeg(), "a.jpg"), caption="字" * 1025)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chief.id, "x", reply_markup=keyboard(("认领", "c" * 65)))
    # 64 bytes is fine, but 22 Chinese characters are 66 bytes
    await bot.send_message(chief.id, "x", reply_markup=keyboard(("认领", "c" * 64)))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chief.id, "x", reply_markup=keyboard(("认领", "认" * 22)))


async def test_chat_errors(emulator: BotAPIEmulator, bot: Bot, captain: User, chief: User) -> None:
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.send_message(-100999, "x")
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(captain.id, "x")
    await captain.start_bot()
    assert (await bot.send_message(captain.id, "欢迎")).text == "欢迎"
    await captain.block_bot()
    with pytest.raises(TelegramForbiddenError, match="Forbidden: bot was blocked by the user"):
        await bot.send_message(captain.id, "提醒")
    updates = await bot.get_updates()
    member = [u.my_chat_member for u in updates if u.my_chat_member]
    assert [m.new_chat_member.status for m in member] == ["kicked"]
    await captain.start_bot()  # restarting unblocks
    assert (await bot.send_message(captain.id, "再见")).text == "再见"
    stranger = emulator.group(-1001000000099, "别的群", with_bot=False)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member"):
        await bot.send_message(stranger.id, "x")
    with pytest.raises(ValueError, match="not a member"):
        await chief.send_text(stranger, "hi")


async def test_rate_limit_answers_429_with_retry_after(
    emulator: BotAPIEmulator, bot: Bot, chief: User
) -> None:
    await chief.start_bot()
    emulator.rate_limit("sendMessage", times=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as raised:
            await bot.send_message(chief.id, "提醒")
        assert raised.value.retry_after == 7
        assert "Too Many Requests: retry after 7" in raised.value.message
    assert (await bot.send_message(chief.id, "提醒")).text == "提醒"
    emulator.rate_limit(times=1, retry_after=1)  # any method
    with pytest.raises(TelegramRetryAfter):
        await bot.get_chat(chief.id)
    assert (await bot.get_chat(chief.id)).first_name == "李站长"


async def test_realistic_limits_follow_the_injected_clock(chief: User, clock: FakeClock) -> None:
    async with BotAPIEmulator(clock=clock, realistic_limits=True) as emu:
        emu.add_bot(TOKEN)
        user = emu.user(chief.id, "李站长")
        await user.start_bot()
        client = Bot(TOKEN, session=emu.aiogram_session())
        for _ in range(3):  # a short burst is tolerated
            await client.send_message(user.id, "x")
        with pytest.raises(TelegramRetryAfter) as raised:
            await client.send_message(user.id, "x")
        assert raised.value.retry_after == 1
        clock.now += 1
        await client.send_message(user.id, "x")
        await client.session.close()


async def test_webhook_blocks_get_updates(emulator: BotAPIEmulator, bot: Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook"):
        await bot.get_updates()
    await bot.delete_webhook()
    assert await bot.get_updates() == []


# -- privacy mode -----------------------------------------------------------------------------


async def test_privacy_mode_filters_group_messages(
    emulator: BotAPIEmulator, captain: User, chief: User, station: Group
) -> None:
    emulator.add_bot("777:other", username="otherbot")
    shy = emulator.add_bot("555:shy", username="shybot", can_read_all_group_messages=False)
    shy_bot = Bot("555:shy", session=emulator.aiogram_session())
    answer = await shy_bot.send_message(station.id, "我在")

    await captain.send_text(station, "普通聊天")
    await captain.send_photo(station, jpeg(), caption="汾阳路13号 旱厕堵了")
    await captain.command(station, "/tickets")
    await captain.command(station, "/tickets@shybot")
    await captain.command(station, "/tickets@otherbot")
    await captain.send_text(station, "回复机器人", reply_to=answer.message_id)
    await chief.join(station)
    seen = [u.message for u in await shy_bot.get_updates() if u.message]
    assert [m.text or ("join" if m.new_chat_members else m.caption) for m in seen] == [
        "/tickets",
        "/tickets@shybot",
        "回复机器人",
        "join",
    ]
    assert seen[0].entities is not None and seen[0].entities[0].type == "bot_command"

    emulator.make_admin(station, shy)
    await captain.send_text(station, "现在都能看到")
    updates = await shy_bot.get_updates(offset=-2)
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "administrator"
    assert updates[1].message is not None and updates[1].message.text == "现在都能看到"
    await shy_bot.session.close()


async def test_adding_the_bot_to_a_group(
    emulator: BotAPIEmulator, bot: Bot, captain: User
) -> None:
    office = emulator.group(-1001000000001, "兴城路街道", members=[captain], with_bot=False)
    await captain.add_bot_to(office)
    updates = await bot.get_updates()
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "member"
    assert updates[1].message is not None and updates[1].message.new_chat_members is not None
    assert (await bot.send_message(office.id, "大家好")).chat.title == "兴城路街道"
    member = await bot.get_chat_member(office.id, captain.id)
    assert member.status == "member"


# -- webhooks ---------------------------------------------------------------------------------


async def test_webhook_delivery_with_secret_and_retries(
    emulator: BotAPIEmulator, bot: Bot, captain: User, station: Group
) -> None:
    received: list[dict[str, object]] = []
    secrets: list[str | None] = []
    failures_left = 1

    async def hook(request: web.Request) -> web.Response:
        nonlocal failures_left
        secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        if failures_left:
            failures_left -= 1
            return web.Response(status=500)
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(
            f"http://127.0.0.1:{port}/hook", secret_token="s3cret-Token_1", max_connections=5
        )
        info = await bot.get_webhook_info()
        assert (info.url, info.max_connections) == (f"http://127.0.0.1:{port}/hook", 5)
        await captain.send_text(station, "一")
        await captain.send_text(station, "二")
        await emulator.wait_until_idle()
        assert sorted(u["message"]["text"] for u in received) == ["一", "二"]  # type: ignore[index]
        assert set(secrets) == {"s3cret-Token_1"} and len(secrets) == 3  # one retry
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
            await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="bad secret!")
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


# -- observing: waits, transcript, commands ---------------------------------------------------


async def test_wait_for_takes_each_message_once(
    emulator: BotAPIEmulator, bot: Bot, chief: User
) -> None:
    await chief.start_bot()
    await bot.send_message(chief.id, "提醒 #1")
    await bot.send_message(chief.id, "工单 #2")
    assert (await emulator.wait_for(chief, contains="工单")).text == "工单 #2"
    assert (await emulator.wait_for(chief)).text == "提醒 #1"  # skipped one is still there
    with pytest.raises(EmulatorTimeout, match="no bot message") as raised:
        await emulator.wait_for(chief, timeout=0.05)
    assert "工单 #2" in str(raised.value)
    later = asyncio.create_task(emulator.wait_for(chief, predicate=lambda m: "#3" in m.body))
    await bot.send_message(chief.id, "工单 #3")
    assert (await asyncio.wait_for(later, 2)).text == "工单 #3"


async def test_transcript_events(emulator: BotAPIEmulator, bot: Bot, chief: User) -> None:
    events: list[EmulatorEvent] = []
    emulator.on_event(events.append)
    await chief.start_bot()
    await bot.send_message(
        chief.id, "<i>欢迎</i>", parse_mode="HTML", reply_markup=keyboard(("帮助", "help"))
    )
    await chief.press(emulator.sent[-1], text="帮助")
    assert [(e.actor, e.kind) for e in events] == [
        ("user", "start"),
        ("bot", "send"),
        ("user", "press"),
    ]
    assert events[1].text == "欢迎" and events[1].buttons == (("帮助",),)
    assert events[0].who == "李站长" and events[2].text == "[ 帮助 ]"
    assert events[2].extra == {"data": "help"}


async def test_commands_chat_and_members(
    emulator: BotAPIEmulator, bot: Bot, chief: User, station: Group
) -> None:
    commands = [BotCommand(command="tickets", description="我的工单")]
    assert await bot.set_my_commands(commands) is True
    assert [c.model_dump() for c in await bot.get_my_commands()] == [
        c.model_dump() for c in commands
    ]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    chat = await bot.get_chat(station.id)
    assert (chat.type, chat.title) == ("supergroup", "汾阳路社区工作站")
    assert (await bot.get_chat_member(station.id, bot.id)).status == "member"
    assert await bot.send_chat_action(station.id, "typing") is True
    assert await bot.close() is True and await bot.log_out() is True


async def test_wait_until_idle_after_handlers_finish(
    emulator: BotAPIEmulator, polling: Dispatcher, captain: User, station: Group
) -> None:
    for n in range(5):
        await captain.send_text(station, f"消息 {n}")
    await emulator.wait_until_idle()
    assert emulator.pending_updates() == []
    assert sorted(m.text or "" for m in emulator.sent) == [f"echo: 消息 {n}" for n in range(5)]


# -- the HTML parser on its own ---------------------------------------------------------------


def test_html_entities_and_utf16_offsets() -> None:
    parsed = parse_html("😀 <b>粗</b> <tg-spoiler>秘</tg-spoiler> &lt;3 &#x1F600;&quot;")
    assert parsed.text == '😀 粗 秘 <3 😀"'
    assert parsed.entities == [
        {"type": "bold", "offset": 3, "length": 1},
        {"type": "spoiler", "offset": 5, "length": 1},
    ]
    assert utf16_len("😀") == 2
    nested = parse_html('<b>a<i>b</i></b><pre><code class="language-python">x</code></pre>')
    assert {e["type"] for e in nested.entities} == {"bold", "italic", "pre"}
    assert parse_html("A&B", strict_ampersand=False).text == "A&B"  # Telegram's own behaviour


@pytest.mark.parametrize(
    "hostile",
    ["<", "<b", "</", "<b>", "<<b>>", '<a href="x>y</a>', "<img src=x onerror=alert(1)>", "&#0;"],
)
def test_html_parser_rejects_hostile_markup(hostile: str) -> None:
    with pytest.raises(EntityParseError):
        parse_html(hostile)
