"""Recognising repeats: how alike a new report is to an open ticket nearby, and what to do.

Plain Python, no database and no Telegram: the caller finds candidates through `cells_around`
(an indexed spatial bucket) and asks `best_match` which one, if any, the report repeats.

How the score is made (every part is a `Signal` with its value, weight and a readable detail):

    score = place × problem              both 0..1; problem = logistic(sum of evidence)

* **place** — are they at the same spot? Distance in metres (haversine): 1.0 up to
  min(15 m, radius/3) (GPS noise, a house's frontage), falling linearly to 0.5 at `radius_m`;
  beyond `radius_m` it is 0, so such a pair never merges. The same normalised gazetteer
  address counts as the same spot (1.0). Photos of one scene were taken from one spot, so
  they excuse up to 20 m of disagreement (one captain typed the next house number).
* **problem** — is it the same thing? Evidence in log-odds, starting from even odds:
  - *photo* (weight 4.5): the smallest perceptual-hash Hamming distance Δ between the two photo
    sets, value 1 at Δ ≤ 12 falling to 0 at Δ ≥ 24; evidence 4.5·value − 1.5, so unrelated
    photos count a little against (a close-up or a night shot of one problem looks unrelated
    too). On our generated scenes two shots of one scene have median Δ12 (p95 ≈ 25), unrelated
    scenes p5 Δ22–24; TECH-NOTES measured ~8 for a 5 % crop and ~22 for unrelated photos.
  - *text* (weight 10): Dice overlap of character unigrams and bigrams after folding
    common patrol words together (厕所/旱厕/公厕 → 厕, 排水口/下水道 → 下水 …) and dropping
    filler (了, 的, 呢, 麻烦, punctuation) — Chinese has no spaces to split words on.
    Evidence 10·(t − 0.12), at most +2.5 so words alone never outweigh unlike photos; below
    0.12 down to −2.5 when both descriptions name a problem ("还没修" cannot disagree).
  - *thing* (+1.5 / −2.0): the broken things named (公厕, 井盖, 路灯, 楼道灯, 垃圾 …, from a
    list like the street offices' own); different things mean different problems, however
    alike the words ("路灯不亮" and "楼道灯不亮").
  - *category* (+0.3 / −1.5): same or different category; neutral when either is the
    deployment's default (`unknown_category`: no problem word was recognised).

A wrong merge hides a problem, a missed one costs a chief a click, so the rules lean towards
not merging: a photo never merges alone (it counts only through `place` and is outweighed by
different things or categories); two problems at one address (a blocked drain and a broken
lamp at 汾阳路13号, different photos) have place 1 but problem ≈ 0; the same drain told in
other words and photographed from another angle reaches problem ≈ 0.99.

The identical photo (same Telegram `file_unique_id`, or the same bytes) is always a repeat
within the radius: score 1.0. Beyond the radius it is only asked about (one of the two
locations is wrong, or a forwarded photo illustrates a similar problem elsewhere).

`decide`: merge at or above `merge_above`, ask at or above `ask_above`, otherwise new.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar

from bot.intake import PROBLEM_WORDS, normalise_address

__all__ = [
    "CELL_DEGREES",
    "Decision",
    "Sighting",
    "Signal",
    "Similarity",
    "best_match",
    "cell_of",
    "cells_around",
    "decide",
    "description_similarity",
    "distance_m",
    "photo_distance",
    "similarity",
    "things_named",
]

Decision: TypeAlias = Literal["merge", "ask", "new"]
KEY = TypeVar("KEY")

# --- the spatial bucket ---------------------------------------------------------------------

# 0.001° is ~111 m north-south and ~90 m east-west in Qingdao (~65 m in Mohe, 53.5°N): a 50 m
# radius touches at most 2×2 cells, and a cell holds few tickets even in a dense city.
CELL_DEGREES = 0.001
_COLUMNS = round(360 / CELL_DEGREES)  # cells per row, around the whole globe
_ROWS = round(180 / CELL_DEGREES)
# Smallest metres per degree on the WGS-84 ellipsoid: of latitude (at the equator) and the
# equatorial radius for longitude (the prime vertical radius is never smaller), so the boxes
# below are never too small.
_MIN_METRES_PER_DEGREE_LAT = 110_574.0
_EQUATOR_RADIUS = 6_378_137.0
_MARGIN = 1.01  # a little slack for rounding and for the curve of a geodesic circle

_EARTH_RADIUS = 6_371_008.8  # mean radius, for haversine: < 0.5 % off at these distances


def cell_of(lat: float, lon: float) -> int:
    """The bucket a point lies in: an integer for an indexed column (needs 64 bits)."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"not a usable point: {lat}, {lon}")
    row, column = _row(lat), _column(lon)
    return row * _COLUMNS + column


