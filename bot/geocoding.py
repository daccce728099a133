"""Locating beyond the in-memory gazetteer: the gazetteer kept in the database, online geocoders
(Nominatim, Baidu) behind a cache and a rate limit, and reverse geocoding for the chief."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from geopy.adapters import AioHTTPAdapter
from geopy.exc import (
    GeocoderAuthenticationFailure,
    GeocoderInsufficientPrivileges,
    GeocoderParseError,
    GeocoderQuotaExceeded,
    GeocoderRateLimited,
    GeocoderTimedOut,
    GeocoderUnavailable,
    GeopyError,
)
from geopy.extra.rate_limiter import AsyncRateLimiter
from geopy.geocoders import BaiduV3, Nominatim
from geopy.geocoders.base import Geocoder
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coordinates import bd09_to_wgs84, wgs84_to_bd09
from bot.deployment import Deployment, Provider, read_grid
from bot.intake import normalise_address
from bot.locating import Gazetteer, GazetteerEntry, GazetteerProblem, Grids, Place
from storage import repo
from storage.db import SessionFactory
from storage.models import GeocodeCacheEntry

__all__ = [
    "BaiduProvider",
    "GazetteerImport",
    "GeocodeOutcome",
    "GeocoderChain",
    "NearbyAddresses",
    "NominatimProvider",
    "OnlineProvider",
    "ProviderAnswer",
    "ProviderFailure",
    "ProviderTrouble",
    "baidu_confidence",
    "ensure_gazetteer",
    "import_gazetteer",
    "load_gazetteer",
    "nominatim_confidence",
    "rows_to_import",
]

log = logging.getLogger(__name__)

MAX_ADDRESS_LENGTH = 256  # the gazetteer and ticket columns
MAX_STATION_KEY_LENGTH = 64
MAX_QUERY_LENGTH = 200  # a caption's address is short; longer text is not worth sending
BAIDU_MAX_ADDRESS_BYTES = 84  # Baidu's documented limit for `address`
DISTRICT_REACH_M = 3_000.0  # answers farther than this from every grid are another place
REVERSE_RADIUS_M = 150.0  # a gazetteer address this close names a shared location
RATE_LIMIT_REST = timedelta(seconds=60)  # when a provider says "too many" without Retry-After
MAX_REST = timedelta(hours=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- the gazetteer in the database --------------------------------------------------------------


@dataclass(frozen=True)
class GazetteerImport:
    """What an import did: addresses and aliases written, rows replaced, the file's problems."""

    imported: int
    aliases: int
    replaced: int
    problems: tuple[GazetteerProblem, ...]


def rows_to_import(
    gazetteer: Gazetteer,
) -> tuple[list[dict[str, Any]], tuple[GazetteerProblem, ...]]:
    """The gazetteer as table rows, and every problem with the file: the reader's (skipped rows,
    ignored aliases) plus rows too long for the table. Lets an import refuse a file up front."""
    rows: list[dict[str, Any]] = []
    problems: list[GazetteerProblem] = list(gazetteer.problems)
    for entry in gazetteer:
        if len(entry.address) > MAX_ADDRESS_LENGTH:
            problems.append(
                GazetteerProblem(
                    entry.line, f"address longer than {MAX_ADDRESS_LENGTH} characters skipped"
                )
            )
            continue
        if entry.station_key is not None and len(entry.station_key) > MAX_STATION_KEY_LENGTH:
            problems.append(
                GazetteerProblem(
                    entry.line,
                    f"station key longer than {MAX_STATION_KEY_LENGTH} characters for "
                    f"{entry.address!r}; row skipped",
                )
            )
            continue
        rows.append(
            {
                "address": entry.address,
                "aliases": "|".join(entry.aliases),
                "lat": entry.lat,
                "lon": entry.lon,
                "station_key": entry.station_key,
                "line": entry.line,
            }
        )
    return rows, tuple(sorted(problems, key=lambda problem: problem.line))


async def import_gazetteer(
    session: AsyncSession,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    on_batch: Callable[[int], None] | None = None,
) -> GazetteerImport:
    """Replace the database's gazetteer with this one, in the session's transaction: nothing
    changes for anyone until the caller commits, and a failure leaves the old one whole."""
    rows, problems = rows_to_import(gazetteer)
    replaced = await repo.replace_gazetteer(
        session=session, rows=rows, now=now, on_batch=on_batch
    )
    aliases = sum(1 for row in rows for alias in row["aliases"].split("|") if alias)
    return GazetteerImport(
        imported=len(rows), aliases=aliases, replaced=replaced, problems=problems
    )


