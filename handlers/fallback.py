"""Catch-alls, registered last: buttons nobody understands get an alert and change nothing."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.i18n import Translator


async def stale_button(query: CallbackQuery, translator: Translator, locale: str) -> None:
    await query.answer(translator.get("error.stale_button", locale), show_alert=True)


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="fallback")
    router.callback_query.register(stale_button)
    return router
