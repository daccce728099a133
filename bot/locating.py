"""First-cut locating: an address or a shared location becomes a place and the station whose
grid holds it. Offline gazetteer (behind geopy's Geocoder interface) plus GeoJSON grids."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

import shapely
from geopy.adapters import BaseSyncAdapter
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.strtree import STRtree

from bot.deployment import read_grid
from bot.intake import normalise_address

__all__ = [
    "Gazetteer",
    "GazetteerEntry",
    "GazetteerFormatError",
    "GazetteerGeocoder",
    "GazetteerProblem",
    "GridError",
    "Grids",
    "Locator",
    "Place",
]

Area: TypeAlias = Polygon | MultiPolygon

_REQUIRED_COLUMNS = ("address", "lat", "lon")


@dataclass(frozen=True)
class Place:
    """Where a report is: a readable address, WGS-84 coordinates and the responsible station
    (None when the place lies outside every grid). `source` says how it was found."""

    address: str
    lat: float
    lon: float
    station_key: str | None
    source: str


@dataclass(frozen=True)
class GazetteerEntry:
    """One row of the gazetteer: a known address, its other names and its position."""

    address: str
    aliases: tuple[str, ...]
    lat: float
    lon: float
    station_key: str | None
    line: int


@dataclass(frozen=True)
class GazetteerProblem:
    """A gazetteer row that was skipped or partly ignored, for the admin who imports the file."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class GazetteerFormatError(ValueError):
    """The gazetteer file cannot be read at all: not CSV, not UTF-8, or a column missing."""


class GridError(ValueError):
    """A station's grid file cannot be used (unreadable, not a polygon, invalid geometry)."""


