"""End to end: online providers behind the gazetteer, their failures, unsure guesses, borders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.lifecycle import Status

from conftest import World, running_world, sample_deployment_with
from factories import make_jpeg
from fake_geocoder import FakeGeocoder, FakePlace

# an address the gazetteer does not know, which the map service does: in 兴城路's grid
NEW_ROAD = "幸福路99号"
NEW_ROAD_PLACE = FakePlace(lat=36.156, lon=120.433, display_name="幸福路99号, 李沧区, 青岛市")


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeocoder]:
    async with FakeGeocoder(places={NEW_ROAD: NEW_ROAD_PLACE}) as server:
        yield server


@pytest.fixture
async def online_world(
    database_url: str, tmp_path: Path, fake: FakeGeocoder
) -> AsyncIterator[World]:
    provider = {
        "kind": "nominatim", "domain": fake.domain, "scheme": "http", "timeout": "2s",
        "user_agent": "gridbot-tests (tests@example.org)", "min_interval": "1s",
    }
    deployment = sample_deployment_with(tmp_path, geocoding={"providers": [provider]})
    async with running_world(database_url, deployment, tmp_path) as world:
        yield world


async def test_an_address_the_gazetteer_does_not_know_is_found_online(
    online_world: World, fake: FakeGeocoder
) -> None:
    world = online_world
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption=f"{NEW_ROAD} 井盖丢了")
    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert "兴城路社区工作站" in ack.body
    ticket = await world.ticket(1)
    assert ticket.location_source == "provider:nominatim" and ticket.station_key == "xingcheng"
    # the same address again is answered from the cache: no second request
    await world.captain.send_photo(world.intake, make_jpeg(seed=2), caption=f"{NEW_ROAD} 又丢了")
    await world.emulator.wait_for(world.intake, contains="#2")
    assert fake.count("nominatim") == 1


async def test_gazetteer_addresses_never_go_online(
    online_world: World, fake: FakeGeocoder
) -> None:
    world = online_world
    await world.captain.send_photo(world.intake, make_jpeg(seed=3), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.captain.send_text(world.intake, "今天天气真好")
    await world.settle()
    assert fake.count() == 0


@pytest.mark.parametrize("trouble", ["error500", "slow", "ratelimit", "malformed"])
async def test_when_the_map_service_fails_the_report_goes_to_triage_with_a_note(
    online_world: World, fake: FakeGeocoder, trouble: str
) -> None:
    world = online_world
    fake.mode = trouble  # type: ignore[assignment]
    await world.captain.send_photo(world.intake, make_jpeg(seed=4), caption=f"{NEW_ROAD} 井盖丢了")
    note = await world.emulator.wait_for(world.intake, contains="地图服务", timeout=10)
    assert "#1" in note.body and "街道" in note.body
    triage = await world.emulator.wait_for(world.office, contains="待分派")
    assert NEW_ROAD in triage.body
    ticket = await world.ticket(1)
    assert ticket.status == Status.NEW
    assert "triage" in [e.action for e in await world.events(1)]
    # nothing is lost: a shared location still places it
    await world.captain.send_location(world.intake, 36.156, 120.433, reply_to=note)
    await world.emulator.wait_for(world.intake, contains="兴城路社区工作站")
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_an_unsure_match_is_asked_about_not_guessed(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=5), caption="汾阳路81号 路灯不亮")
    ask = await world.emulator.wait_for(world.intake, contains="是指")
    assert "汾阳路81号" in ask.body and "汾阳路80号" in ask.body
    assert (await world.ticket(1)).status == Status.NEW
    await world.captain.send_text(world.intake, "汾阳路80号", reply_to=ask)
    placed = await world.emulator.wait_for(world.intake, contains="已登记")
    assert "汾阳路80号" in placed.body
    assert (await world.ticket(1)).status == Status.ASSIGNED


async def test_a_point_just_outside_the_district_goes_to_the_nearest_station(
    world: World,
) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=6), caption="垃圾堆在路边")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    # ~110 m north of the district's northern edge (lat 36.19), above 振华路's grid
    await world.captain.send_location(world.intake, 36.191, 120.41, reply_to=ask)
    await world.emulator.wait_for(world.intake, contains="振华路社区工作站")
    ticket = await world.ticket(1)
    assert ticket.station_key == "zhenhua"
    [locate] = [e for e in await world.events(1) if e.action == "locate"]
    assert "nearest grid" in (locate.note or "")


async def test_a_point_far_outside_goes_to_the_street_office(world: World) -> None:
    await world.captain.send_photo(world.intake, make_jpeg(seed=7), caption="垃圾堆在路边")
    ask = await world.emulator.wait_for(world.intake, contains="还缺地址")
    await world.captain.send_location(world.intake, 36.25, 120.41, reply_to=ask)
    await world.emulator.wait_for(world.office, contains="待分派")
    assert (await world.ticket(1)).station_key is None
