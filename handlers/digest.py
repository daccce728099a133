"""/digest: a chief asks for their station's last week, the street office for any week of any
station or of the district; the files come to the chat where it was asked."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.digest import DigestService
from bot.permissions import Feature
from bot.tickets import Sender
from handlers.filters import Allowed


async def digest(
    message: Message, command: CommandObject, session: AsyncSession, sender: Sender,
    digests: DigestService, locale: str,
) -> None:
    """/digest, /digest 2026-W47, /digest last fenyang, /digest this 汾阳路社区工作站."""
    await digests.request(
        session, sender=sender, chat_id=message.chat.id, reply_to=message.message_id,
        said=command.args, locale=locale,
    )


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="digest")
    router.message.register(digest, Command("digest"), Allowed(Feature.DIGEST))
    return router
