"""Grid routing (inside, on a border, nearest within true metres, outside), the vectorised path,
`gridbot grids check` on crafted districts, and its PNG map."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import yaml
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from shapely.geometry import MultiPolygon, Point, Polygon, box
from typer.testing import CliRunner

from bot.deployment import load_deployment
from bot.grids import GridError, Grids, LocalMetres, Routing, check_grids
from bot.grids_cli import TicketDot, app, find_cjk_font, recent_tickets
from storage import repo
from storage.db import create_engine, migrate, session_factory
from storage.models import Ticket

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"

# A crafted district at Qingdao's latitude, where a degree of longitude is ~90 km and one of
# latitude ~111 km: distances in degrees would be wrong by up to 20%.
ALPHA = box(120.40, 36.16, 120.41, 36.17)
BETA = box(120.41, 36.16, 120.42, 36.17)  # shares ALPHA's eastern edge
# A ring with a courtyard in the middle that belongs to nobody.
RING = Polygon(
    [(120.43, 36.16), (120.44, 36.16), (120.44, 36.17), (120.43, 36.17)],
    [[(120.434, 36.164), (120.436, 36.164), (120.436, 36.166), (120.434, 36.166)]],
)
ISLANDS = MultiPolygon([box(120.40, 36.18, 120.405, 36.185), box(120.41, 36.18, 120.415, 36.185)])
CRAFTED = {"beta": BETA, "alpha": ALPHA, "ring": RING, "islands": ISLANDS}


@pytest.fixture(scope="module")
def grids() -> Grids:
    return Grids(CRAFTED)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GRIDBOT_"):
            monkeypatch.delenv(name)


def metres_away(lat: float, lon: float, *, metres: float, bearing: float) -> tuple[float, float]:
    point = geodesic(meters=metres).destination((lat, lon), bearing=bearing)
    return point.latitude, point.longitude


def true_metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).meters)


# --- routing one point -------------------------------------------------------------------------


def test_a_point_inside_a_grid(grids: Grids) -> None:
    assert grids.route(36.165, 120.405, within_m=200) == Routing("alpha", "inside", 0.0)
    assert grids.station_at(36.165, 120.415) == "beta"
    assert grids.station_at(36.182, 120.412) == "islands"  # its second island


@pytest.mark.parametrize(
    ("lat", "lon", "station"),
    [
        (36.165, 120.41, "alpha"),  # alpha | beta
        (36.16, 120.41, "alpha"),  # the corner they share
        (36.17, 120.405, "alpha"),  # alpha's own outer edge counts as alpha's
        (36.164, 120.435, "ring"),  # the courtyard's edge is the ring's
    ],
)
def test_a_point_on_a_border_goes_to_one_station_whatever_the_order(
    lat: float, lon: float, station: str
) -> None:
    forwards, backwards = Grids(CRAFTED), Grids(dict(reversed(CRAFTED.items())))
    assert forwards.station_at(lat, lon) == backwards.station_at(lat, lon) == station
    assert forwards.route(lat, lon, within_m=0) == Routing(station, "inside", 0.0)


def test_inside_one_grid_beats_the_edge_of_another() -> None:
    # zulu covers alpha's eastern edge: the point is inside zulu, only on alpha's edge.
    grids = Grids({"alpha": ALPHA, "zulu": box(120.405, 36.16, 120.415, 36.17)})
    assert grids.station_at(36.165, 120.41) == "zulu"
    # Inside both: the alphabetically first key.
    assert grids.station_at(36.165, 120.407) == "alpha"
    assert grids.overlaps() == [("alpha", "zulu")]


def test_the_courtyard_of_a_ring_belongs_to_nobody(grids: Grids) -> None:
    assert grids.station_at(36.165, 120.435) is None
    # ...but within 200 m of the ring. The courtyard is 0.002° square: its sides east and
    # west (≈90 m away) are nearer than north and south (≈111 m).
    routing = grids.route(36.165, 120.435, within_m=200)
    assert routing.station_key == "ring" and routing.how == "nearest"
    assert routing.distance_m == pytest.approx(
        true_metres((36.165, 120.435), (36.165, 120.434)), rel=1e-3
    )


@pytest.mark.parametrize(
    ("start", "bearing", "metres", "station"),
    [
        ((36.17, 120.405), 0, 100, "alpha"),  # due north of alpha's top edge
        ((36.16, 120.415), 180, 150, "beta"),  # due south of beta
        ((36.165, 120.40), 270, 60, "alpha"),  # due west of alpha
        ((36.16, 120.42), 135, 180, "beta"),  # south-east of beta's corner: the corner counts
        ((36.17, 120.44), 45, 199, "ring"),  # just inside the limit, diagonally
    ],
)
def test_a_point_just_outside_goes_to_the_nearest_grid_in_true_metres(
    grids: Grids, start: tuple[float, float], bearing: float, metres: float, station: str
) -> None:
    lat, lon = metres_away(*start, metres=metres, bearing=bearing)
    assert grids.station_at(lat, lon) is None
    routing = grids.route(lat, lon, within_m=200)
    assert routing.station_key == station
    assert routing.how == "nearest"
    assert routing.distance_m is not None
    # The nearest point of the grid is `start` itself here (straight out from an edge, or a
    # corner): the distance must match geopy's geodesic within 0.1%.
    assert routing.distance_m == pytest.approx(true_metres((lat, lon), start), rel=1e-3)
    assert grids.nearest(lat, lon, within_m=200) == (station, routing.distance_m)


def test_nearest_measures_metres_not_degrees() -> None:
    # From here east is 0.0015° of longitude (≈135 m), north 0.0013° of latitude (≈144 m):
    # nearer in degrees is north, nearer in metres is east.
    lat, lon = 36.1587, 120.3985
    grids = Grids(
        {"east": box(120.40, 36.15, 120.41, 36.158), "north": box(120.39, 36.16, 120.397, 36.17)}
    )
    station, distance = grids.nearest(lat, lon, within_m=500) or ("", 0.0)
    assert station == "east"
    assert distance == pytest.approx(true_metres((lat, lon), (36.158, 120.40)), rel=1e-3)


@pytest.mark.parametrize("metres", [201, 250, 1000])
def test_a_point_beyond_the_distance_goes_to_triage(grids: Grids, metres: float) -> None:
    lat, lon = metres_away(36.16, 120.405, metres=metres, bearing=180)  # south of alpha
    assert grids.nearest(lat, lon, within_m=200) is None
    assert grids.route(lat, lon, within_m=200) == Routing(None, "outside", None)
    # With a wider allowance it is found, at the right distance.
    assert grids.route(lat, lon, within_m=1500).distance_m == pytest.approx(metres, rel=1e-3)


def test_zero_distance_turns_nearest_off(grids: Grids) -> None:
    lat, lon = metres_away(36.17, 120.405, metres=1, bearing=0)
    assert grids.route(lat, lon, within_m=0) == Routing(None, "outside", None)
    assert grids.nearest(36.165, 120.405, within_m=0) == ("alpha", 0.0)


def test_far_away_and_no_grids_at_all() -> None:
    assert Grids(CRAFTED).route(0.0, 0.0, within_m=5000) == Routing(None, "outside", None)
    empty = Grids({})
    assert empty.route(36.165, 120.405, within_m=200) == Routing(None, "outside", None)
    assert empty.stations_at([36.165], [120.405]) == [None]
    assert empty.keys == () and "alpha" not in empty


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 120.4), (36.1, 181.0), (-90.5, 0), (float("nan"), 120.4), (36.1, float("inf"))],
)
def test_a_point_not_on_earth_is_refused(grids: Grids, lat: float, lon: float) -> None:
    for call in (
        lambda: grids.station_at(lat, lon),
        lambda: grids.nearest(lat, lon, within_m=200),
        lambda: grids.route(lat, lon, within_m=200),
        lambda: grids.stations_at([36.165, lat], [120.405, lon]),
    ):
        with pytest.raises(ValueError, match="not a point on Earth"):
            call()


@pytest.mark.parametrize("within", [-1.0, float("nan"), float("inf"), 5001.0])
def test_a_nonsense_distance_is_refused(grids: Grids, within: float) -> None:
    with pytest.raises(ValueError, match="distance"):
        grids.route(36.165, 120.405, within_m=within)
    with pytest.raises(ValueError, match="distance"):
        grids.nearest(36.2, 120.405, within_m=within)


def test_the_old_interface_still_holds(grids: Grids, tmp_path: Path) -> None:
    assert grids.keys == ("alpha", "beta", "islands", "ring")
    assert "ring" in grids and "nosuch" not in grids and 3 not in grids
    assert grids.outline("alpha").equals(ALPHA)
    with pytest.raises(KeyError):
        grids.outline("nosuch")
    assert grids.overlaps() == []
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(GridError, match="grid of 'alpha'.*not valid JSON"):
        Grids.from_files({"alpha": broken})


def test_the_sample_district_routes_each_grid_to_its_station() -> None:
    deployment = load_deployment(SAMPLE)
    grids = Grids({station.key: station.area.shape for station in deployment.stations})
    for station in deployment.stations:
        inside = station.area.shape.representative_point()
        assert grids.route(inside.y, inside.x, within_m=200) == Routing(station.key, "inside", 0.0)


# --- the local projection ---------------------------------------------------------------------


@pytest.mark.parametrize("latitude", [0.0, 22.5, 36.16, 45.0, 60.0])
@pytest.mark.parametrize("bearing", [0, 30, 90, 135, 200, 290])
def test_local_metres_agree_with_the_geodesic(latitude: float, bearing: float) -> None:
    local = LocalMetres(lat=latitude, lon=120.4)
    for metres in (10, 200, 2000, 5000):
        lat, lon = metres_away(latitude, 120.4, metres=metres, bearing=bearing)
        projected = local.forward(Point(lon, lat))
        assert math.hypot(projected.x, projected.y) == pytest.approx(metres, rel=2e-3)
        back = local.backward(projected)
        assert (back.y, back.x) == pytest.approx((lat, lon), abs=1e-12)


# --- many points at once ----------------------------------------------------------------------

_EDGE_POINTS = [
    (y, x)
    for shape in CRAFTED.values()
    for part in shapely.get_parts(shape)
    for ring in (part.exterior, *part.interiors)
    for x, y in shapely.segmentize(ring, 0.0025).coords
]


@settings(max_examples=60, deadline=None)
@given(
    random_points=st.lists(
        st.tuples(st.floats(36.155, 36.19), st.floats(120.395, 120.445)), max_size=40
    ),
    border_points=st.lists(st.sampled_from(_EDGE_POINTS), max_size=20),
)
def test_the_vectorised_path_agrees_with_the_scalar_one(
    random_points: list[tuple[float, float]], border_points: list[tuple[float, float]]
) -> None:
    grids = Grids(CRAFTED | {"zulu": box(120.405, 36.163, 120.433, 36.168)})  # overlaps three
    points = random_points + border_points
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    assert grids.stations_at(lats, lons) == [grids.station_at(lat, lon) for lat, lon in points]


def test_a_million_points_in_one_call(grids: Grids) -> None:
    rng = np.random.default_rng(7)
    lats = rng.uniform(36.155, 36.19, 1_000_000)
    lons = rng.uniform(120.395, 120.445, 1_000_000)
    indices = grids.station_indices_at(lats, lons)
    assert indices.shape == (1_000_000,)
    sample = rng.choice(1_000_000, 500, replace=False)
    expected = [grids.station_at(lats[i], lons[i]) for i in sample]
    assert [grids.keys[indices[i]] if indices[i] >= 0 else None for i in sample] == expected


def test_lists_of_different_lengths_are_refused(grids: Grids) -> None:
    with pytest.raises(ValueError, match="same length"):
        grids.stations_at([36.1, 36.2], [120.4])
    with pytest.raises(ValueError, match="same length"):
        grids.stations_at([[36.1]], [[120.4]])
    assert grids.stations_at([], []) == []


# --- checking grids ---------------------------------------------------------------------------


def rectangle_m2(west: float, south: float, east: float, north: float) -> float:
    """A small lon/lat rectangle's area from geodesic side lengths (at its middle)."""
    middle = (south + north) / 2
    width = true_metres((middle, west), (middle, east))
    height = true_metres((south, west), (north, west))
    return width * height


