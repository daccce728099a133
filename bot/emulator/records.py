"""What tests observe: messages users and the bot produced, transcript events, errors."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description, optional parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, f"Forbidden: {detail}")


class EmulatorTimeout(AssertionError):
    """What a test waited for did not happen in time (an assertion failure, not a crash)."""


def _buttons(markup: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return [[b if isinstance(b, dict) else {"text": str(b)} for b in row] for row in rows]


@dataclass(slots=True)
class MessageRef:
    """A message as Telegram returned it (``json``), with the ids tests need most."""

    chat_id: int
    message_id: int
    json: dict[str, Any]

    @property
    def text(self) -> str | None:
        return self.json.get("text")

    @property
    def caption(self) -> str | None:
        return self.json.get("caption")

    @property
    def media_group_id(self) -> str | None:
        return self.json.get("media_group_id")


@dataclass(slots=True)
class BotMessage:
    """One thing the bot sent or edited, in the order the emulator received it.

    ``text``/``caption`` are the plain text after parse_mode was applied; ``source`` is what the
    bot sent before parsing (HTML included). ``json`` is the message as Telegram returned it.
    """

    chat_id: int
    message_id: int
    method: str
    json: dict[str, Any]
    bot_id: int
    text: str | None = None
    caption: str | None = None
    source: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    consumed: bool = field(default=False, repr=False)
    # when the emulator accepted it, on the monotonic clock (pacing tests compare these)
    accepted_at: float = field(default_factory=time.monotonic, repr=False)

    @property
    def body(self) -> str:
        """Text or caption, whichever the message has ("" for a location)."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def kind(self) -> str:
        for key in ("photo", "document", "location", "text"):
            if key in self.json:
                return key
        return "other"

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """Keyboard rows of button dicts (``text`` plus ``callback_data``/``url``...)."""
        return _buttons(self.reply_markup)

    @property
    def button_texts(self) -> list[str]:
        return [button["text"] for row in self.buttons for button in row]


@dataclass(frozen=True, slots=True)
class EmulatorEvent:
    """One line of a transcript: a user action or a bot message."""

    actor: str  # "user" or "bot"
    kind: str  # text, photo, album, document, location, press, start, block, join, add_bot,
    # send, edit, delete, answer
    who: str
    chat_id: int
    chat_title: str
    text: str | None = None
    buttons: tuple[tuple[str, ...], ...] = ()
    message_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def buttons_of(markup: dict[str, Any] | None) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(str(b.get("text", "")) for b in row) for row in _buttons(markup))
