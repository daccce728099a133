"""Map coordinates used in China: WGS-84 (GPS, Telegram), GCJ-02 (national web maps) and BD-09
(Baidu). Chinese providers' points are converted to WGS-84 before they are stored or compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import coordTransform as ct

__all__ = [
    "CoordinateSystem",
    "LatLon",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CoordinateSystem = Literal["wgs84", "gcj02", "bd09"]

# The inverses below are solved by fixed-point iteration of the forward transform; 1e-10° is
# about 0.01 mm, and the distortion is so smooth that 2-4 rounds reach it.
_TOLERANCE_DEG = 1e-10
_MAX_ROUNDS = 30


class LatLon(NamedTuple):
    """A point in the project's order: latitude first. (coordTransform takes (lng, lat).)"""

    lat: float
    lon: float


def in_china(*, lat: float, lon: float) -> bool:
    """Whether GCJ-02 distorts this point: the rectangle every GCJ-02 implementation uses
    (roughly China's bounding box; outside it GCJ-02 equals WGS-84)."""
    return not ct.out_of_china(lon, lat)


def wgs84_to_gcj02(*, lat: float, lon: float) -> LatLon:
    """GPS coordinates as a Chinese web map (GCJ-02) shows them; unchanged outside China."""
    lng, lat_ = ct.wgs84_to_gcj02(lon, lat)
    return LatLon(lat_, lng)


def gcj02_to_bd09(*, lat: float, lon: float) -> LatLon:
    """GCJ-02 as Baidu (BD-09) shows it."""
    lng, lat_ = ct.gcj02_to_bd09(lon, lat)
    return LatLon(lat_, lng)


def wgs84_to_bd09(*, lat: float, lon: float) -> LatLon:
    """GPS coordinates as Baidu (BD-09) shows them."""
    gcj = wgs84_to_gcj02(lat=lat, lon=lon)
    return gcj02_to_bd09(lat=gcj.lat, lon=gcj.lon)


def gcj02_to_wgs84(*, lat: float, lon: float) -> LatLon:
    """The WGS-84 point that GCJ-02 maps onto this one (exact to millimetres).

    The one-step inverse found in most code (coordTransform's own) is metres off — up to
    ~5 m across China — because it evaluates the distortion at the wrong point; here the
    forward transform is iterated until it lands on the given point.
    """
    return _invert(lambda la, lo: wgs84_to_gcj02(lat=la, lon=lo), lat, lon)


def bd09_to_gcj02(*, lat: float, lon: float) -> LatLon:
    """The GCJ-02 point that BD-09 maps onto this one (exact; the usual formula is ~0.2 m off)."""
    return _invert(lambda la, lo: gcj02_to_bd09(lat=la, lon=lo), lat, lon)


def bd09_to_wgs84(*, lat: float, lon: float) -> LatLon:
    """A Baidu (BD-09) point in WGS-84, through GCJ-02."""
    gcj = bd09_to_gcj02(lat=lat, lon=lon)
    return gcj02_to_wgs84(lat=gcj.lat, lon=gcj.lon)


def to_wgs84(*, lat: float, lon: float, system: CoordinateSystem) -> LatLon:
    """A provider's point in WGS-84, whichever of the three systems it is in."""
    if system == "wgs84":
        return LatLon(lat, lon)
    if system == "gcj02":
        return gcj02_to_wgs84(lat=lat, lon=lon)
    if system == "bd09":
        return bd09_to_wgs84(lat=lat, lon=lon)
    raise ValueError(f"unknown coordinate system {system!r}")


def _invert(
    forward: Callable[[float, float], LatLon], target_lat: float, target_lon: float
) -> LatLon:
    # Start from the target itself and correct by the forward error each round: the forward
    # transform is a shift of a few hundred metres that changes slowly, so this converges fast.
    lat, lon = target_lat, target_lon
    for _ in range(_MAX_ROUNDS):
        shifted = forward(lat, lon)
        d_lat, d_lon = shifted.lat - target_lat, shifted.lon - target_lon
        if abs(d_lat) < _TOLERANCE_DEG and abs(d_lon) < _TOLERANCE_DEG:
            break
        lat, lon = lat - d_lat, lon - d_lon
    return LatLon(lat, lon)
