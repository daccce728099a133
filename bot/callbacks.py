"""Inline-button payloads (callback_data, at most 64 bytes), packed and parsed in one place."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class TicketButton(CallbackData, prefix="t"):
    """A button acting on one ticket: ``t:<action>:<ticket id>``."""

    # claim | resolve | reject | progress | ok | nok | skip | move | note | reopen | open
    action: str
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


class MyPage(CallbackData, prefix="m"):
    """A page of a reporter's /my list."""

    page: int


class OpenPage(CallbackData, prefix="o"):
    """A page of the street office's /open list, of one station (``station``) or all ("")."""

    station: str
    page: int


class MoveTo(CallbackData, prefix="r"):
    """"🔀 转派": send ticket ``ticket`` to the station ``station`` (a key of at most 32)."""

    ticket: int
    station: str


class LanguageChoice(CallbackData, prefix="lang"):
    """A button under /lang: read the bot in ``locale`` (a catalog locale) from now on."""

    locale: str
