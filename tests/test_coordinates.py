"""WGS-84 ⇄ GCJ-02 ⇄ BD-09: Chinese map points land on the GPS truth, within a metre."""

from __future__ import annotations

import pytest
from geopy.distance import geodesic
from hypothesis import given
from hypothesis import strategies as st

from bot.coordinates import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# WGS-84 points people know: the sample district, Tiananmen, the Bund, Guangzhou Tower, Ürümqi.
KNOWN = {
    "汾阳路1号 (sample district)": (36.174100, 120.403000),
    "天安门": (39.908823, 116.397470),
    "外滩": (31.240018, 121.490317),
    "广州塔": (23.106414, 113.324553),
    "乌鲁木齐": (43.825592, 87.616848),
}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).meters)


@pytest.mark.parametrize("name", KNOWN)
def test_chinese_map_offsets_are_hundreds_of_metres(name: str) -> None:
    # Why conversion matters: an unconverted provider point lands in the wrong grid.
    truth = KNOWN[name]
    assert 200 < metres(truth, wgs84_to_gcj02(lat=truth[0], lon=truth[1])) < 700
    assert 700 < metres(truth, wgs84_to_bd09(lat=truth[0], lon=truth[1])) < 1_600


@pytest.mark.parametrize("name", KNOWN)
def test_gcj02_and_bd09_points_convert_back_within_a_millimetre(name: str) -> None:
    truth = KNOWN[name]
    gcj = wgs84_to_gcj02(lat=truth[0], lon=truth[1])
    bd = wgs84_to_bd09(lat=truth[0], lon=truth[1])
    assert metres(truth, gcj02_to_wgs84(lat=gcj.lat, lon=gcj.lon)) < 0.001
    assert metres(truth, bd09_to_wgs84(lat=bd.lat, lon=bd.lon)) < 0.001
    assert metres(truth, to_wgs84(lat=bd.lat, lon=bd.lon, system="bd09")) < 0.001
    assert metres(truth, to_wgs84(lat=gcj.lat, lon=gcj.lon, system="gcj02")) < 0.001


def test_the_one_step_inverse_would_be_metres_off() -> None:
    # The reason for iterating: coordTransform's own inverse misses the Bund by 2 m.
    import coordTransform as ct

    truth = KNOWN["外滩"]
    gcj = wgs84_to_gcj02(lat=truth[0], lon=truth[1])
    lon, lat = ct.gcj02_to_wgs84(gcj.lon, gcj.lat)
    assert metres(truth, (lat, lon)) > 1.0
    assert metres(truth, gcj02_to_wgs84(lat=gcj.lat, lon=gcj.lon)) < 0.001


def test_results_are_latitude_first() -> None:
    # coordTransform takes and returns (lng, lat); a swap would put Qingdao in the ocean.
    point = wgs84_to_gcj02(lat=36.1741, lon=120.403)
    assert point.lat == pytest.approx(36.1741, abs=0.01)
    assert point.lon == pytest.approx(120.403, abs=0.01)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(51.5007, -0.1246), (40.6892, -74.0445), (-33.8568, 151.2153), (0.0, 0.0)],
)
def test_points_outside_china_are_not_shifted_by_gcj02(lat: float, lon: float) -> None:
    assert not in_china(lat=lat, lon=lon)
    assert wgs84_to_gcj02(lat=lat, lon=lon) == (lat, lon)
    assert gcj02_to_wgs84(lat=lat, lon=lon) == (lat, lon)
    assert to_wgs84(lat=lat, lon=lon, system="wgs84") == (lat, lon)


def test_unknown_coordinate_system_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(lat=36.0, lon=120.0, system="utm")  # type: ignore[arg-type]


# Mainland China, away from the edges of the GCJ-02 rectangle (where the transform is
# discontinuous and has no inverse).
china_lat = st.floats(min_value=18.5, max_value=52.5)
china_lon = st.floats(min_value=75.0, max_value=134.0)


@given(lat=china_lat, lon=china_lon)
def test_wgs84_gcj02_round_trip_is_exact(lat: float, lon: float) -> None:
    gcj = wgs84_to_gcj02(lat=lat, lon=lon)
    back = gcj02_to_wgs84(lat=gcj.lat, lon=gcj.lon)
    assert metres((lat, lon), back) < 0.01


@given(lat=china_lat, lon=china_lon)
def test_gcj02_bd09_round_trip_is_exact(lat: float, lon: float) -> None:
    bd = gcj02_to_bd09(lat=lat, lon=lon)
    back = bd09_to_gcj02(lat=bd.lat, lon=bd.lon)
    assert metres((lat, lon), back) < 0.01


@given(lat=china_lat, lon=china_lon)
def test_bd09_back_to_wgs84_is_exact(lat: float, lon: float) -> None:
    bd = wgs84_to_bd09(lat=lat, lon=lon)
    assert metres((lat, lon), bd09_to_wgs84(lat=bd.lat, lon=bd.lon)) < 0.01


@given(
    lat=st.floats(min_value=-89.0, max_value=89.0),
    lon=st.floats(min_value=-179.0, max_value=179.0),
)
def test_outside_china_round_trip_changes_nothing(lat: float, lon: float) -> None:
    if in_china(lat=lat, lon=lon):
        return
    assert gcj02_to_wgs84(lat=lat, lon=lon) == (lat, lon)
    assert wgs84_to_gcj02(lat=lat, lon=lon) == (lat, lon)
