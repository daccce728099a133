"""Gazetteer locate throughput: captions/s over the evaluation captions with the 2,000-row sample
gazetteer and with a synthetic 200,000-row one, plus build times. Prints JSON lines.

Run: .venv/bin/python benchmarks/bench_locate.py [--rows 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.locating import Gazetteer, GazetteerEntry, Grids, Locator

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bot" / "sample"
CAPTIONS = ROOT / "tests" / "data" / "captions.csv"
STATIONS = (
    "fenyang", "jinshui", "hushan", "xingcheng", "zhenhua", "jingkou", "fengshan", "dongli",
)  # fmt: skip
# Characters road names are made of; two of them plus 路 give ~20,000 possible names.
NAME_CHARACTERS = (
    "安宝北昌长成春大德东方丰福港海和河红华黄吉嘉江金京锦康乐丽林龙茂美明南宁平浦齐青庆荣瑞山"
    "胜盛顺松泰天通万文西祥兴旭阳永玉源远云泽振正中洲竹紫"
)
TYPOS = (
    "汾杨路13号 旱厕堵了", "兴成路小学门口井盖坏了", "Fengyang Rd 13 garbage", "锦水路30号 垃圾",
)  # fmt: skip


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"bench": "locate", "metric": metric, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line, ensure_ascii=False))  # noqa: T201 - a benchmark prints its figures


def read_captions() -> list[str]:
    with CAPTIONS.open(encoding="utf-8", newline="") as source:
        return [row["caption"] for row in csv.DictReader(source)]


def synthetic_entries(rows: int, *, seed: int = 7) -> list[GazetteerEntry]:
    """`rows` house numbers on made-up roads, 100 numbers a road, scattered over the district."""
    rng = random.Random(seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) * 100 < rows:
        name = "".join(rng.sample(NAME_CHARACTERS, 2)) + rng.choice(("路", "街", "大道"))
        if name not in seen:
            seen.add(name)
            names.append(name)
    entries = []
    for line, index in enumerate(range(rows), start=2):
        road, number = names[index // 100], index % 100 + 1
        lat, lon = 36.14 + rng.random() * 0.05, 120.39 + rng.random() * 0.06
        entries.append(GazetteerEntry(f"{road}{number}号", (), lat, lon, None, line))
    return entries


def throughput(locate: Callable[[str], object], captions: Sequence[str], repeat: int) -> float:
    for caption in captions:  # warm caches (pypinyin, regexes) outside the timing
        locate(caption)
    start = time.perf_counter()
    for _ in range(repeat):
        for caption in captions:
            locate(caption)
    return len(captions) * repeat / (time.perf_counter() - start)


def measure(label: str, gazetteer: Gazetteer, grids: Grids, captions: list[str], repeat: int,
            build_s: float) -> None:
    locator = Locator(gazetteer, grids)
    emit("build_time", build_s, "s", gazetteer_rows=len(gazetteer), names=len(gazetteer.names),
         size=label)
    per_second = throughput(locator.locate_text, captions, repeat)
    emit("captions_per_s", per_second, "captions/s", gazetteer_rows=len(gazetteer), size=label)
    emit("us_per_caption", 1e6 / per_second, "µs", gazetteer_rows=len(gazetteer), size=label)
    typo_rate = throughput(locator.locate_text, TYPOS, max(repeat * 20, 20))
    emit("typo_captions_per_s", typo_rate, "captions/s", gazetteer_rows=len(gazetteer),
         size=label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    captions = read_captions()
    grids = Grids.from_files({key: SAMPLE / "grids" / f"{key}.geojson" for key in STATIONS})
    sample_rows = list(Gazetteer.from_csv(SAMPLE / "addresses.csv"))

    start = time.perf_counter()
    sample = Gazetteer(sample_rows)
    measure("sample", sample, grids, captions, args.repeat, time.perf_counter() - start)

    # The same captions against the sample district drowned in synthetic roads: every caption
    # still finds its address, so the work per caption is the same and only the size differs.
    rows = synthetic_entries(args.rows) + sample_rows
    start = time.perf_counter()
    large = Gazetteer(rows)
    measure("large", large, grids, captions, args.repeat, time.perf_counter() - start)


if __name__ == "__main__":
    main()
