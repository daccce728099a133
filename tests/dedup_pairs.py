"""The labelled report pairs for the dedup evaluation, generated the way reports really happen:
problems at gazetteer places, captains who photograph and describe them in their own words."""

from __future__ import annotations

import csv
import functools
import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from bot.dedup import Sighting, distance_m
from bot.intake import classify
from bot.photos import inspect_image

from factories import draw_problem_scene, photograph

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample"

# How captains describe each kind of problem; a second captain picks his own words.
PHRASES: dict[str, tuple[str, ...]] = {
    "toilet": (
        "旱厕堵了", "旱厕又堵了，味道很大", "公厕堵住了，没法用", "厕所堵了 赶紧找人掏一下",
        "旱厕满了，粪水往外冒", "这个旱厕好几天没人清了，都堵死了", "公共厕所粪便满地，下不去脚",
        "旱厕没人掏，都满了",
    ),
    "garbage": (
        "垃圾桶满了，好几天没人清", "垃圾箱都溢出来了", "门口垃圾没人收，太臭了",
        "垃圾堆了一地，没人管", "垃圾桶周围全是垃圾袋", "垃圾清运不及时，桶都满了",
        "垃圾没人拉走，招苍蝇了",
    ),
    "drain": (
        "下水道堵了，污水漫到路上", "排水口堵塞，污水外溢", "污水井冒水了，很臭", "路边下水道反水",
        "下水道堵了，一股臭味", "雨水篦子堵了，水排不下去", "马路上污水横流，下水堵了",
    ),
    "garage": (
        "车库积水", "地下车库进水了，积水很深", "车库里全是水，车都开不出去",
        "地库积水没过脚脖子了", "车库积水好几天了没人抽", "地下停车场淹了",
    ),
    "lamp": (
        "路灯不亮", "路灯坏了，晚上黑乎乎的", "这根路灯好几天都不亮了",
        "晚上路灯不亮，老人走路不安全", "路灯一闪一闪的，快坏了", "路边的灯晚上不亮",
        "整条街的路灯都黑了",
    ),
    "stair_light": (
        "楼道灯不亮", "楼道里的灯坏了", "单元楼道声控灯失灵了", "楼梯间的灯不亮，上下楼看不见",
        "楼道黑灯瞎火的，灯泡坏了",
    ),
    "manhole": (
        "井盖破损", "井盖松动，踩上去直晃", "井盖不见了，太危险了", "路中间井盖翘起来了",
        "井盖碎了一块，小孩容易踩空", "窨井盖没了，有个大洞",
    ),
    "pothole": (
        "路面坑洼", "路面塌了一个大坑", "路上有个坑，电动车容易摔", "路面破损，坑坑洼洼的",
        "门口路面裂了好长一道缝", "马路上有个大窟窿",
    ),
    "fitness": (
        "健身器材坏了", "小区健身器材损坏，扶手断了", "健身器材的螺丝松了，老人用着危险",
        "漫步机坏了转不动", "健身区的器材断了一根",
    ),
    "wires": (
        "私拉电线给电动车充电", "楼道里飞线充电，有安全隐患", "有人从窗户拉电线下来充电",
        "电动车在楼道充电，电线乱拉", "电动车飞线充电",
    ),
    "facade": (
        "外墙瓷砖松动，有掉落隐患", "外墙皮掉了，怕砸到人", "楼上外墙砖掉下来了，高空坠物危险",
        "楼上掉瓷砖，差点砸到人",
    ),
    "parking": (
        "共享单车乱停，把路都占了", "车辆乱停堵住了消防通道", "门口乱停车，进不去",
        "电动车乱停把路堵死了",
    ),
    "branch": (
        "大风把树枝刮断了，挡在路上", "树枝断了挂在电线上", "路边大树倒了，挡路", "树倒了压在路上",
    ),
    "door": (
        "单元门禁坏了，门关不上", "门禁打不开，老人进不去", "单元门坏了一直开着",
        "楼下大门的门禁没反应",
    ),
    "bench": (
        "公园座椅破损", "长椅坏了一条腿", "座椅木板断了", "小广场的石凳坏了",
    ),
    "noise": (
        "晚上施工噪音太大", "工地半夜还在施工，吵得睡不着", "楼下KTV太吵了",
    ),
    "gas": (
        "闻到燃气味，可能漏气了", "楼道里有煤气味", "燃气管道有味道",
    ),
}  # fmt: skip
# Problems that stretch along a road, so two captains can stand 45 m apart looking at one.
LONG_KINDS = ("pothole", "drain", "branch")
_OPENINGS = ("", "", "", "", "你好，", "麻烦看一下，", "又", "反映一下：")
_ENDINGS = ("", "", "", "", "！", "，谢谢", "。", "，请尽快处理", "！！")