def test_clean_grids_pass_the_check() -> None:
    report = check_grids(
        {"alpha": ALPHA, "beta": BETA}, boundary=box(120.40, 36.16, 120.42, 36.17)
    )
    assert report.ok
    assert report.overlaps == report.gaps == report.outside == ()
    assert report.areas_m2["alpha"] == pytest.approx(rectangle_m2(*ALPHA.bounds), rel=2e-3)
    assert report.boundary_m2 == pytest.approx(
        rectangle_m2(120.40, 36.16, 120.42, 36.17), rel=2e-3
    )


def test_an_overlap_is_found_with_its_area_in_square_metres() -> None:
    shifted = box(120.409, 36.16, 120.42, 36.17)  # 0.001° over alpha: ~90 m × 1.1 km
    report = check_grids({"alpha": ALPHA, "beta": shifted})
    assert not report.ok
    [overlap] = report.overlaps
    assert overlap.stations == ("alpha", "beta")
    assert overlap.area_m2 == pytest.approx(rectangle_m2(120.409, 36.16, 120.41, 36.17), rel=3e-3)
    assert box(120.409, 36.16, 120.41, 36.17).contains(Point(overlap.lon, overlap.lat))


def test_a_gap_in_the_district_is_found_with_a_point_inside_it() -> None:
    boundary = box(120.40, 36.16, 120.42, 36.172)  # a strip along the north nobody covers
    report = check_grids({"alpha": ALPHA, "beta": BETA}, boundary=boundary)
    assert not report.ok
    [gap] = report.gaps
    assert gap.stations == ()
    assert gap.area_m2 == pytest.approx(rectangle_m2(120.40, 36.17, 120.42, 36.172), rel=3e-3)
    assert box(120.40, 36.17, 120.42, 36.172).contains(Point(gap.lon, gap.lat))


