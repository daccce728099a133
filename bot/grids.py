"""Grid routing: which station is responsible for a point (inside a grid, or the nearest grid a
few metres away), many points at once, and a check of the grids against the district outline."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from bot.deployment import Deployment, read_grid

__all__ = [
    "Area",
    "GridError",
    "GridReport",
    "Grids",
    "LocalMetres",
    "Patch",
    "Routing",
    "SizeWarning",
    "check_grids",
]

Area: TypeAlias = Polygon | MultiPolygon
How: TypeAlias = Literal["inside", "nearest", "outside"]

# WGS-84 ellipsoid, for the radii of curvature of the local projection below.
_WGS84_A = 6_378_137.0
_WGS84_F = 1 / 298.257223563
_WGS84_E2 = _WGS84_F * (2 - _WGS84_F)
# The routing setting's own ceiling (deployment.Routing); farther "nearest" answers are refused.
MAX_NEAREST_M = 5_000.0


class GridError(ValueError):
    """A station's grid file cannot be used (unreadable, not a polygon, invalid geometry)."""


class LocalMetres:
    """An equirectangular projection centred on one WGS-84 point, in metres east and north.

    The scales are the ellipsoid's radii of curvature at the centre's latitude (meridional for
    north, prime vertical × cos φ for east), so distances and areas within a few kilometres of
    the centre are within 0.1% of the geodesic ones at mid latitudes (the error grows with
    tan φ × the north-south extent); the tests compare it with geopy's geodesic. Not meant for
    polar regions or for shapes across the antimeridian.
    """

    def __init__(self, *, lat: float, lon: float) -> None:
        _check_coordinates(lat, lon)
        phi = math.radians(lat)
        w = math.sqrt(1 - _WGS84_E2 * math.sin(phi) ** 2)
        prime_vertical = _WGS84_A / w
        meridional = _WGS84_A * (1 - _WGS84_E2) / w**3
        self.lat, self.lon = lat, lon
        self.east_per_degree = math.radians(1) * prime_vertical * math.cos(phi)
        self.north_per_degree = math.radians(1) * meridional
        self._origin = np.array([lon, lat])
        self._scale = np.array([self.east_per_degree, self.north_per_degree])

    def forward(self, geometry: BaseGeometry) -> BaseGeometry:
        """The geometry (lon/lat degrees) in metres around the centre."""
        return shapely.transform(geometry, lambda xy: (xy - self._origin) * self._scale)

    def backward(self, geometry: BaseGeometry) -> BaseGeometry:
        """The geometry (metres around the centre) back in lon/lat degrees."""
        return shapely.transform(geometry, lambda xy: xy / self._scale + self._origin)

    def degrees_around(self, metres: float) -> tuple[float, float]:
        """(Δlon, Δlat) in degrees that cover at least this many metres from the centre."""
        return metres / self.east_per_degree, metres / self.north_per_degree


@dataclass(frozen=True)
class Routing:
    """Where a point goes: inside a grid, to the nearest grid within the allowed distance, or
    outside every grid (the street office triages it). `distance_m` is 0 inside, the distance
    to the chosen grid for "nearest", None outside."""

    station_key: str | None
    how: How
    distance_m: float | None


