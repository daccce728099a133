"""The deployment file: one YAML document describing a district (stations, grids, categories,
timing rules), read into frozen models whose errors name the file, the field and the fix."""

import csv
import difflib
import json
import math
import re
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import shapely
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from shapely.geometry import shape as geojson_shape
from shapely.geometry.base import BaseGeometry

__all__ = [
    "Category",
    "Dedup",
    "Deployment",
    "DeploymentError",
    "Digest",
    "Feedback",
    "GridArea",
    "Member",
    "Problem",
    "QuietHours",
    "Reminders",
    "Station",
    "StreetOffice",
    "clean_building",
    "format_duration",
    "load_deployment",
    "parse_duration",
]

# A deployment file is a few kilobytes; anything far bigger is a wrong file, not a district.
MAX_DEPLOYMENT_BYTES = 1_000_000
MAX_GRID_BYTES = 20_000_000
# Long enough for any SLA or dedup window, short enough that timedelta arithmetic never overflows.
MAX_DURATION = timedelta(days=3650)
GAZETTEER_COLUMNS = ("address", "aliases", "lat", "lon")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- durations -------------------------------------------------------------------------------

_DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"\s*(\d{1,9})\s*([^\d\s]+)\s*")
_DURATION_EXAMPLE = "a duration such as 90s, 15m, 24h, 14d or 1h30m"


def parse_duration(value: str | timedelta) -> timedelta:
    """Read a duration written as whole numbers with units: ``90s``, ``15m``, ``24h``, ``14d``,
    ``2w`` or a combination such as ``1h30m``. ``m`` is minutes (there is no month unit).

    Raises ValueError with a message meant for the person who wrote the value.
    """
    if isinstance(value, timedelta):
        return _check_duration_range(value, value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be {_DURATION_EXAMPLE}, got {_show(value)}")
    if isinstance(value, int | float):
        raise ValueError(
            f"needs a unit, got the plain number {value}: write e.g. {value}h for hours "
            f"or {value}m for minutes"
        )
    text = value.strip().lower()
    if not text:
        raise ValueError(f"must be {_DURATION_EXAMPLE}, got an empty text")
    if text.startswith("-"):
        raise ValueError(f"must be positive, got {_show(value)}")
    if re.fullmatch(r"\d+(\.\d*)?", text):
        raise ValueError(
            f"needs a unit, got the plain number {text}: write e.g. {text}h for hours "
            f"or {text}m for minutes"
        )
    if re.search(r"\d\.\d", text):
        raise ValueError(f"use whole numbers (1h30m rather than 1.5h), got {_show(value)}")
    seconds = 0
    seen: set[str] = set()
    position = 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            raise ValueError(f"must be {_DURATION_EXAMPLE}, got {_show(value)}")
        number, unit = part.groups()
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"unknown unit {unit!r} in {_show(value)}; use s (seconds), m (minutes), "
                "h (hours), d (days) or w (weeks)"
            )
        if unit in seen:
            raise ValueError(f"the unit {unit!r} appears twice in {_show(value)}")
        seen.add(unit)
        seconds += int(number) * _DURATION_UNITS[unit]
        position = part.end()
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"is too long; the longest allowed is {format_duration(MAX_DURATION)}")
    return _check_duration_range(timedelta(seconds=seconds), value)


def _check_duration_range(duration: timedelta, written: object) -> timedelta:
    if duration <= timedelta(0):
        raise ValueError(f"must be longer than zero, got {_show(written)}")
    if duration > MAX_DURATION:
        raise ValueError(f"is too long; the longest allowed is {format_duration(MAX_DURATION)}")
    return duration


