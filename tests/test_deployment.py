"""The deployment file: durations, the sample district, and a plain-English message naming the
file, the field and the problem for every kind of mistake an operator makes."""

import json
import re
import time as clock
import typing
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import bot
from bot.deployment import (
    MAX_DURATION,
    Deployment,
    DeploymentError,
    QuietHours,
    format_duration,
    load_deployment,
    parse_duration,
)

SAMPLE = Path(bot.__file__).parent / "sample" / "deployment.yaml"
DOCS = Path(__file__).parent.parent / "docs" / "deployment.md"

SQUARE = [[120.40, 36.16], [120.42, 36.16], [120.42, 36.18], [120.40, 36.18], [120.40, 36.16]]


def grid(name: str, ring: list[list[float]] = SQUARE) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": name},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }


@pytest.fixture
def district(tmp_path: Path) -> Path:
    """A directory holding the grids and gazetteer the sample deployment file refers to."""
    (tmp_path / "grids").mkdir()
    for key in SAMPLE_STATIONS:
        (tmp_path / "grids" / f"{key}.geojson").write_text(json.dumps(grid(f"{key} grid")))
    (tmp_path / "district.geojson").write_text(json.dumps(grid("district")))
    (tmp_path / "addresses.csv").write_text(
        "address,aliases,lat,lon\n汾阳路13号,Fenyang Rd 13,36.1741,120.4030\n", encoding="utf-8"
    )
    return tmp_path


SAMPLE_STATIONS = [
    s["key"] for s in yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["stations"]
]


def sample_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    return data


def write(directory: Path, content: dict[str, Any] | str, name: str = "deploy.yaml") -> Path:
    path = directory / name
    if isinstance(content, dict):
        content = yaml.safe_dump(content, allow_unicode=True, sort_keys=False)
    path.write_text(content, encoding="utf-8")
    return path


def problems(path: Path | str) -> list[str]:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(path)
    return caught.value.lines()


