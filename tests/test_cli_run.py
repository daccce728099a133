"""`gridbot run` as an operator starts it: a separate process, configured by environment only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.emulator import BotAPIEmulator

from conftest import SAMPLE
from factories import make_jpeg

TOKEN = "987654321:AAOperatorStartedThisBotFromAShell_0"


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(GRIDBOT_DATA_DIR=str(tmp_path / "data"), GRIDBOT_CONFIG=str(SAMPLE), **extra)
    return env


async def test_run_serves_any_bot_api_server_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="operator_bot")
        captain = emulator.user(200000001, "王阿姨")
        intake = emulator.group(-1001000000002, "报事群", members=[captain])
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=environment(tmp_path, GRIDBOT_BOT_TOKEN=TOKEN, GRIDBOT_API_BASE=emulator.base_url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await captain.send_photo(intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
            ack = await emulator.wait_for(intake, contains="#1", timeout=60)
            assert "汾阳路社区工作站" in ack.body
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert logs and {"time", "level", "logger", "message"} <= set(logs[0])
    assert (tmp_path / "data" / "gridbot.db").exists()


def test_run_without_a_token_says_which_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run"], env=environment(tmp_path))
    assert result.exit_code == 1
    assert "GRIDBOT_BOT_TOKEN" in result.output


def test_run_refuses_a_broken_deployment_file(tmp_path: Path) -> None:
    broken = tmp_path / "deploy.yaml"
    broken.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["run", str(broken)], env=environment(tmp_path, GRIDBOT_BOT_TOKEN=TOKEN)
    )
    assert result.exit_code == 1
    assert "deploy.yaml" in result.output and "timezone" in result.output
    assert "nothing was started" in result.output


def test_the_demo_plays_the_whole_day(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for moment in ("王阿姨's report is registered", "李大爷 is asked where",
                   "李大爷's shared location is placed", "the street office triages it",
                   "merged into #1", "李大爷 hears #1 is being handled",
                   "#1 is closed", "the bot is unsure and offers places",
                   "李大爷's guided report is registered as #5", "she is reminded",
                   "the street office is told (督办)",
                   "reminders pause until tomorrow", "is made",
                   "the street office gets the summary", "the PDF as a document",
                   "Tickets at the end of the day", "closed", "satisfied"):
        assert moment in result.output
    # It ends with the digest of its week, whose files outlive the demo.
    [kept] = tmp_path.iterdir()
    assert f"is in {kept}" in " ".join(result.output.split())
    pdf = next(kept.glob("digest-*.pdf"))
    assert str(pdf) in result.output and pdf.stat().st_size > 0
    assert len(list(kept.glob("digest-*"))) == 5
