"""The consoles the command line prints to: built per call, so they follow sys.stdout/stderr
(typer's CliRunner and shell pipes swap them)."""

from rich.console import Console


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)
