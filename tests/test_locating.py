"""Locating reports: the sample district's gazetteer and grids, lookups, routing, bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from bot.intake import parse_caption
from bot.locating import (
    CONFIDENT,
    Explanation,
    Gazetteer,
    GazetteerEntry,
    GazetteerFormatError,
    GazetteerGeocoder,
    GridError,
    Grids,
    Locator,
    Match,
    Place,
)

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample"
STATIONS = (
    "fenyang", "jinshui", "hushan", "xingcheng", "zhenhua", "jingkou", "fengshan", "dongli",
)  # fmt: skip
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
    assert 1_800 <= len(gazetteer) <= 2_500
    # Typos are matched against names, of which there are far fewer than rows.
    assert len(gazetteer.names) < len(gazetteer) / 10


def test_sample_grids_tile_the_district_without_overlaps(grids: Grids) -> None:
    assert set(grids.keys) == set(STATIONS)
    assert grids.overlaps() == []
    collection = json.loads((SAMPLE / "district.geojson").read_text(encoding="utf-8"))
    district = shape(collection["features"][0]["geometry"])
    union = unary_union([grids.outline(key) for key in STATIONS])
    assert union.symmetric_difference(district).area < 1e-12  # no gaps, nothing outside
    west, south, east, north = district.bounds
    assert 120.38 < west < east < 120.46 and 36.13 < south < north < 36.20


def test_the_north_railway_station_is_far_outside_every_grid(
    gazetteer: Gazetteer, grids: Grids
) -> None:
    station = found(gazetteer.lookup("青岛北站"))
    district = unary_union([grids.outline(key) for key in STATIONS])
    # A degree of longitude is about 89.9 km here.
    assert district.distance(Point(station.lon, station.lat)) * 89_900 > 500


@pytest.mark.parametrize(
    ("address", "station"),
    [
        *((f"汾阳路{number}号", "fenyang") for number in range(1, 14)),
        ("金水路30号", "jinshui"),
        ("虎山路5号", "hushan"),
        ("金水路8号", "xingcheng"),
        ("金秋小区二期3号楼", "jinshui"),
    ],
)
def test_facts_the_demo_and_the_end_to_end_tests_rely_on(
    locator: Locator, address: str, station: str
) -> None:
    place = found(locator.locate_text(address))
    assert (place.address, place.station_key, place.confidence) == (address, station, 1.0)


def test_every_station_has_plenty_of_addresses(gazetteer: Gazetteer, locator: Locator) -> None:
    routed = Counter(found(locator.locate_text(entry.address)).station_key for entry in gazetteer)
    for station in STATIONS:
        assert routed[station] >= 100, routed
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
    assert "boundary: district.geojson" in deployment
    assert "synthetic" in (SAMPLE / "README.md").read_text(encoding="utf-8")


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
    "typed", [None, "", "   ", "大家好", "汾阳路", "幸福路99号", "<b>&amp;</b>", "'; --", "小区里"]
)
def test_lookup_misses_unknown_addresses(gazetteer: Gazetteer, typed: str | None) -> None:
    assert gazetteer.lookup(typed) is None
    assert gazetteer.candidates(typed) == []


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
    ("lat", "lon"), [(36.1950, 120.4200), (36.1350, 120.4200), (36.1650, 120.3850), (0.0, 0.0)]
)
def test_a_point_outside_every_grid(locator: Locator, lat: float, lon: float) -> None:
    place = locator.locate_point(lat, lon, label="共享位置")
    assert place.station_key is None
    assert place.address == "共享位置"


@pytest.mark.parametrize(
    ("lat", "lon", "station"),
    [
        (36.165, 120.420, "fenyang"),  # where the four inner grids meet
        (36.166, 120.400, "fengshan"),  # fengshan | fenyang | hushan | zhenhua
        (36.164, 120.440, "dongli"),  # dongli | jingkou | jinshui | xingcheng
        (36.150, 120.419, "dongli"),  # dongli | fengshan | hushan | xingcheng
        (36.180, 120.421, "fenyang"),  # fenyang | jingkou | jinshui | zhenhua
        (36.170, 120.400, "fenyang"),  # fenyang | zhenhua
        (36.190, 120.410, "zhenhua"),  # the district's own edge belongs to its grid
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
    assert found(gazetteer.lookup("测试路20001号")).confidence < CONFIDENT
    assert found(gazetteer.lookup("测吃路19999号")).address == "测试路19999号"
    assert gazetteer.names == ("测试路",)


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


# --- matching with confidence ------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "address", "how", "lowest"),
    [
        ("汾阳路13号", "汾阳路13号", "exact", 1.0),
        ("汾阳路１３號旁边", "汾阳路13号", "normalised", 1.0),
        ("汾阳路十三号", "汾阳路13号", "numeral", 0.95),
        ("九水路九号", "九水路9号", "numeral", 0.95),  # 九 of the name stays a name
        ("万年泉路一号", "万年泉路1号", "numeral", 0.95),
        ("十梅庵路十号", "十梅庵路10号", "numeral", 0.95),
        ("黑龙江中路一百零五号", "黑龙江中路105号", "numeral", 0.95),
        ("金秋小区二期三号楼三单元", "金秋小区二期3号楼", "numeral", 0.9),
        ("金秋小区2期3号楼", "金秋小区二期3号楼", "numeral", 0.95),
        ("汾阳路13号2单元301室", "汾阳路13号", "contained", 0.9),
        ("旱厕堵了，汾阳路13号", "汾阳路13号", "normalised", 1.0),
        ("Fenyang Rd 13", "汾阳路13号", "pinyin", 0.85),
        ("13 Fenyang Road", "汾阳路13号", "pinyin", 0.85),
        ("fenyanglu 13hao", "汾阳路13号", "pinyin", 0.85),
        ("Jinshui Road No.8", "金水路8号", "pinyin", 0.85),
        ("Heilongjiang Middle Rd 5", "黑龙江中路5号", "pinyin", 0.85),
        ("xingchengluxiaoxue", "兴城路小学", "pinyin", 0.85),
        ("汾杨路13号", "汾阳路13号", "fuzzy", 0.8),  # the same sound, another character
        ("兴成路小学门口", "兴城路小学", "fuzzy", 0.8),
        ("汾阳13号", "汾阳路13号", "fuzzy", 0.8),  # 路 left out
        ("Fengyang Rd 13", "汾阳路13号", "fuzzy", 0.75),
    ],
)
def test_matches_say_how_sure_they_are(
    gazetteer: Gazetteer, typed: str, address: str, how: str, lowest: float
) -> None:
    best = gazetteer.match(typed)
    assert isinstance(best, Match)
    assert (best.place.address, best.how) == (address, how)
    assert lowest <= best.score <= 1.0
    assert (best.place.confidence, best.place.how) == (best.score, best.how)


@pytest.mark.parametrize(
    "typed",
    [
        "汾阳路81号",  # the road has 80 numbers
        "汾阳路130号",
        "Fenyang Rd 130",
        "汾杨路95号",  # a typo and a number that does not exist
        "泰山路5号",  # another road, not a typo of 虎山路
        "金秋小区二期99号楼",
        "金秋小区3号楼",  # which phase?
        "京口路一零五号",
    ],
)
def test_an_unknown_number_is_never_a_confident_guess(
    gazetteer: Gazetteer, locator: Locator, typed: str
) -> None:
    assert all(match.score < CONFIDENT for match in gazetteer.candidates(typed))
    assert locator.locate_text(typed) is None


def test_a_missing_house_number_falls_back_to_the_nearest_known_one_only_as_a_hint(
    gazetteer: Gazetteer,
) -> None:
    best = found(gazetteer.lookup("汾阳路81号"))
    assert best.address == "汾阳路80号"
    assert best.confidence <= 0.5


def test_a_right_road_never_silently_swaps_the_number(gazetteer: Gazetteer) -> None:
    # 汾阳路18号 is one character away from 汾阳路13号 but a different house.
    assert [match.place.address for match in gazetteer.candidates("汾阳路18号")] == ["汾阳路18号"]
    best = found(gazetteer.lookup("汾杨路18号"))
    assert best.address == "汾阳路18号"


def test_candidates_are_ranked_and_limited(gazetteer: Gazetteer) -> None:
    candidates = gazetteer.candidates("金秋小区3号楼", limit=3)
    assert 1 <= len(candidates) <= 3
    scores = [match.score for match in candidates]
    assert scores == sorted(scores, reverse=True)
    assert gazetteer.candidates("金秋小区3号楼", limit=0) == []


@pytest.mark.parametrize(
    "text",
    ["<script>alert(1)</script>汾阳路13号", "汾阳路" * 5_000, "号" * 20_000, "\x00\x01汾阳路13号",
     "1" * 10_000, "路1" * 5_000, "Fenyang " * 2_000, "十" * 5_000 + "号"],
)
def test_hostile_text_is_answered_quickly_and_sanely(gazetteer: Gazetteer, text: str) -> None:
    for match in gazetteer.candidates(text):
        assert 0.0 <= match.score <= 1.0


def test_the_gazetteer_takes_rows_from_anywhere() -> None:
    # The database-backed gazetteer feeds rows, not a file.
    rows = (
        GazetteerEntry("汾阳路13号", ("汾阳路十三号院",), 36.17, 120.41, "fenyang", line)
        for line in (1,)
    )
    gazetteer = Gazetteer(rows)
    assert found(gazetteer.lookup("汾阳路十三号院")).station_key == "fenyang"


def test_explain_shows_what_was_read_and_why(locator: Locator) -> None:
    explanation = locator.explain("旱厕堵了，汾杨路十三号门口")
    assert isinstance(explanation, Explanation)
    assert explanation.span == "汾杨路十三号"
    assert explanation.normalised == "汾杨路13号"
    assert explanation.candidates[0].place.address == "汾阳路13号"
    assert explanation.candidates[0].place.station_key == "fenyang"
    assert explanation.chosen == explanation.candidates[0].place
    assert explanation.min_confidence == CONFIDENT
    data = json.loads(json.dumps(explanation.as_dict(), ensure_ascii=False))
    assert data["chosen"]["address"] == "汾阳路13号"


def test_explain_says_when_nothing_is_confident(locator: Locator) -> None:
    explanation = locator.explain("汾阳路81号 井盖坏了")
    assert explanation.chosen is None
    assert explanation.candidates and explanation.candidates[0].score < CONFIDENT
    assert locator.explain("").candidates == ()


def test_a_locator_can_be_made_bolder_or_more_careful(gazetteer: Gazetteer, grids: Grids) -> None:
    bold = Locator(gazetteer, grids, min_confidence=0.4)
    assert found(bold.locate_text("汾阳路81号")).address == "汾阳路80号"
    careful = Locator(gazetteer, grids, min_confidence=0.99)
    assert careful.locate_text("汾杨路13号") is None
    assert found(careful.locate_text("汾阳路13号")).address == "汾阳路13号"


def test_the_geocoder_passes_unsure_matches_on_to_the_next_provider(
    gazetteer: Gazetteer,
) -> None:
    geocoder = GazetteerGeocoder(gazetteer)
    assert geocoder.geocode("汾阳路81号") is None
    location = geocoder.geocode("汾杨路13号")
    assert location.address == "汾阳路13号"
    assert location.raw["how"] == "fuzzy" and location.raw["confidence"] >= CONFIDENT
