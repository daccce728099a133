"""End to end: how the bot introduces itself, in groups and at start."""

from __future__ import annotations

from pathlib import Path

from bot.app import COMMANDS
from bot.deployment import Deployment

from conftest import World, running_world


async def test_privacy_mode_is_reported_loudly(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> None:
    async with running_world(database_url, deployment, tmp_path, privacy_mode=True) as world:
        warning = await world.emulator.wait_for(world.office, contains="隐私模式")
        assert "/setprivacy" in warning.body and "@gridbot_test_bot" in warning.body


async def test_without_privacy_mode_the_office_hears_nothing_at_start(world: World) -> None:
    await world.settle()
    assert world.said_in(world.office) == []


async def test_joining_a_group_that_is_not_an_intake_chat_says_how_once(world: World) -> None:
    group = world.emulator.group(-1001000000077, "新建的楼栋群", members=[world.captain],
                                 with_bot=False)
    await world.captain.add_bot_to(group)
    told = await world.emulator.wait_for(group, contains="intake_chats")
    assert "-1001000000077" in told.body
    await world.captain.send_text(group, "汾阳路13号 旱厕堵了")
    await world.settle()
    assert len(world.said_in(group)) == 1


async def test_the_command_menu_is_set_in_both_languages(world: World) -> None:
    chinese = await world.app.bot.get_my_commands(language_code="zh")
    english = await world.app.bot.get_my_commands(language_code="en")
    assert [c.command for c in chinese] == list(COMMANDS)
    assert {"start", "tickets", "help", "cancel", "whoami", "lang"} <= set(COMMANDS)
    assert {c.command: c.description for c in english}["tickets"] == "Open tickets (chiefs)"
    assert {c.command: c.description for c in chinese}["tickets"] == "待办工单（站长）"


async def test_private_start_greets_a_captain_in_their_language(world: World) -> None:
    english = world.emulator.user(300000001, "Anna", language_code="en")
    await english.start_bot()
    hello = await world.emulator.wait_for(english)
    assert hello.body.startswith("Hello, Anna!")
