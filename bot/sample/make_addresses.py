"""Regenerate the sample district's gazetteer (addresses.csv) from roads, compounds and landmarks.

Run `python bot/sample/make_addresses.py`; the output is deterministic, so diffs show real changes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

HERE = Path(__file__).resolve().parent
STATIONS = ("fenyang", "jinshui", "hushan", "xingcheng")

# Road name, English alias stem, house numbers, and the (lon, lat) ends the numbers run between.
# 汾阳路, 金水路, 九水路 and 书院路 cross two grids, so routing by road name alone would be wrong.
ROADS = (
    ("汾阳路", "Fenyang Rd", 80, (120.4030, 36.1740), (120.4380, 36.1730)),
    ("金水路", "Jinshui Rd", 60, (120.4330, 36.1520), (120.4320, 36.1780)),
    ("虎山路", "Hushan Rd", 40, (120.4030, 36.1560), (120.4170, 36.1560)),
    ("兴城路", "Xingcheng Rd", 50, (120.4230, 36.1530), (120.4380, 36.1600)),
    ("九水路", "Jiushui Rd", 60, (120.4080, 36.1520), (120.4080, 36.1780)),
    ("书院路", "Shuyuan Rd", 70, (120.4030, 36.1600), (120.4380, 36.1600)),
)

# Compound, its short name (what neighbours say), buildings, centre (lon, lat).
COMPOUNDS = (
    ("金秋小区一期", "金秋一期", 6, (120.4290, 36.1700)),
    ("金秋小区二期", "金秋二期", 8, (120.4355, 36.1710)),
    ("汾阳花园", None, 6, (120.4120, 36.1720)),
    ("九水花园", None, 5, (120.4150, 36.1765)),
    ("虎山苑", None, 5, (120.4120, 36.1580)),
    ("书院小区", None, 6, (120.4050, 36.1625)),
    ("兴城公寓", None, 4, (120.4300, 36.1555)),
)

# Landmark, aliases, (lon, lat). The last two lie just outside the district on purpose.
LANDMARKS = (
    ("金秋小区", (), (120.4322, 36.1705)),  # what residents say when the phase does not matter
    ("兴城路小学", (), (120.4300, 36.1580)),
    ("汾阳路农贸市场", ("汾阳路菜市场",), (120.4100, 36.1745)),
    ("汾阳路幼儿园", (), (120.4150, 36.1735)),
    ("虎山路地铁站", ("虎山路站", "地铁虎山路站"), (120.4100, 36.1550)),
    ("虎山公园", (), (120.4160, 36.1530)),
    ("金水路公交站", (), (120.4335, 36.1700)),
    ("金水河公园", ("金水公园",), (120.4380, 36.1680)),
    ("李沧区文化馆", ("文化馆",), (120.4250, 36.1750)),
    ("书院路派出所", (), (120.4150, 36.1605)),
    ("九水路社区卫生服务中心", ("九水路卫生院",), (120.4085, 36.1700)),
    ("兴城路街道办事处", ("街道办",), (120.4250, 36.1620)),
    ("汾阳路社区工作站", ("汾阳路工作站",), (120.4060, 36.1770)),
    ("金水路社区工作站", ("金水路工作站",), (120.4370, 36.1760)),
    ("虎山路社区工作站", ("虎山路工作站",), (120.4060, 36.1530)),
    ("兴城路社区工作站", ("兴城路工作站",), (120.4360, 36.1530)),
    ("青岛北站", (), (120.3790, 36.1870)),
    ("李村公园", (), (120.4300, 36.1880)),
)

Row = tuple[str, str, float, float, str]


def _station_of(lon: float, lat: float, grids: dict[str, BaseGeometry]) -> str:
    point = Point(lon, lat)
    inside = [key for key, area in grids.items() if area.covers(point)]
    return inside[0] if inside else ""


def _road_rows() -> list[Row]:
    rows = []
    for road, english, count, (lon0, lat0), (lon1, lat1) in ROADS:
        for number in range(1, count + 1):
            t = (number - 1) / (count - 1)
            # Odd numbers on one side of the road, even on the other, about 10 m apart.
            side = 0.0001 if number % 2 else -0.0001
            runs_east_west = abs(lon1 - lon0) > abs(lat1 - lat0)
            lon = lon0 + (lon1 - lon0) * t + (0.0 if runs_east_west else side)
            lat = lat0 + (lat1 - lat0) * t + (side if runs_east_west else 0.0)
            # Roads are routed by the grid, so the station column stays empty.
            rows.append((f"{road}{number}号", f"{english} {number}", lat, lon, ""))
    return rows


def _compound_rows(grids: dict[str, BaseGeometry]) -> list[Row]:
    rows = []
    for compound, short, buildings, (lon0, lat0) in COMPOUNDS:
        rows.append((compound, short or "", lat0, lon0, _station_of(lon0, lat0, grids)))
        for number in range(1, buildings + 1):
            column, row = (number - 1) % 3, (number - 1) // 3
            lon = lon0 + (column - 1) * 0.0004
            lat = lat0 + (row - 1) * 0.0003
            alias = f"{short}{number}号楼" if short else ""
            station = _station_of(lon, lat, grids)
            rows.append((f"{compound}{number}号楼", alias, lat, lon, station))
    return rows


def _landmark_rows(grids: dict[str, BaseGeometry]) -> list[Row]:
    return [
        (name, "|".join(aliases), lat, lon, _station_of(lon, lat, grids))
        for name, aliases, (lon, lat) in LANDMARKS
    ]


def main() -> None:
    grids: dict[str, BaseGeometry] = {}
    for key in STATIONS:
        collection = json.loads((HERE / "grids" / f"{key}.geojson").read_text(encoding="utf-8"))
        grids[key] = shape(collection["features"][0]["geometry"])
    rows = _road_rows() + _compound_rows(grids) + _landmark_rows(grids)
    with (HERE / "addresses.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("address", "aliases", "lat", "lon", "station"))
        for address, aliases, lat, lon, station in rows:
            writer.writerow((address, aliases, f"{lat:.6f}", f"{lon:.6f}", station))


if __name__ == "__main__":
    main()