def test_a_grid_reaching_outside_the_district_is_a_warning_not_a_failure() -> None:
    report = check_grids(
        {"alpha": ALPHA, "beta": BETA}, boundary=box(120.40, 36.16, 120.418, 36.17)
    )
    assert report.ok
    [outside] = report.outside
    assert outside.stations == ("beta",)
    assert outside.area_m2 == pytest.approx(rectangle_m2(120.418, 36.16, 120.42, 36.17), rel=3e-3)


def test_without_a_boundary_a_hole_between_grids_is_a_gap() -> None:
    report = check_grids({"ring": RING, "alpha": ALPHA})
    [gap] = report.gaps
    assert gap.area_m2 == pytest.approx(rectangle_m2(120.434, 36.164, 120.436, 36.166), rel=3e-3)
    # An island grid filling part of the courtyard leaves only the rest as a gap.
    island = box(120.434, 36.164, 120.435, 36.166)
    [rest] = check_grids({"ring": RING, "island": island}).gaps
    assert rest.area_m2 == pytest.approx(gap.area_m2 / 2, rel=3e-3)


def test_digitising_noise_below_the_tolerance_is_ignored() -> None:
    nudged = box(120.41 - 1e-8, 36.16, 120.42, 36.17)  # ~1 mm over alpha along 1.1 km: ~1 m²
    report = check_grids({"alpha": ALPHA, "beta": nudged}, tolerance_m2=5)
    assert report.ok and report.ignored_slivers == 1
    strict = check_grids({"alpha": ALPHA, "beta": nudged}, tolerance_m2=0)
    assert not strict.ok
    with pytest.raises(ValueError, match="tolerance"):
        check_grids({"alpha": ALPHA}, tolerance_m2=-1)


