"""What every gridbot command shares: the consoles it prints to (built per call, so they follow
sys.stdout/stderr, which typer's CliRunner and shell pipes swap) and the deployment argument."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

ConfigFile = Annotated[
    Path | None,
    typer.Argument(help="Deployment YAML file (default: $GRIDBOT_CONFIG).", show_default=False),
]


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)
