"""Invitations without the bot: checking a request, tokens, using one exactly once on every
database, the deployment's `people:` import, and `gridbot invite` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner, Result

from bot.app import prepare_database
from bot.cli import app
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.people import (
    TOKEN_SHAPE,
    BadInvitation,
    InvitationSpec,
    check_invitation,
    create_invitation,
    new_token,
)
from storage import repo
from storage.db import SessionFactory, create_engine, session_factory
from storage.models import Invitation

from conftest import sample_deployment_with

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
STATIONS = ["fenyang", "hushan"]
BUILDING = "3号楼 2单元"
TOKEN = "555000111:AAInviteCommandTestToken_abcdefghijk"


# --- checking a request -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "station", "building", "expected"),
    [
        ("captain", "fenyang", " 3号楼  2单元 ", InvitationSpec("captain", "fenyang", BUILDING)),
        ("Captain", " hushan ", None, InvitationSpec("captain", "hushan", None)),
        ("captain", "fenyang", "   ", InvitationSpec("captain", "fenyang", None)),
        ("chief", "fenyang", None, InvitationSpec("chief", "fenyang", None)),
        ("office", None, None, InvitationSpec("office", None, None)),
        ("office", "", "", InvitationSpec("office", None, None)),
    ],
)
def test_a_sound_request_is_tidied(
    role: str, station: str | None, building: str | None, expected: InvitationSpec
) -> None:
    assert check_invitation(STATIONS, role=role, station=station, building=building) == expected


@pytest.mark.parametrize(
    ("role", "station", "building", "key", "says"),
    [
        ("king", "fenyang", None, "invite.bad_role", "unknown role 'king'"),
        ("", None, None, "invite.bad_role", "use captain, chief or office"),
        ("captain", None, None, "invite.needs_station", "needs a station: one of fenyang"),
        ("chief", "nowhere", None, "invite.unknown_station", "stations: fenyang, hushan"),
        ("office", "fenyang", None, "invite.office_has_no_station", "belongs to no station"),
        ("chief", "fenyang", "3号楼", "invite.building_for_captains", "only a captain"),
        ("office", None, "3号楼", "invite.building_for_captains", "only a captain"),
        ("captain", "fenyang", "a\nb", "invite.bad_building", "single line"),
        ("captain", "fenyang", "楼" * 129, "invite.bad_building", "at most 128"),
        ("captain", "x" * 500, None, "invite.unknown_station", "x" * 64 + "'"),
    ],
)
def test_a_wrong_request_is_refused_with_a_reason(
    role: str, station: str | None, building: str | None, key: str, says: str
) -> None:
    with pytest.raises(BadInvitation) as refused:
        check_invitation(STATIONS, role=role, station=station, building=building)
    assert refused.value.key == key
    assert says in str(refused.value)
    assert all(len(value) <= 64 for value in refused.value.params.values())


def test_tokens_are_unguessable_and_fit_telegrams_start_parameter() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(TOKEN_SHAPE.fullmatch(token) and len(token) <= 64 for token in tokens)
    assert all(len(token) >= 32 for token in tokens)


# --- storage ---------------------------------------------------------------------------------


@pytest.fixture
def district(tmp_path: Path) -> Deployment:
    return sample_deployment_with(
        tmp_path,
        people=[
            {"telegram_id": 300000001, "role": "office", "name": "街道 小张"},
            {"telegram_id": 300000002, "role": "captain", "station": "fenyang",
             "building": "汾阳路13号"},
            {"telegram_id": 300000003, "role": "chief", "station": "hushan"},
        ],
    )


@pytest.fixture
async def sessions(database_url: str, district: Deployment) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    factory = session_factory(engine)
    await prepare_database(engine, factory, district, clock=lambda: NOW)
    yield factory
    await engine.dispose()


async def test_an_invitation_is_used_once_even_by_two_people_at_the_same_moment(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        invitation = await create_invitation(
            session, spec=InvitationSpec("captain", "fenyang", None), created_by=None, now=NOW
        )
        token = invitation.token
        await session.commit()
    ids = []
    for telegram_id in (7, 8):
        async with sessions() as session:
            person = await repo.upsert_person(
                session=session, telegram_id=telegram_id, name="x", username=None,
                language=None, now=NOW,
            )
            await session.commit()
            ids.append(person.id or 0)

    async def use(person_id: int) -> bool:
        async with sessions() as session:
            used = await repo.use_invitation(
                session=session, token=token, person_id=person_id, now=NOW
            )
            await session.commit()
            return used

    results = await asyncio.gather(*(use(person_id) for person_id in ids))
    assert sorted(results) == [False, True]
    async with sessions() as session:
        stored = await repo.get_invitation(session=session, token=token)
    assert stored is not None and stored.used_by == ids[results.index(True)]
    assert stored.used_at == NOW


async def test_an_expired_invitation_cannot_be_used(sessions: SessionFactory) -> None:
    async with sessions() as session:
        invitation = await create_invitation(
            session, spec=InvitationSpec("office", None, None), created_by=None, now=NOW,
            lifetime=timedelta(hours=1),
        )
        await session.commit()
        assert invitation.expires_at == NOW + timedelta(hours=1)
        assert not await repo.use_invitation(
            session=session, token=invitation.token, person_id=1,
            now=NOW + timedelta(hours=1),
        )


async def test_the_deployments_people_are_imported_and_the_file_wins(
    sessions: SessionFactory, district: Deployment, database_url: str
) -> None:
    async with sessions() as session:
        office = await repo.person_by_telegram_id(session=session, telegram_id=300000001)
        captain = await repo.person_by_telegram_id(session=session, telegram_id=300000002)
        deputy = await repo.person_by_telegram_id(session=session, telegram_id=300000003)
    assert office is not None and office.role == "office" and office.name == "街道 小张"
    assert office.station_key is None and office.joined_at == NOW
    assert captain is not None and (captain.role, captain.station_key, captain.building) == (
        "captain", "fenyang", "汾阳路13号"
    )
    assert captain.name == "" and not captain.private_chat_started
    assert deputy is not None and (deputy.role, deputy.station_key) == ("chief", "hushan")

    async with sessions() as session:  # changed meanwhile, say by an invitation
        captain = await repo.person_by_telegram_id(session=session, telegram_id=300000002)
        assert captain is not None
        captain.role, captain.station_key, captain.building = "office", None, None
        captain.name, captain.private_chat_started = "刘阿姨", True
        session.add(captain)
        await session.commit()
    engine = create_engine(database_url)  # the next start
    try:
        later = NOW + timedelta(days=1)
        await prepare_database(engine, session_factory(engine), district, clock=lambda: later)
    finally:
        await engine.dispose()
    async with sessions() as session:
        captain = await repo.person_by_telegram_id(session=session, telegram_id=300000002)
    assert captain is not None and (captain.role, captain.station_key, captain.building) == (
        "captain", "fenyang", "汾阳路13号"
    )
    assert captain.name == "刘阿姨" and captain.private_chat_started  # Telegram's, kept
    assert captain.joined_at == NOW  # joined once


# --- gridbot invite ----------------------------------------------------------------------------


@pytest.fixture
def environment(tmp_path: Path, district: Deployment) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(
        GRIDBOT_DATA_DIR=str(tmp_path / "data"),
        GRIDBOT_CONFIG=str(tmp_path / "deployment.yaml"),
    )
    return env


def invite(env: dict[str, str], *args: str) -> Result:
    """`gridbot invite ARGS`; it runs its own event loop, so async tests call it in a thread
    (where the emulator keeps serving on theirs)."""
    return CliRunner().invoke(app, ["invite", *args], env=env)


async def stored_invitations(env: dict[str, str]) -> list[Invitation]:
    engine = create_engine(f"sqlite+aiosqlite:///{env['GRIDBOT_DATA_DIR']}/gridbot.db")
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(Invitation))).all())
    finally:
        await engine.dispose()


async def test_invite_without_a_token_prints_the_token_and_the_start_form(
    environment: dict[str, str],
) -> None:
    result = await asyncio.to_thread(
        invite, environment, "--role", "captain", "--station", "fenyang",
        "--building", "汾阳路13号 3号楼", "--expires", "48h",
    )
    assert result.exit_code == 0, result.output
    [invitation] = await stored_invitations(environment)
    assert (invitation.role, invitation.station_key, invitation.building) == (
        "captain", "fenyang", "汾阳路13号 3号楼"
    )
    assert invitation.created_by is None and invitation.used_by is None
    assert invitation.expires_at - invitation.created_at == timedelta(hours=48)
    assert f"/start {invitation.token}" in result.output
    assert "GRIDBOT_BOT_TOKEN is not set" in result.output
    assert "captain of 汾阳路社区工作站 (fenyang), building 汾阳路13号 3号楼" in result.output
    assert "for 48h" in result.output and "Asia/Shanghai" in result.output


async def test_invite_with_a_token_prints_the_link_with_the_bots_username(
    environment: dict[str, str],
) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="xingcheng_grid_bot")
        env = dict(environment, GRIDBOT_BOT_TOKEN=TOKEN, GRIDBOT_API_BASE=emulator.base_url)
        result = await asyncio.to_thread(invite, env, "--role", "office")
    assert result.exit_code == 0, result.output
    [invitation] = await stored_invitations(environment)
    link = f"https://t.me/xingcheng_grid_bot?start={invitation.token}"
    assert link in result.output.splitlines()
    assert "GRIDBOT_BOT_TOKEN" not in result.output and "office" in result.output
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)


def test_invite_without_telegram_makes_nothing(environment: dict[str, str]) -> None:
    env = dict(environment, GRIDBOT_BOT_TOKEN=TOKEN, GRIDBOT_API_BASE="http://127.0.0.1:9")
    result = invite(env, "--role", "office")
    assert result.exit_code == 1
    assert "cannot ask http://127.0.0.1:9 for the bot's username" in result.output
    assert not (Path(environment["GRIDBOT_DATA_DIR"]) / "gridbot.db").exists()


async def test_invite_with_a_refused_token_makes_nothing(environment: dict[str, str]) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="xingcheng_grid_bot")
        wrong = "555000111:AAThisIsNotTheTokenTelegramKnows_xyz"
        env = dict(environment, GRIDBOT_BOT_TOKEN=wrong, GRIDBOT_API_BASE=emulator.base_url)
        result = await asyncio.to_thread(invite, env, "--role", "office")
    assert result.exit_code == 1
    assert "check GRIDBOT_BOT_TOKEN and GRIDBOT_API_BASE" in result.output
    assert "no invitation was made" in result.output
    assert wrong not in result.output
    assert not (Path(environment["GRIDBOT_DATA_DIR"]) / "gridbot.db").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "king"], "unknown role 'king'; use captain, chief or office"),
        (["--role", "captain"], "a captain needs a station: one of fenyang, jinshui"),
        (["--role", "chief", "--station", "fenyng"], "there is no station 'fenyng'; stations:"),
        (["--role", "office", "--station", "fenyang"], "belongs to no station"),
        (["--role", "chief", "--station", "fenyang", "--building", "3"], "only a captain"),
        (["--role", "captain", "--station", "fenyang", "--building", "a\nb"], "single line"),
        (["--role", "office", "--expires", "7"], "--expires needs a unit"),
        (["--role", "office", "--expires", "-1d"], "--expires must be positive"),
        (["--role", "<b>x</b>"], "unknown role '<b>x</b>'"),
    ],
)
def test_invite_refuses_a_wrong_request_clearly(
    environment: dict[str, str], args: list[str], says: str
) -> None:
    result = invite(environment, *args)
    assert result.exit_code == 1
    assert says in result.output and "no invitation was made" in result.output
    assert not (Path(environment["GRIDBOT_DATA_DIR"]) / "gridbot.db").exists()


def test_invite_needs_a_role(environment: dict[str, str]) -> None:
    result = invite(environment)
    assert result.exit_code == 2 and "--role" in result.output


def test_invite_names_a_broken_deployment_file(
    environment: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("intake: closed\n", encoding="utf-8")
    result = invite(environment, "--role", "office", "--config", str(broken))
    assert result.exit_code == 1 and "broken.yaml" in result.output
    assert re.search(r"intake: must be 'open' or 'members'", result.output)
