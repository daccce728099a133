"""`gridbot grids`: check the stations' grids against each other and the district boundary, and
draw them with recent tickets on a PNG map for the street office."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from bot.console import ConfigFile, stderr, stdout
from bot.deployment import Deployment, read_grid
from bot.grids import Area, GridReport, LocalMetres, Patch, check_grids

if TYPE_CHECKING:  # matplotlib is imported only when a map is drawn: it is slow to import
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from shapely.geometry import Point

__all__ = ["CJKFont", "TicketDot", "app", "draw_map", "find_cjk_font", "recent_tickets"]

app = typer.Typer(
    name="grids",
    help="Station grids: check them against each other and the district, draw a map.",
    no_args_is_help=True,
    add_completion=False,
)

# A map with more dots than this is a smear; the newest ones are drawn.
MAX_TICKET_DOTS = 100_000
# Lines per kind of finding; a broken file can produce thousands of slivers.
MAX_LINES = 20


@dataclass(frozen=True)
class _TicketKind:
    label: str
    marker: str
    face: str
    edge: str
    size: float


_TICKET_KINDS = (
    _TicketKind("duplicate / rejected", "x", "#999999", "#999999", 14),
    _TicketKind("resolved / closed", "o", "none", "#2c7a2c", 16),
    _TicketKind("open ticket", "o", "#b00020", "white", 20),
)


def _ticket_kind(status: str) -> _TicketKind:
    if status in ("new", "assigned", "claimed", "reopened", "parked"):
        return _TICKET_KINDS[2]
    if status in ("resolved", "closed"):
        return _TICKET_KINDS[1]
    return _TICKET_KINDS[0]


@app.callback()
def main() -> None:
    """Station grids: check them against each other and the district, draw a map."""




@app.command("check")
def check(
    file: ConfigFile = None,
    map_path: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Also draw the grids (and recent tickets) into this PNG file.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    tickets_db: Annotated[
        str | None,
        typer.Option(
            "--tickets-db",
            help="Database URL to read recent tickets from, drawn as dots on the map.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=3650, help="How many days of tickets the map shows.")
    ] = 30,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance", min=0.0, help="Overlaps and gaps up to this many m² are noise."
        ),
    ] = 5.0,
) -> None:
    """Check the grids: overlaps, gaps, parts outside the district, odd sizes.

    Exit 1 when overlaps or gaps exceed the tolerance (the map is written either way)."""
    from bot.cli import deployment_or_exit, resolve_config_path, settings_or_exit

    path = resolve_config_path(file)
    deployment = deployment_or_exit(path)
    areas: dict[str, Area] = {station.key: station.area.shape for station in deployment.stations}
    boundary = _boundary_or_exit(deployment)
    report = check_grids(areas, boundary=boundary, tolerance_m2=tolerance)
    _print_report(stdout(), path, deployment, report)
    if map_path is not None:
        tickets: list[TicketDot] = []
        if tickets_db is not None:
            since = datetime.now(UTC) - timedelta(days=days)
            tickets = _tickets_or_exit(tickets_db, since=since)
        font = find_cjk_font(settings_or_exit().font)
        names = {station.key: station.name for station in deployment.stations}
        title = f"{deployment.street_office.name}: station grids"
        if font is None or not font.covers(title):
            title = f"Station grids ({len(areas)})"
        if tickets_db is not None:
            title += f", tickets of the last {days} days"
        try:
            draw_map(
                map_path,
                areas=areas,
                names=names,
                boundary=boundary,
                report=report,
                tickets=tickets,
                title=title,
                font=font,
            )
        except OSError as exc:
            stderr().print(Text(f"cannot write the map to {map_path}: {exc.strerror or exc}"))
            raise typer.Exit(1) from None
        labels = "station keys and names" if font else "station keys (no Chinese font found)"
        stdout().print(
            Text(
                f"Map written to {map_path}: {len(areas)} grids, {labels}, {len(tickets)} tickets"
            )
        )
    if not report.ok:
        raise typer.Exit(1)


def _boundary_or_exit(deployment: Deployment) -> Area | None:
    path = deployment.routing.boundary
    if path is None:
        return None
    try:
        shape = read_grid(path, label=f"routing.boundary ({path})").shape
    except (OSError, ValueError) as exc:  # the loader read it a moment ago; it changed since
        stderr().print(Text(str(exc)))
        raise typer.Exit(1) from None
    if not isinstance(shape, Area):  # read_grid unions polygons, so this is a bug
        raise TypeError(f"routing.boundary read as {shape.geom_type}, not a polygon")
    return shape


def _print_report(
    console: Console, path: Path, deployment: Deployment, report: GridReport
) -> None:
    console.print(Text(f"Grids of {path}: {len(report.areas_m2)} stations", style="bold"))
    for station in deployment.stations:
        console.print(
            Text.assemble(
                "  ",
                (station.key, "bold"),
                f" {station.name}: {_area(report.areas_m2[station.key])}",
            )
        )
    if report.boundary_m2 is None:
        console.print(
            Text(
                "No routing.boundary in the deployment file: only holes enclosed by the grids "
                "are checked for gaps"
            )
        )
    else:
        console.print(Text(f"District boundary: {_area(report.boundary_m2)}"))

    problem = "red"
    _print_patches(
        console,
        report.overlaps,
        "O",
        lambda n, p: (
            f"✗ overlap {n}: {p.stations[0]} and {p.stations[1]} both cover "
            f"{_area(p.area_m2)} around {_where(p)}"
        ),
        style=problem,
    )
    _print_patches(
        console,
        report.gaps,
        "G",
        lambda n, p: (
            f"✗ gap {n}: {_area(p.area_m2)} of the district is in no grid, around {_where(p)}"
        ),
        style=problem,
    )
    _print_patches(
        console,
        report.outside,
        "X",
        lambda n, p: (
            f"  warning: outside {n}: the grid of {p.stations[0]} reaches "
            f"{_area(p.area_m2)} beyond the district boundary, around {_where(p)}"
        ),
        style="yellow",
    )
    for size in report.sizes:
        console.print(
            Text(
                f"  warning: the grid of {size.station_key} is {size.kind}: "
                f"{_area(size.area_m2)} (the median grid is {_area(size.median_m2)})",
                style="yellow",
            )
        )
    if report.ignored_slivers:
        console.print(
            Text(
                f"  ({report.ignored_slivers} slivers of at most {report.tolerance_m2:g} m² "
                "ignored as digitising noise)"
            )
        )
    problems = len(report.overlaps) + len(report.gaps)
    if problems:
        noun = "problem" if problems == 1 else "problems"
        console.print(
            Text(
                f"✗ {problems} {noun}: overlaps or gaps larger than {report.tolerance_m2:g} m²; "
                "reports there go to the wrong station or to nobody",
                style="bold red",
            )
        )
    else:
        console.print(
            Text(
                f"✓ no overlaps or gaps larger than {report.tolerance_m2:g} m²",
                style="bold green",
            )
        )


def _print_patches(
    console: Console,
    patches: Sequence[Patch],
    prefix: str,
    describe: Callable[[str, Patch], str],
    *,
    style: str,
) -> None:
    # The numbers (O1, G2, X3) are the ones written next to the marks on the map.
    for number, patch in enumerate(patches[:MAX_LINES], start=1):
        console.print(Text(describe(f"{prefix}{number}", patch), style=style))
    if len(patches) > MAX_LINES:
        console.print(Text(f"  ... and {len(patches) - MAX_LINES} more", style=style))


def _area(m2: float) -> str:
    if m2 >= 1_000_000:
        return f"{m2 / 1_000_000:,.2f} km²"
    return f"{m2:,.0f} m²"


def _where(patch: Patch) -> str:
    return f"{patch.lat:.5f}, {patch.lon:.5f}"


# --- tickets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketDot:
    """A ticket as the map shows it: where, and whether it is still open."""

    lat: float
    lon: float
    status: str


def recent_tickets(url: str, *, since: datetime, limit: int = MAX_TICKET_DOTS) -> list[TicketDot]:
    """Located tickets created since then (newest first, at most `limit`), read with the
    storage layer's engine. Raises OSError or SQLAlchemyError when the database cannot be read."""
    from sqlalchemy.engine import make_url

    from storage.db import is_sqlite

    if is_sqlite(url):
        database = make_url(url).database
        # create_engine would make an empty file: a typo must not pass as "no tickets".
        if database and database != ":memory:" and not Path(database).is_file():
            raise FileNotFoundError(f"no SQLite database at {database}")
    return asyncio.run(_recent_tickets(url, since=since, limit=limit))