def test_tiny_and_huge_grids_are_pointed_out() -> None:
    areas = {
        "alpha": ALPHA,
        "beta": BETA,
        "crumb": box(120.42, 36.16, 120.4201, 36.1601),
        "gamma": box(120.43, 36.16, 120.44, 36.17),
        "city": box(120.0, 35.5, 121.0, 36.159),
    }
    report = check_grids(areas)
    assert {(size.station_key, size.kind) for size in report.sizes} == {
        ("crumb", "tiny"),
        ("city", "huge"),
    }
    assert report.ok  # odd, not wrong


def test_an_empty_set_of_grids_checks_clean() -> None:
    assert check_grids({}).ok


# --- the command -----------------------------------------------------------------------------


def polygon_feature(shape: Polygon, name: str) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": shape.__geo_interface__}


def write_district(
    directory: Path,
    grids: dict[str, Polygon],
    *,
    boundary: Polygon | None = None,
    names: dict[str, str] | None = None,
) -> Path:
    """A minimal deployment file with these grids (and boundary) in `directory`."""
    (directory / "grids").mkdir(exist_ok=True)
    stations = []
    for number, (key, shape) in enumerate(grids.items(), start=1):
        name = (names or {}).get(key, f"{key}社区工作站")
        (directory / "grids" / f"{key}.geojson").write_text(
            json.dumps(polygon_feature(shape, name), ensure_ascii=False), encoding="utf-8"
        )
        stations.append(
            {"key": key, "name": name, "chief": 100 + number, "area": f"grids/{key}.geojson"}
        )
    (directory / "addresses.csv").write_text(
        "address,aliases,lat,lon\n汾阳路13号,,36.165,120.405\n", encoding="utf-8"
    )
    data: dict[str, Any] = {
        "street_office": {"name": "兴城路街道", "chat_id": -1001000000001},
        "intake_chats": [-1001000000002],
        "categories": [{"key": "other", "name": "其他", "sla": "72h"}],
        "stations": stations,
        "gazetteer": "addresses.csv",
    }
    if boundary is not None:
        (directory / "boundary.geojson").write_text(
            json.dumps(polygon_feature(boundary, "兴城路街道")), encoding="utf-8"
        )
        data["routing"] = {"boundary": "boundary.geojson"}
    path = directory / "deploy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def printed_m2(output: str, before: str) -> float:
    match = re.search(re.escape(before) + r"([\d,]+) m²", output)
    assert match, output
    return float(match.group(1).replace(",", ""))


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["check", *args])