def only_problem(path: Path) -> str:
    lines = problems(path)
    assert len(lines) == 1, lines
    return lines[0]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 12h", timedelta(days=1, hours=12)),
        (" 72H ", timedelta(hours=72)),
        ("30m1h", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations_in_the_units_operators_write(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("24", "needs a unit"),
        (24, "needs a unit"),
        (1.5, "needs a unit"),
        ("0h", "longer than zero"),
        ("0s0m", "longer than zero"),
        ("-5m", "must be positive"),
        ("1.5h", "whole numbers"),
        ("3 months", "unknown unit 'months'"),
        ("5y", "unknown unit 'y'"),
        ("1h1h", "appears twice"),
        ("h", "must be a duration"),
        ("", "empty"),
        ("   ", "empty"),
        ("soon", "must be a duration"),
        ("<b>1h</b>", "must be a duration"),
        (True, "must be a duration"),
        (None, "must be a duration"),
        ([1], "must be a duration"),
        ("99999999w", "too long"),
        ("1" * 5000 + "h", "must be a duration"),
        (timedelta(0), "longer than zero"),
    ],
)
def test_bad_durations_are_refused_with_a_reason(value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_duration(value)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=24), "24h"),
        (timedelta(hours=72), "72h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=14), "14d"),
        (timedelta(days=7, hours=2), "7d2h"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=1.5), "1s"),
        (timedelta(0), "0s"),
    ],
)
def test_durations_are_written_as_operators_write_them(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@given(st.integers(min_value=1, max_value=int(MAX_DURATION.total_seconds())))
def test_a_written_duration_reads_back_the_same(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


@given(
    st.dictionaries(
        st.sampled_from("wdhms"), st.integers(min_value=0, max_value=200), min_size=1
    ).filter(lambda parts: any(parts.values()))
)
def test_units_add_up_in_any_order(parts: dict[str, int]) -> None:
    seconds = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
    text = "".join(f"{count}{unit}" for unit, count in parts.items())
    expected = timedelta(seconds=sum(count * seconds[unit] for unit, count in parts.items()))
    assert parse_duration(text) == expected


@given(st.text(max_size=30))
def test_any_text_is_a_positive_duration_or_a_value_error(text: str) -> None:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert timedelta(0) < duration <= MAX_DURATION


# --- the sample district ---------------------------------------------------------------------


def test_the_sample_deployment_loads() -> None:
    deployment = load_deployment(SAMPLE)

    assert deployment.base_dir == SAMPLE.parent.resolve()
    assert deployment.zone == ZoneInfo("Asia/Shanghai")
    assert deployment.language == "zh"
    assert [station.key for station in deployment.stations] == [
        "fenyang", "jinshui", "hushan", "xingcheng", "zhenhua", "jingkou", "fengshan", "dongli",
    ]
    assert deployment.station("fenyang").chief == 100000001
    assert deployment.category("safety").sla == timedelta(hours=12)
    assert deployment.default_category == "other"
    assert deployment.reminders.quiet_hours == QuietHours(time(22), time(8))
    assert deployment.feedback.auto_close_after == timedelta(hours=72)
    assert deployment.dedup.radius_m == 50
    assert deployment.dedup.window == timedelta(days=14)
    assert deployment.digest.weekday == "mon"
    assert deployment.digest.time == time(9)
    assert deployment.gazetteer == SAMPLE.parent.resolve() / "addresses.csv"
    for station in deployment.stations:
        assert station.area.path.is_file()
        assert not station.area.shape.is_empty


def test_paths_are_relative_to_the_file_not_the_working_directory(
    district: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(district, sample_data())
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))

    deployment = load_deployment(path)

    assert deployment.base_dir == district.resolve()
    assert deployment.station("jinshui").area.path == district.resolve() / "grids/jinshui.geojson"
    assert deployment.station("jinshui").area.names == ("jinshui grid",)


def test_lookups(district: Path) -> None:
    deployment = load_deployment(write(district, sample_data()))

    assert deployment.station("hushan").name == "虎山路社区工作站"
    assert deployment.category("sanitation").name == "环境卫生"
    assert deployment.is_intake_chat(-1001000000002)
    assert not deployment.is_intake_chat(-1001000000001)  # the office chat takes no reports
    assert not deployment.is_intake_chat(100000001)
    assert [s.key for s in deployment.stations_led_by(100000002)] == ["jinshui"]
    assert deployment.stations_led_by(42) == ()
    with pytest.raises(KeyError, match="fenyang, jinshui"):
        deployment.station("nowhere")
    with pytest.raises(KeyError, match="sanitation"):
        deployment.category("noise")


def test_a_grid_covers_points_inside_it_and_on_its_edge(district: Path) -> None:
    area = load_deployment(write(district, sample_data())).station("fenyang").area

    assert area.covers(lat=36.17, lon=120.41)
    assert area.covers(lat=36.16, lon=120.41)  # on the boundary
    assert not area.covers(lat=36.30, lon=120.41)
    assert not area.covers(lat=120.41, lon=36.17)  # swapped coordinates land nowhere


def test_overlapping_grids_are_found(district: Path) -> None:
    beside = [[x + 0.02, y] for x, y in SQUARE]  # shares only an edge with SQUARE
    (district / "grids" / "jinshui.geojson").write_text(json.dumps(grid("jinshui", beside)))
    (district / "grids" / "hushan.geojson").write_text(json.dumps(grid("hushan", beside)))
    for n, key in enumerate(SAMPLE_STATIONS[3:], start=1):  # each far from all others
        far = [[x + n, y] for x, y in SQUARE]
        (district / "grids" / f"{key}.geojson").write_text(json.dumps(grid(key, far)))

    deployment = load_deployment(write(district, sample_data()))

    assert deployment.overlapping_stations() == [("jinshui", "hushan")]


def test_defaults_fill_what_a_small_file_leaves_out(district: Path) -> None:
    data = sample_data()
    for optional in ("timezone", "language", "default_category", "reminders", "feedback",
                     "dedup", "digest"):
        del data[optional]

    deployment = load_deployment(write(district, data))

    assert deployment.timezone == "Asia/Shanghai"
    assert deployment.language == "zh"
    assert deployment.default_category == "sanitation"  # the first category
    assert deployment.reminders.first_after == timedelta(hours=2)
    assert deployment.reminders.every == timedelta(hours=4)
    assert deployment.reminders.escalate_after == 3
    assert deployment.reminders.quiet_hours is None
    assert deployment.feedback.auto_close_after == timedelta(hours=72)
    assert deployment.dedup.radius_m == 50
    assert deployment.dedup.window == timedelta(days=14)
    assert (deployment.digest.weekday, deployment.digest.time) == ("mon", time(9))


def test_a_dumped_deployment_reloads_to_the_same_thing(district: Path) -> None:
    deployment = load_deployment(write(district, sample_data()))

    again = load_deployment(write(district, deployment.model_dump(mode="json"), "again.yaml"))

    assert again == deployment


def test_a_deployment_cannot_be_changed_after_loading(district: Path) -> None:
    deployment = load_deployment(write(district, sample_data()))
    with pytest.raises(ValueError, match="frozen"):
        deployment.language = "en"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        ("22:00-08:00", [time(22), time(23, 59), time(0), time(7, 59)], [time(8), time(12)]),
        ("12:00-14:00", [time(12), time(13, 30)], [time(14), time(11, 59), time(0)]),
    ],
)
def test_quiet_hours_may_wrap_past_midnight(
    district: Path, window: str, inside: list[time], outside: list[time]
) -> None:
    data = sample_data()
    data["reminders"]["quiet_hours"] = window

    quiet = load_deployment(write(district, data)).reminders.quiet_hours

    assert quiet is not None
    assert all(quiet.contains(moment) for moment in inside)
    assert not any(quiet.contains(moment) for moment in outside)
    assert str(quiet) == window


