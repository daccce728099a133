"""End to end: the weekly digest reaches the street office on Monday at 09:00 (once, whatever
restarts or second schedulers), and /digest answers chiefs and the office with the files."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.digest import DigestService
from bot.emulator.players import Group, User
from bot.emulator.records import BotMessage
from bot.grids import Grids
from reports.digest import DigestFiles
from storage import repo
from storage.models import WeeklyDigest

from conftest import World, office_member, running_world, sample_deployment_with
from factories import make_jpeg

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # Monday of 2026-W45, 09:00
NEXT_MONDAY = datetime(2026, 11, 9, 9, 0, tzinfo=SHANGHAI)  # 01:00 UTC: W45's digest is due
FENYANG = "汾阳路社区工作站"
OFFICE = "兴城路街道办事处"
MAKING = "的周报，请稍候"


async def a_week_of_reports(world: World) -> None:
    """W45: two reports on Monday morning; the chief claims and fixes the first, the second
    stays open past its deadline."""
    world.clock.set(MORNING)
    chief = world.chiefs["fenyang"]
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption="汾阳路13号 旱厕堵了")
    card = await world.emulator.wait_for(chief, method="sendPhoto")
    await world.captain2.send_photo(
        world.intake, make_jpeg(seed=2), caption="汾阳路20号 路灯坏了 <b>很黑</b>"
    )
    await world.emulator.wait_for(chief, method="sendPhoto")
    world.clock.set(MORNING + timedelta(hours=1))
    await chief.press(card, text="✋ 认领")
    desk = await world.emulator.wait_for(chief, contains="已认领")
    await chief.press(desk, text="✅ 已处理")
    await world.emulator.wait_for(chief, contains="处理后的现场照片")
    await chief.send_photo(chief, make_jpeg(seed=3), caption="已疏通")
    await world.emulator.wait_for(world.intake, method="sendPhoto", contains="问题解决了吗")
    await world.settle()


async def deliver_at(world: World, moment: datetime, digests: DigestService | None = None) -> str:
    world.clock.set(moment)
    week = await (digests or world.app.digests).deliver_due()
    await world.settle()
    return week.label if week else ""


def sent_to(world: World, chat: Group | User, since: int = 0) -> list[BotMessage]:
    return [m for m in world.emulator.sent[since:] if m.chat_id == chat.id]


def documents(messages: list[BotMessage]) -> list[str]:
    return [m.json["document"]["file_name"] for m in messages if m.kind == "document"]


async def delivered_weeks(world: World) -> list[str]:
    async with world.app.sessions() as session:
        return [row.week for row in (await session.exec(select(WeeklyDigest))).all()]


def another_scheduler(world: World) -> DigestService:
    """What a second scheduler process (or this one after a restart) holds: nothing shared
    with the running bot but the database and the data directory."""
    app = world.app
    return DigestService(
        sessions=app.sessions, deployment=app.deployment, grids=Grids.of(app.deployment),
        translator=app.translator, notifier=app.tickets.notifier,
        data_dir=app.settings.data_dir, clock=world.clock, wake_sender=app.sender.wake,
    )


# --- every Monday at 09:00, to the street office --------------------------------------------


async def test_the_office_gets_last_weeks_digest_on_monday_at_nine_once(world: World) -> None:
    await a_week_of_reports(world)
    start = len(world.emulator.sent)
    assert await deliver_at(world, NEXT_MONDAY - timedelta(minutes=1)) == ""
    assert sent_to(world, world.office, start) == []

    assert await deliver_at(world, NEXT_MONDAY) == "2026-W45"
    said = sent_to(world, world.office, start)
    assert [m.kind for m in said] == ["text", "photo", "document", "document"]
    summary = said[0].body
    assert f"{OFFICE} 周报 2026-W45" in summary and "2026年11月2日" in summary
    assert "收到报事 2 件" in summary and "办结 1 件" in summary
    assert "周末未办结 1 件，其中超期 1 件" in summary
    assert f"超期最多：{FENYANG}（1 件）" in summary
    assert "2026-W45" in said[1].body  # the chart's caption
    assert documents(said) == ["digest-2026-W45.pdf", "digest-2026-W45.xlsx"]
    assert (world.app.settings.data_dir / "digests" / "2026-W45" / "digest-2026-W45.pdf").is_file()

    # Another tick, a restart, a second scheduler: the week was delivered.
    assert await deliver_at(world, NEXT_MONDAY + timedelta(seconds=30)) == ""
    restarted = another_scheduler(world)
    assert await deliver_at(world, NEXT_MONDAY + timedelta(hours=5), restarted) == ""
    assert len(sent_to(world, world.office, start)) == 4
    assert await delivered_weeks(world) == ["2026-W45"]
    assert all(m.status == "sent" for m in await world.outbox())


async def test_two_schedulers_at_the_same_moment_deliver_the_week_once(world: World) -> None:
    await a_week_of_reports(world)
    start = len(world.emulator.sent)
    world.clock.set(NEXT_MONDAY)
    weeks = await asyncio.gather(
        world.app.digests.deliver_due(), another_scheduler(world).deliver_due()
    )
    await world.settle()
    assert sorted(str(w) for w in weeks if w) == ["2026-W45"]
    assert [m.kind for m in sent_to(world, world.office, start)] == [
        "text", "photo", "document", "document"
    ]


async def test_a_late_start_sends_the_latest_missed_week_only(world: World) -> None:
    """Down from before W46's Monday until W48's Wednesday: W47 is sent, W45 and W46 are not."""
    await a_week_of_reports(world)
    start = len(world.emulator.sent)
    assert await deliver_at(world, NEXT_MONDAY + timedelta(weeks=2, days=2)) == "2026-W47"
    assert await deliver_at(world, NEXT_MONDAY + timedelta(weeks=2, days=2, hours=1)) == ""
    assert await delivered_weeks(world) == ["2026-W47"]
    summary = sent_to(world, world.office, start)[0].body
    assert "2026-W47" in summary and "收到报事 0 件（比上周少" not in summary  # W46 had none
    assert "周末未办结 1 件，其中超期 1 件" in summary  # still open, still overdue


async def test_nothing_is_sent_before_the_district_has_a_report(world: World) -> None:
    assert await deliver_at(world, NEXT_MONDAY) == ""
    assert world.said_in(world.office) == []
    await a_week_of_reports(world)
    assert await deliver_at(world, NEXT_MONDAY) == "2026-W45"  # the first week is sent


async def test_quiet_hours_do_not_hold_the_digest_back(
    database_url: str, tmp_path: Path
) -> None:
    """Sunday 23:00 is inside the sample's quiet hours (22:00-08:00): the office asked for it
    then, and the digest asks nothing of anyone, so it goes."""
    late = sample_deployment_with(tmp_path, digest={"weekday": "sun", "time": "23:00"})
    async with running_world(database_url, late, tmp_path) as world:
        await a_week_of_reports(world)
        sunday = datetime(2026, 11, 8, 23, 0, tzinfo=SHANGHAI)
        assert await deliver_at(world, sunday - timedelta(minutes=1)) == ""
        # Sunday 23:00 of W45: the week before it (W44) had no report; W45 goes a week later.
        assert await deliver_at(world, sunday + timedelta(weeks=1)) == "2026-W45"
        assert "2026-W45" in world.said_in(world.office)[0]


# --- /digest ---------------------------------------------------------------------------------


async def ask(world: World, who: User, typed: str, chat: Group | User | None = None) -> list[
    BotMessage
]:
    """``who`` types ``typed`` in ``chat`` (their private chat by default); what the bot
    answered there once everything settled."""
    chat = chat or who
    start = len(world.emulator.sent)
    earlier = {id(m) for m in world.emulator.sent}
    await who.command(chat, typed)
    # The command was taken up (an answer, or its first part), then everything it caused.
    await world.emulator.wait_for(chat, predicate=lambda m: id(m) not in earlier, timeout=30)
    await world.settle()
    return sent_to(world, chat, start)


def produced(world: World, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Every digest the bot actually makes from now on (week, station)."""
    made: list[tuple[str, str | None]] = []
    digests = world.app.digests
    real = digests.produce

    async def counted(week: Any, **kwargs: Any) -> DigestFiles:
        made.append((week.label, kwargs.get("station")))
        return await real(week, **kwargs)

    monkeypatch.setattr(digests, "produce", counted)
    return made