@dataclass(frozen=True)
class Place:
    address: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Problem:
    """One real problem somewhere: what is wrong, where exactly, what it looks like."""

    kind: str
    place: Place
    lat: float
    lon: float
    scene: int  # seed of what a camera sees
    background: int | None = None  # the place's look, when problems there share a backdrop


@dataclass(frozen=True)
class Shot:
    scene: int
    background: int | None
    how: str
    seed: int


@dataclass(frozen=True)
class Report:
    lat: float
    lon: float
    address: str | None
    description: str
    shots: tuple[Shot, ...] = ()
    file_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    scenario: str
    new: Report
    old: Report
    same: bool  # the truth: do both report one problem?


@dataclass
class World:
    """Deterministic source of places, problems and captains' reports."""

    rng: random.Random
    places: list[Place]
    _uploads: int = 0
    _scenes: int = 0
    _by_address: dict[str, Place] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_address = {place.address: place for place in self.places}

    # where things are

    def place(self) -> Place:
        return self.rng.choice(self.places)

    def neighbours(self, place: Place, low_m: float, high_m: float) -> list[Place]:
        return [
            other
            for other in self.places
            if low_m <= distance_m(place.lat, place.lon, other.lat, other.lon) <= high_m
        ]

    def nearest(self, lat: float, lon: float, *, within_m: float = 25.0) -> str | None:
        """What locating a shared point gives: the nearest gazetteer address, if close."""
        best = min(self.places, key=lambda p: distance_m(lat, lon, p.lat, p.lon))
        return best.address if distance_m(lat, lon, best.lat, best.lon) <= within_m else None

    def problem(
        self, kind: str, place: Place, *, spot_m: float = 12.0, background: int | None = None
    ) -> Problem:
        lat, lon = offset(place.lat, place.lon, self.rng.uniform(0, spot_m), self.rng.random())
        self._scenes += 1
        return Problem(kind, place, lat, lon, scene=self._scenes, background=background)

    # what captains send

    def report(
        self,
        problem: Problem,
        *,
        located: str = "typed",
        photos: tuple[str, ...] = ("another angle",),
        words: str | None = None,
        standing_m: float | None = None,
    ) -> Report:
        """A captain's report of `problem`. `located`: "typed" (the address of the place),
        "shared" (a phone location near where he stands), "next door" (the neighbouring
        house number he happened to read); `standing_m` moves him away along a bearing."""
        lat, lon = problem.lat, problem.lon
        if standing_m is not None:
            lat, lon = offset(lat, lon, standing_m, self.rng.random())
        if located == "typed":
            address, lat, lon = problem.place.address, problem.place.lat, problem.place.lon
        elif located == "next door":
            door = self.rng.choice(self.neighbours(problem.place, 25, 45) or [problem.place])
            address, lat, lon = door.address, door.lat, door.lon
        else:  # a shared location: GPS error of a few metres, placed to the nearest address
            lat, lon = offset(lat, lon, abs(self.rng.gauss(0, 6)), self.rng.random())
            address = self.nearest(lat, lon)
        shots = tuple(
            Shot(problem.scene, problem.background, how, self.rng.randrange(1 << 30))
            for how in photos
        )
        return Report(
            lat=lat,
            lon=lon,
            address=address,
            description=self.describe(problem.kind) if words is None else words,
            shots=shots,
            file_ids=tuple(self.upload_id() for _ in shots),
        )

    def describe(self, kind: str) -> str:
        return (
            self.rng.choice(_OPENINGS)
            + self.rng.choice(PHRASES[kind])
            + self.rng.choice(_ENDINGS)
        )

    def upload_id(self) -> str:
        self._uploads += 1
        return f"AQAD{self._uploads:06d}x"

    def kind(self, *, besides: str | None = None) -> str:
        return self.rng.choice([kind for kind in PHRASES if kind != besides])