# --- every kind of mistake names the file, the field and the problem -------------------------


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value


_DELETE = object()

MISTAKES = [
    # (field to change, new value, field named in the message, words in the message)
    ("stations.1.chief", "abc", "stations[1].chief",
     "must be a Telegram user id (a positive integer), got 'abc'"),
    ("stations.1.chief", -100, "stations[1].chief", "a negative id is a group chat"),
    ("stations.1.chief", True, "stations[1].chief", "a positive integer), got true"),
    ("stations.1.chief", None, "stations[1].chief", "got nothing"),
    ("stations.0.chief", _DELETE, "stations[0].chief", "is required"),
    ("stations.0.key", "汾阳", "stations[0].key", "lower-case latin letters"),
    ("stations.0.key", "x" * 40, "stations[0].key", "short key"),
    ("stations.0.name", "  ", "stations[0].name", "must not be empty"),
    ("stations.0.name", "two\nlines", "stations[0].name", "single line"),
    ("stations.0.name", "长" * 101, "stations[0].name", "at most 100 characters"),
    ("stations.2.key", "fenyang", "stations",
     "the key 'fenyang' appears twice (stations[0] and stations[2])"),
    ("stations", [], "stations", "at least one station"),
    ("stations", "fenyang", "stations", "must be a list, got 'fenyang'"),
    ("stations.0.area", "grids/missing.geojson", "stations[0].area",
     "file 'grids/missing.geojson' not found"),
    ("stations.0.area", "grids", "stations[0].area", "is not a file"),
    ("intake_chats.0", 1001000000002, "intake_chats[0]", "a positive id is a person"),
    ("intake_chats.0", "group", "intake_chats[0]", "must be a Telegram group chat id"),
    ("intake_chats", [], "intake_chats", "at least one group chat"),
    ("intake_chats", [-1001000000002, -1001000000002], "intake_chats",
     "the chat -1001000000002 appears twice (intake_chats[0] and intake_chats[1])"),
    ("intake_chats", [-1001000000001], "intake_chats",
     "the street office chat cannot be an intake chat"),
    ("street_office", _DELETE, "street_office", "is required"),
    ("street_office", "兴城路街道", "street_office", "must be a mapping"),
    ("street_office.chat_id", 5, "street_office.chat_id", "negative integer"),
    ("timezone", "Asia/Shangai", "timezone", "did you mean 'Asia/Shanghai'?"),
    ("timezone", "asia/shanghai", "timezone", "did you mean 'Asia/Shanghai'?"),
    ("timezone", "../../etc/passwd", "timezone", "not a known time zone"),
    ("timezone", 8, "timezone", "must be a time zone name"),
    ("language", "fr", "language", "must be 'zh' or 'en', got 'fr'"),
    ("categories", [], "categories", "at least one category"),
    ("categories.0.key", "Sanitation", "categories[0].key", "got 'Sanitation'"),
    ("categories.0.key", "{reason}", "categories[0].key", "got '{reason}'"),
    ("categories.1.key", "sanitation", "categories", "the key 'sanitation' appears twice"),
    ("categories.0.sla", 24, "categories[0].sla", "needs a unit"),
    ("categories.0.names", {"English": "Sanitation"}, "categories[0].names.English.[key]",
     "two-letter language code in lower case (like 'en'), got 'English'"),
    ("categories.0.names", {"en": ""}, "categories[0].names.en", "must not be empty"),
    ("categories.0.sla", "1 day", "categories[0].sla", "unknown unit 'day'"),
    ("categories.0.sla", _DELETE, "categories[0].sla", "is required"),
    ("default_category", "othr", "default_category", "did you mean 'other'?"),
    ("reminders.first_after", "0m", "reminders.first_after", "longer than zero"),
    ("reminders.every", "-4h", "reminders.every", "must be positive"),
    ("reminders.escalate_after", 0, "reminders.escalate_after", "at least 1, got 0"),
    ("reminders.escalate_after", "three", "reminders.escalate_after", "got 'three'"),
    ("reminders.quiet_hours", "22:00", "reminders.quiet_hours", '"HH:MM-HH:MM"'),
    ("reminders.quiet_hours", "25:00-08:00", "reminders.quiet_hours", "got '25:00-08:00'"),
    ("reminders.quiet_hours", "22:00-22:00", "reminders.quiet_hours", "the same time"),
    ("feedback.auto_close_after", "forever", "feedback.auto_close_after", "must be a duration"),
    ("dedup.radius_m", "50m", "dedup.radius_m", "number of metres such as 50, got '50m'"),
    ("dedup.radius_m", -1, "dedup.radius_m", "greater than zero, got -1"),
    ("dedup.radius_m", float("nan"), "dedup.radius_m", "greater than zero"),
    ("dedup.radius_m", float("inf"), "dedup.radius_m", "greater than zero"),
    ("dedup.radius_m", 1_000_000, "dedup.radius_m", "at most 5000 metres"),
    ("dedup.window", 14, "dedup.window", "needs a unit"),
    ("digest.weekday", "someday", "digest.weekday", "mon, tue, wed"),
    ("digest.time", "9am", "digest.time", '"HH:MM"'),
    ("gazetteer", "nowhere.csv", "gazetteer", "file 'nowhere.csv' not found"),
    ("gazetteer", _DELETE, "gazetteer", "is required"),
]