def cells_around(lat: float, lon: float, radius_m: float) -> list[int]:
    """Every bucket a point within `radius_m` metres of (lat, lon) can lie in (sorted).

    Errs on the side of too many: the box is computed with the smallest metres per degree
    the ellipsoid has, and with the poleward edge of the box for longitude.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)) or not math.isfinite(radius_m):
        raise ValueError(f"not a usable point or radius: {lat}, {lon}, {radius_m}")
    radius_m = max(0.0, radius_m)
    d_lat = radius_m / _MIN_METRES_PER_DEGREE_LAT * _MARGIN
    south, north = max(-90.0, lat - d_lat), min(90.0, lat + d_lat)
    poleward = max(abs(south), abs(north))
    cos_edge = math.cos(math.radians(poleward))
    east_per_degree = math.radians(1) * _EQUATOR_RADIUS * cos_edge
    if east_per_degree * 180 <= radius_m * _MARGIN:  # near a pole: every longitude
        columns = range(_COLUMNS)
    else:
        d_lon = radius_m / east_per_degree * _MARGIN
        first, last = _column_unwrapped(lon - d_lon), _column_unwrapped(lon + d_lon)
        columns = range(first, last + 1) if last - first + 1 < _COLUMNS else range(_COLUMNS)
    rows = range(_row(south), _row(north) + 1)
    return sorted({row * _COLUMNS + column % _COLUMNS for row in rows for column in columns})


def _row(lat: float) -> int:
    return min(_ROWS - 1, max(0, math.floor((lat + 90.0) / CELL_DEGREES)))


def _column_unwrapped(lon: float) -> int:
    return math.floor((lon + 180.0) / CELL_DEGREES)


def _column(lon: float) -> int:
    return _column_unwrapped(lon) % _COLUMNS


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres between two points (haversine on the mean radius)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * _EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


# --- what dedup sees ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """A report or an open ticket, as dedup sees it."""

    lat: float
    lon: float
    address: str | None  # as located (the canonical gazetteer address) or None
    category: str
    description: str
    phashes: tuple[str, ...] = ()  # hex perceptual hashes of its photos
    sha256s: tuple[str, ...] = ()
    file_unique_ids: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: its value (0..1), how much it can weigh, and what was seen."""

    name: str
    value: float
    weight: float
    detail: str


@dataclass(frozen=True)
class Similarity:
    """How alike two sightings are (0..1), with the evidence that made the score."""

    score: float
    signals: tuple[Signal, ...]
    identical_photo: bool  # same file_unique_id or sha256: always a repeat within the radius
    within_radius: bool = True

    def signal(self, name: str) -> Signal | None:
        """The named signal, or None when it was not available (no photos, no address...)."""
        return next((signal for signal in self.signals if signal.name == name), None)

    def explain(self) -> str:
        """One line a chief or admin can read: the score, then each signal."""
        parts = [signal.detail for signal in self.signals]
        return f"{self.score:.2f}: " + ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for an event's details."""
        return {
            "score": round(self.score, 4),
            "identical_photo": self.identical_photo,
            "within_radius": self.within_radius,
            "signals": [
                {
                    "name": signal.name,
                    "value": round(signal.value, 4),
                    "weight": signal.weight,
                    "detail": signal.detail,
                }
                for signal in self.signals
            ],
            "explain": self.explain(),
        }


# --- scoring --------------------------------------------------------------------------------

# Evidence that it is the same problem, in log-odds (see the module docstring for the rule).
PHOTO_WEIGHT = 4.5
PHOTO_UNLIKE = 1.5  # unrelated-looking photos count against (but close-ups and night exist)
# Perceptual-hash Hamming distances (64-bit phash): at or below SAME_SCENE_DELTA two photos
# show the same scene; at or above UNRELATED_DELTA they look unrelated.
SAME_SCENE_DELTA = 12
UNRELATED_DELTA = 24
TEXT_WEIGHT = 10.0
TEXT_PIVOT = 0.12  # descriptions of different problems rarely overlap more than this
TEXT_MOST = 2.5  # words alone never outweigh unlike photos: 路灯不亮 is not 楼道灯不亮
TEXT_AGAINST = 2.5  # two problems named with nothing in common
THING_SAME, THING_OTHER = 1.5, -2.0  # 井盖 and 井盖: one thing; 路灯 and 楼道灯: two
CATEGORY_SAME, CATEGORY_OTHER = 0.3, -1.5
PLACE_AT_RADIUS = 0.5  # closeness at exactly radius_m; beyond it, 0
NEAR_M = 15.0
SCENE_SLACK_M = 20.0  # metres of disagreement a photo of the same scene explains


