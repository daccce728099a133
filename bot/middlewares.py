"""Outer middlewares: record each update durably, and hand handlers a session and the sender.

They only inject; business work stays in the services.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bot.deployment import Deployment
from bot.i18n import Translator
from bot.tickets import Sender
from storage import repo
from storage.db import SessionFactory

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ChatScopeMiddleware(BaseMiddleware):
    """Drops group updates from chats that are neither intake chats nor the street office.

    The bot is not there to listen: such messages are neither handled nor stored. Being
    added to a group (my_chat_member) still passes, so the bot can say how to make it one.
    """

    def __init__(self, deployment: Deployment) -> None:
        self.ours = {*deployment.intake_chats, deployment.street_office.chat_id}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        chat = None
        if event.message is not None:
            chat = event.message.chat
        elif event.edited_message is not None:
            chat = event.edited_message.chat
        elif event.callback_query is not None and event.callback_query.message is not None:
            chat = event.callback_query.message.chat
        if chat is not None and chat.type != "private" and chat.id not in self.ours:
            return None
        return await handler(event, data)


class InboxMiddleware(BaseMiddleware):
    """Writes every update to the inbox before handling; an update handled before is skipped."""

    def __init__(self, sessions: SessionFactory, clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        async with self.sessions() as session:
            fresh = await repo.record_update(
                session=session,
                update_id=event.update_id,
                payload=event.model_dump(mode="json", exclude_none=True),
                now=self.clock(),
            )
            await session.commit()
        if not fresh:
            log.info("update %s was handled before; skipped", event.update_id)
            return None
        error: str | None = None
        try:
            return await handler(event, data)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            async with self.sessions() as session:
                await repo.mark_update_handled(
                    session=session, update_id=event.update_id, now=self.clock(), error=error
                )
                await session.commit()


class SessionMiddleware(BaseMiddleware):
    """One database session per update, and the sender as the domain knows them."""

    def __init__(self, sessions: SessionFactory, translator: Translator) -> None:
        self.sessions = sessions
        self.translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None:
            data["sender"] = Sender(
                telegram_id=user.id,
                name=user.full_name,
                username=user.username,
                language=self.translator.normalise_locale(user.language_code),
            )
            data["locale"] = data["sender"].language
        async with self.sessions() as session:
            data["session"] = session
            return await handler(event, data)