def format_duration(duration: timedelta) -> str:
    """Write a duration the way the deployment file does (``72h``, ``14d``, ``1h30m``);
    parse_duration reads it back. Under a week it counts hours, as deadlines are usually
    stated (24h, 72h); fractions of a second are dropped."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0s"
    units = ("d", "h", "m", "s") if seconds >= _DURATION_UNITS["w"] else ("h", "m", "s")
    parts = []
    for unit in units:
        count, seconds = divmod(seconds, _DURATION_UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# --- field types with operator-facing messages -----------------------------------------------


def _problem(message: str) -> PydanticCustomError:
    # The message travels in the context so braces in user input are never read as placeholders.
    return PydanticCustomError("deployment", "{reason}", {"reason": message})


def _as_field(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn a checker that raises ValueError into a pydantic validator with the same message."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    return validate


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {_show(value)}")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if any(ord(char) < 32 for char in text):
        raise ValueError(f"must be a single line of text, got {_show(value)}")
    if len(text) > 100:
        raise ValueError(f"must be at most 100 characters long, got {len(text)}")
    return text


MAX_BUILDING = 128  # storage.models.Person.building


def clean_building(value: Any) -> str:
    """A captain's building or address: one line of text as people write it (a bare number
    is a building number); runs of spaces become one. ValueError says what is wrong."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {_show(value)}")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if any(ord(char) < 32 or char in "\u2028\u2029" for char in text):
        raise ValueError(f"must be a single line of text, got {_show(value)}")
    text = " ".join(text.split())
    if len(text) > MAX_BUILDING:
        raise ValueError(f"must be at most {MAX_BUILDING} characters long, got {len(text)}")
    return text


_KEY = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def _key(value: Any) -> str:
    # Keys end up in button data (64 bytes at most) and in commands, hence short ASCII.
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise ValueError(
            "must be a short key of lower-case latin letters, digits, '-' or '_', starting "
            f"with a letter (like 'fenyang'), got {_show(value)}"
        )
    return value


_LANGUAGE = re.compile(r"[a-z]{2,3}")


def _language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise ValueError(
            f"must be a two-letter language code in lower case (like 'en'), got {_show(value)}"
        )
    return value


def _group_chat_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value >= 0:
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            hint = "; a positive id is a person, not a group"
        raise ValueError(
            "must be a Telegram group chat id (a negative integer such as -1001234567890), "
            f"got {_show(value)}{hint}"
        )
    return value


def _user_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            hint = "; a negative id is a group chat, not a person"
        raise ValueError(
            f"must be a Telegram user id (a positive integer), got {_show(value)}{hint}"
        )
    return value


def _positive_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {_show(value)}")
    return value