def similarity(
    new: Sighting, old: Sighting, *, radius_m: float, unknown_category: str | None = None
) -> Similarity:
    """How alike a new report is to an existing ticket, and why.

    `unknown_category` is the deployment's default category: a report filed there had no
    recognisable problem word, so its category neither supports nor contradicts a match.
    """
    identical = _identical_photo(new, old)
    delta = None if identical else photo_distance(new.phashes, old.phashes)
    photo = 1.0 if identical else _photo_value(delta) if delta is not None else 0.0

    metres = distance_m(new.lat, new.lon, old.lat, old.lon)
    within = metres <= radius_m
    # Two photos of one scene were taken from one spot: the locations then differ only by how
    # each captain placed his report (the next house number, a GPS fix), so allow some slack.
    slack = SCENE_SLACK_M * photo
    closeness = _closeness(max(0.0, metres - slack), radius_m=radius_m) if within else 0.0
    signals = [Signal("distance", closeness, 1.0, _distance_detail(metres, closeness))]

    same_address: bool | None = None
    if new.address and old.address:
        same_address = normalise_address(new.address) == normalise_address(old.address)
        signals.append(
            Signal(
                "address",
                1.0 if same_address else 0.0,
                1.0,
                "same address" if same_address else "other address",
            )
        )
    place = max(closeness, 1.0 if same_address and within else 0.0)

    evidence = 0.0  # at one spot and within the window, even odds before looking closer
    if identical:
        signals.append(Signal("photo", 1.0, PHOTO_WEIGHT, "identical photo"))
    elif delta is not None:
        evidence += PHOTO_WEIGHT * photo - PHOTO_UNLIKE
        signals.append(Signal("photo", photo, PHOTO_WEIGHT, f"photo Δ{delta} ({photo:.1f})"))

    if new.description.strip() and old.description.strip():
        text = description_similarity(new.description, old.description)
        telling = _names_a_problem(new, unknown_category) and _names_a_problem(
            old, unknown_category
        )
        evidence += _text_evidence(text, telling=telling)
        signals.append(Signal("text", text, TEXT_WEIGHT, f"text {text:.2f}"))

    new_things, old_things = things_named(new.description), things_named(old.description)
    if new_things and old_things:
        shared = new_things & old_things
        evidence += THING_SAME if shared else THING_OTHER
        signals.append(
            Signal(
                "thing",
                1.0 if shared else 0.0,
                THING_SAME - THING_OTHER,
                "same " + "/".join(sorted(shared)) if shared
                else "/".join(sorted(new_things)) + "≠" + "/".join(sorted(old_things)),
            )  # fmt: skip
        )

    if unknown_category is None or unknown_category not in (new.category, old.category):
        same_category = new.category == old.category
        evidence += CATEGORY_SAME if same_category else CATEGORY_OTHER
        signals.append(
            Signal(
                "category",
                1.0 if same_category else 0.0,
                CATEGORY_SAME - CATEGORY_OTHER,
                "same category" if same_category else f"category {new.category}≠{old.category}",
            )
        )

    problem = 1 / (1 + math.exp(-max(-50.0, min(50.0, evidence))))
    score = 1.0 if identical and within else place * problem
    return Similarity(
        score=_clamp(score),
        signals=tuple(signals),
        identical_photo=identical,
        within_radius=within,
    )


def decide(similarity: Similarity, *, merge_above: float, ask_above: float) -> Decision:
    """What to do with a report given its best similarity: merge, ask the reporter, or new."""
    if not similarity.within_radius:
        # Too far to be the same spot; the very same photo is still worth a question.
        return "ask" if similarity.identical_photo else "new"
    if similarity.identical_photo or similarity.score >= merge_above:
        return "merge"
    if similarity.score >= ask_above:
        return "ask"
    return "new"


