"""A local stand-in for Nominatim and Baidu's geocoding v3, answering as the real services do
(formats as geopy parses them), with failure modes per test and a record of every request."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from bot.coordinates import bd09_to_wgs84, wgs84_to_bd09

Mode = Literal["normal", "slow", "error500", "ratelimit", "malformed", "garbage"]


@dataclass(frozen=True)
class FakePlace:
    """An address the fake services know, at its WGS-84 truth."""

    lat: float
    lon: float
    display_name: str
    place_rank: int = 30
    baidu_confidence: int = 80
    baidu_comprehension: int = 100
    baidu_precise: int = 1


@dataclass(frozen=True)
class SeenRequest:
    service: Literal["nominatim", "baidu"]
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float  # time.perf_counter(), the clock geopy's rate limiter uses


@dataclass
class FakeGeocoder:
    """`async with FakeGeocoder(places) as fake:` then point providers at `fake.domain` with
    scheme http. `mode` may be changed at any time; `requests` lists what arrived."""

    places: dict[str, FakePlace] = field(default_factory=dict)
    mode: Mode = "normal"
    retry_after: int = 30
    requests: list[SeenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def release(self) -> None:
        """Let the requests held by the "slow" mode answer now (with nothing found)."""
        self._release.set()

    def count(self, service: str | None = None) -> int:
        return sum(1 for r in self.requests if service is None or r.service == service)

    async def __aenter__(self) -> FakeGeocoder:
        app = web.Application()
        app.router.add_get("/search", self._nominatim_search)
        app.router.add_get("/reverse", self._nominatim_reverse)
        app.router.add_get("/geocoding/v3/", self._baidu_geocode)
        app.router.add_get("/reverse_geocoding/v3/", self._baidu_reverse)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release.set()  # let "slow" handlers finish so the server can stop
        if self._runner is not None:
            await self._runner.cleanup()

    # --- common behaviour -------------------------------------------------------------------

    async def _trouble(self, request: web.Request, service: Literal["nominatim", "baidu"]) -> (
        web.StreamResponse | None
    ):
        self.requests.append(
            SeenRequest(
                service=service,
                path=request.path,
                params=dict(request.query),
                headers=dict(request.headers),
                at=time.perf_counter(),
            )
        )
        if self.mode == "slow":
            await self._release.wait()  # longer than any timeout a test sets
            return web.json_response([])
        if self.mode == "error500":
            return web.Response(status=500, text="<html><body>Internal Server Error</body></html>",
                                content_type="text/html")
        if self.mode == "ratelimit":
            if service == "nominatim":
                return web.Response(
                    status=429, text="Too Many Requests",
                    headers={"Retry-After": str(self.retry_after)},
                )
            # Baidu keeps HTTP 200 and says so in its status code.
            return web.json_response(
                {"status": 401, "message": "当前并发量已经超过约定并发配额，限制访问"}
            )
        if self.mode == "malformed":
            return web.Response(status=200, text='{"lat": 36.1, "lon": ', content_type="text/html")
        return None

    # --- Nominatim --------------------------------------------------------------------------

    async def _nominatim_search(self, request: web.Request) -> web.StreamResponse:
        trouble = await self._trouble(request, "nominatim")
        if trouble is not None:
            return trouble
        if self.mode == "garbage":
            return web.json_response([{"lat": "north", "lon": None, "display_name": 7}])
        place = self.places.get(request.query.get("q", "").strip())
        if place is None:
            return web.json_response([])
        category_key = "category" if request.query.get("format") == "jsonv2" else "class"
        result = {
            "place_id": 1,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0.",
            "osm_type": "node",
            "osm_id": 1,
            "lat": f"{place.lat:.7f}",
            "lon": f"{place.lon:.7f}",
            category_key: "building" if place.place_rank == 30 else "highway",
            "type": "yes" if place.place_rank == 30 else "residential",
            "place_rank": place.place_rank,
            "importance": 0.00001,
            "addresstype": "building" if place.place_rank == 30 else "road",
            "name": place.display_name.split(",")[0],
            "display_name": place.display_name,
            "boundingbox": [
                f"{place.lat - 0.0001:.7f}", f"{place.lat + 0.0001:.7f}",
                f"{place.lon - 0.0001:.7f}", f"{place.lon + 0.0001:.7f}",
            ],
        }
        limit = int(request.query.get("limit", "10") or 10)
        return web.json_response([result][:limit])

    async def _nominatim_reverse(self, request: web.Request) -> web.StreamResponse:
        trouble = await self._trouble(request, "nominatim")
        if trouble is not None:
            return trouble
        if self.mode == "garbage":
            return web.json_response(["not", "a", "place"])
        place = self._nearest(float(request.query["lat"]), float(request.query["lon"]))
        if place is None:
            return web.json_response({"error": "Unable to geocode"})
        return web.json_response(
            {
                "place_id": 1,
                "lat": f"{place.lat:.7f}",
                "lon": f"{place.lon:.7f}",
                "place_rank": place.place_rank,
                "display_name": place.display_name,
                "address": {"road": place.display_name},
            }
        )

    # --- Baidu ------------------------------------------------------------------------------

    async def _baidu_geocode(self, request: web.Request) -> web.StreamResponse:
        trouble = await self._trouble(request, "baidu")
        if trouble is not None:
            return trouble
        if not request.query.get("ak"):
            return web.json_response({"status": 101, "message": "AK参数不存在"})
        if self.mode == "garbage":
            return web.json_response({"status": 0, "result": {"location": "somewhere"}})
        place = self.places.get(request.query.get("address", "").strip())
        if place is None:
            return web.json_response(
                {"status": 1, "msg": "Internal Service Error:无相关结果", "results": []}
            )
        bd = wgs84_to_bd09(lat=place.lat, lon=place.lon)  # Baidu answers in BD-09
        return web.json_response(
            {
                "status": 0,
                "result": {
                    "location": {"lng": bd.lon, "lat": bd.lat},
                    "precise": place.baidu_precise,
                    "confidence": place.baidu_confidence,
                    "comprehension": place.baidu_comprehension,
                    "level": "门址",
                },
            }
        )

    async def _baidu_reverse(self, request: web.Request) -> web.StreamResponse:
        trouble = await self._trouble(request, "baidu")
        if trouble is not None:
            return trouble
        bd_lat, bd_lon = (float(part) for part in request.query["location"].split(","))
        wgs = bd09_to_wgs84(lat=bd_lat, lon=bd_lon)
        place = self._nearest(wgs.lat, wgs.lon)
        result: dict[str, Any] = {
            "location": {"lng": bd_lon, "lat": bd_lat},
            "formatted_address": place.display_name if place else "",
            "business": "",
            "addressComponent": {"country": "中国", "city": "青岛市", "district": "李沧区"},
            "pois": [],
            "roads": [],
            "sematic_description": "",
            "cityCode": 236,
        }
        return web.Response(
            text=json.dumps({"status": 0, "result": result}, ensure_ascii=False),
            content_type="application/json",
        )

    def _nearest(self, lat: float, lon: float, within_deg: float = 0.002) -> FakePlace | None:
        best = None
        for place in self.places.values():
            distance = max(abs(place.lat - lat), abs(place.lon - lon))
            if distance <= within_deg and (best is None or distance < best[0]):
                best = (distance, place)
        return best[1] if best else None
