"""`gridbot invite`: a one-time invitation link for a captain, a deputy chief or an office
member, written to the database and printed. Mounted by bot/cli.py."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.text import Text

from bot.console import stderr, stdout
from bot.deployment import Deployment, format_duration, parse_duration
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.people import InvitationSpec


def invite(
    role: Annotated[
        str, typer.Option("--role", help="captain, chief (a deputy chief) or office.",
                          show_default=False)
    ],
    station: Annotated[
        str | None,
        typer.Option("--station", help="The station's key; captains and chiefs need one."),
    ] = None,
    building: Annotated[
        str | None, typer.Option("--building", help="A captain's building or address.")
    ] = None,
    expires: Annotated[
        str, typer.Option("--expires", help="How long the link works: 7d, 48h, 2w...")
    ] = "7d",
    file: Annotated[
        Path | None, typer.Option("--config", help="Deployment file (default: $GRIDBOT_CONFIG).")
    ] = None,
) -> None:
    """Make a one-time invitation link and print it: whoever opens it first, before it
    expires, joins with this role."""
    from bot.cli import deployment_or_exit, resolve_config_path, settings_or_exit
    from bot.people import BadInvitation, check_invitation

    settings = settings_or_exit()
    deployment = deployment_or_exit(resolve_config_path(file))
    try:
        spec = check_invitation(
            [s.key for s in deployment.stations], role=role, station=station, building=building
        )
        lifetime = parse_duration(expires)
    except BadInvitation as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"--expires {exc}")
    username = None
    if settings.bot_token is not None:
        # Before writing anything: a token Telegram refuses leaves no stray invitation.
        username = asyncio.run(_bot_username(settings))
    token, expires_at = asyncio.run(_write(settings, deployment, spec, lifetime))
    _print(deployment, spec, token, expires_at, lifetime, username)


def _fail(message: str) -> NoReturn:
    stderr().print(Text(f"✗ {message}; no invitation was made"))
    raise typer.Exit(1)


async def _bot_username(settings: Settings) -> str:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramAPIError
    from aiohttp import ClientError

    bot = Bot(
        settings.require_token(),
        session=AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base)),
    )
    try:
        me = await bot.get_me()
    except (TelegramAPIError, ClientError, OSError, TimeoutError) as exc:
        _fail(
            f"cannot ask {settings.api_base} for the bot's username ({type(exc).__name__}: "
            f"{exc}); check GRIDBOT_BOT_TOKEN and GRIDBOT_API_BASE"
        )
    finally:
        await bot.session.close()
    if not me.username:
        _fail("Telegram gave the bot no username")
    return me.username


async def _write(
    settings: Settings, deployment: Deployment, spec: InvitationSpec, lifetime: timedelta
) -> tuple[str, datetime]:
    from bot.app import prepare_database, utc_now
    from bot.people import create_invitation
    from storage.db import create_engine, session_factory

    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    try:
        # The station rows the invitation refers to, on a database the bot never started on.
        await prepare_database(engine, sessions, deployment)
        async with sessions() as session:
            invitation = await create_invitation(
                session, spec=spec, created_by=None, now=utc_now(), lifetime=lifetime
            )
            await session.commit()
            return invitation.token, invitation.expires_at
    finally:
        await engine.dispose()


def _print(
    deployment: Deployment, spec: InvitationSpec, token: str, expires_at: datetime,
    lifetime: timedelta, username: str | None,
) -> None:
    from bot.people import invitation_link

    console = stdout()
    who = spec.role if spec.role != "chief" else "deputy chief"
    if spec.station_key:
        who += f" of {deployment.station(spec.station_key).name} ({spec.station_key})"
    if spec.building:
        who += f", building {spec.building}"
    until = expires_at.astimezone(deployment.zone)
    console.print(Text(
        f"✓ invitation for a {who}; works once, for {format_duration(lifetime)} "
        f"(until {until:%Y-%m-%d %H:%M} {deployment.timezone})"
    ))
    if username is not None:
        console.print(Text(invitation_link(username, token)))
        return
    console.print(Text(token))
    console.print(Text(
        "GRIDBOT_BOT_TOKEN is not set, so the bot's username is unknown: send the person this "
        f"token to type in the bot's private chat as\n/start {token}\nor make the link "
        f"https://t.me/<bot username>?start={token} yourself."
    ))
