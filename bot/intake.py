"""Understanding a captain's caption: where the problem is (address) and what it is (description).

Pure text work, no gazetteer: `bot.locating` turns the address into a place.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
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
# A number as typed: digits, or Chinese numerals (十三, 二十一, 三零一).
_NUMBER = r"(?:[0-9]{1,5}|[零〇一二两三四五六七八九十百千]{1,6})"
_UNITS = (
    r"(?:第?" + _NUMBER + r"(?:号楼|號楼|号|號|栋|幢|座|单元|室|楼|层|户|#楼|#)|[A-Za-z]座"
    r"|-[0-9]{1,2}-[0-9]{3,4}){0,4}"
)
_ROAD_NUMBER = re.compile(
    r"(?:大道|大街|路|街|道|巷|弄)" + _NUMBER + r"(?:-[0-9]{1,4})?(?:号|號)" + _UNITS
)
_COMPOUND = re.compile(
    r"(?:小区|花园|公寓|家园|新村|大院|苑|院)(?:[一二三四五六七八九十0-9]{1,3}期)?"
    r"(?P<units>(?:[0-9]{1,3}-[0-9]{1,2}-[0-9]{3,4})?" + _UNITS + ")"
)
_LANDMARK = re.compile(
    r"农贸市场|菜市场|市场|大集|小学|中学|幼儿园|学校|医院|卫生院|服务中心|地铁站|公交站|车站"
    r"|文化馆|图书馆|体育馆|体育场|公园|广场|超市|银行|派出所|工作站|办事处|大厦|商场|养老院"
    r"|敬老院|邮局|菜场|停车场"
)
# Road names typed in English or pinyin: "Fenyang Rd 13", "13 Fenyang Road", "Jinshui Road
# No.8", "fenyanglu 13hao", "Heilongjiang Middle Rd 5". Pinyin suffixes may be glued to the
# name; English ones may not, or "last 2" would read as a road.
_ASCII_SUFFIX = r"(?:road|rd|street|st|avenue|ave|lane|ln|lu|jie|dadao)"
_ASCII_SIDE = r"(?:(?:middle|zhong|east|dong|west|xi|north|bei|south|nan) )?"
_ASCII_ROAD = re.compile(
    r"\b(?:(?:[A-Za-z]{2,20} " + _ASCII_SIDE + _ASCII_SUFFIX + r"|[A-Za-z]{2,20}(?:lu|jie))"
    r"\b\.?,? ?(?:no\.? ?)?[0-9]{1,5}(?: ?hao)?\b"
    r"|[0-9]{1,5},? [A-Za-z]{2,20} " + _ASCII_SIDE + _ASCII_SUFFIX + r"\b)",
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


def normalise_address(text: str, *, numerals: bool = True) -> str:
    """The comparable form of an address, the one place where spellings are unified (gazetteer
    keys and lookups both use it): NFKC (full-width → ASCII), lower case, 號→号, house and
    building numbers in Chinese numerals as digits (汾阳路十三号 → 汾阳路13号, 三单元 → 3单元;
    numerals inside names such as 九水路 or 金秋二期 are kept, and 2期 → 二期),
    3栋/3幢/3座/3号栋/3#楼 → 3号楼, 3-2-301 → 3号楼2单元301室, no leading zeros, Road → rd,
    "No." dropped, no spaces or punctuation, and filler around the place dropped
    (李沧区…, 在…, …旁边, …门口, …东侧).

    `numerals=False` leaves Chinese numerals alone, to tell how an address was recognised.
    """
    text = unicodedata.normalize("NFKC", text or "").lower().replace("號", "号")
    text = _ENGLISH_WORDS.sub(lambda match: _ENGLISH_SHORT[match.group(0)], text)
    text = _HASH_NUMBER.sub(r"\1号", text)
    kept = "".join(
        char for char in text if char == "-" or unicodedata.category(char)[0] in "LN"
    ).strip("-")
    if numerals:
        kept = _CHINESE_NUMBER.sub(_digits_for, kept)
    kept = _LEADING_ZEROS.sub("", kept)
    if numerals:
        kept = _PHASE_DIGITS.sub(_phase_in_chinese, kept)
    kept = _ORDINAL.sub("", kept)
    kept = _BUILDING.sub(r"\1号楼", kept)
    kept = _ROOM.sub(r"\1室", kept)
    kept = _BUILDING_UNIT_ROOM.sub(r"\1号楼\2单元\3室", kept)
    kept = _NO_BEFORE_NUMBER.sub("", kept)
    return _strip_fillers(_LEADING_ZEROS.sub("", kept))


_ENGLISH_SHORT = {"road": "rd", "street": "st", "avenue": "ave", "lane": "ln"}
_ENGLISH_WORDS = re.compile(r"\b(?:road|street|avenue|lane)\b", re.ASCII)
_HASH_NUMBER = re.compile(r"([0-9])\s?#")
_BUILDING = re.compile(r"([0-9])号?(?:栋|幢|座)")
_ROOM = re.compile(r"([0-9])户")
# 3-2-301: building, unit, room, as written on letterboxes. A road's 13-2号 keeps its 号.
_BUILDING_UNIT_ROOM = re.compile(r"(?<![0-9-])([0-9]{1,3})-([0-9]{1,2})-([0-9]{3,4})(?![0-9-])")
_NO_BEFORE_NUMBER = re.compile(r"(?<=[a-z])no(?=[0-9])")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_ORDINAL = re.compile(r"第+(?=[0-9])")
# A Chinese numeral is a number only right before a unit word (十三号, 二十一号楼, 三单元,
# 三零一室); elsewhere it is part of a name (九水路, 十梅庵, 万年泉路, 金秋二期) and stays.
_NUMERAL_CHARS = "零〇一二两三四五六七八九十百千"
_CHINESE_NUMBER = re.compile(
    rf"(?<![{_NUMERAL_CHARS}])(?:第)?([{_NUMERAL_CHARS}]{{1,8}})(?=号|栋|幢|座|单元|室|层|户|楼)"
)
_DIGIT_OF = dict(zip("零〇一二两三四五六七八九", "001223456789", strict=True))
# Phases are names (金秋小区二期): written in digits they are turned into the usual Chinese.
_PHASE_DIGITS = re.compile(r"(?<![0-9])([0-9]{1,2})期")
# Words around a place that say where near it, not which place (most specific first).
_TRAILING_FILLERS = (
    "旁边", "边上", "附近", "对面", "那边", "这边", "那里", "这里", "那儿", "这儿", "门口",
    "门前", "门外", "大门口", "大门", "东门", "西门", "南门", "北门", "东侧", "西侧", "南侧",
    "北侧", "东边", "西边", "南边", "北边", "后面", "前面", "后边", "前边", "外面", "里面",
    "周边", "周围", "一带", "楼下", "楼前", "楼后", "拐角", "转角", "旁", "的",
)  # fmt: skip
_LEADING_FILLERS = (
    "山东省", "青岛市", "李沧区", "我在", "就在", "位于", "地址是", "地点是", "地址", "地点", "在",
)  # fmt: skip


def _digits_for(match: re.Match[str]) -> str:
    numeral = match.group(1)
    if all(char in _DIGIT_OF for char in numeral):
        # 三零一 is read digit by digit; a lone 十 or 二十一 needs real parsing.
        return "".join(_DIGIT_OF[char] for char in numeral)
    try:
        value = _cn2an()(numeral, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return match.group(0)  # not a number after all: leave the text as typed
    return str(int(value))


def _phase_in_chinese(match: re.Match[str]) -> str:
    return f"{_an2cn()(match.group(1))}期"


@functools.cache
def _cn2an() -> Callable[[str, str], int | float]:
    import cn2an  # imported when first needed: 0.15 s, and most addresses use digits

    convert: Callable[[str, str], int | float] = cn2an.cn2an
    return convert


@functools.cache
def _an2cn() -> Callable[[str], str]:
    import cn2an

    convert: Callable[[str], str] = cn2an.an2cn
    return convert


def _strip_fillers(key: str) -> str:
    """Drop position words after a place and district prefixes before it, repeatedly
    (汾阳路13号门口东侧 → 汾阳路13号), never down to nothing."""
    changed = True
    while changed:
        stripped = key.strip("-")
        changed = stripped != key
        key = stripped
        for filler in _TRAILING_FILLERS:
            if key.endswith(filler) and len(key) > len(filler):
                key = key[: -len(filler)]
                changed = True
                break
        for filler in _LEADING_FILLERS:
            if key.startswith(filler) and len(key) > len(filler) + 1:
                key = key[len(filler) :]
                changed = True
                break
    return key


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