@pytest.mark.parametrize(
    ("change", "value", "field", "words"),
    MISTAKES,
    ids=[f"{change}={value!r:.20}" for change, value, *_ in MISTAKES],
)
def test_each_mistake_is_named_with_file_field_and_problem(
    district: Path, change: str, value: Any, field: str, words: str
) -> None:
    data = sample_data()
    _set(data, change, value)
    path = write(district, data)

    line = only_problem(path)

    assert line.startswith(f"{path}: {field}: "), line
    assert words in line


def test_the_message_reads_as_in_the_operator_manual(
    district: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sample_data()
    data["stations"][1]["chief"] = "abc"
    write(district, data)
    monkeypatch.chdir(district)

    line = only_problem(Path("deploy.yaml"))

    assert re.fullmatch(
        r"deploy\.yaml: stations\[1\]\.chief: must be a Telegram user id \(a positive integer\), "
        r"got 'abc' \(line \d+\)",
        line,
    )


def test_the_line_of_the_mistake_is_given(district: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("chief: 100000002", "chief: abc")
    wrong_line = next(
        number for number, line in enumerate(text.splitlines(), start=1) if "chief: abc" in line
    )

    line = only_problem(write(district, text))

    assert line.endswith(f"(line {wrong_line})")


def test_unknown_fields_are_named_with_the_closest_valid_name(district: Path) -> None:
    data = sample_data()
    data["stationz"] = data.pop("stations")
    data["reminders"]["evry"] = "4h"
    data["stations_extra"] = 1
    data["dedup"]["zzz"] = 1
    path = write(district, data)

    lines = problems(path)

    assert any(f"{path}: stationz: unknown field; did you mean 'stations'?" in x for x in lines)
    assert any(f"{path}: stations_extra: unknown field; did you mean 'stations'?" in x
               for x in lines)
    assert any(f"{path}: reminders.evry: unknown field; did you mean 'every'?" in x for x in lines)
    assert any(f"{path}: stations: is required" in x for x in lines)
    assert any(
        f"{path}: dedup.zzz: unknown field; the fields here are radius_m, window" in x
        for x in lines
    )


def test_a_misspelt_field_inside_a_station_is_named(district: Path) -> None:
    data = sample_data()
    data["stations"][2]["cheif"] = data["stations"][2].pop("chief")
    path = write(district, data)

    lines = problems(path)

    assert any(f"{path}: stations[2].cheif: unknown field; did you mean 'chief'?" in x
               for x in lines)
    assert any(f"{path}: stations[2].chief: is required" in x for x in lines)


def test_every_problem_is_reported_at_once(district: Path) -> None:
    data = sample_data()
    data["timezone"] = "Mars/Olympus"
    data["stations"][0]["chief"] = "abc"
    data["categories"][3]["sla"] = "3 days"
    data["digest"]["weekday"] = "funday"

    lines = problems(write(district, data))

    assert [line.split(": ")[1] for line in lines] == [
        "timezone", "categories[3].sla", "stations[0].chief", "digest.weekday",
    ]


def test_a_flood_of_problems_is_cut_short(district: Path) -> None:
    data = sample_data()
    data["intake_chats"] = list(range(1, 501))

    with pytest.raises(DeploymentError) as caught:
        load_deployment(write(district, data))

    assert len(caught.value.problems) == 500
    lines = caught.value.lines()
    assert len(lines) == 51
    assert lines[-1].endswith("... and 450 more problems")


def test_an_unquoted_time_gets_a_hint_about_quotes(district: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace('time: "09:00"', "time: 9:30")

    line = only_problem(write(district, text))

    assert 'digest.time: must be a time written in quotes, e.g. "09:30"' in line
    assert "number 570" in line


# --- the file itself ---------------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert problems(path) == [f"{path}: file not found"]


def test_a_directory_instead_of_a_file(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}: is a directory, not a deployment file"]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n", "null\n"])
def test_an_empty_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)
    assert problems(path) == [
        f"{path}: the file is empty; docs/deployment.md lists the fields it needs"
    ]


