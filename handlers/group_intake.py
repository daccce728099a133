"""Group intake: photo reports in the stations' group chats, and the answers to "where is it?"."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.albums import Albums
from bot.callbacks import TicketButton
from bot.i18n import Translator
from bot.telegram_files import TooLarge, fetch_image, has_image
from bot.tickets import IncomingPhoto, IncomingReport, Sender, TicketService
from handlers.filters import TYPED_ANSWER, IntakeChat


async def photo_report(
    message: Message, bot: Bot, session: AsyncSession, sender: Sender, tickets: TicketService,
    albums: Albums,
) -> None:
    parts = [message]
    if message.media_group_id:
        collected = await albums.collect((message.chat.id, message.media_group_id), message)
        if collected is None:
            return  # another part's handler reports the whole album
        parts = sorted(collected, key=lambda m: m.message_id)
    first = parts[0]
    caption = next((m.caption for m in parts if m.caption), None)
    if caption is None and first.reply_to_message is not None:
        caption = first.reply_to_message.text  # a photo sent as the answer to "add a photo"
    photos: list[IncomingPhoto] = []
    for part in parts:
        try:
            photos.append(await fetch_image(bot, part))
        except TooLarge:
            await tickets.refuse(
                session, chat_id=message.chat.id, reply_to=part.message_id,
                key="error.photo.too_large",
            )
            return
    await tickets.submit_report(
        session,
        IncomingReport(
            chat_id=first.chat.id,
            message_id=first.message_id,
            sender=sender,
            caption=caption,
            photos=photos,
            media_group_id=first.media_group_id,
        ),
    )


async def not_a_picture(message: Message, session: AsyncSession, tickets: TicketService) -> None:
    """A file that is no picture: answer only when it carries a report-like caption."""
    if message.caption:
        await tickets.refuse(
            session, chat_id=message.chat.id, reply_to=message.message_id,
            key="error.photo.not_an_image",
        )


async def shared_location(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService
) -> None:
    assert message.location is not None
    venue = message.venue
    await tickets.supply_place(
        session,
        chat_id=message.chat.id,
        sender=sender,
        reply_to=message.reply_to_message.message_id if message.reply_to_message else None,
        point=(message.location.latitude, message.location.longitude),
        venue=f"{venue.title} {venue.address}".strip() if venue else None,
    )


async def text_in_group(
    message: Message, session: AsyncSession, sender: Sender, tickets: TicketService
) -> None:
    """An address for a waiting report, a report that lacks its photo, or chat we leave alone."""
    assert message.text is not None
    answered = await tickets.supply_place(
        session,
        chat_id=message.chat.id,
        sender=sender,
        reply_to=message.reply_to_message.message_id if message.reply_to_message else None,
        text=message.text,
    )
    if answered.ticket is None:
        await tickets.ask_for_photo(
            session, chat_id=message.chat.id, message_id=message.message_id, text=message.text,
            sender=sender,
        )


async def at_my_building(
    query: CallbackQuery, session: AsyncSession, sender: Sender, tickets: TicketService,
    translator: Translator, locale: str,
) -> None:
    """The reporter taps "it is at my registered building" under "where is it?"."""
    assert query.message is not None
    placed = await tickets.place_at_building(
        session, chat_id=query.message.chat.id, sender=sender,
        ask_message_id=query.message.message_id,
    )
    # Anyone else, or a report placed meanwhile: a short note, nothing changes.
    await query.answer(
        None if placed.ticket is not None else translator.get("callback.not_yours", locale)
    )


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="group_intake")
    router.message.filter(IntakeChat())
    router.message.register(photo_report, F.func(has_image))
    router.message.register(not_a_picture, F.document)
    router.message.register(shared_location, F.location)
    router.message.register(text_in_group, TYPED_ANSWER)
    router.callback_query.register(at_my_building, TicketButton.filter(F.action == "home"))
    return router
