"""Telegram's sending limits: the bot paces itself, and when Telegram says 429 anyway, waits.

Pacing is about real seconds, so these tests take a few; they compare the emulator's
acceptance times instead of sleeping.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.deployment import Deployment
from bot.emulator.records import BotMessage

from conftest import World, running_world
from factories import make_jpeg

# Six reports in one group, spread over stations, as a busy morning's first minutes.
REPORTS = [
    ("汾阳路13号", "旱厕堵了"), ("金水路8号", "垃圾堆了三天"), ("汾阳路21号", "路灯不亮"),
    ("金水路30号", "井盖松动"), ("汾阳路5号", "楼道灯坏了"), ("金水路12号", "下水道反味"),
]  # fmt: skip


@pytest.fixture
async def paced_world(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[World]:
    async with running_world(
        database_url, deployment, tmp_path, floods_refused=True, paced=True
    ) as world:
        yield world


@pytest.fixture
async def flooding_world(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[World]:
    async with running_world(
        database_url, deployment, tmp_path, floods_refused=True, paced=False
    ) as world:
        yield world


async def report_burst(world: World) -> None:
    for n, (address, problem) in enumerate(REPORTS, start=1):
        caption = f"{address} {problem}"
        await world.captain.send_photo(world.intake, make_jpeg(seed=n), caption=caption)
    for n in range(1, len(REPORTS) + 1):
        await world.emulator.wait_for(world.intake, contains=f"#{n}", timeout=30)
    await world.settle(deferred_too=True)


def most_in_any_window(messages: list[BotMessage], seconds: float) -> int:
    times = sorted(m.accepted_at for m in messages)
    return max(
        (sum(1 for t in times[i:] if t - start < seconds) for i, start in enumerate(times)),
        default=0,
    )


def by_chat(world: World) -> dict[int, list[BotMessage]]:
    chats: dict[int, list[BotMessage]] = defaultdict(list)
    for message in world.emulator.sent:
        chats[message.chat_id].append(message)
    return chats


async def test_a_burst_is_paced_so_telegram_never_says_429(paced_world: World) -> None:
    world = paced_world
    await report_burst(world)
    assert world.emulator.refusals[429] == 0
    # every report answered once (in the order they were handled, which may differ)
    acks = [int(m) for body in world.said_in(world.intake) for m in re.findall(r"#(\d+)", body)]
    assert sorted(acks) == list(range(1, len(REPORTS) + 1))
    for chat, messages in by_chat(world).items():
        # about one a second per chat: three per three seconds, as the sender counts them;
        # arrival times jitter by the HTTP round trip, so the check allows half a second
        assert most_in_any_window(messages, 2.5) <= 3, chat
    group = by_chat(world)[world.intake.id]
    assert group[-1].accepted_at - group[0].accepted_at >= 3.0  # six needed a second window
    assert all(m.status == "sent" for m in await world.outbox())


async def test_a_flood_answered_with_429_is_delayed_but_nothing_is_lost(
    flooding_world: World,
) -> None:
    world = flooding_world
    await report_burst(world)
    assert world.emulator.refusals[429] > 0  # the bot flooded (pacing off) and was told so
    outbox = await world.outbox()
    assert outbox and all(m.status == "sent" for m in outbox)
    assert any("retry after" in (m.last_error or "").lower() for m in outbox)
    for chat, messages in by_chat(world).items():
        sent = [m for m in outbox if m.chat_id == chat]
        # everything arrived once, in the order it was written
        assert [m.message_id for m in messages] == sorted(m.message_id for m in messages)
        assert len(messages) == len(sent), chat
