"""ISO weeks in the deployment's time zone: what "2026-W47" and "last week" mean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_LABEL = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


class WeekError(ValueError):
    """A week that cannot be read ("2026-W60", "yesterday")."""


@dataclass(frozen=True, order=True)
class Week:
    """Monday 00:00 to the next Monday 00:00, local time of ``tz``."""

    year: int
    number: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, *, tz: ZoneInfo, now: datetime) -> Week:
        """"2026-W47" / "2026W47" / "last" (the default) / "this"."""
        value = (text or "last").strip().lower()
        if value in ("last", "previous"):
            return cls.containing(now, tz=tz).previous()
        if value in ("this", "current"):
            return cls.containing(now, tz=tz)
        match = _LABEL.match(value)
        if match is None:
            raise WeekError(f"{text!r} is not a week: write 2026-W47, last or this")
        year, number = int(match[1]), int(match[2])
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError as error:
            raise WeekError(f"{year} has no week {number}") from error
        return cls(year, number, tz)

    @classmethod
    def containing(cls, moment: datetime, *, tz: ZoneInfo) -> Week:
        local = moment.astimezone(tz).date()
        year, number, _ = local.isocalendar()
        return cls(year, number, tz)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def start(self) -> datetime:
        """Monday 00:00 local, as aware UTC (what the database compares)."""
        return datetime.combine(self.monday, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 local, as aware UTC; the week is [start, end)."""
        return self.next().start

    def previous(self, weeks: int = 1) -> Week:
        year, number, _ = (self.monday - timedelta(weeks=weeks)).isocalendar()
        return Week(year, number, self.tz)

    def next(self) -> Week:
        year, number, _ = (self.monday + timedelta(weeks=1)).isocalendar()
        return Week(year, number, self.tz)

    def __str__(self) -> str:
        return self.label
