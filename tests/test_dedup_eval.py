"""How well dedup recognises repeats on the labelled pairs of tests/dedup_pairs.py: precision
and recall of automatic merges, the "ask" band, and the photo-hash distances behind them."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest
from dedup_pairs import Pair, generate_pairs, sighting

from bot.dedup import Sighting, Similarity, decide, photo_distance, similarity
from bot.deployment import Dedup


@dataclass(frozen=True)
class Judged:
    pair: Pair
    new: Sighting
    old: Sighting
    similarity: Similarity


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    defaults = Dedup()
    out = []
    for pair in generate_pairs():
        new, old = sighting(pair.new), sighting(pair.old)
        found = similarity(new, old, radius_m=defaults.radius_m, unknown_category="other")
        out.append(Judged(pair, new, old, found))
    return out


def _figures(judged: list[Judged], *, merge_above: float, ask_above: float) -> dict[str, float]:
    counts: Counter[tuple[bool, str]] = Counter(
        (item.pair.same, decide(item.similarity, merge_above=merge_above, ask_above=ask_above))
        for item in judged
    )
    merged_right, merged_wrong = counts[(True, "merge")], counts[(False, "merge")]
    same = sum(item.pair.same for item in judged)
    return {
        "merge_above": merge_above,
        "ask_above": ask_above,
        "pairs": len(judged),
        "same": same,
        "different": len(judged) - same,
        "precision": merged_right / max(1, merged_right + merged_wrong),
        "recall": merged_right / max(1, same),
        "wrong_merges": merged_wrong,
        "same_asked": counts[(True, "ask")],
        "different_asked": counts[(False, "ask")],
        "same_missed": counts[(True, "new")],
        # Same problems that end up merged or asked about: what the ask band recovers.
        "recall_with_ask": (merged_right + counts[(True, "ask")]) / max(1, same),
    }


def test_the_set_is_big_and_varied_enough(judged: list[Judged]) -> None:
    assert len(judged) >= 200
    scenarios = Counter(item.pair.scenario for item in judged)
    assert len(scenarios) >= 10
    assert 0.35 <= sum(item.pair.same for item in judged) / len(judged) <= 0.65
    assert sum(item.new.category != item.old.category and item.pair.same for item in judged) >= 3
    assert sum(not item.new.phashes for item in judged) >= 5


def test_precision_and_recall_of_automatic_merges(
    judged: list[Judged], capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = Dedup()
    figures = _figures(judged, merge_above=defaults.merge_above, ask_above=defaults.ask_above)
    by_scenario: dict[str, Counter[str]] = defaultdict(Counter)
    for item in judged:
        decision = decide(
            item.similarity, merge_above=defaults.merge_above, ask_above=defaults.ask_above
        )
        by_scenario[f"{item.pair.scenario} [{'same' if item.pair.same else 'diff'}]"][
            decision
        ] += 1
    sweep = [
        _figures(judged, merge_above=merge, ask_above=min(merge, defaults.ask_above))
        for merge in (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    ]
    with capsys.disabled():
        print()  # noqa: T201 - the figures are the point of this test
        print(  # noqa: T201
            f"dedup on {figures['pairs']} pairs ({figures['same']} same, "
            f"{figures['different']} different), merge ≥ {defaults.merge_above}, "
            f"ask ≥ {defaults.ask_above}: precision {figures['precision']:.3f}, "
            f"recall {figures['recall']:.3f}; ask band: {figures['same_asked']} same, "
            f"{figures['different_asked']} different; wrong merges {figures['wrong_merges']}"
        )
        for scenario, decisions in sorted(by_scenario.items()):
            shown = ", ".join(f"{k} {decisions[k]}" for k in ("merge", "ask", "new"))
            print(f"  {scenario:48s} {shown}")  # noqa: T201
        for row in sweep:
            print(  # noqa: T201
                f"  merge ≥ {row['merge_above']:.2f}: precision {row['precision']:.3f} "
                f"recall {row['recall']:.3f} wrong merges {row['wrong_merges']}"
            )
        print(json.dumps(  # noqa: T201
            {"dedup_eval": figures, "photo_distances": _photo_distances(judged)}))
    assert figures["precision"] >= 0.95
    assert figures["recall"] >= 0.85


def test_pairs_beyond_the_radius_score_nothing(judged: list[Judged]) -> None:
    far = [item for item in judged if not item.similarity.within_radius]
    assert len(far) >= 15
    assert all(item.similarity.score == 0.0 for item in far)


def test_no_two_named_things_at_one_address_merge(judged: list[Judged]) -> None:
    defaults = Dedup()
    for item in judged:
        thing = item.similarity.signal("thing")
        if thing is not None and thing.value == 0.0:
            assert decide(
                item.similarity, merge_above=defaults.merge_above, ask_above=defaults.ask_above
            ) != "merge", item.similarity.explain()


def _photo_distances(judged: list[Judged]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for item in judged:
        if item.similarity.identical_photo:
            continue
        delta = photo_distance(item.new.phashes, item.old.phashes)
        if delta is None:
            continue
        if item.pair.same:
            key = "same scene, " + (
                item.pair.scenario.split(", ")[1] if "photo" in item.pair.scenario
                else "another angle"
            )  # fmt: skip
        elif "backdrop" in item.pair.scenario:
            key = "different problem, same backdrop"
        else:
            key = "different scenes"
        groups[key].append(delta)
    return {key: _spread(values) for key, values in sorted(groups.items())}


def _spread(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    if len(ordered) > 1:
        quartiles = statistics.quantiles(ordered, n=20, method="inclusive")
    else:
        quartiles = ordered * 19
    return {
        "n": len(ordered),
        "min": ordered[0],
        "p5": quartiles[0],
        "median": statistics.median(ordered),
        "p95": quartiles[-1],
        "max": ordered[-1],
    }
