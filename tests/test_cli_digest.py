"""`gridbot digest` as an operator runs it: the week's files in a directory, a progress bar,
and clear refusals of a bad week, an unknown station or a directory it cannot write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from bot.cli import app

from conftest import SAMPLE


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(GRIDBOT_DATA_DIR=str(tmp_path / "data"), GRIDBOT_CONFIG=str(SAMPLE),
               COLUMNS="300")  # long temporary paths stay on one line of typer's error box
    return env


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=environment(tmp_path))
    return result.exit_code, result.output


def test_a_seeded_week_is_written_with_a_progress_bar(tmp_path: Path) -> None:
    code, output = run(tmp_path, "seed", "--tickets", "80", "--weeks", "3", "--until",
                       "2026-11-23")  # the end of 2026-W47, in the district
    assert code == 0, output
    out = tmp_path / "week 47"
    code, output = run(tmp_path, "digest", "--week", "2026-W47", "--out", str(out))
    assert code == 0, output
    assert f"the digest of 2026-W47 is in {out}" in output
    assert "digest 2026-W47" in output and "6/6" in output  # the bar, finished
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "digest-2026-W47-chart.png", "digest-2026-W47-map.png", "digest-2026-W47.csv",
        "digest-2026-W47.pdf", "digest-2026-W47.xlsx",
    ]
    for name in names:
        assert str(out / name) in output
    assert "兴城路街道办事处 周报 2026-W47" in output and "<b>" not in output  # plain text
    text = "".join(page.extract_text() for page in PdfReader(out / names[3]).pages)
    assert "2026" in text and "周" in text
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # nothing left over

    # Again, for one station by name, into the data directory by default.
    code, output = run(tmp_path, "digest", "--week", "2026-W47", "--station", "汾阳路社区工作站")
    assert code == 0, output
    made = tmp_path / "data" / "digests" / "2026-W47-fenyang"
    assert (made / "digest-2026-W47-fenyang.pdf").is_file()
    assert "汾阳路社区工作站 周报 2026-W47" in output


def test_last_week_by_default_on_an_empty_database(tmp_path: Path) -> None:
    code, output = run(tmp_path, "digest", "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert "收到报事 0 件" in output
    assert len(list((tmp_path / "out").glob("digest-*.pdf"))) == 1


@pytest.mark.parametrize(
    ("week", "says"),
    [
        ("2026-W54", "There is no week “2026-W54”"),
        ("2026-W0", "There is no week “2026-W0”"),
        ("1999-W10", "There is no week “1999-W10”"),
        ("yesterday", "There is no week “yesterday”"),
        ("<b>x</b>", "There is no week “<b>x</b>”"),
        ("9999-W01", "9999-W01 has not begun yet"),
    ],
)
def test_a_bad_week_is_refused(tmp_path: Path, week: str, says: str) -> None:
    code, output = run(tmp_path, "digest", "--week", week, "--out", str(tmp_path / "out"))
    assert code == 1
    assert f"--week: {says}" in output and "no digest was made" in output
    assert not (tmp_path / "out").exists()


def test_an_unknown_station_is_refused_with_the_list(tmp_path: Path) -> None:
    code, output = run(tmp_path, "digest", "--station", "nowhere", "--out", str(tmp_path / "o"))
    assert code == 1
    assert "--station: no station 'nowhere'" in output and "fenyang (汾阳路社区工作站)" in output
    assert not (tmp_path / "o").exists()


def test_a_directory_it_cannot_write_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    code, output = run(tmp_path, "digest", "--out", str(blocker / "digest"))
    assert code == 1
    assert f"--out: cannot write the digest to {blocker / 'digest'}" in output
    code, output = run(tmp_path, "digest", "--out", str(blocker))
    assert code != 0 and "a-file" in output
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, output = run(tmp_path, "digest", "--out", str(locked / "digest"))
        assert code == 1 and "Permission denied" in output
