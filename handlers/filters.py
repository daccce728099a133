"""Shared filters: which chat a message came from, as the deployment file says."""

from __future__ import annotations

from aiogram.filters import BaseFilter
from aiogram.types import Message

from bot.deployment import Deployment


class IntakeChat(BaseFilter):
    """Only the groups where reports are accepted; everything else is not ours to answer."""

    async def __call__(self, message: Message, deployment: Deployment) -> bool:
        return deployment.is_intake_chat(message.chat.id)


class PrivateChat(BaseFilter):
    async def __call__(self, message: Message) -> bool:
        return message.chat.type == "private"
