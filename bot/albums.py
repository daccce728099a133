"""Collects the parts of an album (one update per photo) into one report.

Telegram sends no "album complete" signal: the first part's handler waits until no new
part has arrived for ``quiet`` seconds, then handles them all; later parts return at once.
This buffer is per process; several webhook workers need a shared one (a later issue).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Part = TypeVar("Part")


@dataclass
class _Album(Generic[Part]):
    parts: list[Part]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class AlbumCollector(Generic[Part]):
    def __init__(self, quiet: float = 1.0) -> None:
        self.quiet = quiet
        self._albums: dict[tuple[int, str], _Album[Part]] = {}

    async def collect(self, key: tuple[int, str], part: Part) -> list[Part] | None:
        """All parts of the album for the first caller, None for the others."""
        album = self._albums.get(key)
        if album is not None:
            album.parts.append(part)
            album.arrived.set()
            return None
        album = self._albums[key] = _Album([part])
        try:
            while True:
                album.arrived.clear()
                try:
                    await asyncio.wait_for(album.arrived.wait(), timeout=self.quiet)
                except TimeoutError:
                    break
        finally:
            del self._albums[key]
        return album.parts