@pytest.mark.parametrize(
    ("content", "shown"), [("- a\n- b\n", "a list"), ("just words\n", "'just words'"),
                           ("42\n", "42")]
)
def test_the_top_level_must_be_a_mapping(tmp_path: Path, content: str, shown: str) -> None:
    path = write(tmp_path, content)
    assert problems(path) == [
        f"{path}: the top level must be a mapping of fields such as 'timezone:' and "
        f"'stations:', got {shown}"
    ]


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        ("timezone: Asia/Shanghai\nstations:\n  - key: a\n   name: b\n", "line 4, column 4",
         "not valid YAML"),
        ("language: zh\nstations:\n\t- key: a\n", "line 3, column 1", "tabs"),
        ("language: [zh\n", "line 2, column 1", "not valid YAML"),
        ('language: "zh\n', "line 2, column 1", "not valid YAML"),
        ("timezone: Asia/Shanghai\nlanguage: zh\ntimezone: UTC\n", "line 3, column 1",
         "the key 'timezone' appears twice in the same mapping (first on line 1)"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1", "not valid YAML"),
        ("x: !!python/object/apply:os.system ['true']\n", "line 1, column 4",
         "not valid YAML"),
    ],
)
def test_a_file_that_is_not_yaml_names_the_line(
    tmp_path: Path, content: str, where: str, words: str
) -> None:
    path = write(tmp_path, content)

    line = only_problem(path)

    assert line.startswith(f"{path}: {where}: ")
    assert words in line


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_bytes(b"language: zh\n" + "timezone: 上海\n".encode("gbk"))
    assert problems(path) == [f"{path}: line 2: is not UTF-8 text (save the file as UTF-8)"]