async def test_a_chief_gets_their_stations_last_week(world: World) -> None:
    await a_week_of_reports(world)
    world.clock.set(NEXT_MONDAY + timedelta(hours=2))
    chief = world.chiefs["fenyang"]
    said = await ask(world, chief, "/digest")
    assert [m.kind for m in said] == ["text", "text", "photo", "document", "document"]
    assert MAKING in said[0].body and FENYANG in said[0].body
    summary = said[1].body
    assert f"{FENYANG} 周报 2026-W45" in summary and "收到报事 2 件" in summary
    assert "超期最多" not in summary  # a station's own digest names no worst station
    assert documents(said) == ["digest-2026-W45-fenyang.pdf", "digest-2026-W45-fenyang.xlsx"]
    assert said[0].reply_to is not None  # the answer is to the command
    # A station's week on request is not the office's weekly delivery.
    assert await delivered_weeks(world) == []


async def test_a_chief_may_name_a_week_but_only_their_own_station(world: World) -> None:
    await a_week_of_reports(world)
    world.clock.set(NEXT_MONDAY + timedelta(weeks=1))
    chief = world.chiefs["fenyang"]
    said = await ask(world, chief, "/digest 2026-W45")
    assert f"{FENYANG} 周报 2026-W45" in said[1].body
    said = await ask(world, chief, "/digest 2026-W45 fenyang")
    assert f"{FENYANG} 周报 2026-W45" in said[1].body
    for other in ("/digest jinshui", "/digest 2026-W45 金水路社区工作站"):
        [refusal] = await ask(world, chief, other)
        assert "站长只能看本站的周报" in refusal.body and "fenyang" in refusal.body
        assert "jinshui" not in refusal.body


