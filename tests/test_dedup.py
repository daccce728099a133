"""Recognising repeats, one rule at a time: what merges, what is asked about, what stays new,
and the spatial buckets that find candidates."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import pytest
from dedup_pairs import offset
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dedup import (
    CELL_DEGREES,
    Sighting,
    Similarity,
    best_match,
    cell_of,
    cells_around,
    decide,
    description_similarity,
    photo_distance,
    similarity,
    things_named,
)
from bot.photos import inspect_image

from factories import draw_problem_scene, photograph

RADIUS = 50.0
MERGE, ASK = 0.85, 0.6
FENYANG_13 = (36.173948, 120.408316)


def _hash(scene: int, *, seed: int, how: str = "another angle") -> str:
    return inspect_image(photograph(draw_problem_scene(scene), seed=seed, how=how)).phash


@pytest.fixture(scope="module")
def drain_photos() -> tuple[str, str]:
    """Two captains' photos of one blocked drain, from slightly different spots."""
    return _hash(101, seed=1), _hash(101, seed=2)


@pytest.fixture(scope="module")
def lamp_photo() -> str:
    return _hash(202, seed=3)


def _report(
    description: str,
    *,
    category: str = "sanitation",
    at: tuple[float, float] = FENYANG_13,
    address: str | None = "汾阳路13号",
    phashes: tuple[str, ...] = (),
    file_ids: tuple[str, ...] = (),
    sha256s: tuple[str, ...] = (),
) -> Sighting:
    return Sighting(
        lat=at[0],
        lon=at[1],
        address=address,
        category=category,
        description=description,
        phashes=phashes,
        sha256s=sha256s,
        file_unique_ids=file_ids,
    )


def _decision(new: Sighting, old: Sighting) -> str:
    found = similarity(new, old, radius_m=RADIUS, unknown_category="other")
    return decide(found, merge_above=MERGE, ask_above=ASK)


# --- what merges and what does not -----------------------------------------------------------


def test_the_same_drain_in_other_words_from_another_angle_merges(
    drain_photos: tuple[str, str],
) -> None:
    old = _report("下水道堵了，污水漫到路上", phashes=(drain_photos[0],))
    new = _report("排水口堵塞 污水外溢！！", phashes=(drain_photos[1],))
    assert photo_distance(new.phashes, old.phashes) is not None
    assert _decision(new, old) == "merge"


def test_a_blocked_drain_and_a_broken_lamp_at_one_address_stay_apart(
    drain_photos: tuple[str, str], lamp_photo: str
) -> None:
    drain = _report("下水道堵了，污水漫到路上", phashes=(drain_photos[0],))
    lamp = _report("路灯坏了，晚上不亮", category="facilities", phashes=(lamp_photo,))
    found = similarity(lamp, drain, radius_m=RADIUS)
    assert found.signal("address") is not None and found.signal("address").value == 1.0
    assert found.score < 0.1
    assert _decision(lamp, drain) == "new"


def test_a_street_lamp_is_not_a_stairwell_light_however_alike_the_words(
    lamp_photo: str,
) -> None:
    street = _report("路灯不亮", category="facilities", phashes=(lamp_photo,))
    stairs = _report("楼道灯不亮", category="facilities", phashes=(_hash(303, seed=4),))
    assert description_similarity("路灯不亮", "楼道灯不亮") >= 0.4
    assert _decision(stairs, street) == "new"


def test_a_photo_alone_never_merges_two_named_problems(drain_photos: tuple[str, str]) -> None:
    # Both captains photographed the same corner, but one reports the toilet, one the bins.
    toilet = _report("旱厕堵了", phashes=(drain_photos[0],))
    bins = _report("垃圾桶满了没人清", phashes=(drain_photos[1],))
    assert _decision(bins, toilet) != "merge"


@pytest.mark.parametrize("words", ["", "还没修", "还没人来修！", "<b>又</b>", "不是同一个问题吧"])
def test_the_identical_photo_always_merges_whatever_the_words(words: str) -> None:
    old = _report("旱厕堵了", phashes=("c3c3c3c3c3c3c3c3",), file_ids=("AQADold",))
    new = _report(
        words, category="other", phashes=("0f0f0f0f0f0f0f0f",), file_ids=("AQADold",),
        at=offset(*FENYANG_13, 30, 0.25), address=None,
    )  # fmt: skip
    found = similarity(new, old, radius_m=RADIUS)
    assert found.identical_photo and found.score == 1.0
    assert decide(found, merge_above=1.0, ask_above=1.0) == "merge"


def test_the_same_bytes_count_as_the_identical_photo_too() -> None:
    digest = "ab" * 32
    old = _report("旱厕堵了", sha256s=(digest,))
    new = _report("垃圾满了", sha256s=(digest.upper(),), category="other")
    assert similarity(new, old, radius_m=RADIUS).identical_photo
    assert _decision(new, old) == "merge"