def _metres(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of metres such as 50, got {_show(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number of metres greater than zero, got {_show(value)}")
    if value > 5_000:
        # Beyond a few kilometres "the same place" stops meaning anything.
        raise ValueError(f"must be at most 5000 metres, got {_show(value)}")
    return float(value)


_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 22:00 as the number 1320 (base 60).
        hours, minutes = divmod(value, 60)
        raise ValueError(
            f"must be a time written in quotes, e.g. \"{hours:02d}:{minutes:02d}\" "
            f"(without quotes YAML reads it as the number {value})"
        )
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be a time of day \"HH:MM\" such as \"09:00\", got {_show(value)}")
    return time(int(match[1]), int(match[2]))


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a time zone name such as Asia/Shanghai, got {_show(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = available_timezones()
        by_lower = {zone.lower(): zone for zone in known}
        guess = by_lower.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None
        )
        hint = f"; did you mean {guess!r}?" if guess else " (use an IANA name like Asia/Shanghai)"
        raise ValueError(f"{name!r} is not a known time zone{hint}") from None
    return name


_FULL_WEEKDAYS = dict(
    zip(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        WEEKDAYS,
        strict=True,
    )
)


def _weekday(value: Any) -> str:
    day = value.strip().lower() if isinstance(value, str) else None
    if day in WEEKDAYS:
        return day
    if day in _FULL_WEEKDAYS:
        return _FULL_WEEKDAYS[day]
    raise ValueError(f"must be one of {', '.join(WEEKDAYS)}, got {_show(value)}")


# In JSON mode values are written back the way the file writes them, so a dump reloads.
Duration = Annotated[
    timedelta,
    BeforeValidator(_as_field(parse_duration)),
    PlainSerializer(format_duration, when_used="json"),
]
Text = Annotated[str, BeforeValidator(_as_field(_text))]
Building = Annotated[str, BeforeValidator(_as_field(clean_building))]
Key = Annotated[str, BeforeValidator(_as_field(_key))]
Language = Annotated[str, BeforeValidator(_as_field(_language))]
GroupChatId = Annotated[int, BeforeValidator(_as_field(_group_chat_id))]
UserId = Annotated[int, BeforeValidator(_as_field(_user_id))]
Clock = Annotated[
    time,
    BeforeValidator(_as_field(_clock)),
    PlainSerializer(lambda moment: f"{moment:%H:%M}", when_used="json"),
]


# --- quiet hours, grid areas, gazetteer ------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """A daily window in which nobody is reminded; ``22:00-08:00`` wraps past midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """Whether a local wall-clock time falls inside the window (start included, end not)."""
        moment = moment.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _quiet_hours(value: Any) -> QuietHours | None:
    if value is None or isinstance(value, QuietHours):
        return value
    if not isinstance(value, str) or value.count("-") != 1:
        raise ValueError(
            f"must be a window \"HH:MM-HH:MM\" such as \"22:00-08:00\", got {_show(value)}"
        )
    try:
        start, end = (_clock(part) for part in value.split("-"))
    except ValueError:
        raise ValueError(
            f"must be a window \"HH:MM-HH:MM\" such as \"22:00-08:00\", got {_show(value)}"
        ) from None
    if start == end:
        raise ValueError(
            f"starts and ends at the same time ({value.strip()}); leave quiet_hours out "
            "for no quiet hours"
        )
    return QuietHours(start=start, end=end)


class GridArea:
    """A station's grid: the GeoJSON file it was read from, its polygons and their names."""

    __slots__ = ("names", "path", "shape")

    def __init__(self, *, path: Path, shape: BaseGeometry, names: tuple[str, ...]) -> None:
        self.path = path
        self.shape = shape
        self.names = names

    def covers(self, *, lat: float, lon: float) -> bool:
        """Whether a WGS-84 point lies in the grid (its boundary counts as inside)."""
        return bool(self.shape.covers(shapely.Point(lon, lat)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridArea) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"GridArea(path={str(self.path)!r}, names={self.names!r})"


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    return Path(context.get("base_dir") or Path.cwd())


def _referenced_file(value: Any, info: ValidationInfo, *, what: str, limit: int) -> Path:
    if isinstance(value, PathLike):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be the path of {what}, got {_show(value)}")
    path = _base_dir(info) / value.strip()
    if not path.exists():
        raise ValueError(f"file {value.strip()!r} not found (looked for {path})")
    if not path.is_file():
        raise ValueError(f"{value.strip()!r} is not a file ({path})")
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{value.strip()!r} is {size:,} bytes; {what} should be under {limit:,}")
    return path


def _grid_area(value: Any, info: ValidationInfo) -> GridArea:
    if isinstance(value, GridArea):
        return value
    try:
        path = _referenced_file(value, info, what="a GeoJSON file", limit=MAX_GRID_BYTES)
        return read_grid(path, label=str(value).strip())
    except ValueError as exc:
        raise _problem(str(exc)) from None


def read_grid(path: Path, *, label: str | None = None) -> GridArea:
    """A station's grid from a GeoJSON file; ValueError naming ``label`` and what is wrong."""
    label = label or str(path)
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"{label}: is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{label}: not valid JSON: {exc.msg} "
            f"({label} line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ValueError(f"{label}: is nested too deeply to be GeoJSON") from None
    polygons: list[BaseGeometry] = []
    names: list[str] = []
    other_kinds: set[str] = set()
    for number, (geometry, properties) in enumerate(_geometries(document, label), start=1):
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if geometry is None:
            continue  # a feature without geometry (allowed by GeoJSON) marks nothing
        if kind not in ("Polygon", "MultiPolygon"):
            other_kinds.add(str(kind))
            continue
        try:
            polygon = geojson_shape(geometry)
        except Exception as exc:  # shapely reports malformed coordinates in many ways
            raise ValueError(
                f"{label}: feature {number} has malformed coordinates ({exc})"
            ) from None
        name = properties.get("name") if isinstance(properties, dict) else None
        called = f"feature {number}" + (f" ({name})" if isinstance(name, str) and name else "")
        if polygon.is_empty:
            raise ValueError(f"{label}: {called} is an empty polygon")
        if not polygon.is_valid:
            reason = shapely.is_valid_reason(polygon)
            raise ValueError(f"{label}: {called} is not a valid polygon ({reason})")
        min_lon, min_lat, max_lon, max_lat = polygon.bounds
        if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
            raise ValueError(
                f"{label}: {called} has coordinates outside longitude/latitude; grid files "
                "must use WGS-84 degrees (EPSG:4326), not projected metres"
            )
        polygons.append(polygon)
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    if not polygons:
        found = f" (found: {', '.join(sorted(other_kinds))})" if other_kinds else ""
        raise ValueError(f"{label}: contains no Polygon or MultiPolygon{found}")
    return GridArea(path=path, shape=shapely.union_all(polygons), names=tuple(names))


def _geometries(document: Any, label: str) -> Iterator[tuple[Any, Any]]:
    """Yield (geometry, properties) from a FeatureCollection, a Feature or a bare geometry."""
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise ValueError(f"{label}: a FeatureCollection needs a list of 'features'")
        for feature in features:
            if isinstance(feature, dict):
                yield feature.get("geometry"), feature.get("properties")
    elif kind == "Feature":
        yield document.get("geometry"), document.get("properties")
    elif kind == "GeometryCollection" and isinstance(document.get("geometries"), list):
        for geometry in document["geometries"]:
            yield geometry, None
    elif isinstance(kind, str):
        yield document, None
    else:
        raise ValueError(f"{label}: is JSON but not GeoJSON (no \"type\" at the top)")


def _optional_boundary(value: Any, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    area = _grid_area(value, info)  # a district outline is read like a grid
    return area.path


def _gazetteer(value: Any, info: ValidationInfo) -> Path:
    try:
        # The whole gazetteer is read once; a district's addresses are well under this.
        path = _referenced_file(value, info, what="a CSV file", limit=200_000_000)
        _check_gazetteer(path, label=str(value).strip())
    except ValueError as exc:
        raise _problem(str(exc)) from None
    return path


def _check_gazetteer(path: Path, *, label: str) -> None:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [column.strip().lower() for column in next(reader, [])]
            missing = [column for column in GAZETTEER_COLUMNS if column not in header]
            if missing:
                found = ", ".join(header) if header else "nothing"
                raise ValueError(
                    f"{label}: the header lacks {', '.join(missing)} (it must name "
                    f"{', '.join(GAZETTEER_COLUMNS)}; found {found})"
                )
            at = {column: header.index(column) for column in GAZETTEER_COLUMNS}
            faults: list[str] = []
            rows = 0
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                rows += 1
                fault = _gazetteer_row_fault(row, at)
                if fault:
                    faults.append(f"line {reader.line_num}: {fault}")
    except UnicodeDecodeError:
        raise ValueError(f"{label}: is not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise ValueError(f"{label}: is not a readable CSV file ({exc})") from None
    if faults:
        more = f" (and {len(faults) - 3} more)" if len(faults) > 3 else ""
        raise ValueError(f"{label}: {'; '.join(faults[:3])}{more}")
    if rows == 0:
        raise ValueError(f"{label}: has a header but no addresses")


def _gazetteer_row_fault(row: list[str], at: dict[str, int]) -> str | None:
    def cell(column: str) -> str:
        index = at[column]
        return row[index].strip() if index < len(row) else ""

    if not cell("address"):
        return "the address is empty"
    for column, limit in (("lat", 90.0), ("lon", 180.0)):
        try:
            number = float(cell(column))
        except ValueError:
            return f"{column} {cell(column)!r} is not a number"
        if not math.isfinite(number) or abs(number) > limit:
            return f"{column} {cell(column)} is out of range"
    return None


# --- models ----------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StreetOffice(_Section):
    """The street office (街道): receives escalations and the weekly digest in its group chat."""

    name: Text
    chat_id: GroupChatId


class Category(_Section):
    """A kind of problem and how long a station has to fix it."""

    key: Key
    name: Text
    sla: Duration
    keywords: tuple[Text, ...] = ()
    names: dict[Language, Text] = {}  # the name in other languages: {en: Sanitation}

    def name_in(self, locale: str) -> str:
        """The name for a reader of ``locale`` (en, zh_CN, en-GB …); ``name`` otherwise."""
        return self.names.get(locale.replace("-", "_").split("_")[0].lower(), self.name)


class Reminders(_Section):
    """How a station chief is reminded about open tickets, and when the office is told."""

    first_after: Duration = timedelta(hours=2)
    every: Duration = timedelta(hours=4)
    escalate_after: Annotated[int, BeforeValidator(_as_field(_positive_count))] = 3
    quiet_hours: Annotated[
        QuietHours | None,
        PlainValidator(_as_field(_quiet_hours)),
        PlainSerializer(lambda window: None if window is None else str(window)),
    ] = None


class Feedback(_Section):
    """What happens after a ticket is resolved and the reporter has not answered."""

    auto_close_after: Duration = timedelta(hours=72)


class Dedup(_Section):
    """When a new report counts as a repeat of an open one: how near and how recent."""

    radius_m: Annotated[float, BeforeValidator(_as_field(_metres))] = 50.0
    window: Duration = timedelta(days=14)
    # Similarity (0..1) above which a report is merged without asking, and above which the
    # reporter is asked "same problem?"; below, it is a new ticket.
    merge_above: Annotated[float, Field(gt=0, le=1)] = 0.85
    ask_above: Annotated[float, Field(gt=0, le=1)] = 0.6

    @model_validator(mode="after")
    def _asking_comes_before_merging(self) -> "Dedup":
        if self.ask_above > self.merge_above:
            raise _problem("ask_above must not be higher than merge_above")
        return self


class Provider(_Section):
    """An online geocoder (through geopy), tried after the gazetteer finds nothing."""

    kind: Literal["nominatim", "baidu"]
    domain: Text | None = None  # the provider's own by default; a self-hosted Nominatim here
    scheme: Literal["https", "http"] = "https"
    user_agent: Text | None = None  # Nominatim's usage policy wants one that identifies you
    api_key_env: Text | None = None  # the environment variable holding the key (Baidu)
    min_interval: Duration = timedelta(seconds=1)  # Nominatim allows one request a second
    timeout: Duration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _what_each_kind_needs(self) -> "Provider":
        if self.kind == "nominatim" and not self.user_agent:
            raise _problem(
                "nominatim needs a user_agent naming your deployment and a contact "
                "(its usage policy), e.g. \"gridbot-xingcheng (ops@example.org)\""
            )
        if self.kind == "baidu" and not self.api_key_env:
            raise _problem(
                "baidu needs api_key_env: the name of the environment variable holding its key"
            )
        return self


class Geocoding(_Section):
    """How addresses the gazetteer does not know are looked up, and how sure a match must be."""

    providers: tuple[Provider, ...] = ()
    city: Text | None = None  # narrows providers' searches, e.g. 青岛市
    cache_for: Duration = timedelta(days=30)
    min_confidence: Annotated[float, Field(gt=0, le=1)] = 0.75


class Routing(_Section):
    """Where a point outside every grid goes, and the district's outline for checks."""

    # A point outside every grid goes to the nearest station within this distance, else to
    # the street office (0 turns this off).
    nearest_station_within_m: Annotated[float, Field(ge=0, le=5_000)] = 200.0
    boundary: Annotated[Path | None, PlainValidator(_optional_boundary)] = None


class Station(_Section):
    """A community work station (工作站), its chief and the grid it is responsible for."""

    key: Key
    name: Text
    chief: UserId
    area: Annotated[
        GridArea, PlainValidator(_grid_area), PlainSerializer(lambda area: str(area.path))
    ]


class Member(_Section):
    """Someone the deployment file names with a role: imported when the bot starts, and the
    file wins over invitations for them."""

    telegram_id: UserId
    role: Literal["captain", "chief", "office"]
    station: Key | None = None
    building: Building | None = None
    name: Text | None = None

    @model_validator(mode="after")
    def _station_fits_the_role(self) -> "Member":
        if self.role in ("captain", "chief") and self.station is None:
            raise _problem(f"a {self.role} needs a station: add station: <station key>")
        if self.role == "office" and self.station is not None:
            raise _problem("the street office belongs to no station; leave station out")
        if self.building is not None and self.role != "captain":
            raise _problem("only a captain has a building; leave building out")
        return self


class Digest(_Section):
    """When the weekly digest reaches the street office, in the deployment's time zone."""

    weekday: Annotated[str, BeforeValidator(_as_field(_weekday))] = "mon"
    time: Clock = time(9, 0)


class Deployment(_Section):
    """One district: who receives what, where reports are accepted, and the rules of the cycle."""

    timezone: Annotated[str, BeforeValidator(_as_field(_timezone))] = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    street_office: StreetOffice
    intake_chats: tuple[GroupChatId, ...]
    categories: tuple[Category, ...]
    # None means "the first category"; after validation it always holds a key.
    default_category: str = Field(default=None, validate_default=True)
    reminders: Reminders = Reminders()
    feedback: Feedback = Feedback()
    dedup: Dedup = Dedup()
    stations: tuple[Station, ...]
    gazetteer: Annotated[Path, PlainValidator(_gazetteer)]
    geocoding: Geocoding = Geocoding()
    routing: Routing = Routing()
    digest: Digest = Digest()
    # Who may report in the intake chats: anyone, or only members (invited or listed below).
    intake: Literal["open", "members"] = "open"
    people: tuple[Member, ...] = ()

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("intake_chats")
    @classmethod
    def _intake_chats_are_distinct(
        cls, chats: tuple[int, ...], info: ValidationInfo
    ) -> tuple[int, ...]:
        if not chats:
            raise _problem("must list at least one group chat where reports are accepted")
        _refuse_repeats(chats, field="intake_chats", what="chat")
        office = info.data.get("street_office")
        if office is not None and office.chat_id in chats:
            # The office chat gets escalations and digests; treating its talk as reports would
            # file tickets from it and show captains the office's business.
            raise _problem(
                f"chat {office.chat_id} is also street_office.chat_id; the street office chat "
                "cannot be an intake chat"
            )
        return chats

    @field_validator("categories")
    @classmethod
    def _category_keys_are_distinct(cls, categories: tuple[Category, ...]) -> tuple[Category, ...]:
        if not categories:
            raise _problem("must list at least one category")
        _refuse_repeats([category.key for category in categories], field="categories", what="key")
        return categories

    @field_validator("default_category", mode="before")
    @classmethod
    def _default_category_exists(cls, value: Any, info: ValidationInfo) -> str:
        categories: tuple[Category, ...] | None = info.data.get("categories")
        if not categories:
            # The categories are broken and reported already; nothing to compare with.
            return value if isinstance(value, str) else ""
        keys = [category.key for category in categories]
        if value is None:
            return keys[0]
        if value not in keys:
            guess = difflib.get_close_matches(str(value), keys, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            raise _problem(
                f"must be the key of one of the categories ({', '.join(keys)}), "
                f"got {_show(value)}{hint}"
            )
        return str(value)

    @field_validator("stations")
    @classmethod
    def _station_keys_are_distinct(cls, stations: tuple[Station, ...]) -> tuple[Station, ...]:
        if not stations:
            raise _problem("must list at least one station")
        _refuse_repeats([station.key for station in stations], field="stations", what="key")
        return stations

    @field_validator("people")
    @classmethod
    def _people_fit_the_stations(
        cls, people: tuple[Member, ...], info: ValidationInfo
    ) -> tuple[Member, ...]:
        _refuse_repeats([member.telegram_id for member in people], field="people", what="id")
        stations: tuple[Station, ...] | None = info.data.get("stations")
        if not stations:
            return people  # the stations are broken and reported already
        keys = [station.key for station in stations]
        for index, member in enumerate(people):
            led = [s.key for s in stations if s.chief == member.telegram_id]
            if led:
                # The stations' chiefs are set by `stations`; a second entry could contradict it.
                raise _problem(
                    f"people[{index}] ({member.telegram_id}) is the chief of {', '.join(led)} "
                    "(stations[].chief); leave them out of people"
                )
            if member.station is not None and member.station not in keys:
                guess = difflib.get_close_matches(member.station, keys, n=1)
                hint = f"; did you mean {guess[0]!r}?" if guess else ""
                raise _problem(
                    f"the station {_show(member.station)} of people[{index}] is not one of "
                    f"the stations ({', '.join(keys)}){hint}"
                )
        return people

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> "Deployment":
        self._base_dir = _base_dir(info)
        return self

    @property
    def base_dir(self) -> Path:
        """The directory of the deployment file; relative paths in it start here."""
        return self._base_dir

    @property
    def zone(self) -> ZoneInfo:
        """The deployment's time zone, for quiet hours, deadlines and the digest."""
        return ZoneInfo(self.timezone)

    def station(self, key: str) -> Station:
        """The station with this key; KeyError names the known keys."""
        for station in self.stations:
            if station.key == key:
                return station
        known = ", ".join(station.key for station in self.stations)
        raise KeyError(f"no station {key!r} (stations: {known})")

    def category(self, key: str) -> Category:
        """The category with this key; KeyError names the known keys."""
        for category in self.categories:
            if category.key == key:
                return category
        known = ", ".join(category.key for category in self.categories)
        raise KeyError(f"no category {key!r} (categories: {known})")

    def is_intake_chat(self, chat_id: int) -> bool:
        """Whether reports posted in this chat become tickets."""
        return chat_id in self.intake_chats

    def overlapping_stations(self) -> list[tuple[str, str]]:
        """Pairs of station keys whose grids share more than a border; a report there could
        belong to either, so check-config warns about them."""
        pairs = []
        for index, station in enumerate(self.stations):
            for other in self.stations[index + 1 :]:
                if station.area.shape.intersection(other.area.shape).area > 0:
                    pairs.append((station.key, other.key))
        return pairs

    def stations_led_by(self, user_id: int) -> tuple[Station, ...]:
        """The stations whose chief is this Telegram user (one person may lead several)."""
        return tuple(station for station in self.stations if station.chief == user_id)

    def member(self, user_id: int) -> Member | None:
        """This Telegram user's entry under ``people``, if the file lists them."""
        return next((member for member in self.people if member.telegram_id == user_id), None)


def _refuse_repeats(values: Sequence[str | int], *, field: str, what: str) -> None:
    first_seen: dict[str | int, int] = {}
    for index, value in enumerate(values):
        if value in first_seen:
            raise _problem(
                f"the {what} {_show(value)} appears twice ({field}[{first_seen[value]}] and "
                f"{field}[{index}]); each must be unique"
            )
        first_seen[value] = index


# --- loading and explaining ------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a deployment file: where (a field path such as
    ``stations[1].chief``, empty for the whole file), what, and the line when known."""

    field: str
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}: {self.field}: " if self.field else f"{file}: "
        at_line = f" (line {self.line})" if self.line is not None and self.field else ""
        return f"{where}{self.message}{at_line}"


class DeploymentError(Exception):
    """The deployment file cannot be used; ``str()`` gives one plain-English line per problem."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self, *, limit: int = 50) -> list[str]:
        """One line per problem; past ``limit`` a last line says how many were left out (a list
        of a thousand wrong chat ids needs fixing once, not reading a thousand times)."""
        shown = [problem.render(self.file) for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            shown.append(f"{self.file}: ... and {len(self.problems) - limit} more problems")
        return shown


def load_deployment(path: str | PathLike[str]) -> Deployment:
    """Read and check a deployment file; relative paths inside it are resolved against its
    directory. Raises DeploymentError listing every problem found."""
    path = Path(path)
    label = str(path)
    text = _read_deployment_text(path, label)
    data, root = _parse_yaml(text, label)
    if data is None:
        raise DeploymentError(
            label, [Problem("", "the file is empty; docs/deployment.md lists the fields it needs")]
        )
    if not isinstance(data, dict):
        raise DeploymentError(
            label,
            [
                Problem(
                    "",
                    "the top level must be a mapping of fields such as 'timezone:' and "
                    f"'stations:', got {_show(data)}",
                )
            ],
        )
    try:
        return Deployment.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise DeploymentError(label, [_explain(error, root) for error in exc.errors()]) from None


def _read_deployment_text(path: Path, label: str) -> str:
    def fail(message: str) -> DeploymentError:
        return DeploymentError(label, [Problem("", message)])

    try:
        if path.is_dir():
            raise fail("is a directory, not a deployment file")
        size = path.stat().st_size
        if size > MAX_DEPLOYMENT_BYTES:
            raise fail(f"is {size:,} bytes; a deployment file is a few kilobytes")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail("file not found") from None
    except PermissionError:
        raise fail("cannot be read (permission denied)") from None
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(f"line {line}: is not UTF-8 text (save the file as UTF-8)") from None


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the
    last one, which hides half of a doubled ``stations:`` list)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in first_seen:
                    first_line = first_seen[key_node.value].start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"the key {key_node.value!r} appears twice in the same mapping "
                        f"(first on line {first_line})",
                        key_node.start_mark,
                    )
                first_seen[key_node.value] = key_node
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, label: str) -> tuple[Any, yaml.Node | None]:
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        if "\\t" in problem or "\t" in problem:
            problem += " (YAML does not allow tabs for indentation; use spaces)"
        raise DeploymentError(label, [Problem("", f"{where}not valid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise DeploymentError(label, [Problem("", f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise DeploymentError(label, [Problem("", "is nested too deeply to read")]) from None
    finally:
        loader.dispose()
    return data, root


def _explain(error: ErrorDetails, root: yaml.Node | None) -> Problem:
    loc = tuple(error["loc"])
    line = _line_of(root, loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(_field_path(loc), _unknown_field(loc), line)
    if kind == "invalid_key":
        return Problem(
            _field_path(loc[:-1]), f"field names must be text, got {_show(loc[-1])}", line
        )
    return Problem(_field_path(loc), _message(error), line)


def _line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line in the file that a field path points to, or its nearest existing parent."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            entry = next(
                (
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode) and key.value == part
                ),
                None,
            )
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _unknown_field(loc: Sequence[int | str]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown field"
    valid = list(model.model_fields)
    guess = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    if guess:
        return f"unknown field; did you mean {guess[0]!r}?"
    return f"unknown field; the fields here are {', '.join(valid)}"


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose fields live at this location, walking the annotations from Deployment."""
    model: type[BaseModel] | None = Deployment
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _inner_model(model.model_fields[part].annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = _show(error.get("input"))
    if kind == "deployment":
        return str(ctx["reason"])
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of fields (name: value), got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {got}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, got {got}"
    if kind == "string_type":
        return f"must be text, got {got}"
    message = error["msg"]
    return f"{message[:1].lower()}{message[1:]}, got {got}"


def _show(value: Any) -> str:
    """Describe a value from the file briefly; never repr a whole structure (YAML aliases can
    make a tiny file expand enormously)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