def best_match(
    new: Sighting,
    candidates: Iterable[tuple[KEY, Sighting]],
    *,
    radius_m: float,
    merge_above: float,
    ask_above: float,
    unknown_category: str | None = None,
) -> tuple[KEY, Similarity, Decision] | None:
    """The candidate the new report most likely repeats, with the decision; None if none is
    worth merging or asking about. An identical photo beats any score; ties keep the first
    candidate (the caller can order them, e.g. oldest ticket first)."""
    best: tuple[KEY, Similarity, Decision] | None = None
    best_rank: tuple[int, int, float] | None = None
    order = {"merge": 2, "ask": 1, "new": 0}
    for key, old in candidates:
        found = similarity(new, old, radius_m=radius_m, unknown_category=unknown_category)
        decision = decide(found, merge_above=merge_above, ask_above=ask_above)
        if decision == "new":
            continue
        rank = (order[decision], int(found.identical_photo), found.score)
        if best_rank is None or rank > best_rank:
            best, best_rank = (key, found, decision), rank
    return best


# --- the signals ----------------------------------------------------------------------------


def _closeness(metres: float, *, radius_m: float) -> float:
    near = min(NEAR_M, radius_m / 3)
    if metres <= near:
        return 1.0
    span = max(radius_m - near, 1e-9)
    return 1.0 - (1.0 - PLACE_AT_RADIUS) * (metres - near) / span


def _distance_detail(metres: float, closeness: float) -> str:
    shown = f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"
    return f"distance {shown} ({closeness:.1f})"


def _identical_photo(new: Sighting, old: Sighting) -> bool:
    ids = {uid for uid in new.file_unique_ids if uid} & {uid for uid in old.file_unique_ids if uid}
    digests = {d.lower() for d in new.sha256s if d} & {d.lower() for d in old.sha256s if d}
    return bool(ids or digests)


def photo_distance(first: Iterable[str], second: Iterable[str]) -> int | None:
    """The smallest Hamming distance between any photo of one set and any of the other;
    None when either side has no usable hash (missing, not hex, or of another size)."""
    left, right = _hashes(first), _hashes(second)
    distances = [
        (a ^ b).bit_count() for a, bits_a in left for b, bits_b in right if bits_a == bits_b
    ]
    return min(distances) if distances else None


def _hashes(values: Iterable[str]) -> list[tuple[int, int]]:
    parsed = []
    for value in values:
        text = (value or "").strip().lower()
        if not text or len(text) > 256 or not re.fullmatch(r"[0-9a-f]+", text):
            continue
        parsed.append((int(text, 16), len(text) * 4))
    return parsed


def _text_evidence(text: float, *, telling: bool) -> float:
    if text >= TEXT_PIVOT:
        return min(TEXT_MOST, TEXT_WEIGHT * (text - TEXT_PIVOT))
    # "还没修" says nothing about which problem, so only two named problems can disagree.
    return -TEXT_AGAINST * (TEXT_PIVOT - text) / TEXT_PIVOT if telling else 0.0


def _photo_value(delta: int) -> float:
    if delta <= SAME_SCENE_DELTA:
        return 1.0
    if delta >= UNRELATED_DELTA:
        return 0.0
    return (UNRELATED_DELTA - delta) / (UNRELATED_DELTA - SAME_SCENE_DELTA)


# Words captains use for one thing, folded to one token so "旱厕堵了" meets "厕所堵住了". Longer
# spellings first; only words of this domain, where the meaning does not depend on context.
_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("地下车库", "车库"), ("地库", "车库"),
    ("窨井盖", "井盖"), ("雨水篦子", "下水"), ("下水道", "下水"), ("排水口", "下水"),
    ("下水口", "下水"),
    ("排水沟", "下水"), ("污水井", "下水"), ("窨井", "下水"), ("篦子", "下水"),
    ("卫生间", "厕"), ("厕所", "厕"), ("旱厕", "厕"), ("公厕", "厕"), ("茅厕", "厕"),
    ("茅房", "厕"),
    ("垃圾桶", "垃圾"), ("垃圾箱", "垃圾"), ("垃圾站", "垃圾"),
    ("堵塞", "堵"), ("堵住", "堵"), ("堵死", "堵"), ("不通", "堵"),
    ("外溢", "溢"), ("溢出", "溢"), ("冒水", "溢"), ("反水", "溢"), ("返水", "溢"),
    ("进水", "积水"),
    ("煤气", "燃气"), ("天然气", "燃气"),
    ("飞线", "电线"), ("拉线", "电线"),
    ("破损", "坏"), ("损坏", "坏"), ("坏掉", "坏"), ("失灵", "坏"),
    ("不亮", "灭"), ("不着", "灭"), ("黑乎乎", "灭"), ("黑漆漆", "灭"),
)  # fmt: skip
# Politeness and filler that say nothing about the problem.
_FILLER_WORDS = (
    "麻烦", "赶紧", "尽快", "一下", "看看", "谢谢", "你好", "您好", "请问", "请", "好几天",
    "几天", "已经", "这个", "那个", "这里", "那里", "这边", "那边", "一直", "还是", "有点",
    "有些", "非常", "特别", "真的", "现在", "今天", "昨天", "早上", "我们", "大家",
)  # fmt: skip
_FILLER_CHARS = frozenset("了的呢啊吧吗呀哦嘛啦么哈呗咯喔哇得着过又很太都也还就再是在有")
_MAX_TEXT = 500  # a caption is short; a hostile one should not cost us time


