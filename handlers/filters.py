"""Shared filters: which chat a message came from, as the deployment file says; what counts
as a typed answer."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import BaseFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deployment import Deployment
from bot.permissions import Feature
from bot.tickets import Sender, TicketService


class IntakeChat(BaseFilter):
    """Only the groups where reports are accepted; everything else is not ours to answer."""

    async def __call__(self, message: Message, deployment: Deployment) -> bool:
        return deployment.is_intake_chat(message.chat.id)


class PrivateChat(BaseFilter):
    async def __call__(self, message: Message) -> bool:
        return message.chat.type == "private"


# Text that answers a question (a reason, a comment, a day): anything but a command, which
# goes to its own handler even while a question is open.
TYPED_ANSWER = F.text & ~F.text.startswith("/")


class Asked(BaseFilter):
    """A message answering the open question about a ticket; gives the handler ``asked``
    (the ticket id). Fails when the question was already answered — two messages sent
    quickly are handled side by side, and only the first is the answer."""

    async def __call__(self, message: Message, state: FSMContext) -> dict[str, int] | bool:
        ticket = (await state.get_data()).get("ticket")
        return {"asked": ticket} if isinstance(ticket, int) else False


class Allowed(BaseFilter):
    """The command table (bot.permissions) allows this person ``feature``; when it does not,
    the message falls through to the fallback router, which says who may."""

    def __init__(self, feature: Feature) -> None:
        self.feature = feature

    async def __call__(
        self, message: Message, session: AsyncSession, sender: Sender, tickets: TicketService
    ) -> bool:
        return await tickets.may(session, sender, self.feature)
