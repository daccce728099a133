"""The digest's pure parts: which week is due when, what /digest's words ask for, and the
summary message (escaped, in both languages)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.deployment import WEEKDAYS, Deployment, load_deployment
from bot.digest import (
    DigestError,
    DigestUsage,
    NoSuchWeek,
    OwnStationOnly,
    WeekAhead,
    WhichStation,
    due_week,
    read_request,
)
from bot.i18n import Translator
from reports.digest import directory_for, summary, worst_station
from reports.figures import Counts, Hotspot, StationWeek, WeekFigures
from reports.week import Week

from conftest import SAMPLE

SHANGHAI = ZoneInfo("Asia/Shanghai")
NINE = time(9, 0)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)  # Wednesday of 2026-W48
TRANSLATOR = Translator()
DEPLOYMENT = load_deployment(SAMPLE)  # for hypothesis, which runs a test many times over


# --- when the weekly digest is due ----------------------------------------------------------


def test_monday_nine_in_shanghai_is_one_in_the_morning_utc() -> None:
    monday = datetime(2026, 11, 9, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert due_week(monday, zone=SHANGHAI, weekday="mon", at=NINE).label == "2026-W45"
    before = monday - timedelta(seconds=1)
    assert due_week(before, zone=SHANGHAI, weekday="mon", at=NINE).label == "2026-W44"


def test_a_week_is_due_all_week_long_until_the_next_moment() -> None:
    for hours in (0, 24, 24 * 6 + 23):
        moment = datetime(2026, 11, 9, 9, 0, tzinfo=SHANGHAI) + timedelta(hours=hours)
        assert due_week(moment, zone=SHANGHAI, weekday="mon", at=NINE).label == "2026-W45"


def test_other_days_and_times() -> None:
    sunday_night = datetime(2026, 11, 8, 23, 0, tzinfo=SHANGHAI)  # the last hour of W45
    assert due_week(sunday_night, zone=SHANGHAI, weekday="sun", at=time(23, 0)).label == (
        "2026-W44"
    )
    friday = datetime(2026, 11, 13, 17, 30, tzinfo=SHANGHAI)  # W46's Friday
    assert due_week(friday, zone=SHANGHAI, weekday="fri", at=time(17, 30)).label == "2026-W45"
    assert due_week(friday, zone=SHANGHAI, weekday="fri", at=time(17, 31)).label == "2026-W44"


def test_the_year_turns() -> None:
    monday = datetime(2027, 1, 4, 9, 0, tzinfo=SHANGHAI)
    assert due_week(monday, zone=SHANGHAI, weekday="mon", at=NINE).label == "2026-W53"
    assert due_week(monday + timedelta(weeks=1), zone=SHANGHAI, weekday="mon", at=NINE).label == (
        "2027-W01"
    )


def test_a_summer_time_change_moves_the_moment_with_the_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # clocks go back on Sunday 2026-10-25
    monday = datetime(2026, 10, 26, 9, 0, tzinfo=berlin)  # 08:00 UTC now, 07:00 a week ago
    assert due_week(monday, zone=berlin, weekday="mon", at=NINE).label == "2026-W43"
    assert due_week(
        monday.astimezone(UTC) - timedelta(minutes=1), zone=berlin, weekday="mon", at=NINE
    ).label == "2026-W42"


@given(
    now=st.datetimes(  # naive bounds, as hypothesis wants them; the values are aware
        min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    weekday=st.sampled_from(WEEKDAYS),
    at=st.times(),
    zone=st.sampled_from([SHANGHAI, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]),
)
def test_the_due_week_is_over_and_the_next_one_is_not_due_yet(
    now: datetime, weekday: str, at: time, zone: ZoneInfo
) -> None:
    week = due_week(now, zone=zone, weekday=weekday, at=at)
    assert week.end <= now  # a digest is never of a week still running
    # The week after it becomes due within the next seven days (and not before now).
    later = due_week(now + timedelta(days=7, hours=2), zone=zone, weekday=weekday, at=at)
    assert later == week.next() or later == week.next().next()


# --- what /digest asks for --------------------------------------------------------------------


def test_the_office_defaults_to_last_week_of_the_district(deployment: Deployment) -> None:
    asked = read_request(None, deployment=deployment, now=NOW, own=None)
    assert (asked.week.label, asked.station) == ("2026-W47", None)
    asked = read_request("  ", deployment=deployment, now=NOW, own=None)
    assert (asked.week.label, asked.station) == ("2026-W47", None)


@pytest.mark.parametrize(
    ("said", "week", "station"),
    [
        ("2026-W45", "2026-W45", None),
        ("2026w45", "2026-W45", None),
        ("last", "2026-W47", None),
        ("LAST", "2026-W47", None),
        ("this", "2026-W48", None),
        ("本周", "2026-W48", None),
        ("上周 fenyang", "2026-W47", "fenyang"),
        ("fenyang", "2026-W47", "fenyang"),
        ("FENYANG 2026-W01", "2026-W01", "fenyang"),
        ("汾阳路社区工作站", "2026-W47", "fenyang"),
        ("2025-W01 汾阳路社区工作站", "2025-W01", "fenyang"),
    ],
)
def test_the_office_names_a_week_and_a_station_in_either_order(
    deployment: Deployment, said: str, week: str, station: str | None
) -> None:
    asked = read_request(said, deployment=deployment, now=NOW, own=None)
    assert (asked.week.label, asked.station) == (week, station)


@pytest.mark.parametrize(
    ("said", "error"),
    [
        ("2026-W54", NoSuchWeek),
        ("2026-W0", NoSuchWeek),
        ("2025-W53", NoSuchWeek),  # 2025 has 52 weeks
        ("1999-W01", NoSuchWeek),
        ("0000-W01", NoSuchWeek),
        ("2026-W49", WeekAhead),
        ("9999-W01", WeekAhead),
        ("next", DigestUsage),
        ("last this", DigestUsage),
        ("nowhere", DigestUsage),
        ("fenyang jinshui", DigestUsage),
        ("x" * 201, DigestUsage),
    ],
)
def test_what_cannot_be_read(deployment: Deployment, said: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_request(said, deployment=deployment, now=NOW, own=None)


def test_a_chief_sees_their_own_stations_only(deployment: Deployment) -> None:
    asked = read_request(None, deployment=deployment, now=NOW, own=("fenyang",))
    assert (asked.week.label, asked.station) == ("2026-W47", "fenyang")
    asked = read_request("2026-W40", deployment=deployment, now=NOW, own=("fenyang",))
    assert (asked.week.label, asked.station) == ("2026-W40", "fenyang")
    with pytest.raises(OwnStationOnly) as refused:
        read_request("jinshui", deployment=deployment, now=NOW, own=("fenyang",))
    assert "fenyang" in str(refused.value.params) and "jinshui" not in str(refused.value.params)
    with pytest.raises(WhichStation):
        read_request("last", deployment=deployment, now=NOW, own=("fenyang", "jinshui"))
    asked = read_request("jinshui", deployment=deployment, now=NOW, own=("fenyang", "jinshui"))
    assert asked.station == "jinshui"


def test_refused_words_come_back_escaped_and_short(deployment: Deployment) -> None:
    with pytest.raises(DigestUsage) as refused:
        read_request("<b>" + "长" * 100, deployment=deployment, now=NOW, own=None)
    said = str(refused.value.params["said"])
    assert said.startswith("&lt;b&gt;") and said.endswith("…") and len(said) < 50


@given(st.text(max_size=300))
def test_any_text_is_read_or_refused_politely(said: str) -> None:
    deployment = DEPLOYMENT
    try:
        asked = read_request(said, deployment=deployment, now=NOW, own=None)
    except DigestError as error:
        assert error.message_key.startswith("digest.")
        return
    assert asked.week.start <= NOW
    assert asked.station is None or asked.station in {s.key for s in deployment.stations}


# --- the summary message ----------------------------------------------------------------------

W45 = Week(2026, 45, SHANGHAI)


def figures(
    *, station: str | None = None, stations: tuple[StationWeek, ...] = (),
    hotspots: tuple[Hotspot, ...] = (), total: Counts | None = None,
    previous: Counts | None = None,
) -> WeekFigures:
    return WeekFigures(
        week=W45, station=station, generated_at=NOW, total=total or Counts(),
        previous_total=previous or Counts(), stations=stations, categories=(), oldest_open=(),
        overdue=(), hotspots=hotspots, trend=(),
    )


def station_week(key: str, name: str, overdue: int) -> StationWeek:
    return StationWeek(key, name, Counts(overdue_at_end=overdue), Counts())


def test_the_summary_says_the_week_and_its_change(deployment: Deployment) -> None:
    week = figures(
        total=Counts(received=7, opened=5, resolved=3, open_at_end=4, overdue_at_end=2, due=4,
                     due_met=3, satisfied=2, rated=3),
        previous=Counts(received=4, opened=5, resolved=6),
        stations=(station_week("fenyang", "汾阳路社区工作站", 1),
                  station_week("jinshui", "金水路社区工作站", 2)),
        hotspots=(Hotspot("汾阳路13号", 3, (1, 2, 3)), Hotspot("别处", 2, (4, 5))),
    )
    text = summary(week, deployment=deployment, translator=TRANSLATOR, locale="zh_CN")
    lines = text.splitlines()
    assert lines[0] == "📊 <b>兴城路街道办事处 周报 2026-W45</b>"
    assert lines[1].startswith("2026年11月2日")
    assert lines[2] == (
        "收到报事 7 件（比上周多 3），立案 5 件（与上周持平），办结 3 件（比上周少 3）"
    )
    assert lines[3] == "周末未办结 4 件，其中超期 2 件"
    assert lines[4] == "按时办结率 75%，满意率 67%"
    assert lines[5] == "超期最多：金水路社区工作站（2 件）"
    assert lines[6] == "反映最多的地点：汾阳路13号（3 次）"

    english = summary(week, deployment=deployment, translator=TRANSLATOR, locale="en")
    assert "weekly digest 2026-W45" in english and "Nov 2" in english
    assert "Reports received: 7 (3 more than the week before)" in english
    assert "Most overdue: 金水路社区工作站 (2)" in english


def test_a_quiet_week_says_so(deployment: Deployment) -> None:
    text = summary(figures(), deployment=deployment, translator=TRANSLATOR, locale="zh_CN")
    assert "按时办结率 —（本周没有到期的工单），满意率 —（本周无人评价）" in text
    assert "各工作站都没有超期工单" in text
    assert "反映最多" not in text


def test_a_stations_summary_names_the_station_and_no_worst(deployment: Deployment) -> None:
    week = figures(station="fenyang", stations=(station_week("fenyang", "汾阳路社区工作站", 3),))
    text = summary(week, deployment=deployment, translator=TRANSLATOR, locale="zh_CN")
    assert "汾阳路社区工作站 周报 2026-W45" in text
    assert "超期最多" not in text and "没有超期" not in text


def test_what_people_typed_is_escaped_and_cut(deployment: Deployment) -> None:
    place = "<a href='http://x'>点我</a>" + "很长的地址" * 20
    week = figures(hotspots=(Hotspot(place, 2, (1, 2)),), stations=(
        station_week("fenyang", "<b>站</b>", 1),
    ))
    text = summary(week, deployment=deployment, translator=TRANSLATOR, locale="zh_CN")
    assert "<a href" not in text and "&lt;a href=&#x27;http://x&#x27;&gt;点我" in text
    assert "&lt;b&gt;站&lt;/b&gt;" in text
    assert "…（2 次）" in text and len(text) < 1000


def test_the_worst_station_is_the_first_of_equals_and_none_without_overdue() -> None:
    a, b, c = station_week("a", "A", 2), station_week("b", "B", 2), station_week("c", "C", 0)
    assert worst_station((c, a, b)) is a
    assert worst_station((c,)) is None
    assert worst_station(()) is None


def test_where_the_files_go() -> None:
    root = Path("/data")
    assert directory_for(root, W45) == Path("/data/digests/2026-W45")
    assert directory_for(root, W45, "fenyang") == Path("/data/digests/2026-W45-fenyang")
