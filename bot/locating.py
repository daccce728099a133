"""Locating: an address or a shared location becomes a place and the station whose grid holds it.
Offline gazetteer with scored matching (behind geopy's Geocoder interface) plus GeoJSON grids."""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

from geopy.adapters import BaseSyncAdapter
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein
from shapely.geometry import MultiPolygon, Point, Polygon

from bot.grids import GridError, Grids
from bot.intake import clean_caption, normalise_address, parse_caption

__all__ = [
    "CONFIDENT",
    "Explanation",
    "Gazetteer",
    "GazetteerEntry",
    "GazetteerFormatError",
    "GazetteerGeocoder",
    "GazetteerProblem",
    "GridError",
    "Grids",
    "Locator",
    "Match",
    "Place",
]

Area: TypeAlias = Polygon | MultiPolygon
# Records a candidate: (row, score, matched text, how).
_Offer: TypeAlias = Callable[[int, float, str, str], None]

_REQUIRED_COLUMNS = ("address", "lat", "lon")

# How sure a match must be before the bot acts on it without asking (the deployment file's
# `geocoding.min_confidence` defaults to the same).
CONFIDENT = 0.75

# Scores by how a text matched a gazetteer row. Anything below CONFIDENT makes the bot ask.
_EXACT = 1.0  # as typed, or the same once normalised (full-width, 號, 栋, filler words)
_NUMERAL = 0.98  # the same once Chinese numerals are digits: 汾阳路十三号
_CONTAINED = 0.95  # a known address inside a longer text: 汾阳路13号2单元301室
_PINYIN = 0.9  # the name typed in pinyin or English: Fenyang Rd 13, fenyanglu 13hao
_SUB_NUMBER = 0.9  # 汾阳路13-2号 when only 汾阳路13号 is known
_SAME_SOUND = 0.88  # one character of the name swapped for one that sounds the same: 汾杨路
_NO_SUFFIX = 0.85  # the name without its 路/街/小区: 汾阳13号
_LONG_NAME_TYPO = 0.8  # one other character in a name of five or more characters
_SHORT_NAME_TYPO = 0.65  # one other character in a short name: 泰山路 is not a typo of 虎山路
_TWO_TYPOS = 0.6
_AMBIGUOUS = 0.6  # two different places fit equally well
_ROUGH_AREA = 0.6  # the compound is known, the building number typed is not
_NEAREST_NUMBER = 0.5  # the road is known, the house number is not: never acted on
_FUZZY_PREFILTER = 50.0  # rapidfuzz ratio below which a name is not even rescored
# On equal scores, the more direct way of matching wins.
_HOW_RANK = {"exact": 0, "normalised": 1, "numeral": 2, "contained": 3, "pinyin": 4, "fuzzy": 5}

_GENERIC_SUFFIXES = (
    "小区", "花园", "公寓", "家园", "新村", "大道", "大街", "路", "街", "巷", "苑",
)  # fmt: skip
_KEY_STRUCTURE = re.compile(
    r"(?P<name>.+?)(?P<number>[0-9]{1,5}(?:-[0-9]{1,4})?)(?:号楼|号)(?P<rest>.*)"
)
_ASCII_STRUCTURE = re.compile(
    r"(?P<name>[a-z]+?)(?P<number>[0-9]{1,5}(?:-[0-9]{1,4})?)(?:haolou|hao|号楼|号)?(?P<rest>.*)"
)
_ASCII_NUMBER_FIRST = re.compile(r"(?P<number>[0-9]{1,5})(?P<name>[a-z]+)")
# English and pinyin spellings of a road name's last part, as pinyin (normalise_address has
# already turned road/street/avenue/lane into rd/st/ave/ln and dropped spaces).
_ASCII_SUFFIXES = (
    ("dadao", "dadao"), ("dajie", "dajie"), ("rd", "lu"), ("lu", "lu"), ("st", "jie"),
    ("jie", "jie"), ("ave", "dadao"), ("ln", "xiang"), ("xiang", "xiang"),
)  # fmt: skip
_ASCII_SIDES = re.compile(r"middle|east|west|north|south")
_SIDE_PINYIN = {"middle": "zhong", "east": "dong", "west": "xi", "north": "bei", "south": "nan"}


