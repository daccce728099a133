"""Inline-button payloads (callback_data, at most 64 bytes), packed and parsed in one place."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class TicketButton(CallbackData, prefix="t"):
    """A button acting on one ticket: ``t:<action>:<ticket id>``."""

    action: str  # claim | resolve | reject | progress | ok | nok | skip
    ticket: int


class ExpectedDay(CallbackData, prefix="x"):
    """A quick pick under "#12 预计哪天处理好？": done within ``days`` days from today."""

    ticket: int
    days: int


class TicketsPage(CallbackData, prefix="p"):
    """A page of the chief's /tickets list."""

    page: int


class FormButton(CallbackData, prefix="f"):
    """A button of the guided report: ``f:<form>:<turn>:<action>:<value>``. Only the open
    form at the same turn (steps taken) takes it; a button of an earlier step is stale."""

    form: str  # the form's id (8 hex digits)
    turn: int
    action: str  # done | back | cancel | pick | skip | submit
    value: str = ""  # the suggestion's number, or the category's key (at most 32)


class LanguageChoice(CallbackData, prefix="lang"):
    """A button under /lang: read the bot in ``locale`` (a catalog locale) from now on."""

    locale: str
