"""Collects the parts of an album (one update per photo) into one report.

Telegram sends no "album complete" signal: the part that leads waits until no new part has
arrived for ``quiet`` seconds, then handles them all; the other parts return at once.

In one process (`AlbumCollector`) the first part's handler leads and the others hand it
their message in memory. With several workers (`RedisAlbums`) the parts of one album come
to different processes at the same moment, and each chat's updates are handled one at a
time (bot.isolation), so a leader waiting inside its handler would hold up the very parts
it waits for. Therefore every part is written to Redis on arrival, before it queues for the
chat (`AlbumGate`, a middleware outside the chat's lock); the first part to be handled
claims the album, waits there for quiet and takes all the parts recorded; the later parts
find the album claimed and return. A part handled again (replayed after a crash) leads
again if it was the leader, and finds the same parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update
from redis.asyncio import Redis

Part = TypeVar("Part")
AlbumKey = tuple[int, str]  # chat id, media_group_id


class Albums(Protocol):
    async def collect(self, key: AlbumKey, part: Message) -> list[Message] | None:
        """All parts of the album for the part that leads, None for the others."""
        ...


@dataclass
class _Album(Generic[Part]):
    parts: list[Part]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class AlbumCollector(Generic[Part]):
    """One process's albums, in its memory."""

    def __init__(self, quiet: float = 1.0) -> None:
        self.quiet = quiet
        self._albums: dict[AlbumKey, _Album[Part]] = {}

    async def collect(self, key: AlbumKey, part: Part) -> list[Part] | None:
        """All parts of the album for the first caller, None for the others."""
        album = self._albums.get(key)
        if album is not None:
            album.parts.append(part)
            album.arrived.set()
            return None
        album = self._albums[key] = _Album([part])
        try:
            while True:
                album.arrived.clear()
                try:
                    await asyncio.wait_for(album.arrived.wait(), timeout=self.quiet)
                except TimeoutError:
                    break
        finally:
            del self._albums[key]
        return album.parts


class RedisAlbums:
    """Albums shared by every worker of a bot, in Redis under ``prefix``."""

    KEEP_SECONDS = 86_400  # long enough for a crashed worker's replay to find its parts
    MOST_PARTS = 10  # Telegram's album limit: a leader waits no longer than for this many

    def __init__(
        self, redis: Redis, *, prefix: str, quiet: float = 1.0, poll: float = 0.05
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.quiet = quiet
        self.poll = min(poll, quiet / 4)

    def _keys(self, key: AlbumKey) -> tuple[str, str]:
        base = f"{self.prefix}:album:{key[0]}:{key[1]}"
        return f"{base}:parts", f"{base}:leader"

    async def record(self, part: Message) -> None:
        """Note a part as it arrives, before it waits for its turn in the chat."""
        assert part.media_group_id is not None
        parts, _ = self._keys((part.chat.id, part.media_group_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(parts, str(part.message_id), part.model_dump_json(exclude_none=True))
            pipe.expire(parts, self.KEEP_SECONDS)
            await pipe.execute()

    async def collect(self, key: AlbumKey, part: Message) -> list[Message] | None:
        parts, leader = self._keys(key)
        me = str(part.message_id)
        claimed = await self.redis.set(leader, me, nx=True, ex=self.KEEP_SECONDS)
        if not claimed:
            holder = await self.redis.get(leader)
            if (holder.decode() if isinstance(holder, bytes) else holder) != me:
                return None  # another part leads this album
        await self.record(part)  # in case it came by a way that did not pass the gate
        await self._wait_for_quiet(parts)
        stored = await self.redis.hvals(parts)  # type: ignore[misc]
        collected = [Message.model_validate_json(raw) for raw in stored]
        return sorted(collected, key=lambda m: m.message_id)

    async def _wait_for_quiet(self, parts: str) -> None:
        """Until no new part has come for ``quiet`` seconds (or the album cannot grow)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.quiet * (self.MOST_PARTS + 2)
        count = await self.redis.hlen(parts)  # type: ignore[misc]
        quiet_from = loop.time()
        while count < self.MOST_PARTS and loop.time() < deadline:
            await asyncio.sleep(self.poll)
            now_count = await self.redis.hlen(parts)  # type: ignore[misc]
            if now_count != count:
                count, quiet_from = now_count, loop.time()
            elif loop.time() - quiet_from >= self.quiet:
                return


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class AlbumGate(BaseMiddleware):
    """Records each album part in Redis as it arrives: an outer update middleware placed
    before the chat's lock, so a waiting leader sees the parts queued behind it."""

    def __init__(self, albums: RedisAlbums) -> None:
        self.albums = albums

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update) and event.message and event.message.media_group_id:
            await self.albums.record(event.message)
        return await handler(event, data)