async def load_gazetteer(session: AsyncSession) -> Gazetteer:
    """The in-memory gazetteer built from the database table (plain tuples, no ORM objects)."""
    rows = await repo.gazetteer_rows(session=session)
    return Gazetteer(
        GazetteerEntry(
            address=address,
            aliases=tuple(alias for alias in aliases.split("|") if alias),
            lat=lat,
            lon=lon,
            station_key=station_key,
            line=line,
        )
        for address, aliases, lat, lon, station_key, line in rows
    )


async def ensure_gazetteer(
    session: AsyncSession, csv_path: str | Path, *, now: datetime | None = None
) -> Gazetteer:
    """The gazetteer from the database; when the table is empty (a new install, the demo) the
    deployment's CSV is imported first, so nobody has to run `gridbot gazetteer import`.

    Raises `GazetteerFormatError` when that CSV cannot be read at all.
    """
    if await repo.count_gazetteer(session=session) == 0:
        gazetteer = Gazetteer.from_csv(csv_path)
        try:
            result = await import_gazetteer(session, gazetteer, now=now or _utc_now())
            await session.commit()
        except IntegrityError:
            # Another process started at the same moment and imported the same file first.
            await session.rollback()
        else:
            log.info(
                "gazetteer imported from %s: %d addresses, %d problems",
                csv_path, result.imported, len(result.problems),
            )
    return await load_gazetteer(session)


# --- what providers answer -------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderFailure:
    """A provider that could not help with one address, and why (for logs and triage)."""

    provider: str
    reason: str


@dataclass(frozen=True)
class GeocodeOutcome:
    """The chain's answer: the place (None when nobody found it), the providers that failed on
    the way, and how sure the chosen answer is (0..1, None without a place)."""

    place: Place | None
    failures: list[ProviderFailure] = field(default_factory=list)
    confidence: float | None = None


@dataclass(frozen=True)
class ProviderAnswer:
    """A provider's best match, already in WGS-84, with its confidence mapped to 0..1."""

    address: str
    lat: float
    lon: float
    confidence: float


class ProviderTrouble(Exception):
    """A provider could not answer: timeout, HTTP error, rate limit, nonsense, no API key."""


# Nominatim's place_rank says how fine the match is: 30 a house, building or point of interest,
# 28-29 a house number interpolated along a street, 26-27 a street, 16-25 suburbs, villages and
# neighbourhoods, lower towns and regions. Its `importance` is how prominent a place is
# (Wikipedia links, population), not how well it matches the words, so it is not a score here.
_NOMINATIM_RANK_SCORES = ((30, 0.9), (28, 0.8), (26, 0.5), (16, 0.3), (0, 0.1))
_NOMINATIM_POINT_CLASSES = frozenset(
    {"building", "amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare",
     "railway", "public_transport", "historic", "man_made"}
)


def nominatim_confidence(raw: Mapping[str, Any]) -> float:
    """0..1 from a Nominatim result's `place_rank` (or, from servers that omit it, its class
    and type): 0.9 for a house or point of interest, 0.5 for a whole street, less for areas."""
    try:
        rank = int(raw["place_rank"])
    except (KeyError, TypeError, ValueError):
        rank = _nominatim_rank_from_type(raw)
    for lowest, score in _NOMINATIM_RANK_SCORES:
        if rank >= lowest:
            return score
    return 0.1


def _nominatim_rank_from_type(raw: Mapping[str, Any]) -> int:
    kind = str(raw.get("class") or raw.get("category") or "")
    place_type = str(raw.get("type") or "")
    if kind in _NOMINATIM_POINT_CLASSES or place_type in ("house", "building"):
        return 30
    if kind == "highway":
        return 26
    if place_type in ("neighbourhood", "quarter", "suburb", "village", "hamlet"):
        return 20
    return 10


