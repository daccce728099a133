"""The street office's view: /open lists every station's open tickets (or one station's, or
one ticket's card) and the card's buttons act on a ticket as the office."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import OpenPage, TicketButton
from bot.permissions import Feature
from bot.tickets import Sender, TicketService
from handlers.filters import Allowed, PrivateChat
from handlers.pages import turn_to


async def open_tickets(
    message: Message, command: CommandObject, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    """/open, /open fenyang (a station's key or name), /open 12 (that ticket's card)."""
    await tickets.show_open(session, sender=sender, chat_id=message.chat.id, said=command.args)


async def turn_page(
    query: CallbackQuery, callback_data: OpenPage, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    page = await tickets.open_page(
        session, sender=sender, station=callback_data.station, page=callback_data.page
    )
    await turn_to(query, page)


async def ticket_card(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    """A number under the /open list: that ticket's card with the office's buttons."""
    await tickets.office_card(
        session, ticket_id=callback_data.ticket, sender=sender, chat_id=sender.telegram_id
    )
    await query.answer()


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="office")
    router.message.register(
        open_tickets, Command("open"), PrivateChat(), Allowed(Feature.OPEN)
    )
    router.callback_query.register(turn_page, OpenPage.filter())
    router.callback_query.register(ticket_card, TicketButton.filter(F.action == "open"))
    return router
