"""Locating reports: the sample district's gazetteer and grids, lookups, routing, bad files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from shapely.geometry import Point

from bot.intake import parse_caption
from bot.locating import (
    Gazetteer,
    GazetteerEntry,
    GazetteerFormatError,
    GazetteerGeocoder,
    GridError,
    Grids,
    Locator,
    Place,
)

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample"
STATIONS = ("fenyang", "jinshui", "hushan", "xingcheng")
HEADER = "address,aliases,lat,lon,station\n"


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_csv(SAMPLE / "addresses.csv")


@pytest.fixture(scope="module")
def grids() -> Grids:
    return Grids.from_files({key: SAMPLE / "grids" / f"{key}.geojson" for key in STATIONS})


@pytest.fixture(scope="module")
def locator(gazetteer: Gazetteer, grids: Grids) -> Locator:
    return Locator(gazetteer, grids)


def found(place: Place | None) -> Place:
    assert place is not None
    return place


def write_csv(tmp_path: Path, body: str, *, header: str = HEADER) -> Path:
    path = tmp_path / "addresses.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


# --- the sample district -----------------------------------------------------------------


def test_sample_gazetteer_loads_cleanly(gazetteer: Gazetteer) -> None:
    assert gazetteer.problems == ()
    assert len(gazetteer) >= 300


def test_sample_grids_tile_the_district_without_overlaps(grids: Grids) -> None:
    assert set(grids.keys) == set(STATIONS)
    assert grids.overlaps() == []


def test_every_station_has_plenty_of_addresses(gazetteer: Gazetteer, locator: Locator) -> None:
    routed = Counter(found(locator.locate_text(entry.address)).station_key for entry in gazetteer)
    for station in STATIONS:
        assert routed[station] >= 50, routed
    assert routed[None] >= 1  # somewhere just outside the district


def test_station_columns_agree_with_the_grids(
    gazetteer: Gazetteer, grids: Grids, locator: Locator
) -> None:
    with_station = [entry for entry in gazetteer if entry.station_key]
    assert with_station
    for entry in with_station:
        assert grids.outline(entry.station_key).covers(Point(entry.lon, entry.lat)), entry
    assert locator.audit() == ()


def test_sample_deployment_names_these_files() -> None:
    deployment = (SAMPLE / "deployment.yaml").read_text(encoding="utf-8")
    assert "gazetteer: addresses.csv" in deployment
    for station in STATIONS:
        assert f"area: grids/{station}.geojson" in deployment


def test_generator_reproduces_the_committed_gazetteer(tmp_path: Path) -> None:
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE / "grids", copy / "grids")
    shutil.copy(SAMPLE / "make_addresses.py", copy / "make_addresses.py")
    subprocess.run([sys.executable, str(copy / "make_addresses.py")], check=True)
    assert (copy / "addresses.csv").read_bytes() == (SAMPLE / "addresses.csv").read_bytes()


# --- looking addresses up ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("汾阳路13号", "汾阳路13号"),
        ("汾阳路１３号", "汾阳路13号"),
        ("汾阳路13號", "汾阳路13号"),
        (" 汾阳路 13 号 ", "汾阳路13号"),
        ("汾阳路13号旁边", "汾阳路13号"),
        ("李沧区汾阳路13号门口", "汾阳路13号"),
        ("Fenyang Rd 13", "汾阳路13号"),
        ("Fenyang Road No. 13", "汾阳路13号"),
        ("金秋小区二期3号楼", "金秋小区二期3号楼"),
        ("金秋二期3号楼", "金秋小区二期3号楼"),
        ("金秋小区二期3栋", "金秋小区二期3号楼"),
        ("金秋小区二期3#楼2单元", "金秋小区二期3号楼"),
        ("金水路金秋小区二期3号楼", "金秋小区二期3号楼"),
        ("金秋小区二期99号楼", "金秋小区二期"),
        ("金秋小区门口", "金秋小区"),
        ("兴城路小学", "兴城路小学"),
        ("兴城路小学门口", "兴城路小学"),
        ("汾阳路菜市场", "汾阳路农贸市场"),
        ("汾阳路菜市场东门", "汾阳路农贸市场"),
        ("虎山路站", "虎山路地铁站"),
        ("金水路公交站", "金水路公交站"),
        ("李沧区文化馆", "李沧区文化馆"),
        ("九水路卫生院", "九水路社区卫生服务中心"),
    ],
)
def test_lookup_finds_what_captains_type(gazetteer: Gazetteer, typed: str, found: str) -> None:
    place = gazetteer.lookup(typed)
    assert place is not None
    assert place.address == found
    assert place.source == "gazetteer"


@pytest.mark.parametrize(
    "typed",
    [None, "", "   ", "大家好", "汾阳路81号", "汾阳路", "Fenyang Rd 130", "<b>&amp;</b>", "'; --"],
)
def test_lookup_misses_unknown_addresses(gazetteer: Gazetteer, typed: str | None) -> None:
    assert gazetteer.lookup(typed) is None


def test_lookup_prefers_the_longest_known_name(gazetteer: Gazetteer) -> None:
    # 金秋小区, 金秋小区二期 and 金秋小区二期3号楼 are all inside this text.
    place = gazetteer.lookup("金秋小区二期3号楼楼道灯不亮")
    assert place is not None and place.address == "金秋小区二期3号楼"


def test_lookup_in_a_huge_text_finishes(gazetteer: Gazetteer) -> None:
    text = "旱厕堵了" * 25_000 + "汾阳路13号" + "金秋" * 25_000
    place = gazetteer.lookup(text)
    assert place is not None and place.address == "汾阳路13号"


@pytest.mark.parametrize(
    ("caption", "station"),
    [
        ("汾阳路13号 旱厕堵了", "fenyang"),
        ("旱厕堵了，汾阳路75号", "jinshui"),  # 汾阳路 crosses two grids
        ("地址：金水路金秋小区二期3号楼；描述：车库积水", "jinshui"),
        ("金水路5号 路灯不亮", "xingcheng"),
        ("虎山路地铁站 扶梯坏了", "hushan"),
        ("兴城路小学门口井盖坏了", "xingcheng"),
        ("九水路60号 井盖破损", "fenyang"),
        ("书院路1号 垃圾没人清", "hushan"),
        ("书院路70号 垃圾没人清", "xingcheng"),
        ("Fenyang Rd 13 garbage", "fenyang"),
    ],
)
def test_captions_reach_the_right_station(locator: Locator, caption: str, station: str) -> None:
    parsed = parse_caption(caption)
    place = locator.locate_text(parsed.address)
    assert place is not None
    assert place.station_key == station


def test_an_address_outside_every_grid_has_no_station(locator: Locator) -> None:
    place = locator.locate_text("青岛北站")
    assert place is not None
    assert place.station_key is None


def test_station_column_decides_over_the_grid(tmp_path: Path) -> None:
    # An admin may assign a building next to a border to the neighbouring station.
    path = write_csv(
        tmp_path,
        "汾阳路13号,,36.1739,120.4083,jinshui\n"
        "汾阳路14号,,36.1739,120.4083,\n"
        "汾阳路15号,,36.1739,120.4083,nosuchstation\n",
    )
    grids = Grids.from_files({key: SAMPLE / "grids" / f"{key}.geojson" for key in STATIONS})
    locator = Locator(Gazetteer.from_csv(path), grids)
    assert found(locator.locate_text("汾阳路13号")).station_key == "jinshui"
    assert found(locator.locate_text("汾阳路14号")).station_key == "fenyang"
    # An unknown station would route nowhere: the grid decides, and the audit says so.
    assert found(locator.locate_text("汾阳路15号")).station_key == "fenyang"
    assert [problem.line for problem in locator.audit()] == [2, 4]


# --- shared locations and grids ----------------------------------------------------------


@pytest.mark.parametrize("station", STATIONS)
def test_a_point_inside_each_grid(locator: Locator, grids: Grids, station: str) -> None:
    inside = grids.outline(station).representative_point()
    place = locator.locate_point(inside.y, inside.x)
    assert place == Place(
        address=f"{inside.y:.5f}, {inside.x:.5f}",
        lat=inside.y,
        lon=inside.x,
        station_key=station,
        source="location",
    )


@pytest.mark.parametrize(
    ("lat", "lon"), [(36.1850, 120.4200), (36.1450, 120.4200), (36.1650, 120.3950), (0.0, 0.0)]
)
def test_a_point_outside_every_grid(locator: Locator, lat: float, lon: float) -> None:
    place = locator.locate_point(lat, lon, label="共享位置")
    assert place.station_key is None
    assert place.address == "共享位置"


@pytest.mark.parametrize(
    ("lat", "lon", "station"),
    [
        (36.165, 120.420, "fenyang"),  # where all four grids meet
        (36.166, 120.400, "fenyang"),  # fenyang | hushan
        (36.164, 120.440, "jinshui"),  # jinshui | xingcheng
        (36.150, 120.419, "hushan"),  # hushan | xingcheng
        (36.180, 120.421, "fenyang"),  # fenyang | jinshui
        (36.180, 120.410, "fenyang"),  # the district's own edge belongs to its grid
    ],
)
def test_a_point_on_a_border_goes_to_one_station(lat: float, lon: float, station: str) -> None:
    paths = {key: SAMPLE / "grids" / f"{key}.geojson" for key in STATIONS}
    forwards = Grids.from_files(paths)
    backwards = Grids.from_files(dict(reversed(paths.items())))
    assert forwards.station_at(lat, lon) == station
    assert backwards.station_at(lat, lon) == station


@pytest.mark.parametrize(
    ("lat", "lon"), [(91.0, 120.4), (36.1, 181.0), (float("nan"), 120.4), (36.1, float("inf"))]
)
def test_a_point_not_on_earth_is_refused(locator: Locator, lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="not a point on Earth"):
        locator.locate_point(lat, lon)


def test_blank_label_falls_back_to_coordinates(locator: Locator) -> None:
    assert locator.locate_point(36.17, 120.41, label="  ").address == "36.17000, 120.41000"


def test_unknown_station_outline(grids: Grids) -> None:
    with pytest.raises(KeyError):
        grids.outline("nosuchstation")


def test_no_grids_means_no_station() -> None:
    assert Grids({}).station_at(36.17, 120.41) is None


def write_grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.geojson"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_grid_file_is_refused_naming_the_station(tmp_path: Path) -> None:
    # The reader is the deployment file's (tests/test_deployment.py covers its every refusal).
    with pytest.raises(GridError, match="grid of 'fenyang'.*not valid JSON"):
        Grids.from_files({"fenyang": write_grid(tmp_path, "{not json")})


def test_overlapping_grids_are_reported(tmp_path: Path) -> None:
    square = (
        '{"type": "Polygon", "coordinates": [[[120.40, 36.15], [120.43, 36.15], '
        "[120.43, 36.18], [120.40, 36.18], [120.40, 36.15]]]}"
    )
    other = tmp_path / "other.geojson"
    other.write_text(square, encoding="utf-8")
    grids = Grids.from_files({"fenyang": SAMPLE / "grids" / "fenyang.geojson", "wide": other})
    assert grids.overlaps() == [("fenyang", "wide")]
    # Inside both: still one answer, the first key.
    assert grids.station_at(36.17, 120.41) == "fenyang"


# --- bad gazetteer files -----------------------------------------------------------------


def test_bad_rows_are_skipped_and_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "汾阳路1号,,36.17,120.41,\n"  # line 2: fine
        "汾阳路2号,,,120.41,\n"  # 3: missing lat
        "汾阳路3号,,95,120.41,\n"  # 4: lat out of range
        ",,36.17,120.41,\n"  # 5: blank address
        "汾阳路１号,,36.17,120.41,\n"  # 6: duplicate of line 2 once normalised
        "汾阳路4号,,north,120.41,\n"  # 7: not a number
        "汾阳路5号,,nan,120.41,\n"  # 8: not finite
        "汾阳路6号,,36.17,200,\n"  # 9: lon out of range
        "汾阳路7号,,36.17,120.41,,extra\n"  # 10: too many columns
        "\n"  # 11: blank lines are ignored
        "汾阳路8号,汾阳路1号|八号院,36.17,120.41,\n"  # 12: kept, one alias ignored
        "汾阳路9号,,36.17\n",  # 13: missing lon
    )
    gazetteer = Gazetteer.from_csv(path)
    assert [entry.address for entry in gazetteer] == ["汾阳路1号", "汾阳路8号"]
    reasons = {problem.line: problem.reason for problem in gazetteer.problems}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert "missing lat" in reasons[3]
    assert "out of range" in reasons[4]
    assert "blank address" in reasons[5]
    assert "duplicate" in reasons[6] and "line 2" in reasons[6]
    assert "not a number" in reasons[7]
    assert "out of range" in reasons[8]
    assert "out of range" in reasons[9]
    assert "too many columns" in reasons[10]
    assert "alias '汾阳路1号' ignored" in reasons[12]
    assert "missing lon" in reasons[13]
    assert str(gazetteer.problems[0]).startswith("line 3: ")
    # The good rows still work, the kept alias too.
    assert found(gazetteer.lookup("八号院")).address == "汾阳路8号"


def test_excel_style_csv_with_bom_and_without_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("\ufeffAddress, Lat ,Lon\r\n汾阳路1号,36.17,120.41\r\n", encoding="utf-8")
    gazetteer = Gazetteer.from_csv(path)
    assert gazetteer.problems == ()
    place = gazetteer.lookup("汾阳路1号")
    assert place == Place("汾阳路1号", 36.17, 120.41, None, "gazetteer")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"address,aliases,station\n", "missing column"),
        ("address,lat,lon\n汾阳路1号,36.1,120.4\n".encode("gbk"), "not UTF-8"),
    ],
)
def test_unreadable_gazetteer_files_are_refused(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "addresses.csv"
    path.write_bytes(content)
    with pytest.raises(GazetteerFormatError, match=reason):
        Gazetteer.from_csv(path)


def test_a_large_gazetteer_still_answers_by_index() -> None:
    entries = [
        GazetteerEntry(f"测试路{number}号", (), 36.16, 120.42, None, number + 1)
        for number in range(1, 20_001)
    ]
    gazetteer = Gazetteer(entries)
    assert found(gazetteer.lookup("测试路19999号门口")).address == "测试路19999号"
    assert gazetteer.lookup("测试路20001号") is None


# --- geopy interface ---------------------------------------------------------------------


def test_gazetteer_geocoder_speaks_geopy(gazetteer: Gazetteer) -> None:
    geocoder = GazetteerGeocoder(gazetteer)
    assert isinstance(geocoder, Geocoder)
    location = geocoder.geocode("汾阳路１３号旁边")
    assert isinstance(location, Location)
    assert location.address == "汾阳路13号"
    expected = gazetteer.lookup("汾阳路13号")
    assert expected is not None
    assert (location.latitude, location.longitude) == (expected.lat, expected.lon)
    assert location.raw["source"] == "gazetteer"


def test_gazetteer_geocoder_misses_lists_and_structured_queries(gazetteer: Gazetteer) -> None:
    geocoder = GazetteerGeocoder(gazetteer)
    assert geocoder.geocode("火星基地") is None
    many = geocoder.geocode("兴城路小学", exactly_one=False)
    assert [location.address for location in many] == ["兴城路小学"]
    structured = geocoder.geocode({"street": "汾阳路13号", "city": "青岛"})
    assert structured.address == "汾阳路13号"
    assert geocoder.geocode("青岛北站").raw["station"] is None


def test_gazetteer_geocoder_never_goes_online(gazetteer: Gazetteer) -> None:
    geocoder = GazetteerGeocoder(gazetteer)
    with pytest.raises(GeocoderServiceError):
        geocoder.adapter.get_json("https://example.org", timeout=1, headers={})
