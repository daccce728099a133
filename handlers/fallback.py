"""Catch-alls, registered last: buttons nobody understands get an alert and change nothing;
a command the person may not use (bot.permissions) is answered with who may."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import Translator
from bot.permissions import Feature
from bot.tickets import TicketService

# Commands whose handlers carry an Allowed(feature) filter: command → feature.
GATED = {
    "tickets": Feature.TICKETS, "merge": Feature.MERGE, "unmerge": Feature.MERGE,
    "open": Feature.OPEN, "invite": Feature.INVITE, "report": Feature.REPORT,
    "digest": Feature.DIGEST,
}


async def not_allowed(
    message: Message, command: CommandObject, session: AsyncSession, tickets: TicketService,
    locale: str,
) -> None:
    await tickets.refuse_feature(
        session, chat_id=message.chat.id, reply_to=message.message_id,
        feature=Feature(GATED[command.command.lower()]), locale=locale,
    )


async def stale_button(query: CallbackQuery, translator: Translator, locale: str) -> None:
    await query.answer(translator.get("error.stale_button", locale), show_alert=True)


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="fallback")
    router.message.register(not_allowed, Command(*GATED))
    router.callback_query.register(stale_button)
    return router
