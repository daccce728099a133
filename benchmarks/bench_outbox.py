"""The outbox's sustained send rate against the local Bot API emulator.

`--messages` text messages (a reminder's HTML and a button each) are committed to the outbox
of a fresh SQLite database, spread at random over `--private` private chats and `--groups`
groups; then the real `OutboxSender`, built as `bot.app.build` builds it, sends them to the
emulator over HTTP (both run in this process, so the emulator's work is in the figure too).
Timing runs from the sender's start until the emulator has received the last message.

    .venv/bin/python benchmarks/bench_outbox.py [--messages 3000] [--private 200] [--groups 5]
        [--modes unlimited telegram_limits unpaced_vs_limits]

Modes (see MODES; the first two by default): `unlimited` is the sender with its pacing off
(`limits=None`, GRIDBOT_SEND_LIMITS=false) against an emulator without limits: the sender's
own ceiling. `telegram_limits` is the sender as deployed (pacing to Telegram's limits) against
an emulator answering 429 as Telegram does past ~1 message/s per private chat, 20/min per group
and 30/s overall: the rate a deployment gets, which should be near 30/s with no 429s (3000
messages need at least 100 s). `unpaced_vs_limits`: no pacing against those limits, to see
what the 429 round trips cost.

Prints JSON lines: {"bench": "outbox", "metric": ..., "value": ..., "unit": ..., "mode": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchkit
import sqlalchemy as sa
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.callbacks import TicketButton
from bot.console import stderr
from bot.emulator import BotAPIEmulator
from bot.outbox import OutboxSender, SendLimits
from bot.photos import PhotoStore
from storage.db import create_engine, migrate, session_factory
from storage.models import OutboxMessage

TOKEN = "123456789:AAEmulatorTokenForTheGridbotBenchmark"
INSERT_BATCH = 10_000
NUMBER = re.compile(r"#(\d+)")


@dataclass(frozen=True)
class Mode:
    sender: dict[str, Any] = field(default_factory=dict)  # extra OutboxSender arguments
    emulator_limits: bool = False  # the emulator answers 429 as Telegram does


MODES = {
    "unlimited": Mode(sender={"limits": None}),
    "telegram_limits": Mode(sender={"limits": SendLimits()}, emulator_limits=True),
    "unpaced_vs_limits": Mode(sender={"limits": None}, emulator_limits=True),
}
DEFAULT_MODES = ["unlimited", "telegram_limits"]


def emit(metric: str, value: object, unit: str, **extra: object) -> None:
    benchkit.emit("outbox", metric, value, unit, **extra)


def utc_now() -> datetime:
    return datetime.now(UTC)


def rows(count: int, chats: list[int], rng: random.Random) -> list[dict[str, Any]]:
    """What the Notifier writes for a reminder: HTML text, a button, no reply."""
    now = utc_now() - timedelta(seconds=1)
    text = "⏰ <b>工单 #{n}</b> 汾阳路{road}号 垃圾堆积，已超时，请尽快处理。"
    return [
        {
            "chat_id": rng.choice(chats), "kind": "message", "status": "pending",
            "payload": {
                "text": text.format(n=n, road=n % 400 + 1),
                "reply_to": None,
                "buttons": [
                    [{"text": "认领", "data": TicketButton(action="claim", ticket=n).pack()}]
                ],
            },
            "created_at": now, "not_before": now, "attempts": 0,
        }
        for n in range(1, count + 1)
    ]


async def run_mode(name: str, mode: Mode, args: argparse.Namespace, directory: Path) -> None:
    async with BotAPIEmulator(realistic_limits=mode.emulator_limits) as emulator:
        emulator.add_bot(TOKEN, username="gridbot_bench_bot")
        users = [emulator.user(400_000_000 + n, f"网格员{n}") for n in range(args.private)]
        for user in users:
            await user.start_bot()  # the bot may write to them
        groups = [
            emulator.group(-1_002_000_000_000 - n, f"报事群{n}", members=users[:3])
            for n in range(args.groups)
        ]
        chats = [u.id for u in users] + [g.id for g in groups]

        engine = create_engine(f"sqlite+aiosqlite:///{directory / f'outbox-{name}.db'}")
        await migrate(engine)
        batch = rows(args.messages, chats, random.Random(7))
        async with engine.begin() as connection:
            for start in range(0, len(batch), INSERT_BATCH):
                await connection.execute(
                    sa.insert(OutboxMessage), batch[start : start + INSERT_BATCH]
                )

        api = TelegramAPIServer.from_base(emulator.base_url)
        bot = Bot(TOKEN, session=AiohttpSession(api=api))
        sender = OutboxSender(
            bot=bot, sessions=session_factory(engine), photo_store=PhotoStore(directory),
            clock=utc_now, **mode.sender,
        )
        samples: list[tuple[float, int]] = []
        started = time.perf_counter()
        sender.start()
        try:
            with benchkit.progress(f"{name}: sending") as bar:
                task = bar.add_task("send", total=args.messages)
                while len(emulator.sent) < args.messages:
                    elapsed = time.perf_counter() - started
                    if elapsed > args.timeout:
                        break
                    samples.append((elapsed, len(emulator.sent)))
                    bar.update(task, completed=len(emulator.sent))
                    await asyncio.sleep(0.02)
            seconds = time.perf_counter() - started
            samples.append((seconds, len(emulator.sent)))
        finally:
            await sender.stop()
            await bot.session.close()

        async with engine.connect() as connection:
            table = OutboxMessage.__table__  # type: ignore[attr-defined]
            by_status = await connection.execute(
                sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
            )
            counts: dict[str, int] = {status: count for status, count in by_status.all()}
            attempts = await connection.scalar(sa.select(sa.func.sum(table.c.attempts)))
        await engine.dispose()

    delivered = len(emulator.sent)
    extra = {"mode": name, "messages": args.messages, "chats": len(chats)}
    if delivered < args.messages:
        stderr().print(f"{name}: only {delivered} of {args.messages} sent in {args.timeout}s")
    emit("messages_per_s", delivered / seconds, "messages/s", **extra)
    emit("steady_messages_per_s", steady_rate(samples, args.messages), "messages/s",
         between="10%-90%", **extra)
    emit("total_seconds", seconds, "s", **extra)
    emit("sent_rows", counts.get("sent", 0), "rows", **extra)
    emit("failed_rows", counts.get("failed", 0), "rows", **extra)
    emit("pending_rows", counts.get("pending", 0), "rows", **extra)
    emit("extra_attempts", int(attempts or 0) - delivered, "attempts", **extra)
    emit("refused_calls", emulator.calls.get("sendMessage", 0) - delivered, "calls", **extra)
    emit("order_kept", order_kept(emulator.sent), "bool", **extra)


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Messages/s between the samples where 10% and 90% had been sent: the start-up and the
    last stragglers left out."""
    low = next(((t, n) for t, n in samples if n >= total * 0.1), None)
    high = next(((t, n) for t, n in samples if n >= total * 0.9), None)
    if low is None or high is None or high[0] <= low[0]:
        return 0.0
    return (high[1] - low[1]) / (high[0] - low[0])


def order_kept(sent: list[Any]) -> bool:
    """Each chat got its messages in the order they were committed."""
    by_chat: dict[int, list[int]] = defaultdict(list)
    for message in sent:
        found = NUMBER.search(message.body or "")
        if found:
            by_chat[message.chat_id].append(int(found.group(1)))
    return all(numbers == sorted(numbers) for numbers in by_chat.values())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3_000)
    parser.add_argument("--private", type=int, default=200, help="private chats")
    parser.add_argument("--groups", type=int, default=5, help="group chats")
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=DEFAULT_MODES)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-outbox-") as tmp:
        for name in args.modes:
            await run_mode(name, MODES[name], args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