async def _recent_tickets(url: str, *, since: datetime, limit: int) -> list[TicketDot]:
    from sqlmodel import col, select

    from storage.db import create_engine
    from storage.models import Ticket

    engine = create_engine(url)
    try:
        query = (
            select(Ticket.lat, Ticket.lon, Ticket.status)
            .where(
                col(Ticket.created_at) >= since,
                col(Ticket.lat).is_not(None),
                col(Ticket.lon).is_not(None),
            )
            .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
            .limit(limit)
        )
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).all()
    finally:
        await engine.dispose()
    return [
        TicketDot(lat=float(lat), lon=float(lon), status=str(status))
        for lat, lon, status in rows
        if math.isfinite(lat) and math.isfinite(lon)
    ]


def _tickets_or_exit(url: str, *, since: datetime) -> list[TicketDot]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        stderr().print(Text("--tickets-db is not a database URL (e.g. sqlite+aiosqlite:///x.db)"))
        raise typer.Exit(1) from None
    try:
        return recent_tickets(url, since=since)
    except (SQLAlchemyError, OSError, ImportError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        stderr().print(Text(f"cannot read tickets from {shown}: {reason}"))
        raise typer.Exit(1) from None


# --- the map -----------------------------------------------------------------------------------


class CJKFont:
    """A font file that has Chinese glyphs; labels it cannot fully draw fall back to keys."""

    def __init__(self, path: Path, characters: Iterable[int]) -> None:
        from matplotlib.font_manager import FontProperties

        self.path = path
        self._characters = frozenset(characters)
        self.properties = FontProperties(fname=str(path))

    def covers(self, text: str) -> bool:
        return all(ord(char) in self._characters for char in text if not char.isspace())


def find_cjk_font(configured: Path | None = None) -> CJKFont | None:
    """The Chinese font the digest draws with (reports.fonts: GRIDBOT_FONT, else Debian's), or
    None: the map then labels grids with keys only rather than drawing boxes for every
    character."""
    from matplotlib.ft2font import FT2Font

    from reports.fonts import FontMissing, cjk_font

    try:
        path = cjk_font(configured)
    except FontMissing:
        return None
    return CJKFont(path, FT2Font(str(path)).get_charmap())


def draw_map(
    out: Path,
    *,
    areas: Mapping[str, Area],
    names: Mapping[str, str],
    boundary: Area | None,
    report: GridReport,
    tickets: Sequence[TicketDot],
    title: str,
    font: CJKFont | None,
) -> None:
    """Write a PNG map: the district boundary, each grid filled in its own colour and labelled
    with its key (and its station's name when a Chinese font is installed), overlaps, gaps and
    parts outside the boundary marked with the numbers the check printed, and tickets as dots."""
    import matplotlib
    import shapely
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch as LegendPatch

    keys = sorted(areas)
    shapes = [areas[key] for key in keys] + ([boundary] if boundary is not None else [])
    if not shapes:
        raise ValueError("nothing to draw: no grids and no boundary")
    west, south, east, north = _bounds(shapes)
    local = LocalMetres(lat=(south + north) / 2, lon=(west + east) / 2)
    # The page follows the district's shape (in metres), within sane proportions.
    tall = ((north - south) * local.north_per_degree) / max(
        (east - west) * local.east_per_degree, 1.0
    )
    # The Agg canvas is attached directly: no pyplot, no global backend, no screen needed.
    figure = Figure(
        figsize=(10, 1.2 + 8.8 * min(max(tall, 0.3), 1.6)), dpi=150, layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    palette = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]

    for number, key in enumerate(keys):
        colour = palette(number % palette.N)
        _fill(axes, areas[key], facecolor=colour, edgecolor="white", alpha=0.55, linewidth=1.5)
        _fill(axes, areas[key], facecolor="none", edgecolor=colour, linewidth=1.0)
        name = names.get(key, "")
        show_name = font is not None and bool(name) and font.covers(name)
        label_point = _label_point(areas[key])
        axes.annotate(
            f"{key}\n{name}" if show_name else key,
            (label_point.x, label_point.y),
            ha="center",
            va="center",
            fontsize=11,
            fontweight="bold",
            fontproperties=font.properties if show_name and font else None,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "alpha": 0.8, "lw": 0},
            zorder=5,
        )
    if boundary is not None:
        _fill(axes, boundary, facecolor="none", edgecolor="#222222", linewidth=2.5, zorder=4)
        if report.gaps:
            nobody = boundary.difference(shapely.union_all([areas[key] for key in keys]))
            _fill(
                axes,
                nobody,
                facecolor="none",
                edgecolor="#d62728",
                hatch="..",
                linewidth=0.8,
                zorder=3,
            )

    marks = (("O", report.overlaps, "#d62728"), ("G", report.gaps, "#d62728"))
    for prefix, patches, mark_colour in (*marks, ("X", report.outside, "#ff7f0e")):
        for number, patch in enumerate(patches, start=1):
            _mark(axes, patch, f"{prefix}{number}", mark_colour)
    for first, second in {patch.stations for patch in report.overlaps}:
        _fill(
            axes,
            areas[first].intersection(areas[second]),
            facecolor="none",
            edgecolor="#d62728",
            hatch="////",
            linewidth=0.8,
            zorder=3,
        )

    # Open tickets on top: they are what the office looks for.
    groups = [
        (kind, [dot for dot in tickets if _ticket_kind(dot.status) == kind])
        for kind in _TICKET_KINDS
    ]
    for kind, dots in groups:
        if dots:
            axes.scatter(
                [dot.lon for dot in dots],
                [dot.lat for dot in dots],
                s=kind.size,
                marker=kind.marker,
                c=kind.face,
                # An unfilled marker (x) takes its colour from the face alone.
                edgecolors=kind.edge if kind.marker != "x" else None,
                linewidths=0.6,
                zorder=6,
            )

    margin_lon, margin_lat = (east - west) * 0.04 or 0.001, (north - south) * 0.04 or 0.001
    axes.set_xlim(west - margin_lon, east + margin_lon)
    axes.set_ylim(south - margin_lat, north + margin_lat)
    # Equal metres on both axes: a degree of longitude is shorter than one of latitude.
    axes.set_aspect(local.north_per_degree / local.east_per_degree)
    axes.tick_params(labelsize=8)
    axes.set_xlabel("longitude (°E)", fontsize=9)
    axes.set_ylabel("latitude (°N)", fontsize=9)
    axes.set_title(title, fontsize=14, fontproperties=font.properties if font else None)
    _scale_bar(axes, local, west=west, south=south, east=east, north=north)

    legend: list[Artist] = []
    if boundary is not None:
        legend.append(Line2D([], [], color="#222222", linewidth=2.5, label="district boundary"))
    if report.overlaps:
        legend.append(
            LegendPatch(facecolor="none", edgecolor="#d62728", hatch="////", label="overlap (O)")
        )
    if report.gaps:
        legend.append(
            LegendPatch(facecolor="none", edgecolor="#d62728", hatch="..", label="gap (G)")
        )
    if report.outside:
        legend.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                markersize=9,
                markerfacecolor="none",
                markeredgecolor="#ff7f0e",
                markeredgewidth=2,
                label="outside boundary (X)",
            )
        )
    for kind, dots in reversed(groups):
        if dots:
            legend.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker=kind.marker,
                    markerfacecolor=kind.face,
                    markeredgecolor=kind.edge,
                    label=f"{kind.label} ({len(dots)})",
                )
            )
    if legend:
        # Beside the map, never over it: what it would cover may be the problem to see.
        figure.legend(handles=legend, loc="outside right upper", fontsize=8, frameon=False)
    figure.savefig(out, format="png")