def test_empty_ids_and_digests_are_not_a_match() -> None:
    old = _report("旱厕堵了", sha256s=("",), file_ids=("",))
    new = _report("路灯不亮", sha256s=("",), file_ids=("",), category="facilities")
    assert not similarity(new, old, radius_m=RADIUS).identical_photo


def test_the_identical_photo_far_away_is_only_asked_about() -> None:
    old = _report("旱厕堵了", file_ids=("AQADold",))
    new = _report("旱厕堵了", file_ids=("AQADold",), at=offset(*FENYANG_13, 400, 0.1))
    found = similarity(new, old, radius_m=RADIUS)
    assert found.identical_photo and not found.within_radius
    assert decide(found, merge_above=MERGE, ask_above=ASK) == "ask"


@pytest.mark.parametrize("metres", [51.0, 80.0, 500.0, 20_000.0])
def test_beyond_the_radius_nothing_merges(metres: float, drain_photos: tuple[str, str]) -> None:
    old = _report("下水道堵了，污水漫到路上", phashes=(drain_photos[0],))
    new = replace(
        old, phashes=(drain_photos[1],), address=None, lat=0.0, lon=0.0
    )  # the same words and photo, elsewhere
    new = replace(new, lat=offset(*FENYANG_13, metres, 0.6)[0],
                  lon=offset(*FENYANG_13, metres, 0.6)[1])  # fmt: skip
    found = similarity(new, old, radius_m=RADIUS)
    assert not found.within_radius
    assert found.score == 0.0
    assert _decision(new, old) == "new"


@settings(max_examples=60, deadline=None)
@given(
    metres=st.floats(min_value=50.5, max_value=5000),
    turn=st.floats(min_value=0, max_value=1),
    words=st.sampled_from(["旱厕堵了", "旱厕又堵了", "", "路灯不亮"]),
    same_address=st.booleans(),
)
def test_beyond_the_radius_never_merges_even_with_the_same_address_and_words(
    metres: float, turn: float, words: str, same_address: bool
) -> None:
    old = _report("旱厕堵了", phashes=("ffff0000ffff0000",))
    lat, lon = offset(*FENYANG_13, metres, turn)
    new = _report(words, at=(lat, lon), address="汾阳路13号" if same_address else None,
                  phashes=("ffff0000ffff0000",))  # fmt: skip
    assert _decision(new, old) != "merge"


def test_five_metres_apart_merges_forty_five_needs_the_photo_eighty_never(
    drain_photos: tuple[str, str],
) -> None:
    old = _report("路面塌了一个大坑", category="facilities", address=None,
                  phashes=(drain_photos[0],))  # fmt: skip

    def moved(metres: float, phash: str) -> Sighting:
        lat, lon = offset(old.lat, old.lon, metres, 0.3)
        return replace(old, lat=lat, lon=lon, description="路面坑洼，电动车容易摔",
                       phashes=(phash,))  # fmt: skip

    other_pothole = _hash(404, seed=5)
    assert _decision(moved(5, drain_photos[1]), old) == "merge"
    assert _decision(moved(45, other_pothole), old) != "merge"
    assert _decision(moved(80, drain_photos[1]), old) == "new"


def test_a_reminder_without_words_for_the_problem_does_not_speak_against_it(
    drain_photos: tuple[str, str],
) -> None:
    old = _report("旱厕又堵了，味道很大", phashes=(drain_photos[0],))
    again = _report("还没人来修", category="other", phashes=(drain_photos[1],))
    found = similarity(again, old, radius_m=RADIUS, unknown_category="other")
    assert found.signal("category") is None  # "other" says nothing
    assert decide(found, merge_above=MERGE, ask_above=ASK) == "merge"


def test_a_different_category_lowers_the_score() -> None:
    old = _report("车辆乱停堵住了消防通道", category="safety")
    new = _report("门口乱停车，进不去", category="facilities")
    differing = similarity(new, old, radius_m=RADIUS)
    agreeing = similarity(replace(new, category="safety"), old, radius_m=RADIUS)
    assert differing.signal("category").value == 0.0
    assert differing.score < agreeing.score


def test_a_report_without_photo_or_words_is_not_a_repeat_of_anything() -> None:
    old = _report("旱厕堵了")
    new = _report("", category="other")
    assert _decision(new, old) == "new"


# --- decide ---------------------------------------------------------------------------------


def _similarity(score: float, *, identical: bool = False, within: bool = True) -> Similarity:
    return Similarity(score=score, signals=(), identical_photo=identical, within_radius=within)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (1.0, "merge"), (0.85, "merge"), (0.8499, "ask"), (0.6, "ask"), (0.5999, "new"),
        (0.0, "new"),
    ],  # fmt: skip
)
def test_decide_merges_at_or_above_and_asks_in_between(score: float, expected: str) -> None:
    assert decide(_similarity(score), merge_above=0.85, ask_above=0.6) == expected


