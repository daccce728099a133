"""People, in private chat: joining with an invitation (/start <token>), /invite, /whoami
and /lang."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import LanguageChoice
from bot.i18n import Translator
from bot.people import PeopleService
from bot.permissions import Feature
from bot.tickets import Sender
from handlers.filters import Allowed, PrivateChat


async def join(
    message: Message, command: CommandObject, session: AsyncSession, sender: Sender,
    people: PeopleService,
) -> None:
    await people.join(session, sender=sender, token=command.args or "")


async def invite(
    message: Message, command: CommandObject, bot: Bot, session: AsyncSession, sender: Sender,
    people: PeopleService,
) -> None:
    me = await bot.me()  # cached by aiogram after the first call
    await people.invite(session, sender=sender, args=command.args, bot_username=me.username or "")


async def whoami(
    message: Message, session: AsyncSession, sender: Sender, people: PeopleService
) -> None:
    await people.whoami(session, sender=sender)


async def offer_languages(
    message: Message, session: AsyncSession, sender: Sender, people: PeopleService
) -> None:
    await people.offer_languages(session, sender=sender)


async def choose_language(
    query: CallbackQuery, callback_data: LanguageChoice, session: AsyncSession, sender: Sender,
    people: PeopleService, translator: Translator, locale: str,
) -> None:
    chosen = await people.choose_language(session, sender=sender, locale=callback_data.locale)
    if chosen is None:
        await query.answer(translator.get("error.stale_button", locale), show_alert=True)
    else:
        await query.answer()


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="people")
    router.message.filter(PrivateChat())
    # /start with a token; a bare /start is common's greeting.
    router.message.register(join, CommandStart(deep_link=True))
    router.message.register(invite, Command("invite"), Allowed(Feature.INVITE))
    router.message.register(whoami, Command("whoami"))
    router.message.register(offer_languages, Command("lang"))
    router.callback_query.register(choose_language, LanguageChoice.filter())
    return router