def baidu_confidence(raw: Mapping[str, Any]) -> float:
    """0..1 from a Baidu v3 result. Baidu documents `confidence` (0-100) as the point's
    precision (100: within 20 m, 80: 100 m, 75: 200 m, 50: 1 km) and `comprehension` (0-100) as
    how well it understood the address (its recommended trust signal). The score is the weaker
    of the two over 100; a fuzzy point (`precise: 0`) is capped at 0.7, below the default
    min_confidence, so the captain is asked rather than a guess filed."""
    scores = [
        value for value in (_number(raw.get("confidence")), _number(raw.get("comprehension")))
        if value is not None
    ]
    score = min(scores) / 100 if scores else 0.5
    if _number(raw.get("precise")) == 0:
        score = min(score, 0.7)
    return max(0.0, min(1.0, score))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _coordinates(lat: Any, lon: Any) -> tuple[float, float]:
    """Validated coordinates from a provider's answer; ValueError for anything not on Earth."""
    lat_, lon_ = _number(lat), _number(lon)
    if lat_ is None or lon_ is None or abs(lat_) > 90 or abs(lon_) > 180:
        raise ValueError(f"no usable coordinates ({lat!r}, {lon!r})")
    return lat_, lon_


# --- providers -------------------------------------------------------------------------------


