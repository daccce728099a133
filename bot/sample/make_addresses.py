"""Regenerate the synthetic sample district's gazetteer (addresses.csv) from its roads, compounds
and landmarks. Run `python bot/sample/make_addresses.py`; the output is deterministic.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

HERE = Path(__file__).resolve().parent
STATIONS = (
    "fenyang", "jinshui", "hushan", "xingcheng", "zhenhua", "jingkou", "fengshan", "dongli",
)  # fmt: skip

# Road name, house numbers, and the (lon, lat) ends the numbers run between. Many roads cross
# two grids, so routing by road name alone would be wrong. Some names hold numerals (九水路,
# 四流中路, 万年泉路, 十梅庵路) and two look alike (九水路, 九水东路): good test material.
ROADS = (
    ("汾阳路", 80, (120.4030, 36.1740), (120.4380, 36.1730)),
    ("金水路", 60, (120.4330, 36.1520), (120.4320, 36.1780)),
    ("虎山路", 40, (120.4030, 36.1560), (120.4170, 36.1560)),
    ("兴城路", 50, (120.4230, 36.1530), (120.4380, 36.1600)),
    ("九水路", 60, (120.4080, 36.1520), (120.4080, 36.1780)),
    ("书院路", 70, (120.4030, 36.1600), (120.4380, 36.1600)),
    ("京口路", 100, (120.3930, 36.1850), (120.4470, 36.1850)),
    ("九水东路", 80, (120.3990, 36.1880), (120.4460, 36.1880)),
    ("巨峰路", 90, (120.3915, 36.1820), (120.4475, 36.1820)),
    ("峰山路", 100, (120.3915, 36.1450), (120.4480, 36.1450)),
    ("广水路", 80, (120.3930, 36.1425), (120.4450, 36.1425)),
    ("十梅庵路", 40, (120.4240, 36.1415), (120.4420, 36.1490)),
    ("黑龙江中路", 120, (120.4460, 36.1460), (120.4460, 36.1870)),
    ("振华路", 100, (120.3950, 36.1460), (120.3950, 36.1850)),
    ("四流中路", 80, (120.3925, 36.1470), (120.3925, 36.1830)),
    ("枣山路", 70, (120.4255, 36.1510), (120.4255, 36.1790)),
    ("青山路", 80, (120.4010, 36.1690), (120.4390, 36.1690)),
    ("东川路", 80, (120.4010, 36.1540), (120.4390, 36.1540)),
    ("向阳路", 60, (120.4145, 36.1510), (120.4145, 36.1790)),
    ("万年泉路", 50, (120.4260, 36.1810), (120.4440, 36.1895)),
    ("滨河路", 40, (120.3915, 36.1680), (120.3990, 36.1790)),
    ("君峰路", 80, (120.4175, 36.1510), (120.4175, 36.1790)),
    ("夏庄路", 70, (120.4010, 36.1775), (120.4390, 36.1775)),
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
    ("青山绿水苑", None, 12, (120.4050, 36.1705)),
    ("枣山小区", None, 10, (120.4280, 36.1755)),
    ("东川家园", None, 8, (120.4040, 36.1530)),
    ("百通花园一期", "百通一期", 15, (120.4345, 36.1600)),
    ("百通花园二期", "百通二期", 9, (120.4380, 36.1570)),
    ("振华苑", None, 10, (120.3935, 36.1740)),
    ("京口新村", None, 16, (120.4080, 36.1835)),
    ("万年泉花园", None, 12, (120.4330, 36.1865)),
    ("龙江苑", None, 8, (120.4430, 36.1720)),
    ("峰山花园一期", "峰山一期", 10, (120.4000, 36.1475)),
    ("峰山花园二期", "峰山二期", 10, (120.4080, 36.1475)),
    ("四流小区", None, 8, (120.3940, 36.1560)),
    ("广水家园", None, 8, (120.4120, 36.1437)),
    ("东李小区", None, 12, (120.4300, 36.1465)),
    ("十梅庵小区", None, 12, (120.4430, 36.1540)),
    ("黑龙江路宿舍", None, 6, (120.4425, 36.1780)),
    ("兴华苑", None, 12, (120.4240, 36.1590)),
)

# Landmark, aliases, (lon, lat).
LANDMARKS = (
    ("金秋小区", (), (120.4322, 36.1705)),  # what residents say when the phase does not matter
    ("百通花园", (), (120.4360, 36.1585)),
    ("峰山花园", (), (120.4040, 36.1475)),
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
    ("兴城路街道办事处", ("街道办事处",), (120.4250, 36.1620)),
    ("汾阳路社区工作站", ("汾阳路工作站",), (120.4060, 36.1770)),
    ("金水路社区工作站", ("金水路工作站",), (120.4370, 36.1760)),
    ("虎山路社区工作站", ("虎山路工作站",), (120.4060, 36.1530)),
    ("兴城路社区工作站", ("兴城路工作站",), (120.4360, 36.1530)),
    ("振华路社区工作站", ("振华路工作站",), (120.3960, 36.1700)),
    ("京口路社区工作站", ("京口路工作站",), (120.4380, 36.1840)),
    ("峰山路社区工作站", ("峰山路工作站",), (120.3990, 36.1440)),
    ("东李社区工作站", ("东李工作站",), (120.4350, 36.1445)),
    ("李村公园", (), (120.4300, 36.1880)),
    ("李村大集", (), (120.4220, 36.1835)),
    ("万年泉公园", (), (120.4400, 36.1890)),
    ("十梅庵公园", ("十梅庵",), (120.4390, 36.1430)),
    ("峰山公园", (), (120.4010, 36.1420)),
    ("振华路地铁站", ("振华路站", "地铁振华路站"), (120.3960, 36.1655)),
    ("枣山路地铁站", ("枣山路站", "地铁枣山路站"), (120.4265, 36.1640)),
    ("巨峰路地铁站", ("巨峰路站",), (120.4300, 36.1825)),
    ("李沧区中心医院", ("区中心医院", "中心医院"), (120.4360, 36.1860)),
    ("京口路小学", (), (120.4000, 36.1860)),
    ("九水东路菜市场", ("九水东路农贸市场",), (120.4150, 36.1885)),
    ("峰山路小学", (), (120.4060, 36.1455)),
    ("四流中路农贸市场", ("四流中路菜市场",), (120.3930, 36.1600)),
    ("广水路幼儿园", (), (120.4180, 36.1430)),
    ("东李派出所", (), (120.4410, 36.1460)),
    ("东李农贸市场", ("东李菜市场",), (120.4270, 36.1455)),
    ("黑龙江路中学", (), (120.4440, 36.1620)),
    ("东李社区卫生服务中心", ("东李卫生院",), (120.4400, 36.1510)),
    ("青山路小学", (), (120.4180, 36.1700)),
    ("东川路幼儿园", (), (120.4250, 36.1545)),
    ("向阳路邮局", (), (120.4150, 36.1625)),
    ("李沧区图书馆", ("区图书馆",), (120.4235, 36.1720)),
    ("家家乐超市", (), (120.4350, 36.1655)),
    ("枣山路体育场", (), (120.4240, 36.1570)),
    ("兴城路敬老院", (), (120.4330, 36.1610)),
    ("振华苑公交站", (), (120.3945, 36.1760)),
    ("滨河路停车场", (), (120.3960, 36.1780)),
    ("汾阳路公共厕所", ("汾阳路公厕",), (120.4180, 36.1735)),
    ("虎山路菜场", (), (120.4050, 36.1565)),
    ("书院路银行", (), (120.4250, 36.1605)),
    ("京口路广场", (), (120.4150, 36.1855)),
    ("万年泉路公交站", (), (120.4380, 36.1868)),
    ("十梅庵路口公交站", (), (120.4280, 36.1430)),
    ("东李地铁站", ("东李站", "地铁东李站"), (120.4440, 36.1500)),
    # Outside the district on purpose: the street office triages these.
    ("青岛北站", ("火车北站",), (120.3790, 36.1870)),
    ("李沧万达广场", ("万达广场",), (120.4200, 36.1960)),
)

Row = tuple[str, str, float, float, str]


def _station_of(lon: float, lat: float, grids: dict[str, BaseGeometry]) -> str:
    point = Point(lon, lat)
    inside = [key for key, area in grids.items() if area.covers(point)]
    return inside[0] if inside else ""


def _road_rows() -> list[Row]:
    rows = []
    for road, count, (lon0, lat0), (lon1, lat1) in ROADS:
        for number in range(1, count + 1):
            t = (number - 1) / (count - 1)
            # Odd numbers on one side of the road, even on the other, about 10 m apart.
            side = 0.0001 if number % 2 else -0.0001
            runs_east_west = abs(lon1 - lon0) > abs(lat1 - lat0)
            lon = lon0 + (lon1 - lon0) * t + (0.0 if runs_east_west else side)
            lat = lat0 + (lat1 - lat0) * t + (side if runs_east_west else 0.0)
            # Roads are routed by the grid, so the station column stays empty.
            rows.append((f"{road}{number}号", "", lat, lon, ""))
    return rows


def _compound_rows(grids: dict[str, BaseGeometry]) -> list[Row]:
    rows = []
    for compound, short, buildings, (lon0, lat0) in COMPOUNDS:
        rows.append((compound, short or "", lat0, lon0, _station_of(lon0, lat0, grids)))
        columns = 3 if buildings <= 9 else 4
        for number in range(1, buildings + 1):
            column, row = (number - 1) % columns, (number - 1) // columns
            lon = lon0 + (column - (columns - 1) / 2) * 0.0004
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
