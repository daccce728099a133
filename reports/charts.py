"""The digest's two pictures: the stations' week with its 12-week trend, and the map of the
week's tickets on the station grids. Drawn offline (no basemap tiles) with Chinese labels.

Each picture is its own `matplotlib.figure.Figure` with the font given to every text it
draws, so nothing of pyplot's or matplotlib's global state is read or changed. Names from the
deployment file are drawn as written: a "$" in them does not start matplotlib's math text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from shapely.plotting import plot_polygon

from bot.deployment import Deployment
from bot.grids import Grids
from reports.figures import WeekFigures
from reports.fonts import cjk_font
from reports.labels import FIGURE, Labels

__all__ = ["chart", "chart_png", "map_figure", "map_png"]

DPI = 150
OPENED, RESOLVED, OVERDUE, OPEN = "#4C78A8", "#54A24B", "#D62728", "#F58518"
# The states in the order a reader follows a ticket, each with a colour that says it: waiting
# is orange, being worked on blue, done green, trouble red/purple, out of the way grey.
STATE_COLOURS = {
    "new": "#9D755D",
    "assigned": "#F58518",
    "claimed": "#4C78A8",
    "reopened": "#B279A2",
    "parked": "#E45756",
    "resolved": "#72B7B2",
    "closed": "#54A24B",
    "rejected": "#555555",
    "duplicate": "#BAB0AC",
}
_UNKNOWN_STATE = "#000000"
_GRID_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#72B7B2", "#EECA3B", "#FF9DA6")


def chart(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    translate: Callable[..., str],
    font: Path | None = None,
) -> Figure:
    """Per station this week: opened and resolved bars, overdue at week end in red with its
    number; below, the weeks of `figures.trend`: opened, resolved and still open at their end."""
    labels = Labels(deployment, translate)
    fonts = _Fonts(font or cjk_font())
    picture = Figure(figsize=(11, 9), layout="constrained")
    stations_axes, trend_axes = picture.subplots(2, 1, height_ratios=(3, 2))
    _stations(stations_axes, figures, labels, fonts)
    _trend(trend_axes, figures, labels, fonts)
    return picture


def chart_png(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    translate: Callable[..., str],
    path: Path,
    font: Path | None = None,
) -> Path:
    """The chart (see `chart`) written as a PNG to `path`."""
    picture = chart(figures, deployment=deployment, translate=translate, font=font)
    picture.savefig(path, format="png", dpi=DPI)
    return path


def map_figure(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    grids: Grids,
    translate: Callable[..., str],
    font: Path | None = None,
) -> Figure:
    """The station grids, lightly filled and named, with the week's tickets as points coloured
    by their state at the week's end."""
    labels = Labels(deployment, translate)
    fonts = _Fonts(font or cjk_font())
    picture = Figure(figsize=(9, 9), layout="constrained")
    axes = picture.subplots(subplot_kw={"xticks": [], "yticks": []})
    axes.set_axis_off()
    place = labels.station(figures.station) if figures.station else (
        deployment.street_office.name
    )
    axes.set_title(
        translate("digest.map.title", place=place, week=labels.week_name(figures.week)),
        fontproperties=fonts.of(15), parse_math=False,
    )
    for index, key in enumerate(grids.keys):
        colour = _GRID_COLOURS[index % len(_GRID_COLOURS)]
        area = grids.outline(key)
        own = key == figures.station
        plot_polygon(
            area, ax=axes, add_points=False, facecolor=to_rgba(colour, 0.25 if own else 0.12),
            edgecolor=to_rgba(colour, 0.9), linewidth=2.5 if own else 1.0,
        )
        inside = area.representative_point()  # unlike the centroid, always inside the grid
        axes.text(
            inside.x, inside.y, labels.station(key), ha="center", va="center",
            fontproperties=fonts.of(10), color="#333333", zorder=4, parse_math=False,
            path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
        )
    west, south, east, north = _extent(grids)
    shown = [
        (ticket.status, ticket.lon, ticket.lat)
        for ticket in figures.tickets
        if ticket.lat is not None and ticket.lon is not None
        and west <= ticket.lon <= east and south <= ticket.lat <= north
    ]
    order = [*STATE_COLOURS, *sorted({state for state, _, _ in shown} - set(STATE_COLOURS))]
    states = [state for state in order if any(status == state for status, _, _ in shown)]
    for state in states:
        points = [(lon, lat) for status, lon, lat in shown if status == state]
        axes.scatter(
            [lon for lon, _ in points], [lat for _, lat in points],
            s=36, color=STATE_COLOURS.get(state, _UNKNOWN_STATE), edgecolors="white",
            linewidths=0.7, zorder=5, label=f"{labels.status(state)} ({len(points)})",
        )
    if states:
        axes.legend(
            loc="best", prop=fonts.of(9), title=translate("digest.map.legend"),
            title_fontproperties=fonts.of(10), framealpha=0.85,
        )
    if hidden := len(figures.tickets) - len(shown):
        picture.text(
            0.01, 0.005, translate("digest.map.unplaced", count=hidden),
            fontproperties=fonts.of(9), color="#555555",
        )
    axes.set_xlim(west, east)
    axes.set_ylim(south, north)
    # Degrees of longitude shrink with the latitude; this keeps the grids' true shapes.
    axes.set_aspect(1 / math.cos(math.radians((south + north) / 2)))
    return picture