class Gazetteer:
    """Known addresses of the district, looked up by exact text, by normalised text, or by the
    longest known address inside a longer text ("汾阳路13号旁边" → 汾阳路13号).

    Lookups cost O(len(text)) through dict indexes, whatever the number of rows.
    """

    def __init__(
        self,
        entries: Iterable[GazetteerEntry],
        *,
        problems: tuple[GazetteerProblem, ...] = (),
    ) -> None:
        self._entries: list[GazetteerEntry] = []
        self._exact: dict[str, int] = {}
        self._by_key: dict[str, int] = {}
        found: list[GazetteerProblem] = list(problems)
        for entry in entries:
            found.extend(self._add(entry))
        # Per first character, the key lengths that start with it, longest first: the contained
        # match then probes only a handful of slices per position.
        lengths: dict[str, set[int]] = {}
        for key in self._by_key:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths_by_first = {
            first: tuple(sorted(sizes, reverse=True)) for first, sizes in lengths.items()
        }
        self.problems: tuple[GazetteerProblem, ...] = tuple(sorted(found, key=lambda p: p.line))

    @classmethod
    def from_csv(cls, path: str | Path) -> Gazetteer:
        """Read `address,aliases,lat,lon,station` (aliases split by `|`; aliases and station
        optional). Bad rows are skipped and listed in `problems` with their line numbers."""
        try:
            with Path(path).open(encoding="utf-8-sig", newline="") as source:
                return cls._from_rows(csv.DictReader(source, restkey="\0extra"), str(path))
        except UnicodeDecodeError as error:
            raise GazetteerFormatError(f"{path}: not UTF-8 text ({error.reason})") from error
        except csv.Error as error:
            raise GazetteerFormatError(f"{path}: not a readable CSV file ({error})") from error

    @classmethod
    def _from_rows(cls, reader: csv.DictReader[str], name: str) -> Gazetteer:
        if reader.fieldnames is None:
            raise GazetteerFormatError(f"{name}: the file is empty")
        columns = [column.strip().lower() for column in reader.fieldnames]
        missing = [column for column in _REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise GazetteerFormatError(
                f"{name}: missing column(s) {', '.join(missing)}; "
                "expected address,aliases,lat,lon,station"
            )
        reader.fieldnames = columns
        entries: list[GazetteerEntry] = []
        problems: list[GazetteerProblem] = []
        for row in reader:
            parsed = _entry_from_row(row, reader.line_num)
            if isinstance(parsed, GazetteerProblem):
                problems.append(parsed)
            else:
                entries.append(parsed)
        return cls(entries, problems=tuple(problems))

    def _add(self, entry: GazetteerEntry) -> list[GazetteerProblem]:
        key = normalise_address(entry.address)
        if not key:
            return [GazetteerProblem(entry.line, f"address {entry.address!r} has no letters")]
        if key in self._by_key:
            first = self._entries[self._by_key[key]]
            return [
                GazetteerProblem(
                    entry.line,
                    f"duplicate address {entry.address!r} (first on line {first.line})",
                )
            ]
        index = len(self._entries)
        self._entries.append(entry)
        self._by_key[key] = index
        self._exact.setdefault(entry.address, index)
        problems = []
        for alias in entry.aliases:
            alias_key = normalise_address(alias)
            if not alias_key or alias_key == key:
                continue  # spelling variants of the address itself are found anyway
            if alias_key in self._by_key:
                other = self._entries[self._by_key[alias_key]]
                if other is not entry:
                    problems.append(
                        GazetteerProblem(
                            entry.line,
                            f"alias {alias!r} ignored: already names {other.address!r} "
                            f"(line {other.line})",
                        )
                    )
                continue
            self._by_key[alias_key] = index
            self._exact.setdefault(alias, index)
        return problems

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[GazetteerEntry]:
        return iter(self._entries)

    def lookup(self, text: str | None) -> Place | None:
        """The place a text names: exact, then normalised, then the longest known address or
        alias inside it. None when nothing known is mentioned."""
        index = self._find(text or "")
        if index is None:
            return None
        entry = self._entries[index]
        return Place(
            address=entry.address,
            lat=entry.lat,
            lon=entry.lon,
            station_key=entry.station_key,
            source="gazetteer",
        )

    def _find(self, text: str) -> int | None:
        stripped = text.strip()
        if not stripped:
            return None
        if stripped in self._exact:
            return self._exact[stripped]
        key = normalise_address(stripped)
        if key in self._by_key:
            return self._by_key[key]
        return self._longest_inside(key)

    def _longest_inside(self, key: str) -> int | None:
        best: tuple[int, int] | None = None  # (length, entry index); earliest wins ties
        for start, char in enumerate(key):
            for length in self._lengths_by_first.get(char, ()):
                if best is not None and length <= best[0]:
                    break
                end = start + length
                index = self._by_key.get(key[start:end]) if end <= len(key) else None
                if index is not None and _whole_number_at(key, start, end):
                    best = (length, index)
                    break
        return best[1] if best else None


def _whole_number_at(key: str, start: int, end: int) -> bool:
    """A match must not cut a number in two: "汾阳路1号" is not inside "汾阳路11号" anyway,
    but "fenyangrd1" is inside "fenyangrd13"."""
    if start > 0 and key[start].isdigit() and key[start - 1].isdigit():
        return False
    return not (end < len(key) and key[end - 1].isdigit() and key[end].isdigit())


def _entry_from_row(row: Mapping[str, Any], line: int) -> GazetteerEntry | GazetteerProblem:
    if row.get("\0extra"):
        return GazetteerProblem(line, "too many columns (a comma inside an unquoted field?)")
    address = (row.get("address") or "").strip()
    if not address:
        return GazetteerProblem(line, "blank address")
    coordinates: dict[str, float] = {}
    for column, limit in (("lat", 90.0), ("lon", 180.0)):
        raw = (row.get(column) or "").strip()
        if not raw:
            return GazetteerProblem(line, f"missing {column} for {address!r}")
        try:
            value = float(raw)
        except ValueError:
            return GazetteerProblem(line, f"{column} {raw!r} is not a number for {address!r}")
        if not math.isfinite(value) or abs(value) > limit:
            return GazetteerProblem(
                line, f"{column} {raw} out of range (±{limit:g}) for {address!r}"
            )
        coordinates[column] = value
    aliases = tuple(
        alias.strip() for alias in (row.get("aliases") or "").split("|") if alias.strip()
    )
    station = (row.get("station") or "").strip() or None
    return GazetteerEntry(
        address=address,
        aliases=aliases,
        lat=coordinates["lat"],
        lon=coordinates["lon"],
        station_key=station,
        line=line,
    )


class _OfflineAdapter(BaseSyncAdapter):  # type: ignore[misc]
    """The gazetteer answers from memory; any attempt to reach the network is a bug."""

    def get_json(self, url: str, *, timeout: float, headers: dict[str, str]) -> Any:
        raise GeocoderServiceError(f"the offline gazetteer does not fetch {url}")

    def get_text(self, url: str, *, timeout: float, headers: dict[str, str]) -> str:
        raise GeocoderServiceError(f"the offline gazetteer does not fetch {url}")


class GazetteerGeocoder(Geocoder):  # type: ignore[misc]
    """The gazetteer behind geopy's `Geocoder` interface, so it can be chained with online
    providers. Synchronous and in-memory: call it directly even from async code.

    `Location.raw` carries the row's `station` column (or None) and `source` as well.
    """

    def __init__(self, gazetteer: Gazetteer, *, user_agent: str = "gridbot") -> None:
        super().__init__(user_agent=user_agent, adapter_factory=_OfflineAdapter)
        self.gazetteer = gazetteer

    def geocode(
        self,
        query: str | Mapping[str, Any],
        *,
        exactly_one: bool = True,
        timeout: Any = DEFAULT_SENTINEL,
    ) -> Location | list[Location] | None:
        """Like every geopy geocoder: a `Location`, a list of them when `exactly_one` is
        False, or None when the address is unknown. Structured (dict) queries are joined."""
        text = (
            " ".join(str(part) for part in query.values()) if isinstance(query, Mapping) else query
        )
        place = self.gazetteer.lookup(text)
        if place is None:
            return None
        location = Location(
            place.address,
            (place.lat, place.lon),
            {
                "address": place.address,
                "lat": place.lat,
                "lon": place.lon,
                "station": place.station_key,
                "source": place.source,
            },
        )
        return location if exactly_one else [location]


class Grids:
    """The stations' grids: which station is responsible for a point.

    A point on a border shared by several grids goes to the alphabetically first station key,
    whatever order the grids were loaded in.
    """

    def __init__(self, areas: Mapping[str, Area]) -> None:
        self._keys: tuple[str, ...] = tuple(sorted(areas))
        self._areas: dict[str, Area] = {key: areas[key] for key in self._keys}
        geometries = [self._areas[key] for key in self._keys]
        for geometry in geometries:
            shapely.prepare(geometry)
        # Tree indices follow the sorted keys, so the smallest index is the first key.
        self._tree = STRtree(geometries)

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

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    def __contains__(self, station_key: object) -> bool:
        return station_key in self._areas

    def station_at(self, lat: float, lon: float) -> str | None:
        """The station whose grid holds the point, or None outside every grid."""
        _check_coordinates(lat, lon)
        point = Point(lon, lat)
        hits = sorted(int(index) for index in self._tree.query(point, predicate="intersects"))
        if not hits:
            return None
        # Inside one grid beats lying on the edge of another (grids may touch, not overlap).
        for index in hits:
            if self._areas[self._keys[index]].contains(point):
                return self._keys[index]
        return self._keys[hits[0]]

    def outline(self, station_key: str) -> Area:
        """The station's grid as a shapely (Multi)Polygon; KeyError for an unknown station."""
        return self._areas[station_key]

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of stations whose grids overlap by more than a shared border."""
        pairs = []
        for index, key in enumerate(self._keys):
            for other in self._keys[index + 1 :]:
                if self._areas[key].overlaps(self._areas[other]) or self._areas[key].within(
                    self._areas[other]
                ):
                    pairs.append((key, other))
        return pairs


def _check_coordinates(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        raise ValueError(f"not a point on Earth: lat={lat}, lon={lon}")


class Locator:
    """Places a report: a typed address through the gazetteer, a shared location directly, and
    either way the station responsible for it."""

    def __init__(self, gazetteer: Gazetteer, grids: Grids) -> None:
        self.gazetteer = gazetteer
        self.grids = grids

    def locate_text(self, text: str | None) -> Place | None:
        """The known place a text names, with its station: the gazetteer's station column when
        it names a known station, otherwise the grid holding the point."""
        place = self.gazetteer.lookup(text)
        if place is None:
            return None
        if place.station_key in self.grids:
            return place
        return replace(place, station_key=self.grids.station_at(place.lat, place.lon))

    def locate_point(self, lat: float, lon: float, *, label: str | None = None) -> Place:
        """A shared location (WGS-84). The station is None outside every grid; ValueError for
        coordinates that are not on Earth."""
        station = self.grids.station_at(lat, lon)
        address = label.strip() if label and label.strip() else f"{lat:.5f}, {lon:.5f}"
        return Place(address=address, lat=lat, lon=lon, station_key=station, source="location")

    def audit(self) -> tuple[GazetteerProblem, ...]:
        """Gazetteer rows whose station column disagrees with the grids: unknown station, or a
        position outside that station's grid. For the admin's import report."""
        problems = []
        for entry in self.gazetteer:
            if entry.station_key is None:
                continue
            if entry.station_key not in self.grids:
                problems.append(
                    GazetteerProblem(entry.line, f"unknown station {entry.station_key!r}")
                )
            elif not self.grids.outline(entry.station_key).covers(Point(entry.lon, entry.lat)):
                problems.append(
                    GazetteerProblem(
                        entry.line,
                        f"{entry.address!r} lies outside the grid of {entry.station_key!r}",
                    )
                )
        return tuple(problems)
