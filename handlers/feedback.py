"""The reporter's side: /my lists my tickets; 满意 closes a fixed one, 不满意 asks what is
still wrong and reopens it."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import MyPage, TicketButton
from bot.i18n import Translator
from bot.lifecycle import Action
from bot.tickets import Sender, TicketService
from handlers.filters import TYPED_ANSWER, Asked, PrivateChat
from handlers.pages import turn_to


class Disputing(StatesGroup):
    comment = State()


async def satisfied(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, translator: Translator, locale: str,
) -> None:
    ticket = await tickets.act(
        session, ticket_id=callback_data.ticket, sender=sender, action=Action.CONFIRM
    )
    await query.answer(translator.get("callback.thanks", locale, number=ticket.id))


async def unsatisfied(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext,
) -> None:
    chat_id = query.message.chat.id if query.message else sender.telegram_id
    reply_to = query.message.message_id if query.message else None
    await tickets.prompt(
        session, ticket_id=callback_data.ticket, sender=sender, action=Action.DISPUTE,
        chat_id=chat_id, reply_to=reply_to,
    )
    await state.set_state(Disputing.comment)
    await state.update_data(ticket=callback_data.ticket)
    await query.answer()


async def no_comment(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext, translator: Translator, locale: str,
) -> None:
    await state.clear()
    ticket = await tickets.act(
        session, ticket_id=callback_data.ticket, sender=sender, action=Action.DISPUTE
    )
    await query.answer(translator.get("callback.reopened", locale, number=ticket.id))


async def comment(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    await state.clear()
    await tickets.act(
        session, ticket_id=asked, sender=sender, action=Action.DISPUTE, note=message.text
    )


async def split(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, translator: Translator, locale: str,
) -> None:
    """"不是同一问题" under a merged report."""
    ticket = await tickets.split(session, ticket_id=callback_data.ticket, sender=sender)
    await query.answer(translator.get("callback.split", locale, number=ticket.id))


async def same_or_not(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, translator: Translator, locale: str,
) -> None:
    """The reporter's answer to "is this the same problem as #N?"."""
    same = callback_data.action == "same"
    ticket = await tickets.same_problem(
        session, ticket_id=callback_data.ticket, sender=sender, same=same
    )
    key = "callback.merged" if same else "callback.kept"
    await query.answer(translator.get(key, locale, number=ticket.id))


async def my_tickets(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService
) -> None:
    await tickets.show_my(session, sender=sender, chat_id=message.chat.id)


async def turn_my_page(
    query: CallbackQuery, callback_data: MyPage, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    await turn_to(query, await tickets.my_page(session, sender=sender, page=callback_data.page))


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="feedback")
    router.message.register(my_tickets, Command("my"), PrivateChat())
    router.callback_query.register(turn_my_page, MyPage.filter())
    router.callback_query.register(satisfied, TicketButton.filter(F.action == "ok"))
    router.callback_query.register(unsatisfied, TicketButton.filter(F.action == "nok"))
    router.callback_query.register(no_comment, TicketButton.filter(F.action == "skip"))
    router.message.register(comment, Disputing.comment, TYPED_ANSWER, Asked())
    router.callback_query.register(split, TicketButton.filter(F.action == "split"))
    router.callback_query.register(
        same_or_not, TicketButton.filter(F.action.in_({"same", "diff"}))
    )
    return router