def _bounds(shapes: Sequence[Area]) -> tuple[float, float, float, float]:
    import shapely

    west, south, east, north = shapely.total_bounds(list(shapes))
    return float(west), float(south), float(east), float(north)


def _fill(axes: Axes, area: object, **style: object) -> None:
    """Draw a (Multi)Polygon with its holes as one matplotlib patch per part."""
    import shapely
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as DrawingPath
    from shapely.geometry import Polygon
    from shapely.geometry.polygon import orient

    for part in shapely.get_parts(area):
        if not isinstance(part, Polygon) or part.is_empty:
            continue
        # Exterior counter-clockwise, holes clockwise: matplotlib's winding rule then leaves
        # the holes empty.
        oriented = orient(part, sign=1.0)
        path = DrawingPath.make_compound_path(
            *(
                DrawingPath(list(ring.coords), closed=True)
                for ring in (oriented.exterior, *oriented.interiors)
            )
        )
        axes.add_patch(PathPatch(path, **style))  # type: ignore[arg-type]


def _label_point(area: Area) -> Point:
    from shapely.geometry import Polygon
    from shapely.ops import polylabel

    largest = max(
        (part for part in getattr(area, "geoms", [area]) if isinstance(part, Polygon)),
        key=lambda part: part.area,
    )
    # The pole of inaccessibility sits well inside even an L-shaped grid, unlike the centroid.
    tolerance = max(math.sqrt(largest.area) / 100, 1e-7)
    return polylabel(largest, tolerance=tolerance)


