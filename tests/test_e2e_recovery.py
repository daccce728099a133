"""End to end: nothing is lost when the bot dies between taking an update and handling it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr

from bot.app import build
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.lifecycle import Status
from bot.settings import Settings
from storage import repo
from storage.db import migrate

from conftest import TOKEN
from factories import make_jpeg


async def test_a_report_taken_but_not_handled_is_handled_after_a_restart(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        captain = emulator.user(200000001, "王阿姨")
        intake = emulator.group(-1001000000002, "报事群", members=[captain])
        settings = Settings(
            bot_token=SecretStr(TOKEN), api_base=emulator.base_url,
            data_dir=tmp_path / "data", database_url=database_url,
        )

        # The first run takes the update and confirms it to Telegram (aiogram's polling does
        # that when it asks for the next batch, before its handlers finish) — and dies.
        crashed = build(settings, deployment)
        await migrate(crashed.engine)
        await captain.send_photo(intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
        [update] = await crashed.bot.get_updates(timeout=1)
        await crashed.bot.get_updates(offset=update.update_id + 1, timeout=0)
        async with crashed.sessions() as session:  # getUpdates itself recorded the batch
            [recorded] = await repo.unhandled_updates(session=session)
            assert recorded.update_id == update.update_id
        await crashed.bot.session.close()
        await crashed.engine.dispose()
        assert emulator.pending_updates() == []  # Telegram will not send it again

        # The next run finds it in the inbox and handles it: the captain gets their answer.
        restarted = build(settings, deployment, sender_poll_interval=0.1)
        polling = asyncio.create_task(
            restarted.dp.start_polling(restarted.bot, handle_signals=False, polling_timeout=1)
        )
        try:
            ack = await emulator.wait_for(intake, contains="#1", timeout=20)
            assert "汾阳路社区工作站" in ack.body
            async with restarted.sessions() as session:
                [ticket] = await repo.all_tickets(session=session)
                assert ticket.status == Status.ASSIGNED
                assert await repo.unhandled_updates(session=session) == []
            assert await restarted.replay_unhandled() == 0  # and never twice
        finally:
            await restarted.dp.stop_polling()
            await asyncio.wait_for(polling, timeout=20)