class Grids:
    """The stations' grids: which station is responsible for a point.

    A point on a border shared by several grids, or inside grids that overlap, goes to the
    alphabetically first station key, whatever order the grids were loaded in; a point inside
    one grid beats one on the edge of another.
    """

    def __init__(self, areas: Mapping[str, Area]) -> None:
        self._keys: tuple[str, ...] = tuple(sorted(areas))
        self._areas: dict[str, Area] = {key: areas[key] for key in self._keys}
        self._geometries = [self._areas[key] for key in self._keys]
        for geometry in self._geometries:
            shapely.prepare(geometry)
        # Tree indices follow the sorted keys, so the smallest index is the first key.
        self._tree = STRtree(self._geometries)
        self._bounds = np.array(
            [geometry.bounds for geometry in self._geometries], dtype=float
        ).reshape(-1, 4)
        self._answers = np.array([*self._keys, None], dtype=object)

    @classmethod
    def from_files(cls, paths: Mapping[str, str | Path]) -> Grids:
        """Load one GeoJSON file per station (FeatureCollection, Feature or bare geometry of
        Polygon/MultiPolygon; coordinates [lon, lat] in WGS-84)."""
        areas = {}
        for key, path in paths.items():
            try:
                areas[key] = read_grid(Path(path), label=f"grid of {key!r} ({path})").shape
            except ValueError as error:
                raise GridError(str(error)) from None
        return cls(areas)

    @classmethod
    def of(cls, deployment: Deployment) -> Grids:
        """The stations' grids as the deployment file loaded them (no second read)."""
        return cls({station.key: station.area.shape for station in deployment.stations})

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    def __contains__(self, station_key: object) -> bool:
        return station_key in self._areas

    def __len__(self) -> int:
        return len(self._keys)

    def outline(self, station_key: str) -> Area:
        """The station's grid as a shapely (Multi)Polygon; KeyError for an unknown station."""
        return self._areas[station_key]

    def station_at(self, lat: float, lon: float) -> str | None:
        """The station whose grid holds the point (its border included), or None outside
        every grid. ValueError for coordinates that are not on Earth."""
        _check_coordinates(lat, lon)
        point = Point(lon, lat)
        hits = sorted(int(index) for index in self._tree.query(point, predicate="intersects"))
        if not hits:
            return None
        for index in hits:
            if self._geometries[index].contains(point):
                return self._keys[index]
        return self._keys[hits[0]]

    def nearest(self, lat: float, lon: float, *, within_m: float) -> tuple[str, float] | None:
        """The station whose grid is nearest to the point and at most `within_m` metres away,
        with that distance in metres (0 on or inside a grid); None when every grid is farther.

        Candidates come from the tree in degrees; their distance is then measured in a local
        projection centred on the point (see `LocalMetres`), so it is true metres, not degrees.
        """
        _check_coordinates(lat, lon)
        _check_distance(within_m)
        inside = self.station_at(lat, lon)
        if inside is not None:
            return inside, 0.0
        if within_m == 0 or not self._keys:
            return None
        local = LocalMetres(lat=lat, lon=lon)
        # 1% wider than the circle, so rounding never hides a grid right at the limit.
        d_lon, d_lat = local.degrees_around(within_m * 1.01)
        search = box(lon - d_lon, lat - d_lat, lon + d_lon, lat + d_lat)
        best: tuple[float, int] | None = None
        origin = Point(0.0, 0.0)
        for index in sorted(int(i) for i in self._tree.query(search, predicate="intersects")):
            distance = float(local.forward(self._geometries[index]).distance(origin))
            # Strictly nearer only: on a tie the smaller index (first key) stays.
            if distance <= within_m and (best is None or distance < best[0]):
                best = (distance, index)
        if best is None:
            return None
        return self._keys[best[1]], best[0]

    def route(self, lat: float, lon: float, *, within_m: float) -> Routing:
        """Where a report at this point goes: the grid holding it, else the nearest grid within
        `within_m` metres (0 turns that off), else nobody (triage)."""
        _check_distance(within_m)
        inside = self.station_at(lat, lon)
        if inside is not None:
            return Routing(inside, "inside", 0.0)
        near = self.nearest(lat, lon, within_m=within_m) if within_m > 0 else None
        if near is not None:
            return Routing(near[0], "nearest", near[1])
        return Routing(None, "outside", None)

    def station_indices_at(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """For many points at once: the index in `keys` of each point's station, -1 outside
        every grid. The same answers as `station_at`, border rule included."""
        lat_array, lon_array = _coordinate_arrays(lats, lons)
        # Points sorted west to east: each grid then looks only at the contiguous strip of
        # points under its bounding box, so many grids cost little more than a few.
        order = np.argsort(lon_array, kind="stable")
        sorted_lons, sorted_lats = lon_array[order], lat_array[order]
        sorted_found = np.full(order.shape, -1, dtype=np.intp)
        # Strictly inside first, in key order; then the edges for the points still unplaced,
        # so inside one grid beats lying on the edge of another, as in station_at.
        self._place(sorted_lons, sorted_lats, sorted_found, shapely.contains_xy)
        unplaced = np.flatnonzero(sorted_found < 0)
        if unplaced.size:
            on_edges = np.full(unplaced.shape, -1, dtype=np.intp)
            self._place(
                sorted_lons[unplaced], sorted_lats[unplaced], on_edges, shapely.intersects_xy
            )
            sorted_found[unplaced] = on_edges
        found = np.empty_like(sorted_found)
        found[order] = sorted_found
        return found

    def _place(
        self,
        lons: npt.NDArray[np.float64],
        lats: npt.NDArray[np.float64],
        found: npt.NDArray[np.intp],
        predicate: Callable[..., npt.NDArray[np.bool_]],
    ) -> None:
        """Give each unplaced point (lons sorted ascending) the first grid, in key order, for
        which the predicate holds."""
        for index, geometry in enumerate(self._geometries):
            west, south, east, north = self._bounds[index]
            first = int(np.searchsorted(lons, west, side="left"))
            last = int(np.searchsorted(lons, east, side="right"))
            if first >= last:
                continue
            strip_lats = lats[first:last]
            candidates = (
                np.flatnonzero(
                    (found[first:last] < 0) & (strip_lats >= south) & (strip_lats <= north)
                )
                + first
            )
            if candidates.size:
                hit = predicate(geometry, lons[candidates], lats[candidates])
                found[candidates[hit]] = index

    def stations_at(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> list[str | None]:
        """`station_at` for many points at once (vectorised; a million points take well under
        a second); ValueError naming the first point that is not on Earth."""
        answers: list[str | None] = self._answers[self.station_indices_at(lats, lons)].tolist()
        return answers

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of stations whose grids overlap by more than a shared border."""
        pairs = []
        for first, second in _intersecting_pairs(self._geometries, tree=self._tree):
            a, b = self._geometries[first], self._geometries[second]
            if a.overlaps(b) or a.within(b) or b.within(a):
                pairs.append((self._keys[first], self._keys[second]))
        return pairs


def _intersecting_pairs(
    geometries: Sequence[BaseGeometry], *, tree: STRtree | None = None
) -> list[tuple[int, int]]:
    """Index pairs (i < j) of geometries that touch or overlap, found through the tree."""
    tree = tree if tree is not None else STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    return sorted({(int(a), int(b)) for a, b in zip(left, right, strict=True) if a < b})


def _check_coordinates(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        raise ValueError(f"not a point on Earth: lat={lat}, lon={lon}")


def _check_distance(within_m: float) -> None:
    if not (math.isfinite(within_m) and 0 <= within_m <= MAX_NEAREST_M):
        raise ValueError(
            f"the nearest-station distance must be 0–{MAX_NEAREST_M:g} m, got {within_m}"
        )


def _coordinate_arrays(
    lats: npt.ArrayLike, lons: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    lat_array = np.asarray(lats, dtype=np.float64)
    lon_array = np.asarray(lons, dtype=np.float64)
    if lat_array.ndim != 1 or lat_array.shape != lon_array.shape:
        raise ValueError(
            f"latitudes and longitudes must be two flat lists of the same length, got shapes "
            f"{lat_array.shape} and {lon_array.shape}"
        )
    with np.errstate(invalid="ignore"):
        bad = ~(
            np.isfinite(lat_array)
            & np.isfinite(lon_array)
            & (np.abs(lat_array) <= 90)
            & (np.abs(lon_array) <= 180)
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"not a point on Earth: lat={lat_array[first]}, lon={lon_array[first]} "
            f"(point {first}; {int(bad.sum())} such points)"
        )
    return lat_array, lon_array


# --- checking the grids ------------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """A piece of ground the check found: covered twice (the two stations), by nobody (no
    station), or outside the district (the station reaching out). Area in m² and a point
    inside it to look at on a map."""

    stations: tuple[str, ...]
    area_m2: float
    lat: float
    lon: float


@dataclass(frozen=True)
class SizeWarning:
    """A grid far smaller or larger than the district's typical one: often a digitising slip
    (a sliver, or a polygon drawn in the wrong units or around the whole city)."""

    station_key: str
    kind: Literal["tiny", "huge"]
    area_m2: float
    median_m2: float


@dataclass(frozen=True)
class GridReport:
    """What `check_grids` found. Overlaps and gaps above the tolerance misroute reports, so
    they are problems; the rest are warnings for the admin to look at."""

    areas_m2: Mapping[str, float]
    overlaps: tuple[Patch, ...]
    gaps: tuple[Patch, ...]
    outside: tuple[Patch, ...]
    sizes: tuple[SizeWarning, ...]
    boundary_m2: float | None
    tolerance_m2: float
    ignored_slivers: int

    @property
    def ok(self) -> bool:
        return not self.overlaps and not self.gaps


# A grid more than this many times smaller or larger than the median one is worth a look.
_SIZE_FACTOR = 10.0


def check_grids(
    areas: Mapping[str, Area],
    *,
    boundary: Area | None = None,
    tolerance_m2: float = 5.0,
) -> GridReport:
    """Compare the grids with each other and with the district boundary: overlaps (ground
    covered by two stations), gaps (ground of the district covered by none; without a
    boundary, only holes enclosed by the grids), grid parts outside the boundary, and
    unusually small or large grids. Pieces of at most `tolerance_m2` are digitising noise.

    Everything is measured in one `LocalMetres` projection centred on the district.
    """
    if not math.isfinite(tolerance_m2) or tolerance_m2 < 0:
        raise ValueError(f"the tolerance must be a non-negative area in m², got {tolerance_m2}")
    keys = sorted(areas)
    shapes = [areas[key] for key in keys] + ([boundary] if boundary is not None else [])
    if not shapes:
        return GridReport({}, (), (), (), (), None, tolerance_m2, 0)
    west, south, east, north = shapely.total_bounds(shapes)
    local = LocalMetres(lat=(south + north) / 2, lon=(west + east) / 2)
    grids_m = {key: local.forward(areas[key]) for key in keys}
    sizes_m2 = {key: float(grids_m[key].area) for key in keys}
    ignored = 0

    def patches(geometry: BaseGeometry, stations: tuple[str, ...]) -> list[Patch]:
        nonlocal ignored
        found = []
        for part in shapely.get_parts(geometry):
            if not isinstance(part, Polygon) or part.is_empty:
                continue  # a shared border or corner: a line or point, no ground at all
            area = float(part.area)
            if area <= tolerance_m2:
                ignored += 1
                continue
            inside = local.backward(part.representative_point())
            found.append(Patch(stations, area, lat=float(inside.y), lon=float(inside.x)))
        return found

    overlaps: list[Patch] = []
    for first, second in _intersecting_pairs([areas[key] for key in keys]):
        a, b = keys[first], keys[second]
        overlaps += patches(grids_m[a].intersection(grids_m[b]), (a, b))

    covered = shapely.union_all(list(grids_m.values()))
    gaps: list[Patch] = []
    outside: list[Patch] = []
    boundary_m2 = None
    if boundary is not None:
        boundary_m = local.forward(boundary)
        boundary_m2 = float(boundary_m.area)
        gaps = patches(boundary_m.difference(covered), ())
        for key in keys:
            outside += patches(grids_m[key].difference(boundary_m), (key,))
    else:
        holes = [
            Polygon(ring)
            for part in shapely.get_parts(covered)
            if isinstance(part, Polygon)
            for ring in part.interiors
        ]
        if holes:
            gaps = patches(shapely.union_all(holes).difference(covered), ())

    return GridReport(
        areas_m2=sizes_m2,
        overlaps=tuple(sorted(overlaps, key=lambda patch: -patch.area_m2)),
        gaps=tuple(sorted(gaps, key=lambda patch: -patch.area_m2)),
        outside=tuple(sorted(outside, key=lambda patch: -patch.area_m2)),
        sizes=tuple(_size_warnings(sizes_m2)),
        boundary_m2=boundary_m2,
        tolerance_m2=tolerance_m2,
        ignored_slivers=ignored,
    )


def _size_warnings(sizes_m2: Mapping[str, float]) -> Iterable[SizeWarning]:
    if len(sizes_m2) < 3:
        return  # with one or two grids there is no "typical" size to compare with
    median = statistics.median(sizes_m2.values())
    for key, area in sizes_m2.items():
        if area * _SIZE_FACTOR < median:
            yield SizeWarning(key, "tiny", area, median)
        elif area > median * _SIZE_FACTOR:
            yield SizeWarning(key, "huge", area, median)
