"""`gridbot locate`: the admin's answer to "why did this go to station X?"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

from conftest import SAMPLE


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"GRIDBOT_CONFIG": str(SAMPLE), "GRIDBOT_DATA_DIR": str(tmp_path / "data")}


def test_a_typo_is_explained_with_its_score_and_station(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["locate", "汾杨路十三号旁边 旱厕堵了"], env=env)
    assert result.exit_code == 0, result.output
    assert "汾杨路13号" in result.output  # the normalised span
    assert "fuzzy" in result.output and "fenyang" in result.output


def test_json_gives_candidates_and_the_decision(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["locate", "兴城路小学门口 积水", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decision"]["outcome"] == "station"
    assert data["decision"]["place"]["station_key"] == "xingcheng"
    assert data["candidates"][0]["score"] >= 0.75


def test_an_unsure_text_says_the_bot_would_ask(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["locate", "金秋小区3号楼 车库积水"], env=env)
    assert result.exit_code == 1
    assert "asks the captain" in result.output and "金秋小区" in result.output


def test_no_address_at_all(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["locate", "<b>大家早上好</b> & 晚安", "--json"], env=env)
    assert result.exit_code == 1
    assert json.loads(result.output)["decision"]["outcome"] == "ask the captain"


def test_the_bots_own_gazetteer_is_used_once_imported(
    env: dict[str, str], tmp_path: Path
) -> None:
    extra = tmp_path / "addresses.csv"
    extra.write_text(
        SAMPLE.with_name("addresses.csv").read_text(encoding="utf-8")
        + "幸福路99号,,36.156,120.433,\n",
        encoding="utf-8",
    )
    imported = CliRunner().invoke(app, ["gazetteer", "import", str(extra)], env=env)
    assert imported.exit_code == 0, imported.output
    result = CliRunner().invoke(app, ["locate", "幸福路99号 井盖丢了"], env=env)
    assert result.exit_code == 0, result.output
    assert "database" in result.output and "xingcheng" in result.output
