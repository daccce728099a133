"""The outbox sender: delivers committed messages in order per chat, within Telegram's limits.

It paces itself to Telegram's sending limits (moving windows: overall, per chat, per group)
so that 429s stay rare; a 429 that comes anyway defers the chat's messages by
``retry_after``; network trouble is retried with backoff; permanent refusals (blocked, chat
not found, bad request) are recorded with the reason and never retried, and a chat the bot
can no longer write to is reported once (``on_undeliverable``).

One sender per bot, however many processes run it. Sending is a led role (bot.leadership,
role "sender"): the process holding the lead sends, the others stand by and take over within
GRIDBOT_STANDBY_RETRY_SECONDS when it dies (after a grace when the old leader may still live:
bot.leadership.lead). Sharing the rows among several senders (claimed with FOR UPDATE SKIP
LOCKED) was the alternative, but it buys nothing here: Telegram allows
a bot about 30 messages a second in all, which one process sends with a few concurrent
requests, while several senders would have to agree on every chat's order and on each
window of the pacing for every message. A process that is not sending and commits messages
rings a doorbell (PostgreSQL NOTIFY) that wakes the sender at once; on SQLite the sender
finds them at its next poll. Delivery is at least once: a message sent by a process killed
before it could mark it sent is sent again by the next leader.

The pacing windows live in this process's memory, or in Redis when one is configured, so a
new leader goes on from where the last one left the windows instead of bursting afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
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
    InputFile,
    Message,
    ReplyParameters,
)
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.photos import PhotoStore
from storage import repo
from storage.db import GroupCommit, SessionFactory
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 100
PER_CHAT_ROUND = 3  # messages of one chat taken per round, so one busy chat cannot starve others


@dataclass(frozen=True)
class SendLimits:
    """Telegram's limits for one bot, as moving windows in the `limits` library's notation:
    about 30 messages a second overall, one a second per chat (short bursts are tolerated),
    20 a minute per group."""

    overall: str = "30/second"
    per_chat: str = "3 per 3 seconds"
    per_group: str = "20/minute"


class Pacer:
    """Takes a sending slot for a chat under all three limits, or says how long to wait.

    One sender process paces for the bot at a time; the windows live in ``windows`` (this
    process's memory unless given: `redis_windows` keeps them for the next leader).
    """

    def __init__(
        self, limits: SendLimits, windows: MemoryStorage | RedisStorage | None = None
    ) -> None:
        self.limiter = MovingWindowRateLimiter(windows or MemoryStorage())
        self.overall = parse(limits.overall)
        self.per_chat = parse(limits.per_chat)
        self.per_group = parse(limits.per_group)

    async def take(self, chat_id: int) -> float:
        """0 when a slot for ``chat_id`` was taken now, else the seconds until one frees."""
        key = str(chat_id)
        own = [self.per_chat] + ([self.per_group] if chat_id < 0 else [])  # groups are < 0
        # A chat's messages go one at a time, so testing its own windows first is safe;
        # the overall window is shared by concurrent chats, so it is hit (atomic) directly.
        for item in own:
            if not await self.limiter.test(item, key):
                return await self._wait(item, key)
        if not await self.limiter.hit(self.overall, "all"):
            return await self._wait(self.overall, "all")
        for item in own:
            await self.limiter.hit(item, key)
        return 0.0

    async def _wait(self, item: RateLimitItem, key: str) -> float:
        stats = await self.limiter.get_window_stats(item, key)
        return max(stats.reset_time - time.time(), 0.01)


def redis_windows(redis: Redis, *, prefix: str) -> RedisStorage:
    """The pacing windows in Redis (the `limits` library's moving windows over redis-py's
    asyncio client, on ``redis``'s connection pool), under keys starting with ``prefix``."""
    return RedisStorage(
        "async+redis://", implementation="redispy",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # taken, though typed
        key_prefix=prefix,
    )


class Doorbell:
    """How a process that wrote messages wakes the sender when another process sends. This
    one reaches no other process: there the sender finds the messages at its next poll."""

    def ring(self) -> None:
        return None

    @asynccontextmanager
    async def listening(self, rung: Callable[[], None]) -> AsyncIterator[None]:
        """Call ``rung`` whenever some process rings, while inside."""
        yield


class PostgresDoorbell(Doorbell):
    """PostgreSQL's LISTEN/NOTIFY: a ring is a NOTIFY after the messages' commit, heard by the
    sending process on a connection of its own (asyncpg). Rings coalesce while one waits."""

    CHANNEL = "gridbot_outbox"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._due = False  # a NOTIFY is scheduled and not yet on its way
        self._tasks: set[asyncio.Task[None]] = set()

    def ring(self) -> None:
        if self._due:
            return  # the scheduled NOTIFY goes after this commit too
        self._due = True
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        self._due = False
        try:
            async with self.engine.connect() as connection:
                await connection.execute(
                    sa.text("SELECT pg_notify(:channel, '')"), {"channel": self.CHANNEL}
                )
                await connection.commit()
        except Exception:  # the sender's poll finds the messages anyway
            log.warning("outbox: could not ring the sender", exc_info=True)

    @asynccontextmanager
    async def listening(self, rung: Callable[[], None]) -> AsyncIterator[None]:
        def heard(*_: object) -> None:
            rung()

        connection, driver = None, None
        try:
            connection = await self.engine.connect()
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.add_listener(self.CHANNEL, heard)  # asyncpg's
        except Exception:  # the sender polls all the same
            log.warning("outbox: cannot listen for rings; polling only", exc_info=True)
            driver = None
        try:
            yield
        finally:
            if driver is not None:
                with suppress(Exception):  # a broken connection has stopped listening
                    await driver.remove_listener(self.CHANNEL, heard)
            if connection is not None:
                with suppress(Exception):
                    await connection.close()


def doorbell_for(engine: AsyncEngine) -> Doorbell:
    if make_url(str(engine.url)).get_backend_name() == "postgresql":
        return PostgresDoorbell(engine)
    return Doorbell()


Undeliverable = Callable[[OutboxMessage, str], Awaitable[None]]


class MissingFile(Exception):
    """A message's stored file is not there: a permanent failure of that message."""


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
        limits: SendLimits | None = SendLimits(),
        windows: MemoryStorage | RedisStorage | None = None,
        on_undeliverable: Undeliverable | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.photo_store = photo_store
        self.clock = clock
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.pacer = Pacer(limits, windows) if limits is not None else None
        self.on_undeliverable = on_undeliverable
        self.doorbell = doorbell or Doorbell()
        self._next_slot: float | None = None  # seconds until the soonest paced chat may send
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()  # set when a round found nothing due (tests, shutdown)
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # What became of each message: senders of several chats finishing at about the same
        # moment share one transaction. Each chat's next message still waits for its own
        # record, so a sender that dies leaves at most one message per chat sent and not
        # recorded.
        self._records = message_records(sessions)

    def wake(self) -> None:
        """Called after a commit that added messages: send them now instead of at the next poll
        (here, or in the process that sends)."""
        self._rung()
        if not self.sending_here:
            self.doorbell.ring()

    def _rung(self) -> None:
        self.idle.clear()
        self._wake.set()

    @property
    def sending_here(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._stopped.clear()
        self._task = asyncio.create_task(self.run(), name="outbox-sender")

    async def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    @asynccontextmanager
    async def sending(self) -> AsyncIterator[None]:
        """Send while inside, woken by any process's ring (the work of the sender's lead)."""
        self.start()
        try:
            async with self.doorbell.listening(self._rung):
                self._rung()  # what was written before we listened
                yield
        finally:
            await self.stop()

    async def run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                sent = await self.send_due()
            except Exception:  # keep the sender alive; the rows stay pending
                log.exception("outbox: a sending round failed")
                sent = 0
            paced, self._next_slot = self._next_slot, None
            if paced is not None and not self._wake.is_set():
                # Some chat waits for a slot: look again when the soonest frees.
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=min(paced, self.poll_interval)
                    )
            elif sent == 0 and not self._wake.is_set():
                self.idle.set()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def send_due(self) -> int:
        """One round: send every due message, chats in parallel, each chat in order."""
        now = self.clock()
        async with self.sessions() as session:
            due = await repo.due_messages(
                session=session, now=now, limit=BATCH, per_chat=PER_CHAT_ROUND
            )
        by_chat: dict[int, list[OutboxMessage]] = defaultdict(list)
        for message in due:
            by_chat[message.chat_id].append(message)
        gate = asyncio.Semaphore(self.concurrency)

        async def chat_round(messages: list[OutboxMessage]) -> int:
            async with gate:
                done = 0
                for message in messages:
                    if self.pacer is not None and (wait := await self.pacer.take(message.chat_id)):
                        self._next_slot = min(wait, self._next_slot or wait)
                        break  # over a limit: this chat waits for a slot, in order
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
        except MissingFile as error:  # retrying cannot bring it back
            log.warning("outbox: message %s to %s: %s", message.id, message.chat_id, error)
            await self._finish(message, status="failed", error=str(error))
            return True
        except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound,
                TelegramUnauthorizedError) as error:
            log.warning("outbox: message %s to %s refused: %s", message.id, message.chat_id, error)
            await self._finish(message, status="failed", error=error.message)
            if self.on_undeliverable is not None and _chat_is_gone(error):
                await self.on_undeliverable(message, error.message)
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
            photo: str | InputFile
            if payload.get("path"):
                photo = await self._stored_file(payload["path"])
            else:
                photo = payload.get("photo") or BufferedInputFile(
                    self.photo_store.open(payload["photo_sha256"]), filename="photo.jpg"
                )
            return await self.bot.send_photo(
                message.chat_id, photo, caption=payload.get("text"),
                parse_mode="HTML", reply_parameters=reply, reply_markup=markup,
            )
        if message.kind == "document":
            return await self.bot.send_document(
                message.chat_id, await self._stored_file(payload["path"]),
                caption=payload.get("text"),
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

    async def _stored_file(self, relative: str) -> BufferedInputFile:
        """A file of the data directory (a digest's chart, PDF, XLSX), named by its path
        relative to it; MissingFile when it is not there (or the path leads outside).

        Read whole (a digest's files are small): aiogram streams an FSInputFile from an open
        file that an upload broken off midway leaves open until the garbage collector."""
        root = self.photo_store.root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise MissingFile(f"{relative} is outside the data directory")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MissingFile(f"file missing: {relative}") from None
        return BufferedInputFile(data, filename=path.name)

    async def _defer(self, message: OutboxMessage, *, seconds: float, error: str) -> None:
        await self._records.add((message.id or 0, {
            "attempts": message.attempts + 1,
            "not_before": self.clock() + timedelta(seconds=seconds),
            "last_error": error[:512],
        }))  # fmt: skip

    async def _finish(
        self, message: OutboxMessage, *, status: str, error: str | None = None,
        sent_message_id: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": message.attempts + 1}
        if status == "sent":
            values.update(sent_at=self.clock(), sent_message_id=sent_message_id)
        if error:  # a sent message keeps the reason of its last delay, for the record
            values["last_error"] = error[:512]
        await self._records.add((message.id or 0, values))


MessageRecord = tuple[int, dict[str, Any]]  # a message's id, and the values to set on it


def message_records(sessions: SessionFactory) -> GroupCommit[MessageRecord]:
    """What became of messages (`repo.update_messages`), committed together."""

    async def write(session: AsyncSession, changes: list[MessageRecord]) -> None:
        await repo.update_messages(session=session, changes=changes)

    return GroupCommit(sessions, write, name="outbox-records")


def _chat_is_gone(error: Exception) -> bool:
    """Whether a refusal means the bot cannot write to the chat at all (blocked, removed,
    chat not found), as opposed to a fault in one message."""
    if isinstance(error, TelegramForbiddenError):
        return True
    return isinstance(error, TelegramBadRequest) and "chat not found" in error.message.lower()


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