def test_decide_with_equal_thresholds_never_asks() -> None:
    assert decide(_similarity(0.7), merge_above=0.7, ask_above=0.7) == "merge"
    assert decide(_similarity(0.69), merge_above=0.7, ask_above=0.7) == "new"


def test_decide_identical_photo_merges_within_and_asks_beyond() -> None:
    assert decide(_similarity(0.1, identical=True), merge_above=1, ask_above=1) == "merge"
    assert decide(_similarity(0.0, identical=True, within=False), merge_above=0.85,
                  ask_above=0.6) == "ask"  # fmt: skip
    assert decide(_similarity(0.99, within=False), merge_above=0.5, ask_above=0.1) == "new"


# --- best_match -----------------------------------------------------------------------------


def test_best_match_prefers_the_repeat_and_ignores_the_unrelated(
    drain_photos: tuple[str, str], lamp_photo: str
) -> None:
    new = _report("排水口堵塞，污水外溢", phashes=(drain_photos[1],))
    candidates = [
        (7, _report("路灯不亮", category="facilities", phashes=(lamp_photo,))),
        (8, _report("下水道堵了，污水漫到路上", phashes=(drain_photos[0],))),
        (9, _report("下水道堵了", at=offset(*FENYANG_13, 900, 0.5), phashes=(drain_photos[0],))),
    ]
    found = best_match(new, candidates, radius_m=RADIUS, merge_above=MERGE, ask_above=ASK)
    assert found is not None
    key, found_similarity, decision = found
    assert (key, decision) == (8, "merge")
    assert found_similarity.score >= MERGE


def test_best_match_identical_photo_beats_a_higher_score(
    drain_photos: tuple[str, str],
) -> None:
    new = _report("下水道堵了", phashes=(drain_photos[1],), file_ids=("AQADsame",))
    candidates = [
        ("look-alike", _report("下水道堵了", phashes=(drain_photos[1],))),
        ("the one", _report("旱厕", category="other", file_ids=("AQADsame",))),
    ]
    found = best_match(new, candidates, radius_m=RADIUS, merge_above=MERGE, ask_above=ASK)
    assert found is not None and found[0] == "the one"


def test_best_match_finds_nothing_among_nothing_or_strangers(lamp_photo: str) -> None:
    new = _report("旱厕堵了")
    assert best_match(new, [], radius_m=RADIUS, merge_above=MERGE, ask_above=ASK) is None
    strangers = [(1, _report("路灯不亮", category="facilities", phashes=(lamp_photo,)))]
    assert best_match(new, strangers, radius_m=RADIUS, merge_above=MERGE, ask_above=ASK) is None


# --- explain ----------------------------------------------------------------------------------


def test_explain_reads_as_one_line_with_every_signal(drain_photos: tuple[str, str]) -> None:
    old = _report("下水道堵了，污水漫到路上", phashes=(drain_photos[0],))
    lat, lon = offset(*FENYANG_13, 12, 0.2)
    new = _report("排水口堵塞，污水外溢", phashes=(drain_photos[1],), at=(lat, lon))
    found = similarity(new, old, radius_m=RADIUS)
    line = found.explain()
    assert "\n" not in line
    assert line.startswith(f"{found.score:.2f}: distance 12 m (")
    for part in ("same address", "photo Δ", "text 0.", "same 下水道", "same category"):
        assert part in line
    details = found.as_dict()
    assert json.loads(json.dumps(details, ensure_ascii=False)) == details
    assert {signal["name"] for signal in details["signals"]} == {
        "distance", "address", "photo", "text", "thing", "category",
    }  # fmt: skip
    assert details["explain"] == line


def test_explain_names_what_differs_and_never_echoes_the_captains_words() -> None:
    old = _report("<a href='x'>旱厕</a>堵了", sha256s=())
    new = _report("<script>路灯</script>不亮", category="facilities", address="汾阳路12号",
                  at=(36.173761, 120.407873))  # fmt: skip
    line = similarity(new, old, radius_m=RADIUS).explain()
    assert "other address" in line and "category facilities≠sanitation" in line
    assert "路灯≠公厕" in line
    assert "<" not in line and "script" not in line
    assert "identical photo" in similarity(
        _report("", file_ids=("x",)), _report("", file_ids=("x",)), radius_m=RADIUS
    ).explain()


# --- the signals on their own ------------------------------------------------------------------