def test_the_sample_district_checks_clean() -> None:
    result = run(str(SAMPLE))
    assert result.exit_code == 0, result.output
    for station in load_deployment(SAMPLE).stations:
        assert station.key in result.output
    assert "✓ no overlaps or gaps" in result.output


def test_the_config_file_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_CONFIG", str(SAMPLE))
    assert run().exit_code == 0
    monkeypatch.delenv("GRIDBOT_CONFIG")
    result = run()
    assert result.exit_code == 1
    assert "no deployment file" in result.output


def test_clean_crafted_district(tmp_path: Path) -> None:
    path = write_district(
        tmp_path, {"alpha": ALPHA, "beta": BETA}, boundary=box(120.40, 36.16, 120.42, 36.17)
    )
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert "District boundary: 2.00 km²" in result.output
    # 0.01° × 0.01° here: 1,109 m north-south by 903 m east-west.
    assert printed_m2(result.output, "alpha alpha社区工作站: ") == pytest.approx(
        rectangle_m2(*ALPHA.bounds), rel=2e-3
    )


def test_overlaps_and_gaps_fail_the_check(tmp_path: Path) -> None:
    path = write_district(
        tmp_path,
        {"alpha": ALPHA, "beta": box(120.409, 36.16, 120.42, 36.17)},
        boundary=box(120.40, 36.16, 120.42, 36.172),
    )
    result = run(str(path))
    assert result.exit_code == 1
    overlap = printed_m2(result.output, "✗ overlap O1: alpha and beta both cover ")
    assert overlap == pytest.approx(rectangle_m2(120.409, 36.16, 120.41, 36.17), rel=3e-3)
    gap = printed_m2(result.output, "✗ gap G1: ")
    assert gap == pytest.approx(rectangle_m2(120.40, 36.17, 120.42, 36.172), rel=3e-3)
    assert "of the district is in no grid, around 36.17100, 120.41000" in result.output
    assert "✗ 2 problems" in result.output


def test_a_grid_outside_the_boundary_warns_but_passes(tmp_path: Path) -> None:
    path = write_district(
        tmp_path, {"alpha": ALPHA, "beta": BETA}, boundary=box(120.40, 36.16, 120.418, 36.17)
    )
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert "warning: outside X1: the grid of beta reaches" in result.output


def test_the_tolerance_is_adjustable(tmp_path: Path) -> None:
    nudged = box(120.41 - 1e-8, 36.16, 120.42, 36.17)
    path = write_district(tmp_path, {"alpha": ALPHA, "beta": nudged})
    relaxed = run(str(path))
    assert relaxed.exit_code == 0
    assert "1 slivers of at most 5 m² ignored" in relaxed.output
    assert run(str(path), "--tolerance", "0").exit_code == 1
    assert run(str(path), "--tolerance", "-3").exit_code == 2  # typer refuses it