async def _invoke(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    return await method(*args, **kwargs)


class OnlineProvider:
    """One online geocoder behind its own rate limiter. Build one per provider per process and
    share it: the limiter spaces every request to that provider, geocode and reverse alike,
    whoever asks (Nominatim allows one request a second for the whole application)."""

    def __init__(
        self,
        *,
        name: str,
        geocoder: Geocoder | None,
        min_interval: float,
        timeout: float,
        clock: Callable[[], datetime] = _utc_now,
        unusable: str | None = None,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self._geocoder = geocoder
        self._clock = clock
        self._unusable = unusable  # e.g. "no API key"; every call fails without a request
        self._resting_until: datetime | None = None
        self._limiter = AsyncRateLimiter(
            _invoke,
            min_delay_seconds=min_interval,
            max_retries=0,  # a report waits for no retries; the next provider is tried instead
            error_wait_seconds=min_interval,
            swallow_exceptions=False,
        )

    async def search(self, query: str) -> ProviderAnswer | None:
        """The provider's best match for an address, or None when it knows nothing.
        Raises ProviderTrouble when it cannot answer."""
        return await self._guarded(self._search, query)

    async def address_at(self, lat: float, lon: float) -> str | None:
        """A readable address for a WGS-84 point, or None. Raises ProviderTrouble."""
        return await self._guarded(self._address_at, lat, lon)

    async def close(self) -> None:
        if self._geocoder is not None:
            await self._geocoder.__aexit__(None, None, None)

    async def _search(self, query: str) -> ProviderAnswer | None:
        raise NotImplementedError

    async def _address_at(self, lat: float, lon: float) -> str | None:
        raise NotImplementedError

    async def _limited(
        self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        return await self._limiter(method, *args, **kwargs)

    async def _guarded(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if self._unusable is not None:
            raise ProviderTrouble(self._unusable)
        now = self._clock()
        if self._resting_until is not None and now < self._resting_until:
            left = (self._resting_until - now).total_seconds()
            raise ProviderTrouble(f"rate limited; not asked again for {left:.0f} s")
        try:
            return await call(*args)
        except ProviderTrouble:
            raise
        except (GeocoderRateLimited, GeocoderQuotaExceeded) as error:
            retry_after = getattr(error, "retry_after", None)
            rest = timedelta(seconds=retry_after) if retry_after else RATE_LIMIT_REST
            self._resting_until = self._clock() + min(rest, MAX_REST)
            reason = f"rate limited ({_brief(error)})"
        except GeocoderTimedOut:
            reason = f"no answer within {self.timeout:g} s"
        except (GeocoderAuthenticationFailure, GeocoderInsufficientPrivileges) as error:
            reason = f"refused our credentials ({_brief(error)})"
        except GeocoderParseError:
            reason = "malformed answer (not JSON)"
        except GeocoderUnavailable as error:
            reason = f"unreachable ({_brief(error)})"
        except GeopyError as error:
            reason = f"service error ({_brief(error)})"
        except Exception as error:  # geopy hands a provider's odd JSON through unchecked
            reason = f"malformed answer ({type(error).__name__}: {_brief(error)})"
        log.warning("geocoder %s failed: %s", self.name, reason)
        raise ProviderTrouble(reason)


def _brief(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:157] + "..."


class NominatimProvider(OnlineProvider):
    """OpenStreetMap's Nominatim (or a self-hosted one), limited to the district's box."""

    def __init__(
        self,
        *,
        user_agent: str,
        domain: str | None = None,
        scheme: str = "https",
        timeout: float = 5.0,
        min_interval: float = 1.0,
        viewbox: tuple[tuple[float, float], tuple[float, float]] | None = None,
        language: str = "zh",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        geocoder = Nominatim(
            user_agent=user_agent,
            domain=domain or "nominatim.openstreetmap.org",
            scheme=scheme,
            timeout=timeout,
            adapter_factory=AioHTTPAdapter,
        )
        super().__init__(
            name="nominatim", geocoder=geocoder, min_interval=min_interval, timeout=timeout,
            clock=clock,
        )
        self._nominatim = geocoder
        self._viewbox = viewbox  # ((lat, lon), (lat, lon)) corners
        self._language = language

    async def _search(self, query: str) -> ProviderAnswer | None:
        extra: dict[str, Any] = {}
        if self._viewbox is not None:
            extra = {"viewbox": self._viewbox, "bounded": True}
        location = await self._limited(
            self._nominatim.geocode, query, exactly_one=True, language=self._language, **extra
        )
        if location is None:
            return None
        raw = location.raw
        lat, lon = _coordinates(raw.get("lat"), raw.get("lon"))
        address = str(raw.get("display_name") or query)[:MAX_ADDRESS_LENGTH]
        return ProviderAnswer(address, lat, lon, nominatim_confidence(raw))

    async def _address_at(self, lat: float, lon: float) -> str | None:
        location = await self._limited(
            self._nominatim.reverse, (lat, lon), exactly_one=True, language=self._language,
            zoom=18,
        )
        if location is None:
            return None
        name = location.raw.get("display_name")
        return str(name)[:MAX_ADDRESS_LENGTH] if name else None


class _BaiduV3(BaiduV3):  # type: ignore[misc]
    """geopy's BaiduV3 with a configurable host (tests, proxies), the `city` filter Baidu's v3
    API offers, and "无相关结果" read as no result rather than a server error."""

    def __init__(self, api_key: str, *, domain: str | None, city: str | None, **kwargs: Any):
        super().__init__(api_key, **kwargs)
        if domain:
            self.api = f"{self.scheme}://{domain}{self.api_path}"
            self.reverse_api = f"{self.scheme}://{domain}{self.reverse_path}"
        self.city = city

    def _construct_url(self, url: str, path: str, params: dict[str, Any]) -> str:
        if self.city and path == self.api_path:
            params = {**params, "city": self.city}
        return str(super()._construct_url(url, path, params))

    def _parse_json(self, page: Any, exactly_one: bool = True) -> Any:
        # Baidu answers an address it does not know with status 1 ("Internal Service Error:
        # 无相关结果"), which geopy would turn into a server error.
        if isinstance(page, Mapping) and page.get("status") == 1 and "无相关结果" in str(
            page.get("msg") or page.get("message") or ""
        ):
            return None
        return super()._parse_json(page, exactly_one)


class BaiduProvider(OnlineProvider):
    """Baidu Maps geocoding v3. Its points are BD-09 and are converted to WGS-84 here."""

    def __init__(
        self,
        *,
        api_key: str | None,
        api_key_env: str = "",
        domain: str | None = None,
        scheme: str = "https",
        user_agent: str | None = None,
        timeout: float = 5.0,
        min_interval: float = 1.0,
        city: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        geocoder = None
        unusable = None
        if api_key:
            geocoder = _BaiduV3(
                api_key, domain=domain, city=city, scheme=scheme, timeout=timeout,
                user_agent=user_agent or "gridbot", adapter_factory=AioHTTPAdapter,
            )
        else:
            unusable = f"no API key (environment variable {api_key_env or '?'} is not set)"
            log.warning("geocoder baidu is configured but has %s; it will be skipped", unusable)
        super().__init__(
            name="baidu", geocoder=geocoder, min_interval=min_interval, timeout=timeout,
            clock=clock, unusable=unusable,
        )
        self._baidu = geocoder

    async def _search(self, query: str) -> ProviderAnswer | None:
        assert self._baidu is not None
        location = await self._limited(
            self._baidu.geocode, _utf8_prefix(query, BAIDU_MAX_ADDRESS_BYTES), exactly_one=True
        )
        if location is None:
            return None
        raw = location.raw
        point = raw.get("location") if isinstance(raw, Mapping) else None
        if not isinstance(point, Mapping):
            raise ValueError("result without a location")
        bd_lat, bd_lon = _coordinates(point.get("lat"), point.get("lng"))
        lat, lon = bd09_to_wgs84(lat=bd_lat, lon=bd_lon)
        # Baidu's geocoder returns no address text, only a level such as "门址".
        return ProviderAnswer(query[:MAX_ADDRESS_LENGTH], lat, lon, baidu_confidence(raw))

    async def _address_at(self, lat: float, lon: float) -> str | None:
        assert self._baidu is not None
        bd = wgs84_to_bd09(lat=lat, lon=lon)
        location = await self._limited(self._baidu.reverse, (bd.lat, bd.lon), exactly_one=True)
        if location is None:
            return None
        name = location.raw.get("formatted_address")
        return str(name)[:MAX_ADDRESS_LENGTH] if name else None


def _utf8_prefix(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


# --- nearby gazetteer addresses --------------------------------------------------------------

_METRES_PER_DEGREE_LAT = 110_574.0
_METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


class NearbyAddresses:
    """Gazetteer addresses by position: the nearest one within a radius, through an STRtree, so
    the cost depends on how many addresses are near, not on the size of the gazetteer."""

    def __init__(self, entries: Iterable[GazetteerEntry]) -> None:
        self._entries = list(entries)
        self._tree = STRtree(
            shapely.points(
                [entry.lon for entry in self._entries], [entry.lat for entry in self._entries]
            )
            if self._entries
            else []
        )

    def nearest(self, lat: float, lon: float, *, within_m: float) -> GazetteerEntry | None:
        if not self._entries:
            return None
        d_lat = within_m / _METRES_PER_DEGREE_LAT
        d_lon = within_m / (
            _METRES_PER_DEGREE_LON_AT_EQUATOR * max(math.cos(math.radians(lat)), 1e-6)
        )
        candidates = self._tree.query(box(lon - d_lon, lat - d_lat, lon + d_lon, lat + d_lat))
        # Within a few hundred metres a flat local projection is as good as the ellipsoid
        # (well under a metre off) and much cheaper where addresses are dense.
        x_scale = _METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat))
        best: tuple[float, int] | None = None
        for index in sorted(int(i) for i in candidates):
            entry = self._entries[index]
            metres = math.hypot(
                (entry.lon - lon) * x_scale, (entry.lat - lat) * _METRES_PER_DEGREE_LAT
            )
            if metres <= within_m and (best is None or metres < best[0]):
                best = (metres, index)
        return self._entries[best[1]] if best else None


# --- the district ----------------------------------------------------------------------------


class _District:
    """The district's outline in local metres, for "how far outside is this answer?"."""

    def __init__(self, area: BaseGeometry) -> None:
        centre = area.centroid
        self._lon0, self._lat0 = centre.x, centre.y
        self._x = _METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(self._lat0))
        self._y = _METRES_PER_DEGREE_LAT
        self.bounds = area.bounds  # (min lon, min lat, max lon, max lat)
        self._metric = shapely.transform(area, self._to_metres)
        shapely.prepare(self._metric)

    def _to_metres(self, lonlat: Any) -> Any:
        return (lonlat - (self._lon0, self._lat0)) * (self._x, self._y)

    def distance_m(self, lat: float, lon: float) -> float:
        point = Point((lon - self._lon0) * self._x, (lat - self._lat0) * self._y)
        return float(self._metric.distance(point))

    def box_around(self, metres: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """The outline's bounding box grown by `metres`, as ((lat, lon), (lat, lon)) corners."""
        min_lon, min_lat, max_lon, max_lat = self.bounds
        d_lat, d_lon = metres / self._y, metres / self._x
        return ((min_lat - d_lat, min_lon - d_lon), (max_lat + d_lat, max_lon + d_lon))


# --- the chain -------------------------------------------------------------------------------


class GeocoderChain:
    """Online providers tried in order for an address the gazetteer does not know.

    Each answer is cached in the database (found or not) for `cache_for`; answers far outside
    the district are refused; a provider's trouble becomes a `ProviderFailure`, never an
    exception, so a report that nobody can place still reaches triage. The first answer at
    least `min_confidence` sure wins; otherwise the surest answer is returned with its score
    and the caller decides (below min_confidence: ask the captain).
    """

    def __init__(
        self,
        providers: Sequence[OnlineProvider],
        *,
        sessions: SessionFactory,
        grids: Grids,
        cache_for: timedelta,
        min_confidence: float = 0.75,
        clock: Callable[[], datetime] = _utc_now,
        gazetteer: Gazetteer | None = None,
        district: BaseGeometry | None = None,
        reach_m: float = DISTRICT_REACH_M,
    ) -> None:
        self.providers = tuple(providers)
        self.grids = grids
        self.cache_for = cache_for
        self.min_confidence = min_confidence
        self.reach_m = reach_m
        self._sessions = sessions
        self._clock = clock
        area = district
        if area is None:
            area = shapely.union_all([grids.outline(key) for key in grids.keys])
        self._district = _District(area)
        self._nearby = NearbyAddresses(gazetteer or ())
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @classmethod
    def from_deployment(
        cls,
        deployment: Deployment,
        *,
        sessions: SessionFactory,
        gazetteer: Gazetteer | None = None,
        clock: Callable[[], datetime] = _utc_now,
        environ: Mapping[str, str] | None = None,
        city: str | None = None,
        reach_m: float = DISTRICT_REACH_M,
        grids: Grids | None = None,
    ) -> GeocoderChain:
        """The chain the deployment file's `geocoding` section describes. `city` (e.g. "青岛市")
        narrows Baidu's search; API keys are read from `environ` (default: os.environ)."""
        grids = grids or Grids.of(deployment)
        outlines = [grids.outline(key) for key in grids.keys]
        if deployment.routing.boundary is not None:
            outlines.append(
                read_grid(deployment.routing.boundary, label="routing.boundary").shape
            )
        district = shapely.union_all(outlines)
        viewbox = _District(district).box_around(reach_m)
        env = os.environ if environ is None else environ
        providers = [
            _provider_from(spec, viewbox=viewbox, environ=env, city=city, clock=clock)
            for spec in deployment.geocoding.providers
        ]
        return cls(
            providers,
            sessions=sessions,
            grids=grids,
            cache_for=deployment.geocoding.cache_for,
            min_confidence=deployment.geocoding.min_confidence,
            clock=clock,
            gazetteer=gazetteer,
            district=district,
            reach_m=reach_m,
        )

    def use_gazetteer(self, gazetteer: Gazetteer) -> None:
        """Answer reverse lookups from a newly loaded gazetteer."""
        self._nearby = NearbyAddresses(gazetteer)

    async def close(self) -> None:
        """Close the providers' HTTP sessions (at shutdown)."""
        for provider in self.providers:
            await provider.close()

    async def __aenter__(self) -> GeocoderChain:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def geocode(self, text: str) -> GeocodeOutcome:
        """Where an address is according to the online providers. Never raises for provider
        trouble; `failures` says which providers failed and why."""
        query = _query_text(text)
        key = normalise_address(query)[:MAX_QUERY_LENGTH]
        if not key or not self.providers:
            return GeocodeOutcome(place=None)
        failures: list[ProviderFailure] = []
        best: tuple[Place, float] | None = None
        for provider in self.providers:
            try:
                answer = await self._answer(provider, query, key)
            except ProviderTrouble as trouble:
                failures.append(ProviderFailure(provider.name, str(trouble)))
                continue
            if answer is None:
                continue
            distance = self._district.distance_m(answer.lat, answer.lon)
            if distance > self.reach_m:
                failures.append(
                    ProviderFailure(
                        provider.name,
                        f"answered a place {distance / 1000:.1f} km outside the district "
                        f"({answer.address}); refused",
                    )
                )
                continue
            place = _place(
                answer,
                station_key=self.grids.station_at(answer.lat, answer.lon),
                source=f"provider:{provider.name}",
            )
            if best is None or answer.confidence > best[1]:
                best = (place, answer.confidence)
            if answer.confidence >= self.min_confidence:
                break
        if best is None:
            return GeocodeOutcome(place=None, failures=failures)
        return GeocodeOutcome(place=best[0], failures=failures, confidence=best[1])

    async def reverse(self, lat: float, lon: float) -> str | None:
        """A readable address for a WGS-84 point: the nearest gazetteer address within
        ~150 m, else the first provider's answer, else None. Never raises for provider trouble."""
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            return None
        near = self._nearby.nearest(lat, lon, within_m=REVERSE_RADIUS_M)
        if near is not None:
            return near.address
        if not self.providers:
            return None
        provider = self.providers[0]
        cache_name = f"{provider.name}:reverse"
        key = f"{lat:.5f},{lon:.5f}"  # about a metre
        async with self._lock_for(cache_name, key):
            known, cached = await self._cached(cache_name, key)
            if known:
                return cached.address if cached is not None else None
            try:
                address = await provider.address_at(lat, lon)
            except ProviderTrouble:
                return None
            answer = ProviderAnswer(address, lat, lon, 1.0) if address else None
            await self._remember(cache_name, key, answer)
            return address

    async def _answer(
        self, provider: OnlineProvider, query: str, key: str
    ) -> ProviderAnswer | None:
        # One request per query at a time: a second report of the same address waits for the
        # first answer and takes it from the cache.
        async with self._lock_for(provider.name, key):
            known, cached = await self._cached(provider.name, key)
            if known:
                return cached
            answer = await provider.search(query)
            await self._remember(provider.name, key, answer)
            return answer

    def _lock_for(self, provider: str, key: str) -> asyncio.Lock:
        lock = self._locks.get((provider, key))
        if lock is None:
            lock = asyncio.Lock()
            self._locks[(provider, key)] = lock
        return lock

    async def _cached(self, provider: str, key: str) -> tuple[bool, ProviderAnswer | None]:
        """(True, answer-or-None) for a fresh cached answer, (False, None) when not cached."""
        since = self._clock() - self.cache_for
        try:
            async with self._sessions() as session:
                entry = await repo.cached_geocode(
                    session=session, provider=provider, query=key, since=since
                )
        except SQLAlchemyError:
            log.warning("geocode cache unreadable; asking %s", provider, exc_info=True)
            return False, None
        if entry is None:
            return False, None
        if not entry.found:
            return True, None
        if entry.lat is None or entry.lon is None:
            return False, None
        return True, ProviderAnswer(
            entry.address or "", entry.lat, entry.lon,
            entry.confidence if entry.confidence is not None else 0.0,
        )

    async def _remember(self, provider: str, key: str, answer: ProviderAnswer | None) -> None:
        entry = GeocodeCacheEntry(
            provider=provider,
            query=key,
            found=answer is not None,
            address=answer.address if answer else None,
            lat=answer.lat if answer else None,
            lon=answer.lon if answer else None,
            confidence=answer.confidence if answer else None,
            fetched_at=self._clock(),
        )
        try:
            async with self._sessions() as session:
                await repo.remember_geocode(session=session, entry=entry)
                await session.commit()
        except SQLAlchemyError:
            # The answer is still used; only the next identical query will ask again.
            log.warning("geocode cache not written for %s", provider, exc_info=True)


def _place(answer: ProviderAnswer, *, station_key: str | None, source: str) -> Place:
    place = Place(
        address=answer.address, lat=answer.lat, lon=answer.lon, station_key=station_key,
        source=source,
    )
    # Place is gaining a `confidence` field (default 1.0) in bot/locating.py; a provider's
    # guess must not look certain, so fill it in whenever it exists.
    if "confidence" in {item.name for item in dataclasses.fields(Place)}:
        place = dataclasses.replace(place, confidence=answer.confidence)  # type: ignore[call-arg]
    return place


def _query_text(text: str) -> str:
    """What is sent to a provider: printable characters, single spaces, at most 200 of them."""
    printable = "".join(char if char.isprintable() else " " for char in text or "")
    return " ".join(printable.split())[:MAX_QUERY_LENGTH]


def _provider_from(
    spec: Provider,
    *,
    viewbox: tuple[tuple[float, float], tuple[float, float]],
    environ: Mapping[str, str],
    city: str | None,
    clock: Callable[[], datetime],
) -> OnlineProvider:
    timeout = spec.timeout.total_seconds()
    interval = spec.min_interval.total_seconds()
    if spec.kind == "nominatim":
        return NominatimProvider(
            user_agent=spec.user_agent or "gridbot",
            domain=spec.domain,
            scheme=spec.scheme,
            timeout=timeout,
            min_interval=interval,
            viewbox=viewbox,
            clock=clock,
        )
    key = (environ.get(spec.api_key_env or "") or "").strip() or None
    return BaiduProvider(
        api_key=key,
        api_key_env=spec.api_key_env or "",
        domain=spec.domain,
        scheme=spec.scheme,
        user_agent=spec.user_agent,
        timeout=timeout,
        min_interval=interval,
        city=city,
        clock=clock,
    )
