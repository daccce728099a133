"""Reading the day a chief expects to be done: the phrases chiefs type, and what is not a day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dates import parse_expected_date

MONDAY = date(2026, 11, 2)  # a Monday
WEDNESDAY = date(2026, 11, 4)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("今天", MONDAY),
        ("明天", date(2026, 11, 3)),
        ("后天", date(2026, 11, 4)),
        ("大后天", date(2026, 11, 5)),
        ("tomorrow", date(2026, 11, 3)),
        ("  明天。", date(2026, 11, 3)),
        ("明天之前", date(2026, 11, 3)),
        ("预计周五前", date(2026, 11, 6)),
        # N 天后 / N 天内 / N 日内, Arabic, Chinese and full-width numerals
        ("3天后", date(2026, 11, 5)),
        ("三天内", date(2026, 11, 5)),
        ("两日内", date(2026, 11, 4)),
        ("十五天后", date(2026, 11, 17)),
        ("１０天内", date(2026, 11, 12)),
        ("一周内", date(2026, 11, 9)),
        ("2个星期内", date(2026, 11, 16)),
        ("in 3 days", date(2026, 11, 5)),
        ("within a week", date(2026, 11, 9)),
        # weekdays: the next one (today included), this week's, next week's
        ("周一", MONDAY),
        ("周三", date(2026, 11, 4)),
        ("星期五", date(2026, 11, 6)),
        ("礼拜天", date(2026, 11, 8)),
        ("周日", date(2026, 11, 8)),
        ("周天", date(2026, 11, 8)),
        ("下周三", date(2026, 11, 11)),
        ("下周一", date(2026, 11, 9)),
        ("下下周一", date(2026, 11, 16)),
        ("这周日", date(2026, 11, 8)),
        ("Friday", date(2026, 11, 6)),
        ("next mon", date(2026, 11, 9)),
        # month and day, with or without a year
        ("12月5日", date(2026, 12, 5)),
        ("12月5号", date(2026, 12, 5)),
        ("十二月五日", date(2026, 12, 5)),
        ("12-05", date(2026, 12, 5)),
        ("１２－０５", date(2026, 12, 5)),
        ("12/5", date(2026, 12, 5)),
        ("12.5", date(2026, 12, 5)),
        ("2026-12-05", date(2026, 12, 5)),
        ("2027/1/3", date(2027, 1, 3)),
        ("2027年1月3日", date(2027, 1, 3)),
        ("8号", date(2026, 11, 8)),
        ("1号", date(2026, 12, 1)),  # this month's 1st has gone: next month's
    ],
)
def test_the_days_chiefs_type(said: str, expected: date) -> None:
    assert parse_expected_date(said, MONDAY) == expected


def test_a_weekday_said_on_that_day_is_today_but_next_week_is_next_week() -> None:
    assert parse_expected_date("周三", WEDNESDAY) == WEDNESDAY
    assert parse_expected_date("下周三", WEDNESDAY) == date(2026, 11, 11)
    assert parse_expected_date("next wed", WEDNESDAY) == date(2026, 11, 11)
    assert parse_expected_date("本周一", WEDNESDAY) == MONDAY  # past: the caller refuses it


def test_a_month_day_long_past_means_next_year_a_recent_one_stays_past() -> None:
    december = date(2026, 12, 20)
    assert parse_expected_date("1月3日", december) == date(2027, 1, 3)
    assert parse_expected_date("12月18日", december) == date(2026, 12, 18)  # two days ago
    assert parse_expected_date("11-01", MONDAY) == date(2026, 11, 1)  # yesterday: past
    assert parse_expected_date("9月1日", MONDAY) == date(2027, 9, 1)  # two months ago


@pytest.mark.parametrize(
    "said",
    [
        "", "   ", "3号楼", "汾阳路13号", "明天下午三点半来看看", "处理中", "好的",
        "2月30日", "13-01", "12月32日", "周八", "3天前", "<b>明天</b>", "明天" * 30,
        "十十天后", "x" * 5000,
    ],
)
def test_what_is_not_a_day(said: str) -> None:
    assert parse_expected_date(said, MONDAY) is None


@given(st.text(max_size=60), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_any_text_gives_a_day_or_none_and_never_raises(said: str, today: date) -> None:
    day = parse_expected_date(said, today)
    assert day is None or isinstance(day, date)


@given(st.integers(min_value=0, max_value=365), st.dates(max_value=date(2090, 1, 1)))
def test_n_days_later_is_n_days_later(days: int, today: date) -> None:
    assert parse_expected_date(f"{days}天后", today) == today + timedelta(days=days)