def description_similarity(first: str, second: str) -> float:
    """How alike two descriptions are (0..1): Dice overlap of character unigrams and bigrams
    after folding synonyms and dropping filler; works without word boundaries."""
    a, b = _grams(first), _grams(second)
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def _grams(text: str) -> set[str]:
    folded = _fold(text)
    if not folded:
        return set()
    grams = set(folded)
    grams.update(folded[i : i + 2] for i in range(len(folded) - 1))
    return grams


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")[:_MAX_TEXT].lower()
    # Keep letters and digits only; punctuation and spaces split nothing in Chinese anyway.
    text = "".join(char for char in text if unicodedata.category(char)[0] in "LN")
    for word, token in _SYNONYMS:
        text = text.replace(word, token)
    for word in _FILLER_WORDS:
        text = text.replace(word, "")
    return "".join(char for char in text if char not in _FILLER_CHARS)


# Words that say something is wrong but not what: "还没人来修" repeats a report, it does not
# describe another problem.
_VAGUE_PROBLEM_WORDS = frozenset(("没人", "无人", "乱"))


def _names_a_problem(sighting: Sighting, unknown_category: str | None) -> bool:
    if unknown_category is not None and sighting.category != unknown_category:
        return True
    text = sighting.description
    return any(word in text for word in PROBLEM_WORDS if word not in _VAGUE_PROBLEM_WORDS)


# The things that break, as street offices list them (公厕, 井盖, 路灯, 垃圾桶 …), each with the
# words captains use for it. Two descriptions naming different things describe two problems,
# whatever else they share ("路灯不亮" and "楼道灯不亮").
_THINGS: dict[str, tuple[str, ...]] = {
    "公厕": ("旱厕", "厕所", "公厕", "茅厕", "茅房", "卫生间"),
    "垃圾": ("垃圾桶", "垃圾箱", "垃圾站", "垃圾"),
    "下水道": (
        "下水道", "排水口", "下水口", "排水沟", "污水井", "窨井", "雨水篦子", "篦子", "化粪池",
        "下水",
    ),
    "车库": ("地下车库", "车库", "地库", "地下停车场", "停车场"),
    "楼道灯": ("楼道灯", "声控灯", "楼梯灯", "楼道里的灯", "楼梯间的灯", "楼道的灯"),
    "路灯": ("路灯", "路边的灯", "街灯"),
    "井盖": ("井盖", "窨井盖"),
    "路面": ("路面", "坑洼", "大坑", "有个坑"),
    "健身器材": ("健身器材", "漫步机", "单杠", "双杠"),
    "电线": ("电线", "飞线", "拉线", "充电"),
    "外墙": ("外墙", "墙皮", "墙砖", "瓷砖"),
    "停车": ("乱停", "停车", "共享单车", "占道", "消防通道"),
    "树木": ("树枝", "大树", "树木"),
    "门禁": ("门禁", "单元门", "防盗门"),
    "座椅": ("座椅", "长椅", "椅子", "石凳", "长凳", "凳子"),
    "噪音": ("噪音", "噪声", "施工", "扰民", "吵"),
    "燃气": ("燃气", "煤气", "天然气", "漏气"),
    "电梯": ("电梯",),
}  # fmt: skip
_THING_SPELLINGS = sorted(
    ((spelling, thing) for thing, spellings in _THINGS.items() for spelling in spellings),
    key=lambda pair: -len(pair[0]),
)


def things_named(description: str) -> frozenset[str]:
    """The broken things a description names (公厕, 路灯, 井盖 …), longest spelling first so
    楼道灯 is not also a 路灯."""
    text = unicodedata.normalize("NFKC", description or "")[:_MAX_TEXT]
    found = set()
    for spelling, thing in _THING_SPELLINGS:
        if spelling in text:
            found.add(thing)
            text = text.replace(spelling, "|")
    return frozenset(found)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