@dataclass(frozen=True)
class Place:
    """Where a report is: a readable address, WGS-84 coordinates and the responsible station
    (None when the place lies outside every grid). `source` says where the place came from,
    `confidence` (0..1) how sure the match is and `how` how the text matched."""

    address: str
    lat: float
    lon: float
    station_key: str | None
    source: str
    confidence: float = 1.0
    how: str = "exact"


@dataclass(frozen=True)
class Match:
    """One gazetteer row a text may mean. `matched` is the name, alias or spelling that matched;
    `how` is exact, normalised, numeral, contained, pinyin or fuzzy; `score` is 0..1."""

    place: Place
    score: float
    matched: str
    how: str


@dataclass(frozen=True)
class Explanation:
    """Why a text was placed where it was: what `gridbot locate` prints for an admin."""

    text: str
    span: str | None  # the address part of the caption, None when none was recognised
    normalised: str  # the comparable form the gazetteer looked up
    candidates: tuple[Match, ...]  # best first, stations filled in from the grids
    chosen: Place | None  # the best candidate when it is confident enough, else None
    min_confidence: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return asdict(self)


@dataclass(frozen=True)
class GazetteerEntry:
    """One row of the gazetteer: a known address, its other names and its position."""

    address: str
    aliases: tuple[str, ...]
    lat: float
    lon: float
    station_key: str | None
    line: int