def test_a_byte_order_mark_is_fine(district: Path) -> None:
    path = district / "deploy.yaml"
    path.write_bytes(SAMPLE.read_text(encoding="utf-8").encode("utf-8-sig"))
    assert load_deployment(path).language == "zh"


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * 2_000_000 + "\n")
    assert "a deployment file is a few kilobytes" in only_problem(path)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "stations: " + "[" * 5_000)
    assert only_problem(path) == f"{path}: is nested too deeply to read"


def test_an_alias_bomb_is_answered_quickly(district: Path) -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for previous, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append("intake_chats: [" + ", ".join(["*h"] * 9) + "]")
    path = write(district, "\n".join(lines) + "\n")

    started = clock.perf_counter()
    found = problems(path)

    assert clock.perf_counter() - started < 5
    assert any("intake_chats[0]: must be a Telegram group chat id" in x for x in found)


def test_a_value_with_markup_is_quoted_not_interpreted(district: Path) -> None:
    data = sample_data()
    data["language"] = "<script>alert(1)</script>[red]x[/red]"

    line = only_problem(write(district, data))

    assert "got '<script>alert(1)</script>[red]x[/red]'" in line


def test_a_very_long_value_is_shortened_in_the_message(district: Path) -> None:
    data = sample_data()
    data["language"] = "z" * 10_000

    line = only_problem(write(district, data))

    assert len(line) < 300
    assert "zzz..." in line


# --- referenced files: grids and gazetteer ----------------------------------------------------


GRID_MISTAKES = [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "is JSON but not GeoJSON"),
    ('{"type": "FeatureCollection", "features": 3}', "needs a list of 'features'"),
    (json.dumps({"type": "Point", "coordinates": [120.41, 36.17]}),
     "contains no Polygon or MultiPolygon (found: Point)"),
    (json.dumps({"type": "FeatureCollection", "features": []}),
     "contains no Polygon or MultiPolygon"),
    (json.dumps(grid("蝴蝶", [[120.40, 36.16], [120.42, 36.18], [120.42, 36.16], [120.40, 36.18],
                             [120.40, 36.16]])),
     "feature 1 (蝴蝶) is not a valid polygon (Self-intersection"),
    (json.dumps(grid("web mercator", [[13404000, 4322000], [13406000, 4322000],
                                      [13406000, 4324000], [13404000, 4322000]])),
     "must use WGS-84 degrees"),
    (json.dumps({"type": "Polygon", "coordinates": [[1, 2]]}), "malformed coordinates"),
    (json.dumps({"type": "Polygon", "coordinates": []}), "empty polygon"),
]


@pytest.mark.parametrize(("content", "words"), GRID_MISTAKES)
def test_a_broken_grid_file_is_named(district: Path, content: str, words: str) -> None:
    (district / "grids" / "hushan.geojson").write_text(content, encoding="utf-8")
    path = write(district, sample_data())

    line = only_problem(path)

    assert line.startswith(f"{path}: stations[2].area: grids/hushan.geojson: "), line
    assert words in line


