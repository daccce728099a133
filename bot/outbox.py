"""The outbox sender: delivers committed messages in order per chat, honouring Telegram's answers.

429 answers defer the chat's messages by ``retry_after``; network trouble is retried with
backoff; permanent refusals (blocked, chat not found, bad request) are recorded with the
reason and never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)

from bot.photos import PhotoStore
from storage import repo
from storage.db import SessionFactory
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 100


class OutboxSender:
    def __init__(
        self,
        *,
        bot: Bot,
        sessions: SessionFactory,
        photo_store: PhotoStore,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
        concurrency: int = 8,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.photo_store = photo_store
        self.clock = clock
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()  # set when a round found nothing due (tests, shutdown)
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that added messages: send them now instead of at the next poll."""
        self.idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-sender")

    async def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                sent = await self.send_due()
            except Exception:  # keep the sender alive; the rows stay pending
                log.exception("outbox: a sending round failed")
                sent = 0
            if sent == 0 and not self._wake.is_set():
                self.idle.set()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def send_due(self) -> int:
        """One round: send every due message, chats in parallel, each chat in order."""
        now = self.clock()
        async with self.sessions() as session:
            due = await repo.due_messages(session=session, now=now, limit=BATCH)
            waiting = await repo.chats_with_deferred_messages(
                session=session, now=now, chat_ids=list({m.chat_id for m in due})
            )
        by_chat: dict[int, list[OutboxMessage]] = defaultdict(list)
        for message in due:
            first_waiting = waiting.get(message.chat_id)
            if first_waiting is not None and first_waiting < (message.id or 0):
                continue  # an earlier message to this chat is deferred: keep the order
            by_chat[message.chat_id].append(message)
        gate = asyncio.Semaphore(self.concurrency)

        async def chat_round(messages: list[OutboxMessage]) -> int:
            async with gate:
                done = 0
                for message in messages:
                    if not await self._deliver(message):
                        break  # deferred: later messages to this chat wait their turn
                    done += 1
                return done

        results = await asyncio.gather(*(chat_round(m) for m in by_chat.values()))
        return sum(results)

    async def _deliver(self, message: OutboxMessage) -> bool:
        """Send one message; True when it is finished with (sent or permanently failed)."""
        try:
            sent = await self._call(message)
        except TelegramRetryAfter as error:
            await self._defer(message, seconds=error.retry_after, error=str(error))
            return False
        except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound,
                TelegramUnauthorizedError) as error:
            log.warning("outbox: message %s to %s refused: %s", message.id, message.chat_id, error)
            await self._finish(message, status="failed", error=error.message)
            return True
        except (TelegramNetworkError, TelegramServerError, OSError, TimeoutError) as error:
            if message.attempts + 1 >= MAX_ATTEMPTS:
                await self._finish(message, status="failed", error=f"gave up: {error}")
                return True
            await self._defer(message, seconds=min(2 ** message.attempts, 300), error=str(error))
            return False
        await self._finish(message, status="sent", sent_message_id=sent.message_id)
        return True

    async def _call(self, message: OutboxMessage) -> Message:
        payload: dict[str, Any] = message.payload
        reply = (
            ReplyParameters(message_id=payload["reply_to"], allow_sending_without_reply=True)
            if payload.get("reply_to")
            else None
        )
        markup = keyboard(payload.get("buttons") or [])
        if message.kind == "photo":
            photo: str | BufferedInputFile = payload.get("photo") or BufferedInputFile(
                self.photo_store.open(payload["photo_sha256"]), filename="photo.jpg"
            )
            return await self.bot.send_photo(
                message.chat_id, photo, caption=payload.get("text"),
                parse_mode="HTML", reply_parameters=reply, reply_markup=markup,
            )
        if message.kind == "location":
            return await self.bot.send_location(
                message.chat_id, latitude=payload["lat"], longitude=payload["lon"],
                reply_parameters=reply,
            )
        return await self.bot.send_message(
            message.chat_id, payload["text"], parse_mode="HTML", reply_parameters=reply,
            reply_markup=markup,
        )

    async def _defer(self, message: OutboxMessage, *, seconds: float, error: str) -> None:
        async with self.sessions() as session:
            await repo.update_message(
                session=session,
                message_id=message.id or 0,
                attempts=message.attempts + 1,
                not_before=self.clock() + timedelta(seconds=seconds),
                last_error=error[:512],
            )
            await session.commit()

    async def _finish(
        self, message: OutboxMessage, *, status: str, error: str | None = None,
        sent_message_id: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": message.attempts + 1}
        if status == "sent":
            values.update(sent_at=self.clock(), sent_message_id=sent_message_id)
        if error:  # a sent message keeps the reason of its last delay, for the record
            values["last_error"] = error[:512]
        async with self.sessions() as session:
            await repo.update_message(session=session, message_id=message.id or 0, **values)
            await session.commit()


def keyboard(rows: list[list[dict[str, str]]]) -> InlineKeyboardMarkup | None:
    """Inline buttons from the outbox's plain form: rows of {"text", "data"}."""
    if not any(rows):
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b["text"], callback_data=b["data"]) for b in row]
            for row in rows
        ]
    )