def offset(lat: float, lon: float, metres: float, turn: float) -> tuple[float, float]:
    """The point `metres` away from (lat, lon) on the bearing `turn` × 360°."""
    bearing = 2 * math.pi * turn
    north, east = metres * math.cos(bearing), metres * math.sin(bearing)
    return (
        lat + north / 111_132.0,
        lon + east / (111_320.0 * math.cos(math.radians(lat))),
    )


def load_places() -> list[Place]:
    with (SAMPLE / "addresses.csv").open(encoding="utf-8", newline="") as source:
        return [
            Place(row["address"], float(row["lat"]), float(row["lon"]))
            for row in csv.DictReader(source)
        ]


# --- the scenarios --------------------------------------------------------------------------


def _second_captain(world: World) -> Pair:
    """Another captain reports the same problem, in his own words, from where he stands."""
    problem = world.problem(world.kind(), world.place())
    old = world.report(problem, photos=_some_photos(world))
    located = world.rng.choices(("typed", "shared", "next door"), weights=(6, 3, 1))[0]
    return Pair("second captain", world.report(problem, located=located,
                                               photos=_some_photos(world)), old, True)  # fmt: skip


def _resubmitted(world: World) -> Pair:
    """The same photo again: re-sent or forwarded, often with other words or none."""
    problem = world.problem(world.kind(), world.place())
    old = world.report(problem)
    words = world.rng.choice(("", "还没修", "又" + PHRASES[problem.kind][0], None))
    new = world.report(problem, located=world.rng.choice(("typed", "shared")), words=words)
    if world.rng.random() < 0.5:  # forwarded: Telegram keeps the file
        new = replace(new, shots=old.shots, file_ids=old.file_ids)
    else:  # uploaded again from the gallery: a new file id, the same bytes
        new = replace(new, shots=old.shots)
    return Pair("identical photo", new, old, True)


def _night_or_close_up(world: World) -> Pair:
    """One captain photographs by day, the other at night or close up: photos do not match."""
    problem = world.problem(world.kind(), world.place())
    old = world.report(problem)
    how = world.rng.choice(("at night", "close-up"))
    new = world.report(problem, located=world.rng.choice(("typed", "shared")), photos=(how,))
    return Pair(f"same problem, {how} photo", new, old, True)


def _no_photo(world: World) -> Pair:
    """A report whose photo did not come through (or a guided report without one)."""
    problem = world.problem(world.kind(), world.place())
    old = world.report(problem)
    new = world.report(problem, photos=())
    return Pair("same problem, one without photo", new, old, True)


def _same_place_other_problem(world: World) -> Pair:
    """Two problems at one address; sometimes both photographed against the same building."""
    place = world.place()
    backdrop = world.rng.randrange(1 << 20) if world.rng.random() < 0.35 else None
    first = world.problem(world.kind(), place, background=backdrop)
    second = world.problem(world.kind(besides=first.kind), place, background=backdrop)
    old = world.report(first, photos=_some_photos(world))
    located = world.rng.choices(("typed", "shared"), weights=(3, 1))[0]
    new = world.report(second, located=located, photos=_some_photos(world))
    scenario = "same place, other problem" + (", same backdrop" if backdrop else "")
    return Pair(scenario, new, old, False)


def _same_words_elsewhere(world: World) -> Pair:
    """The same kind of problem, described alike, at another place across the district."""
    kind = world.kind()
    first = world.place()
    second = world.rng.choice(world.neighbours(first, 100, 2500))
    words = world.describe(kind)
    old = world.report(world.problem(kind, first), words=words)
    new = world.report(world.problem(kind, second), words=words if world.rng.random() < 0.5
                       else None)  # fmt: skip
    return Pair("same words, other place", new, old, False)