async def test_a_deputy_gets_the_station_they_joined(world: World) -> None:
    await a_week_of_reports(world)
    deputy = world.emulator.user(300000013, "副站长丙", language_code="en")
    await deputy.start_bot()
    await world.settle()
    async with world.app.sessions() as session:
        person = await repo.person_by_telegram_id(session=session, telegram_id=deputy.id)
        assert person is not None
        person.role, person.station_key, person.joined_at = "chief", "jinshui", MORNING
        session.add(person)
        await session.commit()
    world.clock.set(NEXT_MONDAY)
    said = await ask(world, deputy, "/digest")
    assert "Making the 2026-W45 digest of 金水路社区工作站" in said[0].body
    assert "金水路社区工作站 weekly digest 2026-W45" in said[1].body  # in their language
    assert "Reports received: 0" in said[1].body


async def test_the_office_asks_for_any_week_and_station_in_its_group(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_week_of_reports(world)
    clerk = await office_member(world)
    await clerk.join(world.office)
    world.clock.set(NEXT_MONDAY + timedelta(weeks=1))
    made = produced(world, monkeypatch)

    said = await ask(world, clerk, "/digest", world.office)  # last week: W46, the district
    assert f"{OFFICE} 周报 2026-W46" in said[1].body
    said = await ask(world, clerk, "/digest 2026-W45", world.office)
    assert "收到报事 2 件" in said[1].body and "超期最多" in said[1].body
    said = await ask(world, clerk, f"/digest {FENYANG} 2026w45")  # in private, either order
    assert f"{FENYANG} 周报 2026-W45" in said[1].body
    said = await ask(world, clerk, "/digest this")
    assert f"{OFFICE} 周报 2026-W47" in said[1].body
    said = await ask(world, clerk, "/digest 上周 fenyang")
    assert f"{FENYANG} 周报 2026-W46" in said[1].body
    assert made == [
        ("2026-W46", None), ("2026-W45", None), ("2026-W45", "fenyang"), ("2026-W47", None),
        ("2026-W46", "fenyang"),
    ]


async def test_the_same_digest_asked_again_is_not_made_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_week_of_reports(world)
    world.clock.set(NEXT_MONDAY)
    chief = world.chiefs["fenyang"]
    made = produced(world, monkeypatch)
    start = len(world.emulator.sent)
    await chief.command(chief, "/digest")
    await chief.command(chief, "/digest")  # impatient: before the first is made
    for _ in range(2):
        await world.emulator.wait_for(chief, method="sendDocument", timeout=30)
    await world.settle()
    said = sent_to(world, chief, start)
    assert made == [("2026-W45", "fenyang")]
    assert sum(MAKING in m.body for m in said) == 1
    assert sum("正在生成，好了就发到这里" in m.body for m in said) == 1
    assert len(documents(said)) == 2  # one set of files

    # Asked again a few minutes later: the same files, nothing made.
    world.clock.set(NEXT_MONDAY + timedelta(minutes=5))
    said = await ask(world, chief, "/digest")
    assert len(documents(said)) == 2 and made == [("2026-W45", "fenyang")]
    # Later still, it is made anew (the week may have been corrected since).
    world.clock.set(NEXT_MONDAY + timedelta(hours=1))
    said = await ask(world, chief, "/digest")
    assert len(documents(said)) == 2 and len(made) == 2


async def test_the_office_and_the_schedule_share_one_making(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weekly delivery and a clerk's /digest of the same week at the same moment: the
    digest is made once, both chats get it."""
    await a_week_of_reports(world)
    clerk = await office_member(world)
    world.clock.set(NEXT_MONDAY)
    made = produced(world, monkeypatch)
    start = len(world.emulator.sent)
    await clerk.command(clerk, "/digest 2026-W45")
    week = await world.app.digests.deliver_due()
    for _ in range(2):
        await world.emulator.wait_for(clerk, method="sendDocument", timeout=30)
    await world.settle()
    assert week is not None and made == [("2026-W45", None)]
    assert len(documents(sent_to(world, clerk, start))) == 2
    assert len(documents(sent_to(world, world.office, start))) == 2


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("/digest 2026-W54", "没有“2026-W54”这一周"),
        ("/digest 2026-W0", "没有“2026-W0”这一周"),
        ("/digest 2026-W00 fenyang", "没有“2026-W00”这一周"),
        ("/digest 0001-W01", "没有“0001-W01”这一周"),
        ("/digest 1999-W52", "没有“1999-W52”这一周"),
        ("/digest 2026-W999", "没有“2026-W999”这一周"),
        ("/digest 2026-W47", "2026-W47 还没有开始"),
        ("/digest 9999-W52", "9999-W52 还没有开始"),
        ("/digest next", "看不懂“next”"),
        ("/digest last this", "看不懂“last this”"),
        ("/digest 2026-W45 2026-W44", "看不懂"),
        ("/digest 汾阳路", "看不懂“汾阳路”"),
        ("/digest <b>fenyang</b>", "看不懂“<b>fenyang</b>”"),
        ("/digest ' OR 1=1 --", "看不懂“' OR 1=1 --”"),
        ("/digest " + "很长" * 1000, "看不懂“" + "很长" * 15 + "…”"),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_nothing_is_made(
    world: World, monkeypatch: pytest.MonkeyPatch, typed: str, answer: str
) -> None:
    clerk = await office_member(world)
    world.clock.set(NEXT_MONDAY)
    made = produced(world, monkeypatch)
    [reply] = await ask(world, clerk, typed)
    assert answer in reply.body, reply.body
    if "看不懂" in answer:  # the form, and the stations to choose from
        assert "/digest [周] [工作站]" in reply.body and f"fenyang（{FENYANG}）" in reply.body
    assert not reply.json.get("entities")  # what was typed is shown, never markup
    assert made == []


async def test_hostile_text_is_shown_as_text(world: World) -> None:
    clerk = await office_member(world)
    world.clock.set(NEXT_MONDAY)
    [reply] = await ask(world, clerk, "/digest <a href='x'>点我</a>")
    assert "<a href='x'>点我</a>" in reply.body
    assert not reply.json.get("entities")  # no link, no bold: the markup was escaped


async def test_not_in_an_intake_group_and_not_for_captains(world: World) -> None:
    chief = world.chiefs["fenyang"]
    [reply] = await ask(world, chief, "/digest", world.intake)
    assert "周报只在私聊里或街道办群里发" in reply.body
    captain = world.captain
    await captain.start_bot()
    await world.settle()
    [reply] = await ask(world, captain, "/digest")
    assert "您现在用不了" in reply.body


# --- the outbox's stored files ---------------------------------------------------------------


async def test_a_missing_file_fails_its_message_alone(world: World) -> None:
    """A digest's file gone before it was sent (a cleaned data directory), or a path that
    leads outside the data directory: that message fails with the reason, once; the chat's
    next message still goes."""
    notifier = world.app.tickets.notifier
    office = world.office.id
    async with world.app.sessions() as session:
        await notifier.send_file(
            session, chat_id=office, kind="document", path="digests/2026-W45/gone.pdf",
            caption="PDF",
        )
        await notifier.send_file(
            session, chat_id=office, kind="photo", path="../../etc/passwd", caption="图",
        )
        await notifier.reply(session, chat_id=office, reply_to=None, key="digest.failed")
        await session.commit()
    world.app.sender.wake()
    await world.settle()
    rows = sorted(await world.outbox(), key=lambda m: m.id or 0)[-3:]
    assert [m.status for m in rows] == ["failed", "failed", "sent"]
    assert rows[0].attempts == 1 and "file missing: digests/2026-W45/gone.pdf" in (
        rows[0].last_error or ""
    )
    assert "outside the data directory" in (rows[1].last_error or "")
    assert [m.kind for m in sent_to(world, world.office)] == ["text"]
