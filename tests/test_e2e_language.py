"""End to end: the language each person reads in private — Telegram's language_code until
they choose one with /lang, then theirs whatever Telegram says. Groups keep the deployment's."""

from __future__ import annotations

from bot.callbacks import LanguageChoice
from bot.lifecycle import Status
from storage import repo

from conftest import World
from factories import make_jpeg


async def choose(world: World, user, label: str) -> None:  # type: ignore[no-untyped-def]
    await user.command(user, "/lang")
    offer = await world.emulator.wait_for(user, predicate=lambda m: bool(m.button_texts))
    assert offer.button_texts == ["简体中文", "English"]
    await user.press(offer, text=label)


async def test_a_chief_and_a_captain_who_chose_english_read_english_through_a_whole_ticket(
    world: World,
) -> None:
    chief, captain = world.chiefs["fenyang"], world.captain
    await choose(world, chief, "English")
    await world.emulator.wait_for(chief, contains="I will write to you in English")
    await captain.start_bot()
    await world.emulator.wait_for(captain, contains="您好")
    await choose(world, captain, "English")
    await world.emulator.wait_for(captain, contains="I will write to you in English")
    before = {user.id: len(world.said_in(user)) for user in (chief, captain)}

    await captain.command(captain, "/help")
    await world.emulator.wait_for(captain, contains="Reporting: post a photo")
    await captain.command(captain, "/whoami")
    card = await world.emulator.wait_for(captain, contains="👤")
    assert "You have not joined yet" in card.body

    # The report: the group hears Chinese (the deployment's language), the chief English
    await captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert "汾阳路社区工作站" in ack.body and "已登记" in ack.body
    card = await world.emulator.wait_for(chief, method="sendPhoto")
    assert card.button_texts[:2] == ["✋ Claim", "↩️ Reject"]
    query = await chief.press(card, text="✋ Claim")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["text"] == "You claimed ticket #1"
    desk = await world.emulator.wait_for(
        chief, predicate=lambda m: "✅ Resolved" in m.button_texts
    )
    await chief.press(desk, text="✅ Resolved")
    await world.emulator.wait_for(chief, contains="Send a photo of ticket #1 after the fix")
    await chief.send_text(chief, "done")  # not a photo: asked again, in English
    await world.emulator.wait_for(chief, contains="photo")
    await chief.send_photo(chief, make_jpeg(seed=50), caption="Cleared")
    await world.emulator.wait_for(chief, contains="Ticket #1 is marked resolved")

    # The reporter, who started the bot, is asked in private, in English
    ask = await world.emulator.wait_for(captain, method="sendPhoto")
    assert ask.button_texts == ["😊 Satisfied", "😞 Not satisfied"]
    query = await captain.press(ask, text="😊 Satisfied")
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["text"] == "Thank you! Ticket #1 is closed"
    assert (await world.ticket(1)).status == Status.CLOSED

    since = [b for user in (chief, captain) for b in world.said_in(user)[before[user.id]:]]
    assert len(since) >= 8
    # Chinese only where people wrote it (the address, the station's name, a name)
    for body in since:
        stripped = body
        for quoted in ("汾阳路13号", "汾阳路社区工作站", "旱厕堵了", "环境卫生", "简体中文",
                       "王阿姨", "汾阳站长", "兴城路街道办事处"):
            stripped = stripped.replace(quoted, "")
        assert not _has_han(stripped), body


def _has_han(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


async def test_without_lang_telegrams_language_is_followed(world: World) -> None:
    user = world.emulator.user(200000201, "Anna", language_code="en-GB")
    await user.command(user, "/whoami")
    assert "You have not joined yet" in (await world.emulator.wait_for(user, contains="👤")).body
    await user.start_bot()
    await world.emulator.wait_for(user, contains="Hello, Anna")
    user.language_code = "zh-hans"  # she switched her phone to Chinese
    await user.command(user, "/help")
    await world.emulator.wait_for(user, contains="报事")
    await user.command(user, "/start")
    await world.emulator.wait_for(user, contains="您好，Anna")
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=user.id)
    assert person is not None and person.language == "zh_CN" and not person.language_chosen


async def test_a_chosen_language_wins_over_telegrams(world: World) -> None:
    user = world.emulator.user(200000202, "Anna", language_code="en")
    await choose(world, user, "简体中文")
    await world.emulator.wait_for(user, contains="以后我用简体中文和您交流")
    await user.command(user, "/help")
    await world.emulator.wait_for(user, contains="报事")
    await user.command(user, "/whoami")
    assert "还没有加入" in (await world.emulator.wait_for(user, contains="👤")).body
    # A refusal from the error handler too
    await user.command(user, "/merge 1 2")
    refused = await world.emulator.wait_for(user)
    assert _has_han(refused.body), refused.body
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=user.id)
    assert person is not None and person.language == "zh_CN" and person.language_chosen


async def test_a_forged_language_button_changes_nothing(world: World) -> None:
    user = world.emulator.user(200000203, "Anna", language_code="en")
    await user.command(user, "/lang")
    offer = await world.emulator.wait_for(user, predicate=lambda m: bool(m.button_texts))
    for forged in ("fr", "<b>x</b>", "zh_CN" * 10, ""):
        query = await user.press_data(offer, LanguageChoice(locale=forged).pack())
        answer = await world.emulator.wait_for_callback_answer(query)
        assert answer["show_alert"]
    await world.settle()
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=user.id)
    assert person is None or not person.language_chosen
    query = await user.press_data(offer, "lang:en:extra")  # malformed: the catch-all's
    assert (await world.emulator.wait_for_callback_answer(query))["show_alert"]
