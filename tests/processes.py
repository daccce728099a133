"""Real gridbot processes for fault tests: started as an operator would, killed with SIGKILL;
and waiting for what they (or other tasks) do."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path


class GridbotProcess:
    """``python -m bot ARGS`` with only the given GRIDBOT_* variables; its output goes to a
    log file that a failing test prints."""

    def __init__(self, *args: str, env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
        self.env.update(env)
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> GridbotProcess:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *self.args, env=self.env, stdout=out, stderr=out
            )
        return self

    def kill(self) -> None:
        """kill -9: no shutdown handler, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=30)

    async def reap(self) -> None:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), timeout=30)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def output(self) -> str:
        """All it has written so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self) -> str:
        return self.output()[-4000:]


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until(condition: Callable[[], bool], *, within: float = 60) -> None:
    """Wait for something another task or process does (not for time to pass)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (no event to wait on across processes)
            await asyncio.sleep(0.02)
