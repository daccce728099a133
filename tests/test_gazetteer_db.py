"""The gazetteer in the database: `gridbot gazetteer import/stats`, atomic replacement, loading
the in-memory index back, the first-start import, and the migration that adds the tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from alembic import command
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from bot.gazetteer_cli import app as gazetteer_app
from bot.geocoding import ensure_gazetteer, import_gazetteer, load_gazetteer
from bot.locating import Gazetteer, GazetteerEntry
from storage import repo
from storage.db import SessionFactory, alembic_config, create_engine, migrate, session_factory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "bot" / "sample" / "addresses.csv"
HEADER = "address,aliases,lat,lon,station\n"
GOOD = (
    HEADER
    + "汾阳路1号,Fenyang Rd 1|汾阳路一号,36.174100,120.403000,\n"
    + "书院路11号,,36.160100,120.408072,hushan\n"
    + "兴城路小学,兴城小学|Xingcheng Primary School,36.155000,120.425000,xingcheng\n"
)


def cli() -> typer.Typer:
    """The sub-app mounted as the integrator mounts it under `gridbot`."""
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """gridbot"""

    root.add_typer(gazetteer_app, name="gazetteer")
    return root


def run(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli(), list(args), env={"GRIDBOT_DATABASE_URL": database_url})
    return result.exit_code, result.output


def write(tmp_path: Path, text: str, name: str = "addresses.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stored(database_url: str) -> list[tuple[str, str, float, float, str | None, int]]:
    async def read() -> list[tuple[str, str, float, float, str | None, int]]:
        engine = create_engine(database_url)
        try:
            await migrate(engine)
            async with session_factory(engine)() as session:
                return await repo.gazetteer_rows(session=session)
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield session_factory(engine)
    await engine.dispose()


# --- gridbot gazetteer import / stats -------------------------------------------------------


def test_import_writes_every_row_and_says_how_many(database_url: str, tmp_path: Path) -> None:
    code, output = run(database_url, "gazetteer", "import", str(write(tmp_path, GOOD)))
    assert code == 0, output
    assert "✓ imported 3 addresses (4 aliases)" in output
    assert "replacing 0" in output
    rows = stored(database_url)
    assert [row[0] for row in rows] == ["汾阳路1号", "书院路11号", "兴城路小学"]
    assert rows[0] == ("汾阳路1号", "Fenyang Rd 1|汾阳路一号", 36.1741, 120.403, None, 2)
    assert rows[1][4] == "hushan"


def test_bad_rows_are_listed_by_line_and_the_good_ones_imported(
    database_url: str, tmp_path: Path
) -> None:
    bad = (
        GOOD
        + ",no address,36.1,120.4,\n"  # line 5
        + "金水路9号,,north,120.4,\n"  # line 6
        + "金水路10号,,36.1,,\n"  # line 7
        + "汾阳路1号,,36.2,120.5,\n"  # line 8: duplicate of line 2
        + "金水路11号,a,36.1,120.4,x,extra\n"  # line 9
        + "金水路12号,,95,120.4,\n"  # line 10
        + "<b>金水路13号</b>,,36.17,120.43,\n"  # markup is just text: imported verbatim
        + "金" * 300 + ",,36.17,120.43,\n"  # line 12: too long for the table
    )
    code, output = run(database_url, "gazetteer", "import", str(write(tmp_path, bad)))
    assert code == 0, output
    for line in (5, 6, 7, 8, 9, 10, 12):
        assert f"line {line}:" in output
    assert "duplicate address '汾阳路1号' (first on line 2)" in output
    assert "✓ imported 4 addresses" in output
    assert "7 rows with problems" in output
    assert "<b>金水路13号</b>" in [row[0] for row in stored(database_url)]


def test_strict_import_of_a_file_with_problems_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    assert run(database_url, "gazetteer", "import", str(write(tmp_path, GOOD)))[0] == 0
    bad = HEADER + "新路1号,,36.1,120.4,\n" + "新路2号,,lat,120.4,\n"
    code, output = run(
        database_url, "gazetteer", "import", "--strict", str(write(tmp_path, bad, "new.csv"))
    )
    assert code == 1
    assert "line 3:" in output and "nothing imported" in output
    assert [row[0] for row in stored(database_url)] == ["汾阳路1号", "书院路11号", "兴城路小学"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (HEADER.encode(), "no usable rows"),
        (b"address,lat\n1,2\n", "missing column(s) lon"),
        ("address,aliases,lat,lon\n汾阳路1号,,36.1,120.4\n".encode("gbk"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (HEADER.encode() + b",,,,\n" * 50, "no usable rows"),
    ],
    ids=["empty", "header only", "missing column", "gbk", "binary", "all rows blank"],
)
def test_an_unusable_file_leaves_the_gazetteer_as_it_was(
    database_url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    assert run(database_url, "gazetteer", "import", str(write(tmp_path, GOOD)))[0] == 0
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, output = run(database_url, "gazetteer", "import", str(path))
    assert code == 1
    assert message in output
    assert "unchanged" in output
    assert len(stored(database_url)) == 3


def test_a_missing_file_is_reported(database_url: str, tmp_path: Path) -> None:
    code, output = run(database_url, "gazetteer", "import", str(tmp_path / "nowhere.csv"))
    assert code == 1
    assert "cannot be read" in output


def test_a_new_import_replaces_the_whole_gazetteer(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "gazetteer", "import", str(write(tmp_path, GOOD)))[0] == 0
    newer = HEADER + "金水路1号,,36.17,120.43,jinshui\n"
    code, output = run(database_url, "gazetteer", "import", str(write(tmp_path, newer, "b.csv")))
    assert code == 0
    assert "replacing 3" in output
    assert [row[0] for row in stored(database_url)] == ["金水路1号"]


def test_stats_counts_addresses_aliases_and_stations(database_url: str, tmp_path: Path) -> None:
    code, output = run(database_url, "gazetteer", "stats")
    assert code == 0 and "The gazetteer is empty" in output
    assert run(database_url, "gazetteer", "import", str(write(tmp_path, GOOD)))[0] == 0
    code, output = run(database_url, "gazetteer", "stats")
    assert code == 0
    assert "3 addresses, 4 aliases" in output
    assert "hushan: 1" in output and "xingcheng: 1" in output
    assert "(none: placed by the grids): 1" in output


def test_the_sample_gazetteer_imports_cleanly(database_url: str) -> None:
    code, output = run(database_url, "gazetteer", "import", str(SAMPLE_CSV))
    assert code == 0, output
    assert "0 rows with problems" in output
    assert len(stored(database_url)) == len(Gazetteer.from_csv(SAMPLE_CSV))


# --- loading, atomic replacement, first start -----------------------------------------------


async def test_load_gazetteer_gives_back_what_was_imported(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    original = Gazetteer.from_csv(write(tmp_path, GOOD))
    async with sessions() as session:
        await import_gazetteer(session, original, now=NOW)
        await session.commit()
    async with sessions() as session:
        loaded = await load_gazetteer(session)
    assert list(loaded) == list(original)
    place = loaded.lookup("Fenyang Rd 1")
    assert place is not None and place.address == "汾阳路1号"


async def test_an_import_that_fails_half_way_leaves_the_old_gazetteer(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    async with sessions() as session:
        await import_gazetteer(session, Gazetteer.from_csv(write(tmp_path, GOOD)), now=NOW)
        await session.commit()
    big = Gazetteer(
        GazetteerEntry(f"长路{n}号", (), 36.1 + n * 1e-6, 120.4, None, n + 2) for n in range(5_000)
    )

    def crash_after_first_batch(written: int) -> None:
        raise RuntimeError("disk full")

    async with sessions() as session:
        with pytest.raises(RuntimeError):
            await import_gazetteer(session, big, now=NOW, on_batch=crash_after_first_batch)
        await session.rollback()
    async with sessions() as session:
        assert [entry.address for entry in await load_gazetteer(session)] == [
            "汾阳路1号", "书院路11号", "兴城路小学",
        ]


async def test_first_start_imports_the_deployment_csv_once(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    csv_path = write(tmp_path, GOOD)
    async with sessions() as session:
        first = await ensure_gazetteer(session, csv_path, now=NOW)
    assert len(first) == 3
    # Later starts use the database, even if the file changed meanwhile.
    write(tmp_path, HEADER + "金水路1号,,36.17,120.43,\n")
    async with sessions() as session:
        again = await ensure_gazetteer(session, csv_path, now=NOW)
    assert [entry.address for entry in again] == ["汾阳路1号", "书院路11号", "兴城路小学"]


async def test_two_workers_starting_together_import_once(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    csv_path = write(tmp_path, GOOD)

    async def start() -> Gazetteer:
        async with sessions() as session:
            return await ensure_gazetteer(session, csv_path, now=NOW)

    first, second = await asyncio.gather(start(), start())
    assert len(first) == len(second) == 3
    async with sessions() as session:
        assert await repo.count_gazetteer(session=session) == 3


async def test_the_sample_deployment_starts_with_its_gazetteer(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        gazetteer = await ensure_gazetteer(session, SAMPLE_CSV)
    assert len(gazetteer) == len(Gazetteer.from_csv(SAMPLE_CSV)) > 100


# --- migration ------------------------------------------------------------------------------


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_a_database_with_tickets_migrates_to_the_gazetteer_tables(
    database_url: str,
) -> None:
    # On SQLite, rebuilding the ticket table would fail once photos and events point at it.
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, "0001")
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO station (key, name, chief_telegram_id) VALUES ('a', 'A', 1)",
                "INSERT INTO person (id, telegram_id, name, language, role, "
                "private_chat_started, created_at) VALUES (1, 5, 'x', 'zh', 'captain', false, "
                "'2026-01-01')",
                "INSERT INTO ticket (id, status, category_key, reporter_id, description, "
                "source_chat_id, source_message_id, language, created_at, updated_at, "
                "location_source) VALUES (1, 'new', 'x', 1, '', 1, 1, 'zh', '2026-01-01', "
                "'2026-01-01', 'gazetteer')",
                "INSERT INTO ticketevent (ticket_id, at, role, action, to_status, details) "
                "VALUES (1, '2026-01-01', 'captain', 'report', 'new', '{}')",
            ):
                await connection.execute(sa.text(statement))
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "UPDATE ticket SET location_source = 'provider:nominatim', "
                    "location_confidence = 0.9 WHERE id = 1"
                )
            )
            row = (
                await connection.execute(
                    sa.text("SELECT location_source, location_confidence FROM ticket")
                )
            ).one()
            events = (await connection.execute(sa.text("SELECT count(*) FROM ticketevent"))).one()
        assert tuple(row) == ("provider:nominatim", 0.9)
        assert events[0] == 1
    finally:
        await engine.dispose()