def _mark(axes: Axes, patch: Patch, label: str, colour: str) -> None:
    axes.plot(
        patch.lon,
        patch.lat,
        marker="o",
        markersize=12,
        markerfacecolor="none",
        markeredgecolor=colour,
        markeredgewidth=2,
        zorder=7,
    )
    axes.annotate(
        label,
        (patch.lon, patch.lat),
        xytext=(8, 8),
        textcoords="offset points",
        color=colour,
        fontsize=9,
        fontweight="bold",
        zorder=7,
    )


def _scale_bar(
    axes: Axes, local: LocalMetres, *, west: float, south: float, east: float, north: float
) -> None:
    width_m = (east - west) * local.east_per_degree
    target = width_m / 5
    lengths = [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000]
    length = max([value for value in lengths if value <= target] or [lengths[0]])
    start_lon = west + (east - west) * 0.02
    at_lat = south + (north - south) * 0.02
    end_lon = start_lon + length / local.east_per_degree
    axes.plot([start_lon, end_lon], [at_lat, at_lat], color="black", linewidth=3, zorder=8)
    text = f"{length // 1000} km" if length >= 1000 else f"{length} m"
    axes.annotate(
        text,
        ((start_lon + end_lon) / 2, at_lat),
        xytext=(0, 4),
        textcoords="offset points",
        ha="center",
        fontsize=9,
        zorder=8,
    )
