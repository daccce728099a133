"""Understanding a captain's caption: where the problem is (address) and what it is (description).

Pure text work, no gazetteer: `bot.locating` turns the address into a place.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ParsedCaption",
    "clean_caption",
    "looks_like_problem",
    "normalise_address",
    "parse_caption",
]


@dataclass(frozen=True)
class ParsedCaption:
    """What a caption says: an address span and a description, each None when absent."""

    address: str | None
    description: str | None


# Words that mark a description as a problem report rather than chat. Also used to cut a road
# name off the words typed just before it ("车库积水金水路13号" → 金水路13号).
PROBLEM_WORDS: tuple[str, ...] = (
    "堵", "坏", "漏", "积水", "渗水", "垃圾", "破损", "损坏", "不亮", "隐患", "占道", "乱",
    "没人", "无人", "脏", "臭", "裂", "掉", "塌", "倒了", "断了", "缺失", "生锈", "堆放", "堆积",
    "违章", "违停", "噪音", "扰民", "私拉", "飞线", "着火", "起火", "冒烟", "危险", "溢", "松动",
    "坑洼", "翘起", "不通", "失灵",
    "broken", "leak", "garbage", "trash", "rubbish", "blocked", "clogged", "flood", "damage",
    "dirty", "smell", "crack", "danger", "litter", "pothole", "not working",
)  # fmt: skip

# Characters typed between an address and a description, or around a caption.
_SEPARATORS = frozenset(" \t\n\r,，.。．;；:：、!！?？~～…—-_|/\\·•")
# Joins the text before and after an address when both carry words.
_JOIN = " "
_ADDRESS_FILLERS = ("我在", "就在", "位于", "地址是", "地点是", "位置是", "在", "地址", "地点")
_ENGLISH_FILLER = re.compile(r"(?:^| )(?:at|near|on|in)$", re.IGNORECASE)
_MAX_ADDRESS = 80
# How far back a place name may reach before 路/小区/小学…: "九水路社区卫生服务中心" needs 7.
_MAX_NAME = 8
# Characters that never belong to a place name: particles, pronouns, positions.
_NAME_STOPS = frozenset(
    "在的了是到从于旁边近门口下上里前后和与及对着把被给让我你他她它们这那有没很太都也就还又再个号"
)

# Full-width digits and Latin letters to ASCII (length-preserving, unlike NFKC), so spans found
# in the cleaned text can be returned as typed. Full-width punctuation is kept: users see it.
_WIDTH_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)}
_WIDTH_FOLD.update({cp: cp - 0xFEE0 for cp in range(0xFF21, 0xFF3B)})
_WIDTH_FOLD.update({cp: cp - 0xFEE0 for cp in range(0xFF41, 0xFF5B)})
_WIDTH_FOLD.update({0xFF03: ord("#"), 0xFF0D: ord("-"), 0x3000: ord(" ")})
_INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad")

# Every pattern below is linear: bounded repeats, literal alternations, no nested open-ended
# quantifiers, so a 5,000-character caption cannot make the engine backtrack catastrophically.
_LABEL = re.compile(
    r"(?:(?P<address>地址|地点|位置|address|location)"
    r"|(?P<description>描述|问题|情况|description|problem|issue))[ ]?[:：]",
    re.IGNORECASE,
)
_UNITS = r"(?:[0-9]{1,4}(?:号楼|號楼|号|號|栋|幢|座|单元|室|楼|层|户)|[A-Za-z]座){0,4}"
_ROAD_NUMBER = re.compile(
    r"(?:大道|大街|路|街|道|巷|弄)[0-9]{1,5}(?:-[0-9]{1,4})?(?:号|號)" + _UNITS
)
_COMPOUND = re.compile(
    r"(?:小区|花园|公寓|家园|新村|大院|苑|院)(?:[一二三四五六七八九十0-9]{1,3}期)?"
    r"(?P<units>" + _UNITS + ")"
)
_LANDMARK = re.compile(
    r"农贸市场|菜市场|市场|小学|中学|幼儿园|学校|医院|服务中心|地铁站|公交站|车站|文化馆|图书馆"
    r"|体育馆|公园|广场|超市|银行|派出所|工作站|办事处|大厦|商场"
)
_ASCII_ROAD = re.compile(
    r"\b(?:[A-Za-z]{2,20} (?:road|rd|street|st|avenue|ave|lane|ln|lu)\b\.?,? ?(?:no\.? ?)?"
    r"[0-9]{1,5}\b|[0-9]{1,5},? [A-Za-z]{2,20} (?:road|rd|street|st|avenue|ave|lane|ln|lu)\b)",
    re.IGNORECASE | re.ASCII,
)

# How specific a kind of address span is; the most specific one wins.
_ROAD_SCORE, _BUILDING_SCORE, _LANDMARK_SCORE, _COMPOUND_SCORE = 3, 3, 2, 1


def clean_caption(text: str | None) -> str:
    """Tidy a caption without changing its words: fold full-width digits and letters to ASCII,
    squeeze runs of spaces (a run holding a newline becomes one newline), drop invisible
    characters, trim the ends. Spans returned by `parse_caption` are substrings of this."""
    if not text:
        return ""
    out: list[str] = []
    pending_space = ""
    for char in text.translate(_WIDTH_FOLD):
        if char.isspace():
            if char in "\n\r\u2028\u2029":
                pending_space = "\n"
            elif not pending_space:
                pending_space = " "
            continue
        if char in _INVISIBLE or unicodedata.category(char) == "Cc":
            continue
        if pending_space:
            if out:
                out.append(pending_space)
            pending_space = ""
        out.append(char)
    return "".join(out)


def normalise_address(text: str) -> str:
    """The comparable form of an address: NFKC (full-width → ASCII), lower case, 號→号,
    3栋/3幢/3号栋/3#楼 → 3号楼, no leading zeros, Road→rd, no spaces or punctuation.

    The one place where address spellings are unified; gazetteer keys and lookups both use it.
    """
    text = unicodedata.normalize("NFKC", text or "").lower().replace("號", "号")
    text = _ENGLISH_WORDS.sub(lambda match: _ENGLISH_SHORT[match.group(0)], text)
    text = _HASH_NUMBER.sub(r"\1号", text)
    text = _BUILDING.sub(r"\1号楼", text)
    kept = "".join(
        char for char in text if char == "-" or unicodedata.category(char)[0] in "LN"
    ).strip("-")
    kept = _NO_BEFORE_NUMBER.sub("", kept)
    return _LEADING_ZEROS.sub("", kept)


_ENGLISH_SHORT = {"road": "rd", "street": "st", "avenue": "ave", "lane": "ln"}
_ENGLISH_WORDS = re.compile(r"\b(?:road|street|avenue|lane)\b", re.ASCII)
_HASH_NUMBER = re.compile(r"([0-9])\s?#")
_BUILDING = re.compile(r"([0-9])号?(?:栋|幢)")
_NO_BEFORE_NUMBER = re.compile(r"(?<=[a-z])no(?=[0-9])")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def looks_like_problem(text: str | None) -> bool:
    """Whether a description reads like a problem ("旱厕堵了", "路灯不亮") rather than chat."""
    if not text:
        return False
    return _problem_words().search(unicodedata.normalize("NFKC", text).lower()) is not None


@functools.cache
def _problem_words() -> re.Pattern[str]:
    # Longest first, so "积水" wins over a shorter word inside it at the same position.
    words = sorted(PROBLEM_WORDS, key=len, reverse=True)
    return re.compile("|".join(re.escape(word) for word in words))


def parse_caption(text: str | None) -> ParsedCaption:
    """Split a caption into its address and description, whatever order or form they come in.

    Handles "汾阳路13号 旱厕堵了", "旱厕堵了，汾阳路13号", "地址：…；描述：…",
    "金秋小区二期3号楼2单元门口垃圾没人清", "Fenyang Rd 13 garbage". When the description
    surrounds the address, its two parts are joined by a space.
    """
    cleaned = clean_caption(text)
    if not cleaned:
        return ParsedCaption(address=None, description=None)
    labelled = _parse_labelled(cleaned)
    if labelled is not None:
        return labelled
    return _parse_free(cleaned)


def _parse_labelled(text: str) -> ParsedCaption | None:
    """The form-like caption: 地址：…；描述：… (any order, either label optional)."""
    labels = [
        (match.lastgroup or "", match.start(), match.end()) for match in _LABEL.finditer(text)
    ]
    if not labels:
        return None
    address: str | None = None
    descriptions: list[str] = []
    loose: list[str] = [text[: labels[0][1]]]  # text before the first label
    for index, (kind, _start, end) in enumerate(labels):
        stop = labels[index + 1][1] if index + 1 < len(labels) else len(text)
        value = text[end:stop]
        if kind == "address" and address is None:
            cut = _first_separator(value)
            found = _strip_edges(value[:cut])
            if len(found) > _MAX_ADDRESS:
                span = _find_address(found)
                found = found[span[0] : span[1]] if span else ""
            if found:
                address = found
                loose.append(value[cut:])
                continue
        (descriptions if kind == "description" else loose).append(value)
    if address is None:
        # Only description labels: the address, if any, is in the unlabelled text or else
        # inside a description ("问题：旱厕堵了 汾阳路13号").
        for parts in (loose, descriptions):
            address = _take_address(parts)
            if address:
                break
    description = _join(descriptions) or _join(loose)
    return ParsedCaption(address=address, description=description)


def _take_address(parts: list[str]) -> str | None:
    """Find an address in the first part that has one, leaving the rest of it in place."""
    for index, part in enumerate(parts):
        parsed = _parse_free(part)
        if parsed.address:
            parts[index] = parsed.description or ""
            return parsed.address
    return None


def _parse_free(text: str) -> ParsedCaption:
    span = _find_address(text)
    if span is None:
        return ParsedCaption(address=None, description=_strip_edges(text) or None)
    start, end = span
    before = _strip_edges(text[:start])
    for filler in _ADDRESS_FILLERS:
        if before.endswith(filler):
            before = _strip_edges(before[: -len(filler)])
            break
    before = _ENGLISH_FILLER.sub("", before)
    after = _strip_edges(text[end:])
    if after.startswith("的"):
        after = _strip_edges(after[1:])
    return ParsedCaption(address=text[start:end], description=_join([before, after]))


def _find_address(text: str) -> tuple[int, int] | None:
    """The most specific address span in the text (earliest on ties), merged with spans that
    touch it ("汾阳路13号" + "金秋小区3号楼")."""
    candidates: list[tuple[int, int, int]] = []  # (start, end, score)
    for match in _ROAD_NUMBER.finditer(text):
        start = _name_start(text, match.start(), minimum=1)
        if start is not None:
            candidates.append((start, match.end(), _ROAD_SCORE))
    for match in _COMPOUND.finditer(text):
        start = _name_start(text, match.start(), minimum=2)
        if start is not None:
            score = _BUILDING_SCORE if match.group("units") else _COMPOUND_SCORE
            candidates.append((start, match.end(), score))
    for match in _LANDMARK.finditer(text):
        start = _name_start(text, match.start(), minimum=2)
        if start is not None:
            end = match.end()
            units = _UNITS_AFTER.match(text, end)
            candidates.append((start, units.end() if units else end, _LANDMARK_SCORE))
    for match in _ASCII_ROAD.finditer(text):
        candidates.append((match.start(), match.end(), _ROAD_SCORE))
    if not candidates:
        return None
    best_start, best_end, _score = min(candidates, key=lambda c: (-c[2], c[0]))
    # One sweep over the spans sorted by start finds the run of touching spans around the best.
    start, end = best_start, best_end
    run_start, run_end = -1, -1
    for other_start, other_end, _ in sorted(candidates):
        if other_start > run_end:
            run_start, run_end = other_start, other_end
        else:
            run_end = max(run_end, other_end)
        if run_start <= best_start and run_end >= best_end:
            start, end = run_start, run_end
    if end - start > _MAX_ADDRESS:
        # A chain of place-like words is junk, not an address: keep the best span alone.
        return best_start, best_end
    return start, end


_UNITS_AFTER = re.compile(_UNITS)


def _name_start(text: str, suffix_start: int, *, minimum: int) -> int | None:
    """Where the place name before a suffix (路, 小区, 小学…) begins, or None if too short.

    Walks back over CJK characters, stopping at particles and at problem words, so
    "旱厕堵了汾阳路13号" and "车库积水金水路13号" both start at the road name.
    """
    start = suffix_start
    limit = max(0, suffix_start - _MAX_NAME)
    while start > limit and _is_name_char(text[start - 1]):
        start -= 1
    if start < suffix_start:
        ends = [match.end() for match in _problem_words().finditer(text, start, suffix_start)]
        start = max([start, *ends])
    return start if suffix_start - start >= minimum else None


def _is_name_char(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" and char not in _NAME_STOPS


def _first_separator(value: str) -> int:
    """End of a labelled address: the first line break, comma or semicolon after some text."""
    seen_text = False
    for index, char in enumerate(value):
        if char in "\n,，;；。":
            if seen_text:
                return index
        elif not char.isspace() and char not in ":：":
            seen_text = True
    return len(value)


def _strip_edges(text: str) -> str:
    """Trim separators and emoji at both ends, keeping everything in between as typed."""
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge_noise(char: str) -> bool:
    if char in _SEPARATORS or char.isspace():
        return True
    # Emoji and pictographs (So), variation selectors and joiners that glue emoji together.
    return unicodedata.category(char) in ("So", "Sk", "Mn", "Cf")


def _join(parts: list[str]) -> str | None:
    kept = [stripped for part in parts if (stripped := _strip_edges(part))]
    return _JOIN.join(kept) or None


def classify(description: str | None, categories: Sequence[tuple[str, Sequence[str]]],
             *, default: str) -> str:
    """The first category (key, keywords), in the deployment's order, whose keyword occurs."""
    text = description or ""
    for key, keywords in categories:
        if any(word in text for word in keywords):
            return key
    return default