@dataclass(frozen=True)
class GazetteerProblem:
    """A gazetteer row that was skipped or partly ignored, for the admin who imports the file."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class GazetteerFormatError(ValueError):
    """The gazetteer file cannot be read at all: not CSV, not UTF-8, or a column missing."""


class Gazetteer:
    """Known addresses of the district, matched with a confidence score.

    A text is tried, in order: as typed; normalised (full-width, 號, 栋, filler words, Chinese
    numerals); split into name + number (汾阳路 + 13) and looked up by name; the longest known
    address inside it; its name in pinyin or English; and a typo-tolerant match of its name.

    Everything is found through dict indexes in O(len(text)), except the typo match, which
    compares the typed name with the distinct road, compound and landmark *names* (a few
    thousand even when the gazetteer holds 200,000 rows), never with every row. A name found
    by a typo or by pinyin still needs its house number to exist: a number the gazetteer does
    not know falls back to the nearest known number with a low score (0.5), so the bot asks
    rather than sending the report to the wrong building.
    """

    def __init__(
        self,
        entries: Iterable[GazetteerEntry],
        *,
        problems: tuple[GazetteerProblem, ...] = (),
    ) -> None:
        self._entries: list[GazetteerEntry] = []
        self._exact: dict[str, int] = {}
        self._by_key: dict[str, int] = {}
        self._spelling: dict[str, str] = {}  # key → the address or alias as written
        # Blocking for everything but exact keys: name → house/building number → row, and the
        # rows that are a name alone (landmarks, compounds).
        self._numbers: dict[str, dict[str, int]] = {}
        found: list[GazetteerProblem] = list(problems)
        for entry in entries:
            found.extend(self._add(entry))
        # Per first character, the key lengths that start with it, longest first: the contained
        # match then probes only a handful of slices per position.
        lengths: dict[str, set[int]] = {}
        for key in self._by_key:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths_by_first = {
            first: tuple(sorted(sizes, reverse=True)) for first, sizes in lengths.items()
        }
        names = set(self._numbers)
        names.update(key for key in self._by_key if _structure(key) is None)
        self._names: tuple[str, ...] = tuple(sorted(names))
        self.problems: tuple[GazetteerProblem, ...] = tuple(sorted(found, key=lambda p: p.line))

    @classmethod
    def from_csv(cls, path: str | Path) -> Gazetteer:
        """Read `address,aliases,lat,lon,station` (aliases split by `|`; aliases and station
        optional). Bad rows are skipped and listed in `problems` with their line numbers."""
        try:
            with Path(path).open(encoding="utf-8-sig", newline="") as source:
                return cls._from_rows(csv.DictReader(source, restkey="\0extra"), str(path))
        except UnicodeDecodeError as error:
            raise GazetteerFormatError(f"{path}: not UTF-8 text ({error.reason})") from error
        except csv.Error as error:
            raise GazetteerFormatError(f"{path}: not a readable CSV file ({error})") from error

    @classmethod
    def _from_rows(cls, reader: csv.DictReader[str], name: str) -> Gazetteer:
        if reader.fieldnames is None:
            raise GazetteerFormatError(f"{name}: the file is empty")
        columns = [column.strip().lower() for column in reader.fieldnames]
        missing = [column for column in _REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise GazetteerFormatError(
                f"{name}: missing column(s) {', '.join(missing)}; "
                "expected address,aliases,lat,lon,station"
            )
        reader.fieldnames = columns
        entries: list[GazetteerEntry] = []
        problems: list[GazetteerProblem] = []
        for row in reader:
            parsed = _entry_from_row(row, reader.line_num)
            if isinstance(parsed, GazetteerProblem):
                problems.append(parsed)
            else:
                entries.append(parsed)
        return cls(entries, problems=tuple(problems))

    def _add(self, entry: GazetteerEntry) -> list[GazetteerProblem]:
        key = normalise_address(entry.address)
        if not key:
            return [GazetteerProblem(entry.line, f"address {entry.address!r} has no letters")]
        if key in self._by_key:
            first = self._entries[self._by_key[key]]
            return [
                GazetteerProblem(
                    entry.line,
                    f"duplicate address {entry.address!r} (first on line {first.line})",
                )
            ]
        index = len(self._entries)
        self._entries.append(entry)
        self._index_key(key, index, entry.address)
        self._exact.setdefault(entry.address, index)
        problems = []
        for alias in entry.aliases:
            alias_key = normalise_address(alias)
            if not alias_key or alias_key == key:
                continue  # spelling variants of the address itself are found anyway
            if alias_key in self._by_key:
                other = self._entries[self._by_key[alias_key]]
                if other is not entry:
                    problems.append(
                        GazetteerProblem(
                            entry.line,
                            f"alias {alias!r} ignored: already names {other.address!r} "
                            f"(line {other.line})",
                        )
                    )
                continue
            self._index_key(alias_key, index, alias)
            self._exact.setdefault(alias, index)
        return problems

    def _index_key(self, key: str, index: int, spelling: str) -> None:
        self._by_key[key] = index
        self._spelling[key] = spelling
        structure = _structure(key)
        if structure is not None and not structure[2]:
            name, number, _rest = structure
            self._numbers.setdefault(name, {}).setdefault(number, index)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[GazetteerEntry]:
        return iter(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        """The distinct road, compound and landmark names (normalised) that typos are matched
        against."""
        return self._names

    def lookup(self, text: str | None) -> Place | None:
        """The best place a text names, whatever its confidence (see `Place.confidence`), or
        None when nothing known is mentioned."""
        best = self.match(text)
        return best.place if best else None

    def match(self, text: str | None) -> Match | None:
        """The best candidate for a text, or None."""
        found = self.candidates(text, limit=1)
        return found[0] if found else None

    def candidates(self, text: str | None, *, limit: int = 5) -> list[Match]:
        """The rows a text may mean, best first, at most `limit`, each with a score in 0..1.

        The text may be an address ("汾阳路十三号") or a whole caption ("旱厕堵了，汾阳路13号").
        """
        stripped = (text or "").strip()
        if not stripped or limit < 1:
            return []
        scored: dict[int, tuple[float, str, str]] = {}  # row → (score, matched, how)

        def offer(index: int, score: float, matched: str, how: str) -> None:
            if index not in scored or score > scored[index][0]:
                scored[index] = (score, matched, how)

        if stripped in self._exact:
            return [self._match(self._exact[stripped], _EXACT, stripped, "exact")]
        whole = normalise_address(stripped)
        if whole in self._by_key:
            return [self._match(self._by_key[whole], *self._direct(stripped, whole))]
        # The whole text as an address first (金秋小区二期3#楼2单元), then the address part the
        # caption parser picked out (旱厕堵了，汾阳路13号), then known names anywhere in it.
        specific = self._by_structure(stripped, whole, offer)
        inside = self._longest_inside(whole)
        span = _address_span(stripped)
        key = normalise_address(span) if span else whole
        if span and not specific and key != whole:
            if key in self._by_key:
                longer = whole[inside[1] : inside[2]] if inside else ""
                covered = len(longer) > len(key) and key in longer
                if not covered:  # else a longer known address holds it: 金秋小区二期 + 3号楼
                    offer(self._by_key[key], *self._direct(span, key))
            else:
                self._by_structure(span, key, offer)
        if inside is not None:
            self._contained(whole, inside, offer)
        if not scored or max(score for score, _m, _h in scored.values()) < _PINYIN:
            if key.isascii():
                self._by_pinyin(key, offer)
            else:
                self._by_typo(key, offer)
        ranked = sorted(
            scored.items(), key=lambda item: (-item[1][0], _HOW_RANK[item[1][2]], item[0])
        )[:limit]
        return [self._match(index, score, matched, how) for index, (score, matched, how) in ranked]

    def _match(self, index: int, score: float, matched: str, how: str) -> Match:
        entry = self._entries[index]
        score = round(score, 3)
        place = Place(
            address=entry.address,
            lat=entry.lat,
            lon=entry.lon,
            station_key=entry.station_key,
            source="gazetteer",
            confidence=score,
            how=how,
        )
        return Match(place=place, score=score, matched=matched, how=how)

    def _direct(self, typed: str, key: str) -> tuple[float, str, str]:
        """Score, spelling and how for a text whose normalised form is a known key."""
        if normalise_address(typed, numerals=False) == key:
            return _EXACT, self._spelling[key], "normalised"
        return _NUMERAL, self._spelling[key], "numeral"

    def _by_structure(self, typed: str, key: str, offer: _Offer) -> bool:
        """汾阳路13号2单元 → name 汾阳路, number 13: the row for that number on that name.
        True when that exact number is known."""
        structure = _structure(key)
        if structure is None:
            return False
        name, number, rest = structure
        numeral = normalise_address(typed, numerals=False) != key
        how = "numeral" if numeral else "contained" if rest else "normalised"
        score = _CONTAINED if rest else _NUMERAL if numeral else _EXACT
        return self._number_on(name, number, offer, score=score, how=how, matched=name)

    def _number_on(
        self, name: str, number: str, offer: _Offer, *, score: float, how: str, matched: str
    ) -> bool:
        """Offer the row for `number` on a known name; else a sub-number's main number, the
        compound itself, or the nearest known number, each with a lower score. True when the
        number itself is known."""
        numbers = self._numbers.get(name)
        if numbers and number in numbers:
            offer(numbers[number], score, self._spelling_of(numbers[number], matched), how)
            return True
        main = number.split("-")[0]
        if numbers and main != number and main in numbers:
            offer(numbers[main], min(score, _SUB_NUMBER), self._spelling_of(numbers[main]), how)
            return False
        if name in self._by_key:
            # A building the gazetteer does not list, in a compound it does: roughly there.
            offer(self._by_key[name], min(score, _ROUGH_AREA), self._spelling[name], how)
        if numbers:
            nearest = min(numbers, key=lambda known: (_number_distance(known, number), known))
            offer(numbers[nearest], min(score, _NEAREST_NUMBER), self._spelling_of(
                numbers[nearest]), "fuzzy")
        return False

    def _spelling_of(self, index: int, fallback: str = "") -> str:
        return self._entries[index].address or fallback

    def _contained(self, key: str, found: tuple[int, int, int], offer: _Offer) -> None:
        """The longest known address or alias inside the text (汾阳路13号旁边的垃圾桶)."""
        index, start, end = found
        matched_key = key[start:end]
        score = _CONTAINED
        if _structure(matched_key) is None and end < len(key) and key[end].isdigit():
            # 金秋小区二期99号楼: the compound is known but the building typed is not.
            score = _ROUGH_AREA
        offer(index, score, self._spelling[matched_key], "contained")

    def _longest_inside(self, key: str) -> tuple[int, int, int] | None:
        best: tuple[int, int, int, int] | None = None  # (length, row, start, end)
        for start, char in enumerate(key):
            for length in self._lengths_by_first.get(char, ()):
                if best is not None and length <= best[0]:
                    break
                end = start + length
                index = self._by_key.get(key[start:end]) if end <= len(key) else None
                if index is not None and _whole_number_at(key, start, end):
                    best = (length, index, start, end)
                    break
        return best[1:] if best else None

    def _by_pinyin(self, key: str, offer: _Offer) -> None:
        """fenyangrd13, 13fenyangrd, jinshuilu8hao, xingchengluxiaoxue: the name by its pinyin."""
        structure = _ascii_structure(key)
        typed_name, number = structure if structure else (key, None)
        spelled = _ascii_as_pinyin(typed_name)
        index = self._pinyin_index
        names = index.get(spelled)
        score, how = _PINYIN, "pinyin"
        if not names and len(spelled) >= 6:
            # One slip in the spelling of a long name: fengyanglu.
            close = process.extract(
                spelled, list(index), scorer=Levenshtein.distance, score_cutoff=1, limit=2
            )
            if len(close) == 1:
                names = index[close[0][0]]
                score, how = _LONG_NAME_TYPO, "fuzzy"
        if not names:
            return
        if len(names) > 1:
            score = min(score, _AMBIGUOUS)  # two names sound alike
        for name in names:
            if number is None:
                if name in self._by_key:
                    offer(self._by_key[name], score, self._spelling[name], how)
            else:
                self._number_on(name, number, offer, score=score, how=how, matched=name)

    @functools.cached_property
    def _pinyin_index(self) -> dict[str, tuple[str, ...]]:
        """Toneless pinyin of every name → the names spelled so. Built on first use (pypinyin
        takes a moment to load and most captions are in characters)."""
        index: dict[str, list[str]] = {}
        for name in self._names:
            if name.isascii():
                continue
            index.setdefault(_pinyin(name), []).append(name)
        return {spelled: tuple(names) for spelled, names in index.items()}

    def _by_typo(self, key: str, offer: _Offer) -> None:
        """汾杨路13号 → 汾阳路13号: the typed name against the known names, then its number."""
        structure = _structure(key)
        typed_name, number = (structure[0], structure[1]) if structure else (key, None)
        if len(typed_name) < 2 or len(typed_name) > 24 or typed_name in self._numbers:
            return  # nothing to correct: a known name whose number is unknown is handled
        close = process.extract(
            typed_name, self._names, scorer=fuzz.ratio, score_cutoff=_FUZZY_PREFILTER, limit=8
        )
        rescored = sorted(
            ((score, name) for name, _ratio, _i in close
             if (score := _typo_score(typed_name, name)) is not None),
            reverse=True,
        )
        if not rescored:
            return
        if len(rescored) > 1 and rescored[1][0] >= rescored[0][0] - 0.02:
            # Two names fit as well as each other: neither is a safe guess.
            rescored = [(min(score, _AMBIGUOUS), name) for score, name in rescored]
        for score, name in rescored[:3]:
            if number is None:
                if name in self._by_key:
                    offer(self._by_key[name], score, self._spelling[name], "fuzzy")
            else:
                self._number_on(name, number, offer, score=score, how="fuzzy", matched=name)


def _structure(key: str) -> tuple[str, str, str] | None:
    """A normalised key split into name, house/building number and the rest (unit, room), or
    None when it has no number: 金秋小区二期3号楼2单元 → (金秋小区二期, 3, 2单元)."""
    found = _KEY_STRUCTURE.fullmatch(key)
    if found is None:
        return None
    return found["name"], found["number"], found["rest"]


def _ascii_structure(key: str) -> tuple[str, str] | None:
    found = _ASCII_STRUCTURE.fullmatch(key) or _ASCII_NUMBER_FIRST.fullmatch(key)
    if found is None:
        return None
    return found["name"], found["number"]


def _ascii_as_pinyin(name: str) -> str:
    """fenyangrd → fenyanglu, heilongjiangmiddlerd → heilongjiangzhonglu."""
    name = _ASCII_SIDES.sub(lambda side: _SIDE_PINYIN[side.group(0)], name)
    for typed, pinyin in _ASCII_SUFFIXES:
        if name.endswith(typed) and len(name) > len(typed):
            return name[: -len(typed)] + pinyin
    return name


@functools.cache
def _pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin  # loaded on first use: 0.3 s of dictionaries

    return "".join(lazy_pinyin(text, style=Style.NORMAL, errors="default")).lower()


def _typo_score(typed: str, known: str) -> float | None:
    """How likely `typed` is a slip for `known`, or None when it is another name.

    Chinese typos are mostly a character with the same sound picked from the input method's
    list (汾杨路 for 汾阳路): that is nearly certain. Another character in a short name is as
    often a different road (泰山路, 虎山路), so it stays below the confidence threshold.
    """
    if typed == known:
        return _EXACT
    operations = list(Levenshtein.editops(typed, known))
    edits = len(operations)
    if edits == 1:
        operation = operations[0]
        if operation.tag == "replace":
            if _pinyin(typed[operation.src_pos]) == _pinyin(known[operation.dest_pos]):
                return _SAME_SOUND
            return _LONG_NAME_TYPO if len(known) >= 5 else _SHORT_NAME_TYPO
        if operation.tag == "insert" and known.endswith(_GENERIC_SUFFIXES) and any(
            typed + suffix == known for suffix in _GENERIC_SUFFIXES
        ):
            return _NO_SUFFIX
        return _LONG_NAME_TYPO if len(known) >= 5 else _SHORT_NAME_TYPO
    if edits == 2 and len(known) >= 5:
        same_sound = all(
            operation.tag == "replace"
            and _pinyin(typed[operation.src_pos]) == _pinyin(known[operation.dest_pos])
            for operation in operations
        )
        return _LONG_NAME_TYPO if same_sound else _TWO_TYPOS
    return None


def _number_distance(known: str, typed: str) -> float:
    try:
        return abs(float(known.split("-")[0]) - float(typed.split("-")[0]))
    except ValueError:
        return math.inf


def _address_span(text: str) -> str | None:
    """The address part of a caption, when the caption holds more than an address."""
    if len(text) > 2_000:
        # A wall of text: the parser is linear, but nobody types an address that far in.
        text = clean_caption(text)[:2_000]
    return parse_caption(text).address


def _whole_number_at(key: str, start: int, end: int) -> bool:
    """A match must not cut a number in two: "汾阳路1号" is not inside "汾阳路11号" anyway,
    but "fenyangrd1" is inside "fenyangrd13"."""
    if start > 0 and key[start].isdigit() and key[start - 1].isdigit():
        return False
    return not (end < len(key) and key[end - 1].isdigit() and key[end].isdigit())


def _entry_from_row(row: Mapping[str, Any], line: int) -> GazetteerEntry | GazetteerProblem:
    if row.get("\0extra"):
        return GazetteerProblem(line, "too many columns (a comma inside an unquoted field?)")
    address = (row.get("address") or "").strip()
    if not address:
        return GazetteerProblem(line, "blank address")
    coordinates: dict[str, float] = {}
    for column, limit in (("lat", 90.0), ("lon", 180.0)):
        raw = (row.get(column) or "").strip()
        if not raw:
            return GazetteerProblem(line, f"missing {column} for {address!r}")
        try:
            value = float(raw)
        except ValueError:
            return GazetteerProblem(line, f"{column} {raw!r} is not a number for {address!r}")
        if not math.isfinite(value) or abs(value) > limit:
            return GazetteerProblem(
                line, f"{column} {raw} out of range (±{limit:g}) for {address!r}"
            )
        coordinates[column] = value
    aliases = tuple(
        alias.strip() for alias in (row.get("aliases") or "").split("|") if alias.strip()
    )
    station = (row.get("station") or "").strip() or None
    return GazetteerEntry(
        address=address,
        aliases=aliases,
        lat=coordinates["lat"],
        lon=coordinates["lon"],
        station_key=station,
        line=line,
    )


class _OfflineAdapter(BaseSyncAdapter):  # type: ignore[misc]
    """The gazetteer answers from memory; any attempt to reach the network is a bug."""

    def get_json(self, url: str, *, timeout: float, headers: dict[str, str]) -> Any:
        raise GeocoderServiceError(f"the offline gazetteer does not fetch {url}")

    def get_text(self, url: str, *, timeout: float, headers: dict[str, str]) -> str:
        raise GeocoderServiceError(f"the offline gazetteer does not fetch {url}")


class GazetteerGeocoder(Geocoder):  # type: ignore[misc]
    """The gazetteer behind geopy's `Geocoder` interface, so it can be chained with online
    providers. Synchronous and in-memory: call it directly even from async code.

    Only matches scoring at least `min_confidence` are returned, so a chain moves on to the
    next provider instead of taking a guess. `Location.raw` carries the row's `station` (or
    None), `source`, `confidence` and `how`.
    """

    def __init__(
        self,
        gazetteer: Gazetteer,
        *,
        user_agent: str = "gridbot",
        min_confidence: float = CONFIDENT,
    ) -> None:
        super().__init__(user_agent=user_agent, adapter_factory=_OfflineAdapter)
        self.gazetteer = gazetteer
        self.min_confidence = min_confidence

    def geocode(
        self,
        query: str | Mapping[str, Any],
        *,
        exactly_one: bool = True,
        timeout: Any = DEFAULT_SENTINEL,
    ) -> Location | list[Location] | None:
        """Like every geopy geocoder: a `Location`, a list of them (best first) when
        `exactly_one` is False, or None when the address is unknown. Structured (dict) queries
        are joined."""
        text = (
            " ".join(str(part) for part in query.values()) if isinstance(query, Mapping) else query
        )
        matches = [
            match
            for match in self.gazetteer.candidates(text, limit=1 if exactly_one else 5)
            if match.score >= self.min_confidence
        ]
        if not matches:
            return None
        locations = [_location(match.place) for match in matches]
        return locations[0] if exactly_one else locations


def _location(place: Place) -> Location:
    return Location(
        place.address,
        (place.lat, place.lon),
        {
            "address": place.address,
            "lat": place.lat,
            "lon": place.lon,
            "station": place.station_key,
            "source": place.source,
            "confidence": place.confidence,
            "how": place.how,
        },
    )


class Locator:
    """Places a report: a typed address through the gazetteer, a shared location directly, and
    either way the station responsible for it. A typed address is acted on only when its match
    scores at least `min_confidence`; below that the bot asks (see `explain`)."""

    def __init__(
        self, gazetteer: Gazetteer, grids: Grids, *, min_confidence: float = CONFIDENT
    ) -> None:
        self.gazetteer = gazetteer
        self.grids = grids
        self.min_confidence = min_confidence

    def locate_text(self, text: str | None) -> Place | None:
        """The known place a text names, with its station, when the match is confident; None
        when nothing known is mentioned or the best guess is too unsure to act on."""
        match = self.gazetteer.match(text)
        if match is None or match.score < self.min_confidence:
            return None
        return self._with_station(match.place)

    def explain(self, text: str | None, *, limit: int = 5) -> Explanation:
        """What was read from a text and why it was (or was not) placed: the address span, its
        normalised form, the candidates with scores and stations, the place chosen."""
        typed = text or ""
        span = _address_span(typed.strip()) if typed.strip() else None
        candidates = tuple(
            replace(match, place=self._with_station(match.place))
            for match in self.gazetteer.candidates(typed, limit=limit)
        )
        chosen = (
            candidates[0].place
            if candidates and candidates[0].score >= self.min_confidence
            else None
        )
        return Explanation(
            text=typed,
            span=span,
            normalised=normalise_address(span or typed),
            candidates=candidates,
            chosen=chosen,
            min_confidence=self.min_confidence,
        )

    def _with_station(self, place: Place) -> Place:
        """The gazetteer's station column when it names a known station, else the grid's."""
        if place.station_key in self.grids:
            return place
        return replace(place, station_key=self.grids.station_at(place.lat, place.lon))

    def locate_point(self, lat: float, lon: float, *, label: str | None = None) -> Place:
        """A shared location (WGS-84). The station is None outside every grid; ValueError for
        coordinates that are not on Earth."""
        station = self.grids.station_at(lat, lon)
        address = label.strip() if label and label.strip() else f"{lat:.5f}, {lon:.5f}"
        return Place(address=address, lat=lat, lon=lon, station_key=station, source="location")

    def audit(self) -> tuple[GazetteerProblem, ...]:
        """Gazetteer rows whose station column disagrees with the grids: unknown station, or a
        position outside that station's grid. For the admin's import report."""
        problems = []
        for entry in self.gazetteer:
            if entry.station_key is None:
                continue
            if entry.station_key not in self.grids:
                problems.append(
                    GazetteerProblem(entry.line, f"unknown station {entry.station_key!r}")
                )
            elif not self.grids.outline(entry.station_key).covers(Point(entry.lon, entry.lat)):
                problems.append(
                    GazetteerProblem(
                        entry.line,
                        f"{entry.address!r} lies outside the grid of {entry.station_key!r}",
                    )
                )
        return tuple(problems)