def test_description_similarity_reads_chinese_without_spaces() -> None:
    assert description_similarity("旱厕堵了！！", "旱厕堵了呢。") == 1.0
    assert description_similarity("旱厕堵了", "厕所堵住了") == 1.0  # one thing, other words
    same = description_similarity("下水道堵了，污水漫到路上", "排水口堵塞，污水外溢")
    other = description_similarity("下水道堵了，污水漫到路上", "健身器材坏了")
    assert same > 0.3 > other
    assert description_similarity("", "旱厕堵了") == 0.0
    assert description_similarity("！！！", "。。。") == 0.0
    assert description_similarity("Trash bin FULL", "trash bin full") == 1.0


def test_description_similarity_stays_quick_on_absurd_captions() -> None:
    started = time.perf_counter()
    description_similarity("堵" * 1_000_000, "<b>" * 300_000)
    assert time.perf_counter() - started < 0.5


def test_things_named_prefers_the_longest_spelling() -> None:
    assert things_named("楼道灯不亮") == {"楼道灯"}
    assert things_named("路灯不亮") == {"路灯"}
    assert things_named("窨井盖没了") == {"井盖"}
    assert things_named("还没修") == frozenset()


def test_photo_distance_takes_the_closest_pair_and_skips_junk() -> None:
    assert photo_distance(["ffffffffffffffff", "0000000000000000"], ["000000000000000f"]) == 4
    assert photo_distance([], ["0000000000000000"]) is None
    assert photo_distance(["not hex!", "", "ff" * 500], ["0000000000000000"]) is None
    assert photo_distance(["00ff"], ["0000000000000000"]) is None  # another hash size


def test_photos_of_one_scene_hash_closer_than_photos_of_two() -> None:
    shots = [_hash(5, seed=seed) for seed in range(3)]
    others = [_hash(6 + scene, seed=scene) for scene in range(3)]
    same = max(photo_distance([a], [b]) or 0 for a in shots for b in shots)
    apart = min(photo_distance([a], [b]) or 64 for a in shots for b in others)
    assert same < apart
    assert photo_distance([_hash(5, seed=0, how="recompressed")], [_hash(5, seed=9,
                          how="recompressed")]) == 0  # fmt: skip


# --- spatial buckets ----------------------------------------------------------------------------


def test_cell_of_is_stable_and_distinguishes_neighbouring_cells() -> None:
    assert cell_of(*FENYANG_13) == cell_of(*FENYANG_13)
    assert cell_of(36.1735, 120.4085) != cell_of(36.1735 + CELL_DEGREES, 120.4085)
    assert cell_of(36.1735, 120.4085) != cell_of(36.1735, 120.4085 + CELL_DEGREES)
    assert cell_of(*FENYANG_13) < 2**63


def test_cells_around_is_small_for_the_default_radius() -> None:
    cells = cells_around(*FENYANG_13, 50)
    assert cell_of(*FENYANG_13) in cells
    assert 1 <= len(cells) <= 6
    assert cells == sorted(set(cells))
    assert cells_around(*FENYANG_13, 0) == [cell_of(*FENYANG_13)]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_cells_refuse_unusable_points(bad: float) -> None:
    with pytest.raises(ValueError):
        cells_around(bad, 120.0, 50)
    with pytest.raises(ValueError):
        cells_around(36.0, 120.0, bad)
    with pytest.raises(ValueError):
        cell_of(36.0, bad)


@settings(max_examples=400, deadline=None)
@given(
    # China spans about 18°N-54°N, 73°E-135°E.
    lat=st.floats(min_value=18.0, max_value=54.0),
    lon=st.floats(min_value=73.0, max_value=135.0),
    radius=st.floats(min_value=1.0, max_value=1000.0),
    share=st.floats(min_value=0.0, max_value=1.0),
    bearing=st.floats(min_value=0.0, max_value=360.0),
)
def test_cells_around_cover_every_point_within_the_radius(
    lat: float, lon: float, radius: float, share: float, bearing: float
) -> None:
    point = geodesic(meters=radius * share).destination((lat, lon), bearing)
    assert cell_of(point.latitude, point.longitude) in cells_around(lat, lon, radius)


@settings(max_examples=200, deadline=None)
@given(
    row=st.integers(min_value=108_000, max_value=144_000),
    column=st.integers(min_value=253_000, max_value=315_000),
    radius=st.floats(min_value=1.0, max_value=200.0),
    bearing=st.floats(min_value=0.0, max_value=360.0),
)
def test_cells_around_cover_points_across_a_cell_border(
    row: int, column: int, radius: float, bearing: float
) -> None:
    # A report exactly on a cell corner, the ticket just over the border.
    lat, lon = row * CELL_DEGREES - 90, column * CELL_DEGREES - 180
    point = geodesic(meters=radius).destination((lat, lon), bearing)
    assert cell_of(point.latitude, point.longitude) in cells_around(lat, lon, radius)
