"""Reading the day a chief expects to be done ("明天", "下周三", "12月5日", "2026-12-05").

Written by hand, table-driven, rather than with dateparser: the phrases are few, dateparser is
heavy, and it reads "3号楼" as a date. The whole answer must be one date (a full match), so
an address or a sentence is not mistaken for one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta

import cn2an

# A month-day before today is next year's only when it is this long ago ("1月3日" said in
# December); a nearer one is taken as written, in the past, for the caller to refuse.
NEXT_YEAR_AFTER = timedelta(days=61)

_NUMBER = r"(\d{1,4}|[零〇一二两三四五六七八九十百]{1,5})"
_WEEK = r"(?:周|星期|礼拜)"
_AFTER_OR_WITHIN = r"(?:后|以后|之后|内|以内|之内)"
_DAY_MARK = r"(?:日|号)"

RELATIVE_DAYS = {
    "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3,
    "today": 0, "tonight": 0, "tomorrow": 1,
}
WEEKDAYS = {
    "一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5,
    "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6,
}
ENGLISH_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}
# Which week a Chinese weekday is in: none — the next one (today included); 这/本 — this
# week's; 下 — next week's; 下下 — the week after (weeks start on Monday).
WEEK_OFFSETS = {"": None, "这": 0, "这个": 0, "本": 0, "下": 1, "下个": 1, "下下": 2, "下下个": 2}
# Words around a date that do not change it: "预计周五前", "大概明天", "by Friday".
FILLER_BEFORE = ("预计", "估计", "大概", "争取", "应该", "大约", "by ", "until ", "on ")
FILLER_AFTER = ("之前", "以前", "前", "左右", "吧", "完成", "处理好", "搞定")
_PUNCTUATION = " \t\r\n。，,.!！?？~～"


def parse_expected_date(text: str, today: date) -> date | None:
    """The day ``text`` names, counted from ``today`` (the deployment's local date), or None.

    A named day in the past is returned as it is (the caller refuses it politely), except a
    month-day long past, which means next year.
    """
    said = _normalise(text)
    if not said or len(said) > 40:
        return None
    for pattern, read in _RULES:
        match = pattern.fullmatch(said)
        if match is not None:
            try:
                return read(match, today)
            except (ValueError, OverflowError):  # 2月30日, 13-01, a number too big
                return None
    return None


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and punctuation ("１２－０５") into ASCII ones.
    said = unicodedata.normalize("NFKC", text or "").strip(_PUNCTUATION).lower()
    changed = True
    while changed:
        changed = False
        for word in FILLER_BEFORE:
            if said.startswith(word) and len(said) > len(word):
                said, changed = said[len(word):].strip(_PUNCTUATION), True
        for word in FILLER_AFTER:
            if said.endswith(word) and len(said) > len(word):
                said, changed = said[: -len(word)].strip(_PUNCTUATION), True
    return re.sub(r"\s+", " ", said)


def _number(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(cn2an.cn2an(text, "normal"))  # ValueError for nonsense like "十十"


def _relative(match: re.Match[str], today: date) -> date:
    return today + timedelta(days=RELATIVE_DAYS[match[1]])


def _in_days(match: re.Match[str], today: date) -> date:
    return today + timedelta(days=_number(match[1]))


def _in_weeks(match: re.Match[str], today: date) -> date:
    return today + timedelta(weeks=_number(match[1]))


def _weekday(match: re.Match[str], today: date) -> date:
    weekday = WEEKDAYS[match[2]]
    offset = WEEK_OFFSETS[match[1] or ""]
    if offset is None:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(weeks=offset, days=weekday)


def _english_weekday(match: re.Match[str], today: date) -> date:
    ahead = (ENGLISH_WEEKDAYS[match[2]] - today.weekday()) % 7
    if match[1] and ahead == 0:
        ahead = 7  # "next Friday" said on a Friday is not today
    return today + timedelta(days=ahead)


def _full_date(match: re.Match[str], today: date) -> date:
    return date(int(match[1]), _number(match[2]), _number(match[3]))


def _month_day(match: re.Match[str], today: date) -> date:
    day = date(today.year, _number(match[1]), _number(match[2]))
    if today - day > NEXT_YEAR_AFTER:
        day = date(today.year + 1, day.month, day.day)
    return day


def _day_of_month(match: re.Match[str], today: date) -> date:
    """"5号": this month's 5th, or next month's when this month's has gone."""
    number = _number(match[1])
    day = date(today.year, today.month, number) if number >= today.day else None
    if day is None:
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        day = date(year, month, number)
    return day


Reader = Callable[[re.Match[str], date], date]

_RULES: list[tuple[re.Pattern[str], Reader]] = [
    (re.compile("(" + "|".join(sorted(RELATIVE_DAYS, key=len, reverse=True)) + ")"), _relative),
    (re.compile(rf"{_NUMBER} ?(?:天|日){_AFTER_OR_WITHIN}"), _in_days),
    (re.compile(rf"{_NUMBER} ?(?:个)?{_WEEK}{_AFTER_OR_WITHIN}"), _in_weeks),
    (re.compile(r"(?:in|within) (\d{1,3}) days?"), _in_days),
    (re.compile(r"(?:in|within) (\d{1,2}) weeks?"), _in_weeks),
    (re.compile(r"(?:in|within) (a) week"), lambda _, today: today + timedelta(weeks=1)),
    (
        re.compile(
            "(" + "|".join(sorted(filter(None, WEEK_OFFSETS), key=len, reverse=True)) + ")?"
            + _WEEK + "([" + "".join(WEEKDAYS) + "])"
        ),
        _weekday,
    ),
    (
        re.compile(
            r"(next |this )?(" + "|".join(sorted(ENGLISH_WEEKDAYS, key=len, reverse=True)) + ")"
        ),
        _english_weekday,
    ),
    (re.compile(rf"(\d{{4}}) ?年 ?{_NUMBER} ?月 ?{_NUMBER} ?{_DAY_MARK}?"), _full_date),
    (re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"),
     lambda m, today: date(int(m[1]), int(m[3]), int(m[4]))),
    (re.compile(rf"{_NUMBER} ?月 ?{_NUMBER} ?{_DAY_MARK}?"), _month_day),
    (re.compile(r"(\d{1,2}) ?[-/.] ?(\d{1,2})"), _month_day),
    (re.compile(rf"{_NUMBER} ?{_DAY_MARK}"), _day_of_month),
]
