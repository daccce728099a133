"""How the digest writes what it shows: the figures and their names, stations, categories,
states, weeks, moments, shares, hours and changes, in the reader's language."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.deployment import Deployment
from reports.figures import Counts, TrendPoint
from reports.week import Week

__all__ = [
    "FIGURE", "FIGURES", "Indicator", "Kind", "Labels", "count_change", "hours", "plain", "share"
]

# What XML 1.0 (so XLSX, and sane PDF text) cannot hold: control characters, lone surrogates,
# U+FFFE/U+FFFF. Users can type or paste some of them; a workbook holding one will not open.
_UNWRITABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MINUS = "\u2212"  # a real minus sign: "−2", not a hyphen
MISSING = "—"


class Kind(enum.Enum):
    COUNT = "count"
    SHARE = "share"  # 0..1, shown as 87%
    HOURS = "hours"


@dataclass(frozen=True)
class Indicator:
    """One line of the figures table: which `Counts` value, its catalog name, its kind."""

    name: str
    key: str
    kind: Kind = Kind.COUNT

    def of(self, counts: Counts) -> float | None:
        value: float | None = getattr(counts, self.name)
        return value


FIGURES = (
    Indicator("received", key="digest.figure.received"),
    Indicator("opened", key="digest.figure.opened"),
    Indicator("merged", key="digest.figure.merged"),
    Indicator("claimed", key="digest.figure.claimed"),
    Indicator("resolved", key="digest.figure.resolved"),
    Indicator("closed", key="digest.figure.closed"),
    Indicator("reopened", key="digest.figure.reopened"),
    Indicator("rejected", key="digest.figure.rejected"),
    Indicator("escalated", key="digest.figure.escalated"),
    Indicator("open_at_end", key="digest.figure.open_at_end"),
    Indicator("overdue_at_end", key="digest.figure.overdue_at_end"),
    Indicator("parked_at_end", key="digest.figure.parked_at_end"),
    Indicator("due", key="digest.figure.due"),
    Indicator("due_met", key="digest.figure.due_met"),
    Indicator("compliance", key="digest.figure.compliance", kind=Kind.SHARE),
    Indicator("rated", key="digest.figure.rated"),
    Indicator("satisfaction", key="digest.figure.satisfaction", kind=Kind.SHARE),
    Indicator("claim_hours_median", key="digest.figure.claim_hours_median", kind=Kind.HOURS),
    Indicator("claim_hours_p90", key="digest.figure.claim_hours_p90", kind=Kind.HOURS),
    Indicator("resolve_hours_median", key="digest.figure.resolve_hours_median", kind=Kind.HOURS),
    Indicator("resolve_hours_p90", key="digest.figure.resolve_hours_p90", kind=Kind.HOURS),
)
FIGURE = {indicator.name: indicator for indicator in FIGURES}  # by the Counts field's name
_RATINGS = {"satisfied": "digest.rating.satisfied", "unsatisfied": "digest.rating.unsatisfied"}


def plain(text: str) -> str:
    """User text without the characters no document may hold."""
    return _UNWRITABLE.sub("", text)


def share(value: float | None) -> str:
    """87% (rounded to whole per cent), — when there is nothing to divide."""
    return MISSING if value is None else f"{value * 100:.0f}%"


def hours(value: float | None) -> str:
    """12.5, — when nothing was timed."""
    return MISSING if value is None else f"{value:.1f}"


def count_change(this: float | None, previous: float | None, *, digits: int = 0) -> str:
    """+3 / −2 / 0 (with `digits` decimals for hours), — when either side is missing."""
    if this is None or previous is None:
        return MISSING
    difference = round(this - previous, digits)
    if difference == 0:
        return f"{0:.{digits}f}"
    return f"{difference:+.{digits}f}".replace("-", MINUS)


@dataclass(frozen=True)
class Labels:
    """Names and numbers for one reader: `translate` is `Translator.bind(locale)`."""

    deployment: Deployment
    translate: Callable[..., str]

    @property
    def language(self) -> str:
        """The catalog's locale, for the names the deployment file gives per language."""
        return self.translate("digest.language")

    def value(self, indicator: Indicator, counts: Counts) -> str:
        value = indicator.of(counts)
        if indicator.kind is Kind.SHARE:
            return share(value)
        if indicator.kind is Kind.HOURS:
            return hours(value)
        return str(value)

    def change(self, indicator: Indicator, this: Counts, previous: Counts) -> str:
        """Against the previous week: counts +3 / −2 / 0, shares in percentage points,
        hours with one decimal."""
        now, before = indicator.of(this), indicator.of(previous)
        if indicator.kind is Kind.SHARE:
            if now is None or before is None:
                return MISSING
            points = count_change(now * 100, before * 100)
            return self.translate("digest.change.points", change=points)
        return count_change(now, before, digits=1 if indicator.kind is Kind.HOURS else 0)

    def station(self, key: str | None, fallback: str = "") -> str:
        """The station's name from the deployment file; the office's triage for None; the
        given fallback (the name the figures carry) for a station no longer in the file."""
        if key is None:
            return self.translate("digest.triage")
        try:
            return self.deployment.station(key).name
        except KeyError:
            return fallback or key

    def category(self, key: str) -> str:
        try:
            return self.deployment.category(key).name_in(self.language)
        except KeyError:
            return key

    def status(self, state: str) -> str:
        return self.translate(f"status.{state}")

    def rating(self, rating: str | None) -> str:
        key = _RATINGS.get(rating or "")
        return self.translate(key) if key else (rating or "")

    def week_name(self, week: Week) -> str:
        """2026年第47周 / Week 47 of 2026."""
        return self.translate("digest.week.name", year=week.year, number=week.number)

    def week_dates(self, week: Week) -> str:
        """2026-11-16 至 2026-11-22 (Monday to Sunday)."""
        return self.translate(
            "digest.week.dates", start=week.monday.isoformat(), end=week.sunday.isoformat()
        )

    def week(self, week: Week) -> str:
        """2026年第47周（2026-11-16 至 2026-11-22）."""
        return self.translate(
            "digest.week", name=self.week_name(week), dates=self.week_dates(week)
        )

    def trend_week(self, point: TrendPoint) -> str:
        """第47周 / W47, for the trend's axis."""
        number = point.week.rpartition("W")[2].lstrip("0")  # "2026-W07" → 7
        return self.translate("digest.week.short", number=number or point.week)

    def local(self, moment: datetime) -> datetime:
        """The moment on the district's clock, without a zone (what spreadsheets hold)."""
        return moment.astimezone(self.deployment.zone).replace(tzinfo=None)

    def moment(self, moment: datetime | None) -> str:
        """2026-11-16 09:05 in the district's time; "" for none."""
        return "" if moment is None else f"{self.local(moment):%Y-%m-%d %H:%M}"
