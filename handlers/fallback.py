"""Catch-alls, registered last: buttons nobody understands get an alert and change nothing."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.i18n import Translator

router = Router(name="fallback")


@router.callback_query()
async def stale_button(query: CallbackQuery, translator: Translator, locale: str) -> None:
    await query.answer(translator.get("error.stale_button", locale), show_alert=True)
