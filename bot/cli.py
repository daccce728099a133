"""The ``gridbot`` command line. ``check-config`` verifies a deployment file; the commands that
start the bot load it through the same ``deployment_or_exit``."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from bot.console import ConfigFile, stderr, stdout
from bot.deployment import Deployment, DeploymentError, format_duration, load_deployment
from bot.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="gridbot",
    help="Grid-patrol reports from group chat to fixed.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Grid-patrol reports from group chat to fixed."""
    # A callback keeps gridbot a group of commands even while it has only one.




def resolve_config_path(file: Path | None) -> Path:
    """The deployment file named on the command line, else GRIDBOT_CONFIG; exits 1 if neither."""
    if file is not None:
        return file
    configured = settings_or_exit().config
    if configured is None:
        stderr().print(Text("no deployment file: pass FILE or set GRIDBOT_CONFIG"))
        raise typer.Exit(1)
    return configured


def deployment_or_exit(file: Path) -> Deployment:
    """Load the deployment file, or print one line per problem to stderr and exit 1.
    Every command that needs the deployment goes through here, so all report alike."""
    try:
        return load_deployment(file)
    except DeploymentError as exc:
        console = stderr()
        for line in exc.lines():
            # Text, not markup: names and values from the file are printed verbatim.
            console.print(Text(line))
        noun = "problem" if len(exc.problems) == 1 else "problems"
        console.print(Text(f"✗ {file}: {len(exc.problems)} {noun}; nothing was started"))
        raise typer.Exit(1) from None


@app.command("check-config")
def check_config(
    file: ConfigFile = None,
) -> None:
    """Check a deployment file and summarise it; exit 1 with one line per problem."""
    path = resolve_config_path(file)
    deployment = deployment_or_exit(path)
    _print_summary(stdout(), path, deployment)


def _print_summary(console: Console, path: Path, deployment: Deployment) -> None:
    console.print(Text(f"✓ {path} is a valid deployment file", style="bold green"))
    office = deployment.street_office
    console.print(Text(f"Street office: {office.name} (chat {office.chat_id})"))
    console.print(Text(f"Time zone: {deployment.timezone}; language: {deployment.language}"))
    chats = ", ".join(str(chat) for chat in deployment.intake_chats)
    console.print(Text(f"Intake chats: {chats}"))
    if deployment.intake == "members":
        console.print(Text(
            "Intake: members only (invited people, those listed under people and the chiefs; "
            "others are told how to join and nothing of theirs is kept)"
        ))
    else:
        console.print(Text("Intake: open (anyone in an intake chat may report)"))

    # Plain lines rather than tables: nothing wraps, so the output greps and pastes well.
    console.print(Text(f"Stations ({len(deployment.stations)}):", style="bold"))
    for station in deployment.stations:
        area = station.area
        grid = _shown_path(area.path, deployment)
        if area.names:
            grid += f" ({', '.join(area.names)})"
        console.print(
            Text.assemble(
                "  ", (station.key, "bold"), f" {station.name}; chief {station.chief}; grid {grid}"
            )
        )
    for first, second in deployment.overlapping_stations():
        console.print(
            Text(
                f"  warning: the grids of {first} and {second} overlap; a report there could "
                "go to either station",
                style="yellow",
            )
        )
    if deployment.people:
        console.print(Text(f"People ({len(deployment.people)}):", style="bold"))
        for member in deployment.people:
            role = "deputy chief" if member.role == "chief" else member.role
            where = f" of {member.station}" if member.station else ""
            building = f", building {member.building}" if member.building else ""
            name = f" {member.name}" if member.name else ""
            console.print(Text.assemble(
                "  ", (str(member.telegram_id), "bold"), f"{name}: {role}{where}{building}"
            ))
    console.print(Text(f"Categories ({len(deployment.categories)}):", style="bold"))
    for category in deployment.categories:
        default = " (default)" if category.key == deployment.default_category else ""
        console.print(
            Text.assemble(
                "  ",
                (category.key, "bold"),
                f" {category.name}; deadline {format_duration(category.sla)}{default}",
            )
        )

    reminders = deployment.reminders
    quiet = ""
    if reminders.quiet_hours:
        window = reminders.quiet_hours
        quiet = f", never between {window.start:%H:%M} and {window.end:%H:%M}"
    console.print(
        Text(
            f"Reminders: first after {format_duration(reminders.first_after)}, then every "
            f"{format_duration(reminders.every)}{quiet}; the street office is told after "
            f"{reminders.escalate_after} reminders"
        )
    )
    console.print(
        Text(
            f"Feedback: resolved tickets close by themselves after "
            f"{format_duration(deployment.feedback.auto_close_after)} without an answer"
        )
    )
    console.print(
        Text(
            f"Duplicates: reports within {deployment.dedup.radius_m:g} m and "
            f"{format_duration(deployment.dedup.window)} of an open ticket"
        )
    )
    console.print(Text(f"Gazetteer: {_shown_path(deployment.gazetteer, deployment)}"))
    digest = deployment.digest
    console.print(
        Text(f"Weekly digest: {digest.weekday} {digest.time:%H:%M} ({deployment.timezone})")
    )


