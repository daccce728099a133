"""`gridbot webhook`: run the bot as a webhook worker (bot/webhook.py) until SIGINT/SIGTERM.
Mounted by bot/cli.py."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from bot.console import ConfigFile, stderr


def webhook(
    file: ConfigFile = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Set the webhook to $GRIDBOT_WEBHOOK_URL at start (the default), or leave "
            "Telegram's setting as it is (another worker or the operator set it).",
        ),
    ] = True,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Also tick reminders here (the default; one process leads), or leave that to "
            "`gridbot scheduler`.",
        ),
    ] = True,
) -> None:
    """Serve Telegram's webhook on $GRIDBOT_WEBHOOK_HOST:$GRIDBOT_WEBHOOK_PORT until
    SIGINT/SIGTERM: updates on a secret path, answered once recorded; /healthz and /metrics.
    Start several on one PostgreSQL database (and Redis) to scale out."""
    import asyncio
    import signal
    from datetime import timedelta

    from bot.app import build, configure_logging
    from bot.cli import deployment_or_exit, resolve_config_path, settings_or_exit
    from bot.settings import ENV_PREFIX, MissingTokenError, MissingWebhookSecretError
    from bot.webhook import run_webhook

    settings = settings_or_exit()
    try:
        settings.require_token()
        secret = settings.require_webhook_secret()
    except (MissingTokenError, MissingWebhookSecretError) as exc:
        stderr().print(Text(str(exc)))
        raise typer.Exit(1) from None
    if register and settings.webhook_url is None:
        stderr().print(Text(
            f"{ENV_PREFIX}WEBHOOK_URL is not set: export the bot's public base URL (e.g. "
            f"{ENV_PREFIX}WEBHOOK_URL=https://bot.example.org) so Telegram knows where to post, "
            "or pass --no-register if the webhook is set already"
        ))
        raise typer.Exit(1)
    deployment = deployment_or_exit(resolve_config_path(file))
    configure_logging(settings.log_level)
    gridbot = build(settings, deployment, reminder_tick=None if scheduler else timedelta(0))

    async def until_signalled() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        await run_webhook(
            gridbot, secret=secret, register_url=settings.webhook_url if register else None,
            stopped=stopped,
        )

    asyncio.run(until_signalled())
