"""Middlewares: record each update durably, and hand handlers a session and the sender.

They only inject; business work stays in the services.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update, User
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deployment import Deployment
from bot.i18n import Translator
from bot.tickets import Sender
from storage import repo
from storage.db import GroupCommit, SessionFactory

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ChatScope:
    """Which updates are ours: anything except group updates from chats that are neither
    intake chats nor the street office. Being added to a group (my_chat_member) is ours too,
    so the bot can say how to make it one."""

    def __init__(self, deployment: Deployment) -> None:
        self.ours = {*deployment.intake_chats, deployment.street_office.chat_id}

    def __contains__(self, update: Update) -> bool:
        chat = None
        if update.message is not None:
            chat = update.message.chat
        elif update.edited_message is not None:
            chat = update.edited_message.chat
        elif update.callback_query is not None and update.callback_query.message is not None:
            chat = update.callback_query.message.chat
        return chat is None or chat.type == "private" or chat.id in self.ours


class ChatScopeMiddleware(BaseMiddleware):
    """Drops updates that are not ours: the bot is not there to listen, so such messages are
    neither handled nor stored."""

    def __init__(self, scope: ChatScope) -> None:
        self.scope = scope

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if event not in self.scope:
            return None
        return await handler(event, data)


class RecordedUpdates:
    """The updates this process has just recorded in the inbox as new (or claimed for a
    replay) and not yet handled, so handling them need not ask the database whether they were
    handled before. Bounded: an id that falls out (an update never handled here, or a flood)
    is asked about as any other."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, update_ids: Iterable[int]) -> None:
        for update_id in update_ids:
            self._ids[update_id] = None
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def take(self, update_id: int) -> bool:
        """Whether ``update_id`` was recorded new here; it is not any more."""
        return self._ids.pop(update_id, False) is None


class InboxRecorder(BaseRequestMiddleware):
    """Records each batch that getUpdates returns before the polling loop sees it.

    aiogram's polling confirms a batch to Telegram when it asks for the next one, which can
    be before the handlers of this batch have recorded anything; recording here, in the
    request itself, closes that window. If the database cannot take the batch, the request
    fails, polling backs off and asks again from the same offset: Telegram keeps the updates.
    """

    def __init__(
        self, sessions: SessionFactory, scope: ChatScope, clock: Callable[[], datetime],
        recorded: RecordedUpdates, worker: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.scope = scope
        self.clock = clock
        self.recorded = recorded
        self.worker = worker  # who claims what it records (Gridbot.replay_unhandled)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        # aiogram's protocol says Response, but the chain passes the method's result along.
        result: Any = await make_request(bot, method)
        if isinstance(method, GetUpdates) and result:
            updates = cast(list[Update], result)
            async with self.sessions() as session:
                new = await repo.record_received(
                    session=session,
                    updates=[
                        (u.update_id, u.model_dump(mode="json", exclude_none=True))
                        for u in updates if u in self.scope
                    ],
                    now=self.clock(),
                    claimed_by=self.worker,
                )
                await session.commit()
            self.recorded.add(new)
        return cast(Response[TelegramType], result)


class InboxMiddleware(BaseMiddleware):
    """Every update is in the inbox before it is handled, and one handled before is skipped.
    The polling recorder, the webhook and the replay have recorded theirs already
    (``recorded``); anything else is looked up, and written here when missing."""

    def __init__(
        self, sessions: SessionFactory, clock: Callable[[], datetime], recorded: RecordedUpdates
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.recorded = recorded
        # Updates handled at about the same moment are marked in one transaction.
        self._handled = GroupCommit(sessions, _write_handled, name="inbox-handled")

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if not self.recorded.take(event.update_id) and not await self._record(event):
            log.info("update %s was handled before; skipped", event.update_id)
            return None
        try:
            result = await handler(event, data)
        except asyncio.CancelledError:
            # Stopped half-way (a shutdown that could not wait): not handled, so it stays in
            # the inbox for a replay.
            raise
        except Exception as exc:
            await self._mark_handled(event.update_id, f"{type(exc).__name__}: {exc}")
            raise
        await self._mark_handled(event.update_id, None)
        return result

    async def _record(self, update: Update) -> bool:
        """In the inbox now; False when it was handled before."""
        async with self.sessions() as session:
            fresh = await repo.record_update(
                session=session,
                update_id=update.update_id,
                payload=lambda: update.model_dump(mode="json", exclude_none=True),
                now=self.clock(),
            )
            await session.commit()
        return fresh

    async def _mark_handled(self, update_id: int, error: str | None) -> None:
        await self._handled.add((update_id, self.clock(), error))


async def _write_handled(
    session: AsyncSession, handled: list[tuple[int, datetime, str | None]]
) -> None:
    await repo.mark_updates_handled(session=session, handled=handled)


class SessionMiddleware(BaseMiddleware):
    """One database session per update, and the sender as the domain knows them."""

    def __init__(self, sessions: SessionFactory, translator: Translator) -> None:
        self.sessions = sessions
        self.translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        async with self.sessions() as session:
            if user is not None:
                # A language chosen with /lang wins over the one Telegram reports.
                language = await repo.chosen_language(session=session, telegram_id=user.id)
                data["sender"] = Sender(
                    telegram_id=user.id,
                    name=user.full_name,
                    username=user.username,
                    language=language or self.translator.normalise_locale(user.language_code),
                )
                data["locale"] = data["sender"].language
            data["session"] = session
            return await handler(event, data)
