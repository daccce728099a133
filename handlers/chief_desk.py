"""The chief's desk: claim, resolve with an after-photo, reject with a reason, say which day
a ticket will be done (⏳ 处理中), reassign to another station with a reason (🔀 转派), add a
note (📝 备注), and /tickets. The street office uses the same buttons from its cards (/open),
and reopens a closed ticket with a reason."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import ExpectedDay, MoveTo, TicketButton, TicketsPage
from bot.i18n import Translator
from bot.lifecycle import Action, TicketError
from bot.permissions import Feature
from bot.telegram_files import TooLarge, fetch_image, has_image
from bot.tickets import Sender, TicketService, UnusableDay
from handlers.filters import TYPED_ANSWER, Allowed, Asked, PrivateChat
from handlers.pages import turn_to


class Resolving(StatesGroup):
    after_photo = State()


class Rejecting(StatesGroup):
    reason = State()


class Expecting(StatesGroup):
    day = State()


class Moving(StatesGroup):
    reason = State()


class Noting(StatesGroup):
    text = State()


class Reopening(StatesGroup):
    reason = State()


async def claim(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, translator: Translator, locale: str,
) -> None:
    ticket = await tickets.act(
        session, ticket_id=callback_data.ticket, sender=sender, action=Action.CLAIM
    )
    await query.answer(translator.get("callback.claimed", locale, number=ticket.id))


ASKS = {  # a button that needs more input: the action and the state that collects it
    "resolve": (Action.RESOLVE, Resolving.after_photo),
    "reject": (Action.REJECT, Rejecting.reason),
    "note": (Action.NOTE, Noting.text),
    "reopen": (Action.REOPEN, Reopening.reason),
}


async def start_asking(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext,
) -> None:
    """Resolve asks for an after-photo, reject and reopen for a reason, a note for its text;
    first check this person may."""
    action, waiting = ASKS[callback_data.action]
    await tickets.prompt(
        session, ticket_id=callback_data.ticket, sender=sender, action=action,
        chat_id=sender.telegram_id,
    )
    await state.set_state(waiting)
    await state.update_data(ticket=callback_data.ticket)
    await query.answer()


async def after_photo(
    message: Message, bot: Bot, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, locale: str, asked: int,
) -> None:
    try:
        photo = await fetch_image(bot, message)
    except TooLarge:
        await tickets.refuse(
            session, chat_id=message.chat.id, reply_to=message.message_id,
            key="error.photo.too_large", locale=locale,
        )
        return
    await state.clear()
    await tickets.act(
        session, ticket_id=asked, sender=sender, action=Action.RESOLVE,
        note=message.caption, photo=photo,
    )


async def resolution_without_photo(
    message: Message, session: AsyncSession, tickets: TicketService, locale: str
) -> None:
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id,
        key="chief.need_after_photo", locale=locale,
    )


async def rejection_reason(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    await state.clear()
    await tickets.act(
        session, ticket_id=asked, sender=sender, action=Action.REJECT, note=message.text
    )


async def start_moving(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    """🔀 转派: the other stations, as buttons."""
    await tickets.offer_stations(
        session, ticket_id=callback_data.ticket, sender=sender, chat_id=sender.telegram_id
    )
    await query.answer()


async def chose_station(
    query: CallbackQuery, callback_data: MoveTo, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext,
) -> None:
    """A station picked (checked again on the server): now the reason."""
    await tickets.choose_station(
        session, ticket_id=callback_data.ticket, station_key=callback_data.station,
        sender=sender, chat_id=sender.telegram_id,
    )
    await state.set_state(Moving.reason)
    await state.set_data({"ticket": callback_data.ticket, "station": callback_data.station})
    await query.answer()


async def move_reason(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    station = (await state.get_data()).get("station")
    await state.clear()  # first: a second quick message is no second answer
    await tickets.act(
        session, ticket_id=asked, sender=sender, action=Action.REASSIGN, note=message.text,
        station_key=station if isinstance(station, str) else None,
    )


async def note_text(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    await state.clear()
    await tickets.add_note(session, ticket_id=asked, sender=sender, text=message.text)


async def reopen_reason(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    await state.clear()
    await tickets.act(
        session, ticket_id=asked, sender=sender, action=Action.REOPEN, note=message.text
    )


async def not_text(
    message: Message, session: AsyncSession, tickets: TicketService, locale: str
) -> None:
    """A photo or a sticker where a reason or a note was asked for."""
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id, key="desk.need_text",
        locale=locale,
    )


async def in_progress(
    query: CallbackQuery, callback_data: TicketButton, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext,
) -> None:
    """⏳ 处理中: claims an assigned ticket, then asks which day it will be done."""
    await tickets.ask_expected(session, ticket_id=callback_data.ticket, sender=sender)
    await state.set_state(Expecting.day)
    await state.update_data(ticket=callback_data.ticket)
    await query.answer()


async def quick_pick(
    query: CallbackQuery, callback_data: ExpectedDay, session: AsyncSession, sender: Sender,
    tickets: TicketService, state: FSMContext, translator: Translator, locale: str,
) -> None:
    """今天 / 明天 / 后天 / 一周内 under the question; only the open question counts, so a
    second press (or a press on an older question) changes nothing."""
    asked = await state.get_state() == Expecting.day.state
    if not asked or (await state.get_data()).get("ticket") != callback_data.ticket:
        await query.answer(
            translator.get("callback.expected_again", locale, number=callback_data.ticket)
        )
        return
    await state.clear()
    await tickets.expect(
        session, ticket_id=callback_data.ticket, sender=sender, in_days=callback_data.days
    )
    await query.answer()


async def expected_day(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService,
    state: FSMContext, asked: int,
) -> None:
    """A typed answer ("12月5日", "下周三"); one that names no usable day is asked again."""
    try:
        await tickets.expect(session, ticket_id=asked, sender=sender, said=message.text)
    except TicketError as error:
        if not isinstance(error, UnusableDay):
            await state.clear()  # the ticket has moved on (resolved, reassigned): stop asking
        raise
    await state.clear()


async def expected_day_not_text(
    message: Message, session: AsyncSession, tickets: TicketService, locale: str
) -> None:
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id,
        key="chief.expected_need_text", locale=locale,
    )


async def cancel(
    message: Message, session: AsyncSession, tickets: TicketService, state: FSMContext,
    locale: str,
) -> None:
    await state.clear()
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id, key="common.cancelled",
        locale=locale,
    )


async def list_tickets(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService
) -> None:
    await tickets.show_desk(session, sender=sender, chat_id=message.chat.id, page=0)


async def turn_page(
    query: CallbackQuery, callback_data: TicketsPage, session: AsyncSession, sender: Sender,
    tickets: TicketService,
) -> None:
    await turn_to(query, await tickets.desk_page(session, sender=sender, page=callback_data.page))


async def merge_command(
    message: Message, command: CommandObject, session: AsyncSession, sender: Sender,
    tickets: TicketService, locale: str,
) -> None:
    """/merge 12 7 — ticket 12 is the same problem as ticket 7."""
    numbers = _numbers(command.args, 2)
    if numbers is None:
        await tickets.refuse(
            session, chat_id=message.chat.id, reply_to=message.message_id,
            key="chief.merge_usage", locale=locale,
        )
        return
    ticket_id, into = numbers
    original = await tickets.merge(session, ticket_id=ticket_id, into=into, sender=sender)
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id, key="chief.merged",
        locale=locale, repeat=ticket_id, number=original.id, reports=original.reports,
    )


async def unmerge_command(
    message: Message, command: CommandObject, session: AsyncSession, sender: Sender,
    tickets: TicketService, locale: str,
) -> None:
    """/unmerge 12 — ticket 12 is a problem of its own after all."""
    numbers = _numbers(command.args, 1)
    if numbers is None:
        await tickets.refuse(
            session, chat_id=message.chat.id, reply_to=message.message_id,
            key="chief.unmerge_usage", locale=locale,
        )
        return
    ticket = await tickets.split(session, ticket_id=numbers[0], sender=sender)
    await tickets.refuse(
        session, chat_id=message.chat.id, reply_to=message.message_id, key="chief.unmerged",
        locale=locale, number=ticket.id,
    )


def _numbers(args: str | None, count: int) -> list[int] | None:
    """Ticket numbers typed after a command ("#12 7" or "12 7"), or None if not exactly so."""
    parts = (args or "").replace("#", " ").split()
    if len(parts) != count or not all(p.isdigit() and len(p) < 10 for p in parts):
        return None
    return [int(p) for p in parts]


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="chief_desk")
    router.callback_query.register(claim, TicketButton.filter(F.action == "claim"))
    router.callback_query.register(start_asking, TicketButton.filter(F.action.in_(ASKS)))
    router.callback_query.register(in_progress, TicketButton.filter(F.action == "progress"))
    router.callback_query.register(start_moving, TicketButton.filter(F.action == "move"))
    router.callback_query.register(chose_station, MoveTo.filter())
    router.callback_query.register(quick_pick, ExpectedDay.filter())
    # /cancel first: while a question is open, it must not be taken for the answer.
    router.message.register(cancel, Command("cancel"), StateFilter("*"))
    # Commands win over an open question: the question stays open for the next answer.
    for handler, command, feature in (
        (list_tickets, "tickets", Feature.TICKETS),
        (merge_command, "merge", Feature.MERGE),
        (unmerge_command, "unmerge", Feature.MERGE),
    ):
        router.message.register(handler, Command(command), PrivateChat(), Allowed(feature))
    router.message.register(
        after_photo, Resolving.after_photo, PrivateChat(), F.func(has_image), Asked()
    )
    router.message.register(resolution_without_photo, Resolving.after_photo, PrivateChat())
    router.message.register(
        rejection_reason, Rejecting.reason, PrivateChat(), TYPED_ANSWER, Asked()
    )
    router.message.register(
        expected_day, Expecting.day, PrivateChat(), TYPED_ANSWER, Asked()
    )
    router.message.register(expected_day_not_text, Expecting.day, PrivateChat(), ~F.text)
    router.message.register(move_reason, Moving.reason, PrivateChat(), TYPED_ANSWER, Asked())
    router.message.register(note_text, Noting.text, PrivateChat(), TYPED_ANSWER, Asked())
    router.message.register(
        reopen_reason, Reopening.reason, PrivateChat(), TYPED_ANSWER, Asked()
    )
    router.message.register(
        not_text, StateFilter(Moving.reason, Noting.text, Reopening.reason), PrivateChat(),
        ~F.text,
    )
    router.callback_query.register(turn_page, TicketsPage.filter())
    return router
