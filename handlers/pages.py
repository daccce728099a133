"""Shared by the list commands (/tickets, /my, /open): a page turned in place."""

from __future__ import annotations

from contextlib import suppress

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message

from bot.outbox import keyboard
from bot.tickets import DeskPage


async def turn_to(query: CallbackQuery, page: DeskPage) -> None:
    """Replace the list under the pressed button with ``page``."""
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):  # "message is not modified" on a double tap
            await query.message.edit_text(
                page.text, parse_mode="HTML", reply_markup=keyboard(page.buttons)
            )
    await query.answer()