def test_a_grid_may_be_a_bare_multipolygon(district: Path) -> None:
    other = [[x + 0.1, y] for x, y in SQUARE]
    (district / "grids" / "hushan.geojson").write_text(
        json.dumps({"type": "MultiPolygon", "coordinates": [[SQUARE], [other]]})
    )

    area = load_deployment(write(district, sample_data())).station("hushan").area

    assert area.covers(lat=36.17, lon=120.51)
    assert area.names == ()


GAZETTEER_MISTAKES = [
    ("address,lat,lon\n汾阳路13号,36.1,120.4\n", "the header lacks aliases"),
    ("", "the header lacks address, aliases, lat, lon"),
    ("address,aliases,lat,lon\n", "has a header but no addresses"),
    ("address,aliases,lat,lon\n汾阳路13号,,north,120.4\n", "line 2: lat 'north' is not a number"),
    ("address,aliases,lat,lon\n汾阳路13号,,120.4,36.1\n", "line 2: lat 120.4 is out of range"),
    ("address,aliases,lat,lon\n,,36.1,120.4\n", "line 2: the address is empty"),
    ("address,aliases,lat,lon\n" + "x,,bad,1\n" * 5, "(and 2 more)"),
]


@pytest.mark.parametrize(("content", "words"), GAZETTEER_MISTAKES)
def test_a_broken_gazetteer_is_named(district: Path, content: str, words: str) -> None:
    (district / "addresses.csv").write_text(content, encoding="utf-8")
    path = write(district, sample_data())

    line = only_problem(path)

    assert line.startswith(f"{path}: gazetteer: addresses.csv: "), line
    assert words in line


def test_a_gazetteer_saved_by_excel_in_gbk_is_named(district: Path) -> None:
    (district / "addresses.csv").write_bytes(
        "address,aliases,lat,lon\n汾阳路13号,,36.1,120.4\n".encode("gbk")
    )
    line = only_problem(write(district, sample_data()))
    assert "gazetteer: addresses.csv: is not UTF-8 text" in line


def test_a_gazetteer_may_carry_extra_columns_and_a_bom(district: Path) -> None:
    (district / "addresses.csv").write_bytes(
        "Address, Aliases ,LAT,lon,station\n汾阳路13号,,36.1,120.4,fenyang\n".encode("utf-8-sig")
    )
    assert load_deployment(write(district, sample_data())).gazetteer.name == "addresses.csv"


# --- the documentation keeps up with the models ------------------------------------------------


def _documentable_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    fields = []
    for name, info in model.model_fields.items():
        path = prefix + name
        fields.append(path)
        nested, many = _nested_model(info.annotation)
        if nested is not None:
            fields += _documentable_fields(nested, f"{path}[]." if many else f"{path}.")
    return fields


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for argument in typing.get_args(annotation):
        found, many = _nested_model(argument)
        if found is not None:
            return found, many or typing.get_origin(annotation) in (tuple, list)
    return None, False


def _documented_fields() -> list[str]:
    return re.findall(r"^###\s+`([^`]+)`\s*$", DOCS.read_text(encoding="utf-8"), re.MULTILINE)


def test_every_field_is_documented() -> None:
    fields = _documentable_fields(Deployment)
    assert "stations[].chief" in fields  # the walk reaches into lists of models
    missing = [field for field in fields if field not in _documented_fields()]
    assert not missing, f"add a '### `field`' section to docs/deployment.md for: {missing}"


def test_the_documentation_describes_no_field_that_does_not_exist() -> None:
    fields = _documentable_fields(Deployment)
    stale = [field for field in _documented_fields() if field not in fields]
    assert not stale, f"docs/deployment.md describes fields the models lack: {stale}"


def test_the_documentation_gives_type_default_and_example_for_each_field() -> None:
    sections = re.split(r"^###\s+", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    for section in sections:
        name = section.split("\n", 1)[0]
        assert "Type:" in section, name
        assert "Required" in section or "Default:" in section, name
        assert "Example" in section or name.endswith(".key"), name
