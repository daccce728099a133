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

from bot.i18n import Translator
from bot.tickets import Sender
from storage import repo
from storage.db import SessionFactory

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


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
