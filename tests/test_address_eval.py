"""How well the offline locator reads real-looking captions: the labelled evaluation set in
tests/data/captions.csv, with precision, recall and station accuracy printed and kept as JSON."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.locating import CONFIDENT, Gazetteer, Grids, Locator

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bot" / "sample"
CAPTIONS = Path(__file__).resolve().parent / "data" / "captions.csv"
STATIONS = (
    "fenyang", "jinshui", "hushan", "xingcheng", "zhenhua", "jingkou", "fengshan", "dongli",
)  # fmt: skip


@dataclass(frozen=True)
class Labelled:
    caption: str
    address: str | None  # the canonical gazetteer address, None for "none"
    station: str | None  # None: outside every grid, or no address


def read_captions() -> list[Labelled]:
    with CAPTIONS.open(encoding="utf-8", newline="") as source:
        return [
            Labelled(
                caption=row["caption"],
                address=None if row["expected_address"] == "none" else row["expected_address"],
                station=row["expected_station"] or None,
            )
            for row in csv.DictReader(source)
        ]


@pytest.fixture(scope="module")
def locator() -> Locator:
    grids = Grids.from_files({key: SAMPLE / "grids" / f"{key}.geojson" for key in STATIONS})
    return Locator(Gazetteer.from_csv(SAMPLE / "addresses.csv"), grids)


@pytest.fixture(scope="module")
def labelled() -> list[Labelled]:
    return read_captions()


def test_the_set_is_big_and_varied_enough(labelled: list[Labelled]) -> None:
    assert len(labelled) >= 300
    assert sum(item.address is None for item in labelled) >= 40
    captions = [item.caption for item in labelled]
    assert len(set(captions)) == len(captions)
    assert sum("\n" in caption for caption in captions) >= 8
    assert sum(caption.isascii() for caption in captions) >= 10
    assert sum(any("\uff10" <= char <= "\uff19" for char in caption) for caption in captions) >= 10


def test_every_label_names_a_real_row_and_its_station(
    labelled: list[Labelled], locator: Locator
) -> None:
    rows = {entry.address: entry for entry in locator.gazetteer}
    for item in labelled:
        if item.address is None:
            assert item.station is None, item
            continue
        entry = rows[item.address]
        assert item.station == (
            entry.station_key or locator.grids.station_at(entry.lat, entry.lon)
        ), item


def test_locating_the_evaluation_captions(
    labelled: list[Labelled],
    locator: Locator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    correct = returned = expected = stations_right = 0
    wrong: list[str] = []
    confident_on_none: list[str] = []
    for item in labelled:
        place = locator.locate_text(item.caption)
        if place is not None:
            returned += 1
        if item.address is None:
            if place is not None:
                confident_on_none.append(f"{item.caption!r} → {place.address} {place.confidence}")
            continue
        expected += 1
        if place is not None and place.address == item.address:
            correct += 1
        else:
            wrong.append(f"{item.caption!r}: wanted {item.address}, got {place}")
        if place is not None and place.station_key == item.station:
            stations_right += 1

    figures = {
        "eval": "address",
        "captions": len(labelled),
        "with_address": expected,
        "precision": round(correct / returned, 4) if returned else 0.0,
        "recall": round(correct / expected, 4),
        "station_accuracy": round(stations_right / expected, 4),
        "confident_on_none": len(confident_on_none),
        "min_confidence": CONFIDENT,
    }
    line = json.dumps(figures, ensure_ascii=False)
    report = Path(os.environ.get("GRIDBOT_EVAL_REPORT", tmp_path / "address_eval.jsonl"))
    with report.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    with capsys.disabled():
        print(f"\n{line}")  # noqa: T201 - the figures are the point of this test
        for miss in wrong:
            print(f"  missed {miss}")  # noqa: T201

    assert confident_on_none == []
    assert figures["station_accuracy"] >= 0.95, wrong