def _next_door(world: World) -> Pair:
    """Two lamps (bins, manholes...) a house number apart, each reported on its own."""
    kind = world.rng.choice(("lamp", "garbage", "manhole", "drain", "toilet", "door", "pothole"))
    first = world.place()
    while not (doors := world.neighbours(first, 25, 50)):
        first = world.place()
    old = world.report(world.problem(kind, first))
    located = world.rng.choice(("typed", "shared"))
    new = world.report(world.problem(kind, world.rng.choice(doors)), located=located)
    return Pair("same kind, next door", new, old, False)


def _same_captain_again(world: World) -> Pair:
    """Days later it is still not fixed: the same captain stands where he stood and posts again,
    with the same words, a short reminder, or a new way of saying it."""
    problem = world.problem(world.kind(), world.place())
    old = world.report(problem)
    again = (old.description, "还没修", "还没人来修", "又" + old.description, None)
    words = world.rng.choice(again)
    return Pair("same captain again", world.report(problem, words=words), old, True)


def _ladder(metres: float, same: bool) -> Callable[[World], Pair]:
    def build(world: World) -> Pair:
        """Reports with shared locations `metres` apart: of one problem (a long pothole, a
        flooded stretch) or of two problems of the same kind."""
        kind = world.rng.choice(LONG_KINDS if same else ("lamp", "garbage", "manhole"))
        place = world.place()
        first = world.problem(kind, place)
        old = world.report(first, located="shared")
        if same:
            # From the other end of the stretch a captain sees another part of it.
            how = "another angle" if metres < 15 else "close-up"
            new = world.report(first, located="shared", standing_m=metres, photos=(how,))
        else:
            lat, lon = offset(first.lat, first.lon, metres, world.rng.random())
            second = replace(world.problem(kind, place), lat=lat, lon=lon)
            new = world.report(second, located="shared")
        label = "same problem" if same else "same kind"
        return Pair(f"{label}, {metres:.0f} m apart", new, old, same)

    return build


def _some_photos(world: World) -> tuple[str, ...]:
    # Most captains send one photo; some an album of two.
    return ("another angle",) * world.rng.choices((1, 2), weights=(4, 1))[0]


SCENARIOS: tuple[tuple[Callable[[World], Pair], int], ...] = (
    (_second_captain, 75),
    (_same_captain_again, 25),
    (_resubmitted, 15),
    (_night_or_close_up, 16),
    (_no_photo, 5),
    (_same_place_other_problem, 50),
    (_same_words_elsewhere, 15),
    (_next_door, 25),
    (_ladder(5, True), 8),
    (_ladder(45, True), 3),
    (_ladder(80, True), 2),
    (_ladder(45, False), 5),
    (_ladder(80, False), 5),
)


def generate_pairs(seed: int = 4) -> list[Pair]:
    """The labelled pairs (deterministic for a seed), photos not yet taken."""
    world = World(random.Random(seed), load_places())
    return [build(world) for build, count in SCENARIOS for _ in range(count)]


# --- turning reports into what dedup sees ---------------------------------------------------


@functools.cache
def _categories() -> tuple[tuple[str, tuple[str, ...]], ...]:
    deployment = yaml.safe_load((SAMPLE / "deployment.yaml").read_text(encoding="utf-8"))
    return tuple(
        (category["key"], tuple(category.get("keywords", ()))) for category in
        deployment["categories"]
    )  # fmt: skip


@functools.cache
def take_photo(shot: Shot) -> tuple[str, str]:
    """(phash, sha256) of the JPEG a captain would send for this shot."""
    scene = draw_problem_scene(shot.scene, place_seed=shot.background)
    data = photograph(scene, seed=shot.seed, how=shot.how)
    info = inspect_image(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    return info.phash, info.sha256


def sighting(report: Report) -> Sighting:
    """The report as the bot would hold it: located, classified, photos hashed."""
    photos = [take_photo(shot) for shot in report.shots]
    return Sighting(
        lat=report.lat,
        lon=report.lon,
        address=report.address,
        category=classify(report.description, _categories(), default="other"),
        description=report.description,
        phashes=tuple(phash for phash, _ in photos),
        sha256s=tuple(sha for _, sha in photos),
        file_unique_ids=report.file_ids,
    )