def test_a_broken_deployment_is_refused_like_everywhere(tmp_path: Path) -> None:
    path = write_district(tmp_path, {"alpha": ALPHA})
    (tmp_path / "grids" / "alpha.geojson").write_text('{"type": "Point"', encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 1
    assert "not valid JSON" in result.output
    assert run(str(tmp_path / "missing.yaml")).exit_code == 1


def test_station_names_are_printed_verbatim(tmp_path: Path) -> None:
    path = write_district(tmp_path, {"alpha": ALPHA}, names={"alpha": "[bold red]<b>&amp;[/]"})
    result = run(str(path))
    assert result.exit_code == 0
    assert "alpha [bold red]<b>&amp;[/]: " in result.output


# --- the map --------------------------------------------------------------------------------


def assert_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 10_000 < len(data) < 5_000_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 1000 <= width <= 3000 and 500 <= height <= 3000
    return width, height


def test_the_map_of_the_sample_district(tmp_path: Path) -> None:
    out = tmp_path / "map.png"
    # Chinese station names and no Chinese font here: keys only, never boxes (a missing glyph
    # warns, and warnings fail the tests).
    result = run(str(SAMPLE), "--map", str(out))
    assert result.exit_code == 0, result.output
    assert f"Map written to {out}" in result.output
    assert_png(out)


def test_the_map_marks_problems_and_is_written_even_when_the_check_fails(tmp_path: Path) -> None:
    path = write_district(
        tmp_path,
        {"alpha": ALPHA, "beta": box(120.409, 36.16, 120.42, 36.17), "ring": RING},
        boundary=box(120.40, 36.16, 120.44, 36.172),
    )
    out = tmp_path / "problems.png"
    result = run(str(path), "--map", str(out))
    assert result.exit_code == 1
    assert_png(out)


def test_a_map_where_it_cannot_be_written(tmp_path: Path) -> None:
    result = run(str(SAMPLE), "--map", str(tmp_path / "no" / "such" / "dir" / "map.png"))
    assert result.exit_code == 1
    assert "cannot write the map" in result.output


async def _tickets_database(url: str, tickets: Sequence[dict[str, Any]]) -> None:
    engine = create_engine(url)
    await migrate(engine)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        person = await repo.upsert_person(
            session=session, telegram_id=7, name="王阿姨", username=None, language="zh_CN", now=now
        )
        for number, fields in enumerate(tickets, start=1):
            values: dict[str, Any] = {
                "category_key": "other",
                "reporter_id": person.id,
                "source_chat_id": -100,
                "source_message_id": number,
                "created_at": now,
                "updated_at": now,
            }
            values.update(fields)
            session.add(Ticket(**values))
        await session.commit()
    await engine.dispose()


@pytest.fixture
def tickets_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gridbot.db'}"
    now = datetime.now(UTC)
    asyncio.run(
        _tickets_database(
            url,
            [
                {"lat": 36.175, "lon": 120.41, "status": "claimed"},
                {"lat": 36.155, "lon": 120.43, "status": "closed"},
                {"lat": 36.156, "lon": 120.409, "status": "rejected"},
                {"lat": 36.185, "lon": 120.41, "status": "new"},  # outside every grid
                {"lat": None, "lon": None, "status": "new"},  # never located
                {
                    "lat": 36.17,
                    "lon": 120.41,
                    "status": "new",
                    "created_at": now - timedelta(days=40),
                },
            ],
        )
    )
    return url


def test_recent_tickets_are_the_located_ones_of_the_period(tickets_url: str) -> None:
    since = datetime.now(UTC) - timedelta(days=30)
    dots = recent_tickets(tickets_url, since=since)
    assert sorted(dots, key=lambda dot: dot.lat) == [
        TicketDot(36.155, 120.43, "closed"),
        TicketDot(36.156, 120.409, "rejected"),
        TicketDot(36.175, 120.41, "claimed"),
        TicketDot(36.185, 120.41, "new"),
    ]
    assert len(recent_tickets(tickets_url, since=since - timedelta(days=30))) == 5
    assert len(recent_tickets(tickets_url, since=since, limit=2)) == 2


def test_the_map_with_recent_tickets(tmp_path: Path, tickets_url: str) -> None:
    out = tmp_path / "tickets.png"
    result = run(str(SAMPLE), "--map", str(out), "--tickets-db", tickets_url)
    assert result.exit_code == 0, result.output
    assert "4 tickets" in result.output
    assert_png(out)
    result = run(str(SAMPLE), "--map", str(out), "--tickets-db", tickets_url, "--days", "60")
    assert "5 tickets" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite+aiosqlite:///{tmp}/typo.db", "no SQLite database"),
        ("not a url", "not a database URL"),
        ("nosuchdb://user:secret@host/db", "cannot read tickets from nosuchdb://user:***@host/db"),
    ],
)
def test_an_unreadable_tickets_database(tmp_path: Path, url: str, message: str) -> None:
    out = tmp_path / "map.png"
    result = run(str(SAMPLE), "--map", str(out), "--tickets-db", url.format(tmp=tmp_path))
    assert result.exit_code == 1
    assert message in result.output
    assert "secret" not in result.output
    assert not (tmp_path / "typo.db").exists()  # a typo does not leave an empty database


def test_a_font_without_chinese_glyphs_is_not_used() -> None:
    from matplotlib import font_manager

    dejavu = Path(font_manager.findfont("DejaVu Sans"))
    assert find_cjk_font(dejavu) is None
    assert find_cjk_font() is not None  # the digest's font, which make installs
