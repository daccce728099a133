"""Leaving the scheduler's lead (bot.scheduler.ticking) lets a tick under way finish."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

from bot.scheduler import ReminderTicker, ticking


class SlowTicker:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finished = False

    async def tick(self) -> int:
        self.started.set()
        await asyncio.sleep(0.3)  # a transaction under way
        self.finished = True
        return 0


async def test_a_tick_under_way_when_the_lead_ends_finishes_instead_of_being_cut() -> None:
    ticker = SlowTicker()
    async with ticking(cast(ReminderTicker, cast(Any, ticker)), every=timedelta(seconds=60)):
        await asyncio.wait_for(ticker.started.wait(), timeout=10)
    assert ticker.finished
