"""Online geocoders through a local fake Nominatim/Baidu: order, coordinates, district limits,
cache, rate limit, and every kind of provider trouble ending as a failure note, never a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from geopy.distance import geodesic
from shapely.geometry import box

from bot.deployment import Deployment, Geocoding, Provider
from bot.geocoding import (
    BaiduProvider,
    GeocoderChain,
    NearbyAddresses,
    NominatimProvider,
    OnlineProvider,
    baidu_confidence,
    nominatim_confidence,
)
from bot.locating import Gazetteer, GazetteerEntry, Grids
from storage.db import SessionFactory, create_engine, migrate, session_factory

from conftest import Clock
from fake_geocoder import FakeGeocoder, FakePlace

USER_AGENT = "gridbot-tests (tests@example.org)"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# A small district of two grids in Licang; the fake services know a few places in and out of it.
GRIDS = Grids(
    {"north": box(120.40, 36.165, 120.42, 36.18), "south": box(120.40, 36.15, 120.42, 36.165)}
)
PLACES = {
    "汾阳路99号": FakePlace(36.1705, 120.4102, "99, 汾阳路, 李沧区, 青岛市, 山东省, 中国"),
    "书院路11号": FakePlace(36.1601, 120.408072, "11, 书院路, 李沧区, 青岛市, 山东省, 中国"),
    # The same street name in Shanghai: what a provider returns for a bare "汾阳路".
    "汾阳路": FakePlace(31.2109, 121.4485, "汾阳路, 徐汇区, 上海市, 中国", place_rank=26),
    # Just outside the grids (2 km north): still this district's business.
    "北岭村5号": FakePlace(36.198, 120.41, "5, 北岭村, 李沧区, 青岛市, 山东省, 中国"),
    # A whole street: Nominatim's place_rank 26, Baidu's fuzzy point.
    "虎山路": FakePlace(
        36.158, 120.41, "虎山路, 李沧区, 青岛市, 山东省, 中国", place_rank=26,
        baidu_confidence=50, baidu_comprehension=80, baidu_precise=0,
    ),
}
GAZETTEER = Gazetteer(
    [
        GazetteerEntry("汾阳路1号", ("Fenyang Rd 1",), 36.1741, 120.403, None, 2),
        GazetteerEntry("书院路1号", (), 36.16, 120.405, "south", 3),
    ]
)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).meters)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeocoder]:
    async with FakeGeocoder(places=dict(PLACES)) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    moment = Clock()
    moment.set(START)
    return moment


def nominatim(
    fake: FakeGeocoder, clock: Callable[[], datetime], *, timeout: float = 2.0,
    min_interval: float = 0.0, viewbox: bool = False,
) -> NominatimProvider:
    return NominatimProvider(
        user_agent=USER_AGENT, domain=fake.domain, scheme="http", timeout=timeout,
        min_interval=min_interval, clock=clock,
        viewbox=((36.14, 120.39), (36.19, 120.43)) if viewbox else None,
    )


def baidu(
    fake: FakeGeocoder, clock: Callable[[], datetime], *, key: str | None = "test-ak",
    timeout: float = 2.0, city: str | None = None,
) -> BaiduProvider:
    return BaiduProvider(
        api_key=key, api_key_env="GRIDBOT_BAIDU_AK", domain=fake.domain, scheme="http",
        timeout=timeout, min_interval=0.0, city=city, clock=clock,
    )


def chain(
    sessions: SessionFactory, clock: Callable[[], datetime], *providers: OnlineProvider,
    gazetteer: Gazetteer | None = None,
) -> GeocoderChain:
    return GeocoderChain(
        providers, sessions=sessions, grids=GRIDS, cache_for=timedelta(days=30),
        min_confidence=0.75, clock=clock, gazetteer=gazetteer,
    )


# --- answers ------------------------------------------------------------------------------------


async def test_nominatim_answer_is_a_place_in_its_grid(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock, viewbox=True)) as geocoder:
        outcome = await geocoder.geocode("汾阳路99号")
    assert outcome.failures == []
    assert outcome.place is not None
    assert outcome.place.source == "provider:nominatim"
    assert outcome.place.station_key == "north"
    assert outcome.place.address.startswith("99, 汾阳路")
    assert outcome.confidence == pytest.approx(0.9)
    assert metres((outcome.place.lat, outcome.place.lon), (36.1705, 120.4102)) < 0.5
    (request,) = fake.requests
    # The usage policy: an identifying user agent; results limited to the district's box.
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.params["bounded"] == "1"
    assert request.params["viewbox"] == "120.39,36.14,120.43,36.19"


async def test_baidu_bd09_answer_lands_within_a_metre_of_the_wgs84_truth(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, baidu(fake, clock, city="青岛市")) as geocoder:
        outcome = await geocoder.geocode("书院路11号")
    assert outcome.place is not None
    assert outcome.place.source == "provider:baidu"
    assert outcome.place.station_key == "south"
    truth = (PLACES["书院路11号"].lat, PLACES["书院路11号"].lon)
    # Unconverted, Baidu's point would be over a kilometre away (in another grid, maybe).
    assert metres((outcome.place.lat, outcome.place.lon), truth) < 1.0
    assert outcome.place.address == "书院路11号"  # Baidu returns no address text
    assert outcome.confidence == pytest.approx(0.8)
    # A provider's guess never looks certain (Place.confidence defaults to 1.0).
    assert getattr(outcome.place, "confidence", 0.8) == pytest.approx(0.8)
    (request,) = fake.requests
    assert request.params["ak"] == "test-ak"
    assert request.params["city"] == "青岛市"


async def test_providers_are_asked_in_order_and_a_confident_answer_stops_the_chain(
    sessions: SessionFactory, clock: Clock
) -> None:
    async with (
        FakeGeocoder(places={}) as first,
        FakeGeocoder(places=dict(PLACES)) as second,
        FakeGeocoder(places=dict(PLACES)) as third,
    ):
        providers = (nominatim(first, clock), baidu(second, clock), nominatim(third, clock))
        async with chain(sessions, clock, *providers) as geocoder:
            outcome = await geocoder.geocode("汾阳路99号")
        assert outcome.place is not None and outcome.place.source == "provider:baidu"
        assert (first.count(), second.count(), third.count()) == (1, 1, 0)


async def test_a_failing_provider_is_noted_and_the_next_one_answers(
    sessions: SessionFactory, clock: Clock
) -> None:
    async with (
        FakeGeocoder(mode="error500") as broken,
        FakeGeocoder(places=dict(PLACES)) as ok,
        chain(sessions, clock, nominatim(broken, clock), baidu(ok, clock)) as geocoder,
    ):
        outcome = await geocoder.geocode("汾阳路99号")
    assert outcome.place is not None and outcome.place.source == "provider:baidu"
    assert [failure.provider for failure in outcome.failures] == ["nominatim"]
    assert "500" in outcome.failures[0].reason


async def test_an_unsure_answer_lets_the_next_provider_try_and_the_surest_wins(
    sessions: SessionFactory, clock: Clock
) -> None:
    places = dict(PLACES)
    places["虎山路"] = FakePlace(36.158, 120.41, "虎山路", place_rank=26)  # a street: 0.5
    async with (
        FakeGeocoder(places=places) as first,
        FakeGeocoder(places=dict(PLACES)) as second,
        chain(sessions, clock, nominatim(first, clock), baidu(second, clock)) as geocoder,
    ):
        outcome = await geocoder.geocode("虎山路")
        # Both asked; Baidu's fuzzy point (0.5) is no surer than Nominatim's street (0.5).
        assert (first.count(), second.count()) == (1, 1)
    assert outcome.place is not None
    assert outcome.confidence is not None and outcome.confidence < 0.75
    assert outcome.place.source == "provider:nominatim"


async def test_an_answer_in_another_city_is_refused(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        outcome = await geocoder.geocode("汾阳路")
        again = await geocoder.geocode("汾阳路")
    assert outcome.place is None
    (failure,) = outcome.failures
    assert failure.provider == "nominatim"
    assert "outside the district" in failure.reason and "上海市" in failure.reason
    # The cached answer is checked again, and still refused, without asking again.
    assert again.place is None and fake.count() == 1


async def test_an_answer_just_outside_the_grids_is_kept_without_a_station(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        outcome = await geocoder.geocode("北岭村5号")
    assert outcome.place is not None
    assert outcome.place.station_key is None  # routing decides: nearest station or triage
    assert outcome.failures == []


async def test_unknown_address_is_no_place_and_no_failure(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock), baidu(fake, clock)) as geocoder:
        outcome = await geocoder.geocode("不存在路404号")
    assert outcome.place is None
    assert outcome.failures == []  # Baidu's "无相关结果" is a miss, not a server error
    assert fake.count("nominatim") == fake.count("baidu") == 1


async def test_no_providers_configured_means_no_place(sessions: SessionFactory) -> None:
    async with chain(sessions, Clock()) as geocoder:
        outcome = await geocoder.geocode("汾阳路99号")
    assert outcome.place is None and outcome.failures == []


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t", "！！！。。。", "<b>&amp;</b>", "\x00\x07"], ids=repr
)
async def test_text_without_an_address_asks_nobody(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock, text: str
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        outcome = await geocoder.geocode(text)
    assert outcome.place is None and outcome.failures == []
    # "<b>&amp;</b>" normalises to letters, so it may be asked; nothing else is.
    assert fake.count() == (1 if text.startswith("<b>") else 0)


async def test_an_absurdly_long_text_is_cut_before_it_is_sent(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    text = "汾阳路" * 5_000 + "\x00\n"
    async with chain(sessions, clock, nominatim(fake, clock), baidu(fake, clock)) as geocoder:
        outcome = await geocoder.geocode(text)
    assert outcome.place is None and outcome.failures == []
    nominatim_query = fake.requests[0].params["q"]
    baidu_query = fake.requests[1].params["address"]
    assert len(nominatim_query) == 200
    assert len(baidu_query.encode()) <= 84  # Baidu's documented limit
    assert "\x00" not in nominatim_query


# --- cache ----------------------------------------------------------------------------------


async def test_a_cached_answer_makes_no_request_until_it_expires(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        first = await geocoder.geocode("汾阳路99号")
        clock.set(START + timedelta(days=29))
        second = await geocoder.geocode("汾阳路 99 号")  # the same address, spaced
        assert fake.count() == 1
        assert second == first
        clock.set(START + timedelta(days=30, seconds=1))
        third = await geocoder.geocode("汾阳路99号")
    assert fake.count() == 2
    assert third.place == first.place


async def test_a_miss_is_cached_too(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        await geocoder.geocode("不存在路404号")
        fake.places["不存在路404号"] = PLACES["汾阳路99号"]  # the map learns it later...
        outcome = await geocoder.geocode("不存在路404号")
        assert outcome.place is None and fake.count() == 1  # ...we see it after cache_for
        clock.set(START + timedelta(days=31))
        assert (await geocoder.geocode("不存在路404号")).place is not None


async def test_the_cache_survives_a_restart(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        await geocoder.geocode("汾阳路99号")
    async with chain(sessions, clock, nominatim(fake, clock)) as restarted:
        outcome = await restarted.geocode("汾阳路99号")
    assert outcome.place is not None and fake.count() == 1


async def test_the_same_address_reported_twice_at_once_is_asked_once(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        outcomes = await asyncio.gather(*(geocoder.geocode("汾阳路99号") for _ in range(5)))
    assert fake.count() == 1
    assert all(outcome.place == outcomes[0].place for outcome in outcomes)


async def test_an_unusable_cache_does_not_stop_geocoding(
    fake: FakeGeocoder, clock: Clock, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")  # no tables
    try:
        async with chain(session_factory(engine), clock, nominatim(fake, clock)) as geocoder:
            outcome = await geocoder.geocode("汾阳路99号")
    finally:
        await engine.dispose()
    assert outcome.place is not None and outcome.place.station_key == "north"


# --- provider trouble -----------------------------------------------------------------------

TROUBLE = {
    "slow": "no answer within 0.2 s",
    "error500": "500",
    "ratelimit": "rate limited",
    "malformed": "malformed answer",
    "garbage": "malformed answer",
}


@pytest.mark.parametrize("kind", ["nominatim", "baidu"])
@pytest.mark.parametrize("mode", list(TROUBLE))
async def test_provider_trouble_is_a_failure_not_an_exception_and_is_not_cached(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock, mode: str, kind: str
) -> None:
    fake.mode = mode  # type: ignore[assignment]
    provider = (
        nominatim(fake, clock, timeout=0.2) if kind == "nominatim"
        else baidu(fake, clock, timeout=0.2)
    )
    async with chain(sessions, clock, provider) as geocoder:
        outcome = await geocoder.geocode("汾阳路99号")
        assert outcome.place is None
        (failure,) = outcome.failures
        assert failure.provider == kind
        assert TROUBLE[mode] in failure.reason
        # Trouble is not remembered as "unknown": once the service recovers (and any rate
        # limit rest is over), the next report is placed.
        fake.mode = "normal"
        clock.set(START + timedelta(hours=2))
        recovered = await geocoder.geocode("汾阳路99号")
    assert recovered.place is not None and recovered.failures == []


async def test_after_a_429_the_provider_rests_as_told(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    fake.mode, fake.retry_after = "ratelimit", 30
    async with chain(sessions, clock, nominatim(fake, clock)) as geocoder:
        await geocoder.geocode("汾阳路99号")
        fake.mode = "normal"
        clock.set(START + timedelta(seconds=20))
        resting = await geocoder.geocode("书院路11号")
        assert fake.count() == 1  # not asked while resting
        assert "not asked again for 10 s" in resting.failures[0].reason
        clock.set(START + timedelta(seconds=31))
        assert (await geocoder.geocode("书院路11号")).place is not None
    assert fake.count() == 2


async def test_a_missing_api_key_is_a_failure_without_a_request(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, baidu(fake, clock, key=None)) as geocoder:
        outcome = await geocoder.geocode("汾阳路99号")
        assert await geocoder.reverse(36.17, 120.41) is None
    assert outcome.place is None
    assert outcome.failures[0].reason == (
        "no API key (environment variable GRIDBOT_BAIDU_AK is not set)"
    )
    assert fake.count() == 0


async def test_an_unreachable_provider_is_a_failure(
    sessions: SessionFactory, clock: Clock
) -> None:
    async with FakeGeocoder() as gone:
        domain = gone.domain
    provider = NominatimProvider(
        user_agent=USER_AGENT, domain=domain, scheme="http", timeout=1.0, clock=clock
    )
    async with chain(sessions, clock, provider) as geocoder:
        outcome = await geocoder.geocode("汾阳路99号")
    assert outcome.place is None
    assert outcome.failures[0].provider == "nominatim"


# --- rate limit -----------------------------------------------------------------------------


async def test_requests_to_a_provider_are_spaced_by_min_interval_whoever_asks(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    # Long enough that delivery jitter on a loaded 2-core CI machine (seen: 8 ms) stays small
    # beside it: the limiter's own slots are exact, the server's arrival times are not.
    interval = 0.2
    provider = nominatim(fake, clock, min_interval=interval)
    async with chain(sessions, clock, provider) as geocoder:
        # Five reports at once, different addresses, plus a reverse lookup for a chief.
        await asyncio.gather(
            *(geocoder.geocode(f"汾阳路{number}号") for number in range(100, 105)),
            geocoder.reverse(36.1705, 120.4102),
        )
    stamps = sorted(request.at for request in fake.requests)
    assert len(stamps) == 6
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    # The limiter spaces its slots by `interval` on this same clock (time.perf_counter); the
    # server sees them a little later, so allow some delivery jitter.
    assert min(gaps) >= interval - 0.05
    assert stamps[-1] - stamps[0] >= 5 * interval - 0.05


# --- reverse --------------------------------------------------------------------------------


async def test_reverse_names_the_nearby_gazetteer_address_without_asking(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock), gazetteer=GAZETTEER) as geocoder:
        # ~90 m from 汾阳路1号
        assert await geocoder.reverse(36.1741, 120.404) == "汾阳路1号"
    assert fake.count() == 0


async def test_reverse_asks_the_first_provider_beyond_150_m_and_caches(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock), gazetteer=GAZETTEER) as geocoder:
        first = await geocoder.reverse(36.1705, 120.4102)
        second = await geocoder.reverse(36.1705, 120.4102)
    assert first == second == "99, 汾阳路, 李沧区, 青岛市, 山东省, 中国"
    assert fake.count() == 1


async def test_baidu_reverse_is_asked_in_bd09(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    async with chain(sessions, clock, baidu(fake, clock)) as geocoder:
        address = await geocoder.reverse(36.1601, 120.408072)
    assert address == "11, 书院路, 李沧区, 青岛市, 山东省, 中国"
    bd_lat, bd_lon = (float(x) for x in fake.requests[0].params["location"].split(","))
    assert metres((bd_lat, bd_lon), (36.1601, 120.408072)) > 700  # BD-09, not WGS-84


@pytest.mark.parametrize("mode", ["slow", "error500", "ratelimit", "malformed", "garbage"])
async def test_reverse_trouble_is_just_no_address(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock, mode: str
) -> None:
    fake.mode = mode  # type: ignore[assignment]
    async with chain(sessions, clock, nominatim(fake, clock, timeout=0.2)) as geocoder:
        assert await geocoder.reverse(36.1705, 120.4102) is None


@pytest.mark.parametrize(
    ("lat", "lon"), [(float("nan"), 120.0), (91.0, 120.0), (36.0, float("inf")), (0.0, 181.0)]
)
async def test_reverse_of_a_point_not_on_earth_is_none(
    sessions: SessionFactory, fake: FakeGeocoder, clock: Clock, lat: float, lon: float
) -> None:
    async with chain(sessions, clock, nominatim(fake, clock), gazetteer=GAZETTEER) as geocoder:
        assert await geocoder.reverse(lat, lon) is None
    assert fake.count() == 0


def test_nearby_addresses_finds_the_closest_within_the_radius() -> None:
    nearby = NearbyAddresses(GAZETTEER)
    closest = nearby.nearest(36.1600, 120.4049, within_m=150)
    assert closest is not None and closest.address == "书院路1号"
    assert nearby.nearest(36.1660, 120.4049, within_m=150) is None  # ~670 m from both
    assert NearbyAddresses([]).nearest(36.16, 120.405, within_m=150) is None


# --- configuration and scores ---------------------------------------------------------------


async def test_chain_from_the_deployment_file(
    deployment: Deployment, sessions: SessionFactory, fake: FakeGeocoder, clock: Clock
) -> None:
    geocoding = Geocoding(
        providers=(
            Provider(kind="nominatim", domain=fake.domain, scheme="http", user_agent=USER_AGENT,
                     min_interval=timedelta(seconds=1), timeout=timedelta(seconds=3)),
            Provider(kind="baidu", domain=fake.domain, scheme="http",
                     api_key_env="GRIDBOT_TEST_BAIDU_AK"),
        ),
        cache_for=timedelta(days=7),
        min_confidence=0.8,
    )
    configured = deployment.model_copy(update={"geocoding": geocoding})
    geocoder = GeocoderChain.from_deployment(
        configured, sessions=sessions, clock=clock, environ={}
    )
    async with geocoder:
        assert [p.name for p in geocoder.providers] == ["nominatim", "baidu"]
        assert geocoder.providers[0].timeout == 3.0
        assert geocoder.cache_for == timedelta(days=7) and geocoder.min_confidence == 0.8
        outcome = await geocoder.geocode("不存在路404号")
    # Nominatim was asked within the district's box; Baidu has no key in this environment.
    viewbox = [float(x) for x in fake.requests[0].params["viewbox"].split(",")]
    for station in deployment.stations:
        min_lon, min_lat, max_lon, max_lat = station.area.shape.bounds
        assert viewbox[0] < min_lon and viewbox[1] < min_lat
        assert viewbox[2] > max_lon and viewbox[3] > max_lat
    assert [f.provider for f in outcome.failures] == ["baidu"]
    assert fake.count("baidu") == 0


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        ({"place_rank": 30, "importance": 0.00001}, 0.9),  # a house, however obscure
        ({"place_rank": "28"}, 0.8),
        ({"place_rank": 26, "importance": 0.6}, 0.5),  # a famous street is still a street
        ({"place_rank": 20}, 0.3),
        ({"place_rank": 8}, 0.1),
        ({"class": "building", "type": "yes"}, 0.9),  # older servers: no place_rank
        ({"category": "amenity", "type": "school"}, 0.9),
        ({"class": "highway", "type": "residential"}, 0.5),
        ({"class": "place", "type": "suburb"}, 0.3),
        ({"place_rank": None}, 0.1),
        ({}, 0.1),
    ],
)
def test_nominatim_confidence(raw: dict[str, object], score: float) -> None:
    assert nominatim_confidence(raw) == pytest.approx(score)


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        ({"precise": 1, "confidence": 80, "comprehension": 100}, 0.8),
        ({"precise": 1, "confidence": 100, "comprehension": 90}, 0.9),
        ({"precise": 0, "confidence": 100, "comprehension": 100}, 0.7),  # fuzzy point
        ({"precise": 1, "confidence": 50}, 0.5),
        ({"confidence": "75", "comprehension": "x"}, 0.75),
        ({"confidence": 250}, 1.0),
        ({"confidence": True}, 0.5),
        ({}, 0.5),
    ],
)
def test_baidu_confidence(raw: dict[str, object], score: float) -> None:
    assert baidu_confidence(raw) == pytest.approx(score)
