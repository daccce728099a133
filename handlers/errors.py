"""Domain errors become polite, translated answers; anything else is logged."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bot.i18n import Translator
from bot.lifecycle import TicketError
from bot.tickets import TicketService
from storage.db import SessionFactory

log = logging.getLogger(__name__)


def install(dp: Dispatcher) -> None:
    dp.errors.register(ticket_error, ExceptionTypeFilter(TicketError))
    dp.errors.register(unexpected)


async def ticket_error(
    event: ErrorEvent, translator: Translator, tickets: TicketService, sessions: SessionFactory,
    locale: str | None = None,
) -> None:
    error = event.exception
    assert isinstance(error, TicketError)
    update = event.update
    if locale is None:  # the session middleware never ran: Telegram's language then
        user = (update.callback_query or update.message)
        language = user.from_user.language_code if user and user.from_user else None
        locale = translator.normalise_locale(language)
    text = translator.get(error.message_key, locale, **_params(error, translator, locale))
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.message is not None:
        async with sessions() as session:  # the update's own session was rolled back
            await tickets.refuse(
                session, chat_id=update.message.chat.id, reply_to=update.message.message_id,
                key=error.message_key, locale=locale, **_params(error, translator, locale),
            )


def _params(error: TicketError, translator: Translator, locale: str) -> dict[str, object]:
    params = dict(error.params)
    if "status" in params:
        params["status"] = translator.get(f"status.{params['status']}", locale)
    return params


async def unexpected(
    event: ErrorEvent, translator: Translator, locale: str | None = None
) -> None:
    """Logged in full; a pressed button still gets an answer instead of spinning forever."""
    log.error("unhandled error in update %s", event.update.update_id, exc_info=event.exception)
    query = event.update.callback_query
    if query is not None:
        locale = locale or translator.normalise_locale(query.from_user.language_code)
        with suppress(TelegramAPIError):
            await query.answer(translator.get("error.generic", locale), show_alert=True)
