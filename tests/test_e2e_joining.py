"""End to end: joining with one-time invitation links, /invite, /whoami, and deputies acting
on their station's tickets. The district's street office member is listed in the deployment
file (`people:`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.callbacks import TicketButton
from bot.deployment import Deployment
from bot.emulator.players import User
from bot.lifecycle import Role, Status
from storage import repo
from storage.models import Invitation, Person

from conftest import World, running_world, sample_deployment_with
from factories import make_jpeg

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
OFFICE_ID = 300000001
INVALID = "这个邀请链接无效"


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return sample_deployment_with(
        tmp_path, people=[{"telegram_id": OFFICE_ID, "role": "office", "name": "街道 小张"}]
    )


@pytest.fixture
def office(world: World) -> User:
    """The street office member the deployment file lists."""
    return world.emulator.user(OFFICE_ID, "小张", language_code="zh-hans")


def newcomer(world: World, number: int = 1, language_code: str = "zh-hans") -> User:
    return world.emulator.user(200000100 + number, f"新人{number}", language_code=language_code)


async def invitation(world: World, member: User, args: str) -> str:
    """The token of a link the office member makes with `/invite <args>`."""
    await member.command(member, f"/invite {args}")
    told = await world.emulator.wait_for(member, contains="https://t.me/")
    found = re.search(r"https://t\.me/gridbot_test_bot\?start=([A-Za-z0-9_-]+)", told.body)
    assert found is not None, told.body
    return found.group(1)


async def person(world: World, user: User) -> Person | None:
    async with world.app.sessions() as session:
        return await repo.person_by_telegram_id(session=session, telegram_id=user.id)


async def invitations(world: World) -> list[Invitation]:
    async with world.app.sessions() as session:
        return list((await session.exec(select(Invitation))).all())


async def whoami(world: World, user: User) -> str:
    await user.command(user, "/whoami")
    return (await world.emulator.wait_for(user, contains="👤")).body


# --- joining -------------------------------------------------------------------------------


async def test_an_invited_captain_joins_and_sees_who_they_are(world: World, office: User) -> None:
    token = await invitation(world, office, "captain fenyang 3号楼 2单元")
    assert len(token) <= 64
    [note] = [b for b in world.said_in(office) if token in b]
    assert "汾阳路社区工作站的楼院长（3号楼 2单元）" in note and "只能用一次" in note

    captain = newcomer(world)
    await captain.command(captain, f"/start {token}")
    welcome = await world.emulator.wait_for(captain, contains="欢迎加入")
    for shown in ("新人1", "楼院长", "汾阳路社区工作站", "3号楼 2单元", "报事群"):
        assert shown in welcome.body
    told = await world.emulator.wait_for(office, contains="已通过您的邀请链接加入")
    assert "新人1" in told.body and "汾阳路社区工作站的楼院长（3号楼 2单元）" in told.body

    card = await whoami(world, captain)
    assert "身份：楼院长" in card and "社区工作站：汾阳路社区工作站" in card
    assert "楼栋：3号楼 2单元" in card
    joined = await person(world, captain)
    assert joined is not None and joined.role == "captain" and joined.station_key == "fenyang"
    assert joined.building == "3号楼 2单元" and joined.joined_at is not None
    [used] = await invitations(world)
    assert used.used_by == joined.id and used.created_by is not None


async def test_a_link_works_once_and_its_owner_is_told_they_joined(
    world: World, office: User
) -> None:
    token = await invitation(world, office, "captain hushan")
    first, second = newcomer(world, 1), newcomer(world, 2)
    await first.command(first, f"/start {token}")
    await world.emulator.wait_for(first, contains="欢迎加入")

    await second.command(second, f"/start {token}")
    refused = await world.emulator.wait_for(second, contains="已经被使用过")
    assert "虎山路" not in refused.body  # nothing about the invitation leaks
    assert "还没有加入" in await whoami(world, second)
    stranger = await person(world, second)
    assert stranger is not None and stranger.joined_at is None

    await first.command(first, f"/start {token}")  # the link opened again, by its owner
    again = await world.emulator.wait_for(first, contains="已经用这个邀请链接加入")
    assert "虎山路社区工作站" in again.body
    [used] = await invitations(world)
    assert used.used_by == (await person(world, first)).id  # type: ignore[union-attr]


async def test_an_expired_link_is_refused(world: World, office: User) -> None:
    world.clock.set(MONDAY)
    token = await invitation(world, office, "chief fenyang")
    late = newcomer(world)
    world.clock.set(MONDAY + timedelta(days=7, minutes=1))
    await late.command(late, f"/start {token}")
    await world.emulator.wait_for(late, contains="已经过期")
    assert "还没有加入" in await whoami(world, late)
    [unused] = await invitations(world)
    assert unused.used_by is None


async def test_a_link_just_before_it_expires_still_works(world: World, office: User) -> None:
    world.clock.set(MONDAY)
    token = await invitation(world, office, "office")
    world.clock.set(MONDAY + timedelta(days=6, hours=23))
    member = newcomer(world)
    await member.command(member, f"/start {token}")
    welcome = await world.emulator.wait_for(member, contains="欢迎加入")
    assert "街道工作人员" in welcome.body and "/invite" in welcome.body


@pytest.mark.parametrize(
    "token",
    [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # the right shape, never made
        "<b>join</b>",  # markup
        "' OR 1=1 --",  # injection
        "x" * 500,  # far over Telegram's 64
        "{name}{card}",  # placeholders
    ],
)
async def test_forged_and_unknown_tokens_get_the_same_polite_answer(
    world: World, office: User, token: str
) -> None:
    await invitation(world, office, "captain fenyang")  # a real one exists meanwhile
    intruder = newcomer(world)
    await intruder.command(intruder, f"/start {token}")
    refused = await world.emulator.wait_for(intruder, contains=INVALID)
    assert refused.body == (
        "🙁 这个邀请链接无效。请向所在社区工作站的站长或街道办索取新的邀请链接。"
    )
    found = await person(world, intruder)
    assert found is not None and found.joined_at is None and found.role == "captain"
    assert [i.used_by for i in await invitations(world)] == [None]


async def test_an_empty_start_is_the_ordinary_greeting(world: World) -> None:
    user = newcomer(world)
    await user.command(user, "/start")
    greeting = await world.emulator.wait_for(user, contains="您好")
    assert INVALID not in greeting.body
    await user.command(user, "/start    ")
    await world.emulator.wait_for(user, contains="您好")


# --- /invite --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["captain", "chief", "stranger"])
async def test_only_the_office_may_invite(world: World, who: str) -> None:
    asker = {
        "captain": world.captain, "chief": world.chiefs["fenyang"], "stranger": newcomer(world)
    }[who]
    await asker.command(asker, "/invite captain fenyang")
    refused = await world.emulator.wait_for(asker, contains="是给街道工作人员用的")
    assert "https://" not in refused.body
    assert await invitations(world) == []


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        ("", "用法"),
        ("king", "没有“king”这个身份"),
        ("captain", "请写上是哪个社区工作站"),
        ("captain nowhere", "没有“nowhere”这个社区工作站"),
        ("office fenyang", "街道工作人员不属于某个社区工作站"),
        ("chief fenyang 3号楼", "只有楼院长登记楼栋"),
        ("captain fenyang " + "楼" * 200, "最多 128 个字"),
        ("captain <script>alert(1)</script>", "没有“<script>alert(1)</script>”这个社区工作站"),
        ("<b>boss</b> fenyang", "没有“<b>boss</b>”这个身份"),
    ],
)
async def test_a_wrong_invite_says_what_is_wrong_and_how(
    world: World, office: User, args: str, answer: str
) -> None:
    await office.command(office, f"/invite {args}".strip())
    told = await world.emulator.wait_for(office, contains=answer)
    assert "/invite captain" in told.body and "fenyang" in told.body  # the usage, stations
    assert await invitations(world) == []


async def test_a_hostile_building_is_kept_as_text(world: World, office: User) -> None:
    token = await invitation(world, office, "captain fenyang <b>3号楼</b> & {card}")
    captain = newcomer(world)
    await captain.command(captain, f"/start {token}")
    await world.emulator.wait_for(captain, contains="欢迎加入")
    assert "楼栋：<b>3号楼</b> & {card}" in await whoami(world, captain)


# --- who is who -----------------------------------------------------------------------------


async def test_whoami_for_every_kind_of_person(world: World, office: User) -> None:
    card = await whoami(world, office)
    assert "身份：街道工作人员" in card and "/invite" in card and "社区工作站：" not in card

    chief = world.chiefs["fenyang"]
    card = await whoami(world, chief)
    assert "身份：站长" in card and "社区工作站：汾阳路社区工作站" in card and "/tickets" in card

    token = await invitation(world, office, "chief jinshui")
    deputy = newcomer(world, 1)
    await deputy.command(deputy, f"/start {token}")
    await world.emulator.wait_for(deputy, contains="欢迎加入")
    card = await whoami(world, deputy)
    assert "身份：站长（协助）" in card and "金水路社区工作站" in card

    stranger = newcomer(world, 2)
    card = await whoami(world, stranger)
    assert "还没有加入" in card and "邀请链接" in card
    assert "直接在社区报事群里报事" in card  # intake: open
    assert await person(world, stranger) is None  # asking changes nothing

    # A captain who reported in a group (intake: open) has not joined either
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    await world.emulator.wait_for(world.intake, contains="#1")
    assert "还没有加入" in await whoami(world, world.captain)


async def test_a_deputy_chief_may_act_on_the_stations_tickets(world: World, office: User) -> None:
    token = await invitation(world, office, "chief fenyang")
    deputy = newcomer(world)
    await deputy.command(deputy, f"/start {token}")
    await world.emulator.wait_for(deputy, contains="欢迎加入")

    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    assert world.said_in(deputy)[-1].startswith("🎉")  # the card went to the chief alone

    await deputy.command(deputy, "/tickets")
    listed = await world.emulator.wait_for(deputy, contains="#1")
    assert "汾阳路13号" in listed.body

    claim = TicketButton(action="claim", ticket=1).pack()
    query = await deputy.press_data(card.message_id, claim, chat=world.chiefs["fenyang"])
    await world.emulator.wait_for_callback_answer(query)
    await world.settle()
    assert (await world.ticket(1)).status == Status.CLAIMED
    [claimed] = [e for e in await world.events(1) if e.action == "claim"]
    assert claimed.role == Role.CHIEF
    assert claimed.actor_id == (await person(world, deputy)).id  # type: ignore[union-attr]

    # ...and the deputy of another station may not
    other = await invitation(world, office, "chief hushan")
    outsider = newcomer(world, 2)
    await outsider.command(outsider, f"/start {other}")
    await world.emulator.wait_for(outsider, contains="欢迎加入")
    await world.captain.send_photo(world.intake, make_jpeg(seed=2), caption="汾阳路15号 路灯不亮")
    second = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    query = await outsider.press_data(
        second.message_id, TicketButton(action="claim", ticket=2).pack(),
        chat=world.chiefs["fenyang"],
    )
    answer = await world.emulator.wait_for_callback_answer(query)
    assert answer["show_alert"]
    assert (await world.ticket(2)).status == Status.ASSIGNED


async def test_someone_the_deployment_lists_keeps_that_role(world: World, office: User) -> None:
    token = await invitation(world, office, "captain fenyang")
    await office.command(office, f"/start {token}")
    told = await world.emulator.wait_for(office, contains="系统配置")
    assert "街道工作人员" in told.body
    listed = await person(world, office)
    assert listed is not None and listed.role == "office"
    [unused] = await invitations(world)
    assert unused.used_by is None  # still there for whom it was meant

    chief = world.chiefs["hushan"]
    await chief.command(chief, f"/start {token}")
    await world.emulator.wait_for(chief, contains="系统配置")
    assert "身份：站长" in await whoami(world, chief)


# --- intake: members ------------------------------------------------------------------------

LISTED_CAPTAIN = 300000002
POINTER = "这个群只登记已加入的楼院长的报事"


async def pointers(world: World) -> int:
    return sum(POINTER in body for body in world.said_in(world.intake))


async def test_with_members_intake_a_strangers_report_is_pointed_to_joining_and_not_kept(
    database_url: str, tmp_path: Path
) -> None:
    deployment = sample_deployment_with(
        tmp_path, intake="members",
        people=[
            {"telegram_id": OFFICE_ID, "role": "office"},
            {"telegram_id": LISTED_CAPTAIN, "role": "captain", "station": "fenyang",
             "building": "汾阳路13号"},
        ],
    )
    async with running_world(database_url, deployment, tmp_path) as world:
        world.clock.set(MONDAY)
        stranger = world.emulator.user(200000301, "路人<b>甲</b>")
        await stranger.join(world.intake)
        await stranger.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
        told = await world.emulator.wait_for(world.intake, contains=POINTER)
        assert told.body.startswith("路人<b>甲</b>，") and "邀请链接" in told.body
        # More from them soon after: nothing kept, and no second pointer
        await stranger.send_album(world.intake, [make_jpeg(seed=2), make_jpeg(seed=3)],
                                  caption="汾阳路13号 垃圾没人清")
        await stranger.send_text(world.intake, "汾阳路13号 路灯不亮")
        await world.settle()
        assert await pointers(world) == 1
        # The same captain of open intake days (world.captain) is no member either
        await world.captain.send_photo(world.intake, make_jpeg(seed=4), caption="汾阳路13号 积水")
        await world.emulator.wait_for(world.intake, contains="王阿姨，" + POINTER)
        # Ten minutes later a stranger is told again
        world.clock.set(MONDAY + timedelta(minutes=11))
        await stranger.send_text(world.intake, "汾阳路13号 路灯不亮")
        await world.emulator.wait_for(world.intake, contains="路人<b>甲</b>，" + POINTER)

        assert await world.tickets() == []
        assert await person(world, stranger) is None
        assert await person(world, world.captain) is None
        photos = world.app.tickets.photo_store.root
        assert not photos.exists() or not any(p.is_file() for p in photos.rglob("*"))

        # Members report as ever: one listed in the file, a chief, one who joined by link
        listed = world.emulator.user(LISTED_CAPTAIN, "刘阿姨")
        await listed.join(world.intake)
        await listed.send_photo(world.intake, make_jpeg(seed=5), caption="汾阳路13号 旱厕堵了")
        await world.emulator.wait_for(world.intake, contains="#1")
        chief = world.chiefs["hushan"]
        await chief.send_photo(world.other_intake, make_jpeg(seed=6), caption="虎山路1号 井盖坏了")
        await world.emulator.wait_for(world.other_intake, contains="#2")
        token = await invitation(world, world.emulator.user(OFFICE_ID, "小张"), "captain fenyang")
        await stranger.command(stranger, f"/start {token}")
        await world.emulator.wait_for(stranger, contains="欢迎加入")
        await stranger.send_photo(world.intake, make_jpeg(seed=7), caption="汾阳路15号 路灯不亮")
        await world.emulator.wait_for(world.intake, contains="#3")
        assert [t.reporter_id for t in await world.tickets()] == [
            (await person(world, user)).id  # type: ignore[union-attr]
            for user in (listed, chief, stranger)
        ]
        assert await pointers(world) == 3
