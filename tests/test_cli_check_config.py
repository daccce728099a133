"""`gridbot check-config`: a readable summary and exit 0 for a good file, the deployment
errors one per line and exit 1 for a broken one."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import bot
from bot.cli import app
from bot.deployment import DeploymentError, load_deployment

SAMPLE = Path(bot.__file__).parent / "sample" / "deployment.yaml"
SQUARE = [[120.40, 36.16], [120.42, 36.16], [120.42, 36.18], [120.40, 36.18], [120.40, 36.16]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GRIDBOT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def district(tmp_path: Path) -> Path:
    (tmp_path / "grids").mkdir()
    for key in [s["key"] for s in yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["stations"]]:
        feature = {
            "type": "Feature",
            "properties": {"name": f"{key} 网格"},
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        }
        (tmp_path / "grids" / f"{key}.geojson").write_text(json.dumps(feature))
    district = {"type": "Polygon", "coordinates": [SQUARE]}
    (tmp_path / "district.geojson").write_text(json.dumps(district))
    (tmp_path / "addresses.csv").write_text(
        "address,aliases,lat,lon\n汾阳路13号,,36.1741,120.4030\n", encoding="utf-8"
    )
    return tmp_path


def write(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "deploy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def sample_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    return data


def test_the_sample_passes_with_a_summary(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config", str(SAMPLE)])

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"✓ {SAMPLE} is a valid deployment file" in out
    assert "兴城路街道办事处" in out
    assert "-1001000000002, -1001000000003" in out  # intake chats
    for station, chief in [("汾阳路社区工作站", "100000001"), ("兴城路社区工作站", "100000004")]:
        assert station in out
        assert chief in out
    assert "grids/fenyang.geojson" in out
    assert "sanitation 环境卫生; deadline 24h" in out
    assert "safety 安全隐患; deadline 12h" in out
    assert "other 其他; deadline 72h (default)" in out
    assert "within 50 m and 14d" in out
    assert "never between 22:00 and 08:00" in out
    assert "mon 09:00 (Asia/Shanghai)" in out
    assert result.stderr == ""


def test_grid_names_from_the_geojson_are_shown(runner: CliRunner, district: Path) -> None:
    result = runner.invoke(app, ["check-config", str(write(district, sample_data()))])

    assert result.exit_code == 0, result.output
    assert "grids/hushan.geojson (hushan 网格)" in result.stdout


def test_overlapping_grids_pass_with_a_warning(runner: CliRunner, district: Path) -> None:
    # The fixture gives every station the same square.
    result = runner.invoke(app, ["check-config", str(write(district, sample_data()))])

    assert result.exit_code == 0
    assert "warning: the grids of fenyang and jinshui overlap" in result.stdout


def test_the_sample_grids_do_not_overlap(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config", str(SAMPLE)])
    assert "overlap" not in result.stdout


def test_a_broken_file_prints_each_problem_and_exits_1(
    runner: CliRunner, district: Path
) -> None:
    data = sample_data()
    data["stations"][1]["chief"] = "abc"
    data["reminders"]["evry"] = "4h"
    path = write(district, data)

    result = runner.invoke(app, ["check-config", str(path)])

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}: reminders.evry: unknown field; did you mean 'every'?")
    assert lines[1].startswith(
        f"{path}: stations[1].chief: must be a Telegram user id (a positive integer), got 'abc'"
    )
    assert lines[2] == f"✗ {path}: 2 problems; nothing was started"


def test_the_cli_prints_exactly_the_lines_of_the_deployment_error(
    runner: CliRunner, district: Path
) -> None:
    data = sample_data()
    data["timezone"] = "Asia/Shangai"
    data["categories"][0]["sla"] = 24
    data["intake_chats"] = [-1001000000001]
    path = write(district, data)
    with pytest.raises(DeploymentError) as caught:
        load_deployment(path)

    result = runner.invoke(app, ["check-config", str(path)])

    assert result.stderr.splitlines()[:-1] == caught.value.lines()


def test_a_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: file not found" in result.stderr


def test_a_file_that_is_not_yaml(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("stations:\n  - key: a\n   name: b\n")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: line 3, column 4: not valid YAML" in result.stderr


def test_a_broken_grid_is_reported_through_the_cli(runner: CliRunner, district: Path) -> None:
    (district / "grids" / "jinshui.geojson").write_text("{oops")
    path = write(district, sample_data())

    result = runner.invoke(app, ["check-config", str(path)])

    assert result.exit_code == 1
    assert f"{path}: stations[1].area: grids/jinshui.geojson: not valid JSON" in result.stderr


def test_markup_in_the_file_is_printed_verbatim(runner: CliRunner, district: Path) -> None:
    data = sample_data()
    data["stations"][0]["name"] = "[bold red]汾阳路[/bold red] <b>站</b>"
    data["language"] = "[link=http://evil]zh[/link]"
    path = write(district, data)

    failed = runner.invoke(app, ["check-config", str(path)])
    assert "got '[link=http://evil]zh[/link]'" in failed.stderr

    data["language"] = "zh"
    passed = runner.invoke(app, ["check-config", str(write(district, data))])
    assert passed.exit_code == 0, passed.output
    assert "[bold red]汾阳路[/bold red] <b>站</b>" in passed.stdout


def test_the_file_defaults_to_gridbot_config(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config"], env={"GRIDBOT_CONFIG": str(SAMPLE)})
    assert result.exit_code == 0, result.output
    assert f"✓ {SAMPLE} is a valid deployment file" in result.stdout


def test_without_a_file_or_gridbot_config_it_says_what_to_do(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 1
    assert "no deployment file: pass FILE or set GRIDBOT_CONFIG" in result.stderr


def test_a_bad_environment_is_named_rather_than_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config"], env={"GRIDBOT_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 1
    assert "GRIDBOT_LOG_LEVEL: must be one of" in result.stderr


def test_check_config_needs_no_bot_token(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-config", str(SAMPLE)], env={"GRIDBOT_BOT_TOKEN": None})
    assert result.exit_code == 0, result.output


def test_help_lists_check_config(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "check-config" in result.stdout