def map_png(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    grids: Grids,
    translate: Callable[..., str],
    path: Path,
    font: Path | None = None,
) -> Path:
    """The map (see `map_figure`) written as a PNG to `path`."""
    picture = map_figure(
        figures, deployment=deployment, grids=grids, translate=translate, font=font
    )
    picture.savefig(path, format="png", dpi=DPI)
    return path


class _Fonts:
    """The CJK font at the sizes a picture uses (matplotlib resolves fname= to that file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def of(self, size: float) -> FontProperties:
        return FontProperties(fname=self.path, size=size)


def _stations(axes: Axes, figures: WeekFigures, labels: Labels, fonts: _Fonts) -> None:
    axes.set_title(
        labels.translate("digest.chart.stations", week=labels.week_name(figures.week)),
        fontproperties=fonts.of(14),
    )
    if not figures.stations:
        _empty(axes, labels, fonts)
        return
    where = np.arange(len(figures.stations))
    width = 0.27
    series = (
        ("opened", OPENED, -width),
        ("resolved", RESOLVED, 0.0),
        ("overdue_at_end", OVERDUE, width),
    )
    for name, colour, offset in series:
        values = [getattr(station.this, name) for station in figures.stations]
        bars = axes.bar(
            where + offset, values, width, color=colour,
            label=labels.translate(FIGURE[name].key),
        )
        axes.bar_label(
            bars, labels=[str(value) if value else "" for value in values], padding=2,
            color=colour if name == "overdue_at_end" else "#333333", fontproperties=fonts.of(8),
        )
    names = [labels.station(station.key, station.name) for station in figures.stations]
    crowded = len(names) > 5
    axes.set_xticks(
        where, names, rotation=30 if crowded else 0, ha="right" if crowded else "center",
        rotation_mode="anchor", fontproperties=fonts.of(10), parse_math=False,
    )
    axes.margins(y=0.12)
    _integer_axis(axes, fonts)
    axes.legend(prop=fonts.of(9), loc="upper right")


def _trend(axes: Axes, figures: WeekFigures, labels: Labels, fonts: _Fonts) -> None:
    axes.set_title(
        labels.translate("digest.chart.trend", weeks=len(figures.trend)),
        fontproperties=fonts.of(14),
    )
    if not figures.trend:
        _empty(axes, labels, fonts)
        return
    where = np.arange(len(figures.trend))
    for name, colour in (("opened", OPENED), ("resolved", RESOLVED), ("open_at_end", OPEN)):
        axes.plot(
            where, [getattr(point, name) for point in figures.trend], marker="o",
            color=colour, label=labels.translate(FIGURE[name].key),
        )
    axes.set_xticks(
        where, [labels.trend_week(point) for point in figures.trend], fontproperties=fonts.of(9)
    )
    _integer_axis(axes, fonts)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(prop=fonts.of(9), loc="upper left")


def _integer_axis(axes: Axes, fonts: _Fonts) -> None:
    """Whole-number ticks from 0, fixed now so that their labels carry the picture's font
    (ticks a locator makes while drawing would fall back to matplotlib's default font)."""
    low, high = axes.get_ylim()
    low = max(low, 0.0)
    high = max(high, 1.0)
    ticks = [v for v in MaxNLocator(integer=True).tick_values(low, high) if low <= v <= high]
    axes.set_yticks(ticks, [f"{v:.0f}" for v in ticks], fontproperties=fonts.of(9))
    axes.set_ylim(low, high)


def _empty(axes: Axes, labels: Labels, fonts: _Fonts) -> None:
    axes.set_axis_off()
    axes.text(
        0.5, 0.5, labels.translate("digest.chart.empty"), ha="center", va="center",
        transform=axes.transAxes, fontproperties=fonts.of(12), color="#777777",
    )


def _extent(grids: Grids) -> tuple[float, float, float, float]:
    """The grids' bounds with a margin (west, south, east, north); tickets beyond are left
    out rather than shrinking the district to a dot around one far-off point."""
    west, south, east, north = shapely.total_bounds([grids.outline(key) for key in grids.keys])
    margin = max(east - west, north - south, 1e-4) * 0.08
    return west - margin, south - margin, east + margin, north + margin
