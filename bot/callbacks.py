"""Inline-button payloads (callback_data, at most 64 bytes), packed and parsed in one place."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class TicketButton(CallbackData, prefix="t"):
    """A button acting on one ticket: ``t:<action>:<ticket id>``."""

    action: str  # claim | resolve | reject | ok | nok | skip
    ticket: int


class TicketsPage(CallbackData, prefix="p"):
    """A page of the chief's /tickets list."""

    page: int
