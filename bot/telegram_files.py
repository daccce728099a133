"""Downloading what users send, within Telegram's 20 MB getFile limit."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message, PhotoSize

from bot.photos import MAX_PHOTO_BYTES
from bot.tickets import IncomingPhoto

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff")


class TooLarge(Exception):
    """The file is over the bot download limit."""


def largest(sizes: list[PhotoSize]) -> PhotoSize:
    return max(sizes, key=lambda size: size.width * size.height)


def has_image(message: Message) -> bool:
    """A photo, or a picture sent as a file (captains do that to keep full quality)."""
    return bool(message.photo) or bool(
        message.document and (message.document.mime_type or "").startswith("image/")
    )


async def fetch_image(bot: Bot, message: Message) -> IncomingPhoto:
    """The biggest version of the message's picture; raises TooLarge past 20 MB."""
    if message.photo:
        item = largest(message.photo)
        file_id, unique, size = item.file_id, item.file_unique_id, item.file_size
    else:
        assert message.document is not None
        doc = message.document
        file_id, unique, size = doc.file_id, doc.file_unique_id, doc.file_size
    if size is not None and size > MAX_PHOTO_BYTES:
        raise TooLarge(size)
    return await fetch_again(
        bot, file_id=file_id, file_unique_id=unique, as_document=not message.photo, size=size
    )


async def fetch_again(
    bot: Bot, *, file_id: str, file_unique_id: str, as_document: bool, size: int | None = None
) -> IncomingPhoto:
    """A picture by its file_id: what a guided report keeps of the photos until it is sent."""
    try:
        file = await bot.get_file(file_id)
    except TelegramBadRequest as error:
        if "too big" in error.message:
            raise TooLarge(size) from error
        raise
    assert file.file_path is not None
    data = await bot.download_file(file.file_path)
    assert data is not None
    return IncomingPhoto(
        file_id=file_id, file_unique_id=file_unique_id, data=data.read(), as_document=as_document
    )
