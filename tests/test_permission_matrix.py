"""The permission matrix, tried through the bot: every ticket action and every gated command,
as every role and as a stranger, allowed or refused exactly as the tables say.

Ticket actions are pressed as forged buttons (anyone can send any callback data), each on a
fresh ticket in a state where the action exists, so only *who* decides; the expectation is
bot.lifecycle's table. Commands are typed; the expectation is bot.permissions' table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.emulator.players import User
from bot.lifecycle import TRANSITIONS, Action, Role, Status
from bot.permissions import Feature, Standing, may
from storage import repo
from storage.models import Person, Ticket

from conftest import World, running_world, sample_deployment_with

INTAKE = -1001000000002
# button action → (lifecycle action, a state where it exists)
BUTTONS = {
    "claim": (Action.CLAIM, Status.ASSIGNED),
    "resolve": (Action.RESOLVE, Status.CLAIMED),
    "reject": (Action.REJECT, Status.ASSIGNED),
    "move": (Action.REASSIGN, Status.CLAIMED),
    "note": (Action.NOTE, Status.ASSIGNED),
    "progress": (Action.CLAIM, Status.ASSIGNED),  # 处理中 on an assigned ticket claims it
    "ok": (Action.CONFIRM, Status.RESOLVED),
    "nok": (Action.DISPUTE, Status.RESOLVED),
    "reopen": (Action.REOPEN, Status.CLOSED),
    "split": (Action.SPLIT, Status.DUPLICATE),
}
REFUSED = "您不能对这个工单进行这个操作"


async def cast(world: World) -> dict[str, tuple[User, frozenset[Role]]]:
    """Everyone who might press: who they are towards a fenyang ticket reported by 王阿姨."""
    office = world.emulator.user(300000001, "街道小周")
    stranger = world.emulator.user(300000002, "路人")
    people = {
        "reporter": (world.captain, frozenset({Role.REPORTER})),
        "other captain": (world.captain2, frozenset()),
        "chief": (world.chiefs["fenyang"], frozenset({Role.CHIEF})),
        "other chief": (world.chiefs["jinshui"], frozenset()),
        "office": (office, frozenset({Role.OFFICE})),
        "stranger": (stranger, frozenset()),
    }
    for user, _ in people.values():
        await user.start_bot()
    await world.settle()
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=office.id)
        assert person is not None
        person.role, person.joined_at = "office", datetime.now(UTC)
        session.add(person)
        await session.commit()
    return people


async def fresh_ticket(world: World, status: Status, n: int) -> int:
    """A fenyang ticket of 王阿姨's in ``status`` (a duplicate points at another ticket)."""
    now = world.clock()
    async with world.app.sessions() as session:
        reporter = await repo.person_by_telegram_id(session=session, telegram_id=world.captain.id)
        assert reporter is not None and reporter.id is not None

        def ticket(state: Status, message: int) -> Ticket:
            return Ticket(
                status=state, category_key="other", station_key="fenyang",
                reporter_id=reporter.id or 0, description="路灯不亮", address="汾阳路13号",
                source_chat_id=INTAKE, source_message_id=message, created_at=now,
                updated_at=now, due_at=now + timedelta(days=3),
                resolved_at=now if state in (Status.RESOLVED, Status.CLOSED) else None,
                closed_at=now if state is Status.CLOSED else None,
            )  # fmt: skip

        original = None
        if status is Status.DUPLICATE:
            original = ticket(Status.ASSIGNED, 100_000 + n)
            session.add(original)
            await session.flush()
        made = ticket(status, n)
        made.duplicate_of = original.id if original else None
        session.add(made)
        await session.commit()
        assert made.id is not None
        return made.id


@pytest.mark.parametrize("button", sorted(BUTTONS))
async def test_every_ticket_action_as_every_role(world: World, button: str) -> None:
    action, state = BUTTONS[button]
    rule = TRANSITIONS[(state, action)]
    people = await cast(world)
    for n, (who, (user, roles)) in enumerate(sorted(people.items()), start=1):
        ticket_id = await fresh_ticket(world, state, n)
        [greeting] = [m for m in world.emulator.sent if m.chat_id == user.id][:1]
        query = await user.press_data(greeting.message_id, f"t:{button}:{ticket_id}")
        answer = await world.emulator.wait_for_callback_answer(query)
        await world.settle()
        refused = REFUSED in (answer.get("text") or "")
        allowed = bool(roles & rule.roles)
        assert refused is not allowed, f"{button} as {who}: {answer}"
        if refused:  # and nothing changed
            assert (await world.ticket(ticket_id)).status == state, who
            assert await world.events(ticket_id) == [], who


async def standing_people(world: World) -> dict[Standing, User]:
    """One person of each standing: the deployment's chief, an invited deputy and captain,
    the office, and someone who never joined."""
    people = {
        Standing.STRANGER: world.emulator.user(300000011, "路人甲"),
        Standing.CAPTAIN: world.emulator.user(300000012, "楼长乙"),
        Standing.CHIEF: world.chiefs["fenyang"],
        Standing.DEPUTY: world.emulator.user(300000013, "副站长丙"),
        Standing.OFFICE: world.emulator.user(300000014, "街道丁"),
    }
    for user in people.values():
        await user.start_bot()
    await world.settle()
    roles = {Standing.CAPTAIN: "captain", Standing.DEPUTY: "chief", Standing.OFFICE: "office"}
    async with world.app.sessions() as session:
        for standing, role in roles.items():
            person = await repo.person_by_telegram_id(
                session=session, telegram_id=people[standing].id
            )
            assert isinstance(person, Person)
            person.role, person.station_key = role, None if role == "office" else "fenyang"
            person.joined_at = datetime.now(UTC)
            session.add(person)
        await session.commit()
    return people


COMMANDS = {
    Feature.TICKETS: "/tickets", Feature.MERGE: "/merge 2 1", Feature.OPEN: "/open",
    Feature.INVITE: "/invite captain fenyang", Feature.MY: "/my", Feature.WHOAMI: "/whoami",
    Feature.LANG: "/lang", Feature.HELP: "/help", Feature.REPORT: "/report",
    Feature.DIGEST: "/digest",
}  # fmt: skip


async def test_every_command_as_every_standing(world: World) -> None:
    people = await standing_people(world)
    assert set(COMMANDS) == set(Feature)
    for feature, typed in COMMANDS.items():
        for standing, user in people.items():
            before = len(world.said_in(user))
            await user.command(user, typed)
            await world.settle()
            said = world.said_in(user)[before:]
            assert said, f"{typed} as {standing}: no answer"
            refused = any("您现在用不了" in text for text in said)
            expected = may(feature, standing, world.app.deployment)
            assert refused is not expected, f"{typed} as {standing}: {said}"


async def test_where_only_members_report_a_stranger_cannot_start_a_form(
    database_url: str, tmp_path: Path
) -> None:
    members_only = sample_deployment_with(tmp_path, intake="members")
    async with running_world(database_url, members_only, tmp_path) as world:
        people = await standing_people(world)
        for standing, user in people.items():
            before = len(world.said_in(user))
            await user.command(user, "/report")
            await world.settle()
            refused = any("您现在用不了" in text for text in world.said_in(user)[before:])
            assert refused is (standing is Standing.STRANGER), standing
