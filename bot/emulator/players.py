"""People and groups a test plays: each user action becomes the update Telegram would send."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.emulator.records import BotMessage, MessageRef

if TYPE_CHECKING:
    from bot.emulator.server import BotAPIEmulator

MessageLike = BotMessage | MessageRef | dict[str, Any]


class Group:
    """A group or supergroup the emulator knows; ``id`` is the chat id the bot sees."""

    def __init__(self, emulator: BotAPIEmulator, chat_id: int, title: str) -> None:
        self._emulator = emulator
        self.id = chat_id
        self.title = title

    def __repr__(self) -> str:
        return f"Group({self.id}, {self.title!r})"

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the group, from users and bots, oldest first."""
        return self._emulator.messages_in(self)


class User:
    """A Telegram user driven by the test; every method sends what a real client would."""

    def __init__(
        self,
        emulator: BotAPIEmulator,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> None:
        self._emulator = emulator
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code

    def __repr__(self) -> str:
        return f"User({self.id}, {self.first_name!r})"

    @property
    def json(self) -> dict[str, Any]:
        """The ``User`` object as the Bot API shows it."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    # -- messages -------------------------------------------------------------------------

    async def send_text(
        self, chat: Group | User | int, text: str, *, reply_to: MessageLike | int | None = None
    ) -> MessageRef:
        return await self._emulator._user_text(self, chat, text, reply_to=reply_to)

    async def command(
        self, chat: Group | User | int, command: str, *, reply_to: MessageLike | int | None = None
    ) -> MessageRef:
        """Send a "/command" (with its bot_command entity); a leading "/" is added if missing."""
        text = command if command.startswith("/") else "/" + command
        return await self._emulator._user_text(self, chat, text, reply_to=reply_to)

    async def send_photo(
        self,
        chat: Group | User | int,
        image: bytes,
        *,
        caption: str | None = None,
        reply_to: MessageLike | int | None = None,
    ) -> MessageRef:
        return await self._emulator._user_photo(
            self, chat, image, caption=caption, reply_to=reply_to
        )

    async def send_album(
        self, chat: Group | User | int, images: list[bytes], *, caption: str | None = None
    ) -> list[MessageRef]:
        """Send 2–10 photos as one album: one update per photo, the caption on the first."""
        return await self._emulator._user_album(self, chat, images, caption=caption)

    async def send_document(
        self,
        chat: Group | User | int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        reply_to: MessageLike | int | None = None,
    ) -> MessageRef:
        return await self._emulator._user_document(
            self, chat, data, file_name=file_name, mime_type=mime_type, caption=caption,
            reply_to=reply_to,
        )  # fmt: skip

    async def send_sticker(self, chat: Group | User | int, *, emoji: str = "👍") -> MessageRef:
        return await self._emulator._user_sticker(self, chat, emoji=emoji)

    async def send_location(
        self,
        chat: Group | User | int,
        latitude: float,
        longitude: float,
        *,
        reply_to: MessageLike | int | None = None,
    ) -> MessageRef:
        return await self._emulator._user_location(
            self, chat, latitude, longitude, reply_to=reply_to
        )

    async def send_venue(
        self,
        chat: Group | User | int,
        latitude: float,
        longitude: float,
        *,
        title: str,
        address: str,
        reply_to: MessageLike | int | None = None,
    ) -> MessageRef:
        """Share a place picked on the map (a venue: a location with a title and address)."""
        return await self._emulator._user_venue(
            self, chat, latitude, longitude, title=title, address=address, reply_to=reply_to
        )

    # -- buttons --------------------------------------------------------------------------

    async def press(
        self, message: MessageLike, *, text: str | None = None, data: str | None = None
    ) -> str:
        """Press the inline button with this text or callback_data; return the query id.

        Raises ``LookupError`` when the message (as it is now, after edits) has no such button.
        """
        return await self._emulator._press(self, message, text=text, data=data)

    async def press_data(
        self, message: MessageLike | int, data: str, *, chat: Group | User | int | None = None
    ) -> str:
        """Send a callback query with arbitrary (forged or stale) data for a message.

        ``message`` may be a bare message id, in ``chat`` (default: this user's private chat).
        """
        return await self._emulator._press_forged(self, message, data, chat=chat)

    # -- membership -----------------------------------------------------------------------

    async def start_bot(self) -> MessageRef:
        """Press Start: the bot may write to this user from now on; sends "/start"."""
        return await self._emulator._start_bot(self)

    async def block_bot(self) -> None:
        """Block the bot: it gets a my_chat_member update and 403 on every later send."""
        await self._emulator._block_bot(self)

    async def add_bot_to(self, group: Group) -> None:
        """Add the bot to a group: my_chat_member update plus the new_chat_members message."""
        await self._emulator._add_bot_to(self, group)

    async def remove_bot_from(self, group: Group) -> None:
        """Remove (kick) the bot from a group: my_chat_member update, then 403 on its sends."""
        await self._emulator._remove_bot_from(self, group)

    async def join(self, group: Group) -> MessageRef:
        """Join a group (service message new_chat_members)."""
        return await self._emulator._join(self, group)

    def messages(self) -> list[dict[str, Any]]:
        """Every message in this user's private chat with the bot, oldest first."""
        return self._emulator.messages_in(self)
