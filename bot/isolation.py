"""One chat's updates one at a time across every worker: aiogram's RedisEventIsolation, whose
lock is a lease kept alive while the update is handled.

aiogram takes a Redis lock per chat and user around each update, with a fixed expiry: a
handler that outlives it (a week's digest over a large history) would lose the lock midway
and fail on releasing it, while a long expiry keeps the chat waiting after a worker dies
holding it. Here the lease is short and renewed while the handler runs, so a dead worker's
chat is free again after ``lease`` seconds and a slow handler keeps its turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager, suppress

from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


class ChatLocks(RedisEventIsolation):
    def __init__(self, redis: Redis, *, prefix: str, lease: float = 20.0) -> None:
        """Locks named like aiogram's (``prefix:chat:user:lock``), held ``lease`` seconds
        past the last sign of life of the worker holding one."""
        super().__init__(redis, key_builder=DefaultKeyBuilder(prefix=prefix))
        self.lease = lease

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock = self.redis.lock(
            name=self.key_builder.build(key, "lock"), timeout=self.lease, lock_class=Lock
        )
        await lock.acquire()
        keeper = asyncio.create_task(self._keep(lock))
        try:
            yield None
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper
            with suppress(LockError):  # expired meanwhile (the worker stalled): nothing to free
                await lock.release()

    async def _keep(self, lock: Lock) -> None:
        try:
            while True:
                await asyncio.sleep(self.lease / 3)
                await lock.reacquire()  # back to a full lease
        except (LockError, RedisError):  # lost it (a stall, Redis away): the handler goes on
            log.warning("the lock %s could not be kept", lock.name, exc_info=True)
