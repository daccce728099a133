"""Common commands and chat membership: /start, /help, and being added to a group."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import ChatMemberUpdated, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deployment import Deployment
from bot.tickets import Sender, TicketService
from handlers.filters import PrivateChat


async def start(message: Message, session: AsyncSession, sender: Sender,
                tickets: TicketService) -> None:
    await tickets.greet(session, sender=sender)


async def help_(message: Message, session: AsyncSession, sender: Sender,
                tickets: TicketService) -> None:
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=None, key="common.help",
        locale=sender.language,
    )


async def added_to_group(
    event: ChatMemberUpdated, session: AsyncSession, deployment: Deployment,
    tickets: TicketService,
) -> None:
    """Said once, when the bot joins a group that is not an intake chat: how to make it one."""
    joined = event.new_chat_member.status in ("member", "administrator") and (
        event.old_chat_member.status in ("left", "kicked")
    )
    if not joined or event.chat.type not in ("group", "supergroup"):
        return
    if deployment.is_intake_chat(event.chat.id) or event.chat.id == (
        deployment.street_office.chat_id
    ):
        return
    await tickets.refuse(
        session, chat_id=event.chat.id, reply_to=None, key="group.not_intake",
        chat_id_value=event.chat.id,
    )


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="common")
    router.message.register(start, CommandStart(), PrivateChat())
    router.message.register(help_, Command("help"), PrivateChat())
    router.my_chat_member.register(added_to_group)
    return router