def _shown_path(path: Path, deployment: Deployment) -> str:
    # Relative to the deployment file, as the operator wrote it.
    try:
        return str(path.relative_to(deployment.base_dir))
    except ValueError:
        return str(path)


@app.command("run")
def run(
    file: ConfigFile = None,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Also tick reminders here (the default), or leave that to `gridbot scheduler`.",
        ),
    ] = True,
) -> None:
    """Run the bot with long polling against $GRIDBOT_API_BASE until SIGINT/SIGTERM."""
    import asyncio
    from datetime import timedelta

    from bot.app import build, configure_logging
    from bot.settings import MissingTokenError

    settings = settings_or_exit()
    try:
        settings.require_token()
    except MissingTokenError as exc:
        stderr().print(Text(str(exc)))
        raise typer.Exit(1) from None
    deployment = deployment_or_exit(resolve_config_path(file))
    configure_logging(settings.log_level)
    gridbot = build(settings, deployment, reminder_tick=None if scheduler else timedelta(0))
    asyncio.run(gridbot.run_polling())


@app.command("scheduler")
def scheduler(file: ConfigFile = None) -> None:
    """Run only the reminder scheduler until SIGINT/SIGTERM. Start several for safety: one
    leads, the others stand by and take over if it dies. Bot processes send what it writes."""
    import asyncio
    import signal

    from bot.app import configure_logging, run_scheduler

    settings = settings_or_exit()
    deployment = deployment_or_exit(resolve_config_path(file))
    configure_logging(settings.log_level)

    async def until_signalled() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        await run_scheduler(settings, deployment, stopped=stopped)

    asyncio.run(until_signalled())


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            stderr().print(Text(line))
        raise typer.Exit(1) from None


@app.command("demo")
def demo(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where the day's digest is kept (default: "
                     "<temp dir>/gridbot-demo-digest).", show_default=False),
    ] = None,
) -> None:
    """Play a scripted day in the sample district through the local Bot API emulator; it
    ends with the digest of its week."""
    import asyncio

    from bot.app import configure_logging
    from bot.demo import DIGEST_OUT, run_demo

    configure_logging("WARNING", json_lines=False)
    console = stdout()
    if not console.is_terminal:  # piped or captured: wide enough for the summary table
        console = Console(highlight=False, soft_wrap=True, width=140)
    raise typer.Exit(asyncio.run(run_demo(console, out=out or DIGEST_OUT)))


@app.command("locate")
def locate(
    text: Annotated[str, typer.Argument(help="A caption or an address, as a captain wrote it.")],
    file: Annotated[
        Path | None, typer.Option("--config", help="Deployment file (default: $GRIDBOT_CONFIG).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    online: Annotated[
        bool, typer.Option("--online", help="Also ask the online providers, as the bot would.")
    ] = False,
) -> None:
    """Explain where the bot would place TEXT and why: "why did this go to station X?"."""
    import asyncio

    from bot.locate_cli import explain

    deployment = deployment_or_exit(resolve_config_path(file))
    raise typer.Exit(
        asyncio.run(explain(text, deployment, console=stdout(), as_json=as_json, online=online))
    )


def _mount_subcommands() -> None:
    from bot.digest_cli import digest
    from bot.gazetteer_cli import app as gazetteer_app
    from bot.grids_cli import app as grids_app
    from bot.invite_cli import invite
    from bot.seed_cli import seed
    from bot.ticket_cli import app as ticket_app
    from bot.webhook_cli import webhook

    app.add_typer(grids_app, name="grids", help="Check station grids and draw them on a map.")
    app.add_typer(gazetteer_app, name="gazetteer", help="Import and inspect the gazetteer.")
    app.add_typer(ticket_app, name="ticket", help="Look at one ticket whole.")
    app.command("invite")(invite)
    app.command("seed")(seed)
    app.command("digest")(digest)
    app.command("webhook")(webhook)


_mount_subcommands()
