"""`gridbot demo`: a scripted day in the sample district, played through the local emulator.

The real bot runs unmodified against the emulator on a temporary SQLite database; people are
played through the emulator's user API, and everything said is printed as a transcript.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.app import Gridbot, build
from bot.deployment import Deployment, Reminders, load_deployment
from bot.emulator import BotAPIEmulator
from bot.emulator.players import Group, User
from bot.emulator.records import BotMessage, EmulatorEvent
from bot.photos import sample_photo
from bot.settings import Settings
from reports.week import Week
from storage import repo

SAMPLE_DEPLOYMENT = Path(__file__).with_name("sample") / "deployment.yaml"
DEMO_TOKEN = "424242:DEMO-gridbot-token-for-the-local-emulator"
WAIT = 15.0  # seconds any single step may take before the demo says it is broken
# The demo's day lasts a minute, so its reminders come in seconds (the sample file says 2h):
# the first 20 s after a ticket is routed, then every 10 s; one unanswered reminder is
# enough for 督办; no quiet hours, whatever the hour the demo runs at.
DEMO_REMINDERS = Reminders(
    first_after=timedelta(seconds=20), every=timedelta(seconds=10), escalate_after=1
)
REMINDER_WAIT = 45.0
DIGEST_WAIT = 90.0  # drawing the chart, the map and the PDF takes seconds on a slow machine
# The demo's data directory goes with it; the digest's files are copied here to stay.
DIGEST_OUT = Path(tempfile.gettempdir()) / "gridbot-demo-digest"

CHIEF_NAMES = {"fenyang": "张建国", "jinshui": "刘秀兰", "hushan": "陈志强", "xingcheng": "赵丽"}


class DemoFailed(RuntimeError):
    """A step of the scripted day did not happen."""


@dataclass
class Cast:
    emulator: BotAPIEmulator
    intake: Group
    office: Group
    wang: User  # 王阿姨, building captain
    li: User  # 李大爷, building captain
    chiefs: dict[str, User]


class Transcript:
    """Prints who said what, coloured by who speaks, as the emulator reports it."""

    def __init__(self, console: Console, deployment: Deployment) -> None:
        self.console = console
        self.zone = deployment.zone
        self.lines = 0

    def __call__(self, event: EmulatorEvent) -> None:
        if event.kind in ("answer", "delete") and not event.text:
            return
        self.lines += 1
        now = datetime.now(self.zone).strftime("%H:%M:%S")
        bot = event.actor == "bot"
        where = event.chat_title or str(event.chat_id)
        header = Text.assemble(
            (f"{now} ", "dim"),
            (f"[{where}] ", "cyan"),
            (event.who, "bold magenta" if bot else "bold green"),
            (f" ({event.kind})" if event.kind not in ("text", "send") else "", "dim"),
        )
        self.console.print(header)
        body = event.text or ""
        if event.kind == "location" and event.extra:
            body = body or f"📍 {event.extra}"
        for line in body.splitlines() or [""]:
            if line:
                self.console.print(Text("    " + line, style="white" if bot else "green"))
        for row in event.buttons:
            self.console.print(Text("    " + "  ".join(f"[ {b} ]" for b in row), style="yellow"))


async def step(  # type: ignore[no-untyped-def]
    what: str, console: Console, action: Awaitable[Any], *,
    within: float = WAIT,
):
    """One scripted step; a step that does not happen in time fails the demo, naming itself."""
    console.print(Text(f"▶ {what}", style="bold blue"))
    try:
        return await asyncio.wait_for(action, timeout=within)
    except (TimeoutError, AssertionError) as error:
        raise DemoFailed(f"{what}: {error}") from error


async def play_day(cast: Cast, console: Console) -> None:
    emulator, intake = cast.emulator, cast.intake
    fenyang, jinshui = cast.chiefs["fenyang"], cast.chiefs["jinshui"]

    async def said(
        chat: Group | User, *, timeout: float = WAIT, **match: object  # noqa: ASYNC109
    ) -> BotMessage:
        return await emulator.wait_for(chat, timeout=timeout, **match)  # type: ignore[arg-type]

    console.rule("早上：楼院长巡查报事 (morning: captains report)")
    await cast.wang.send_photo(
        intake, sample_photo(1, "toilet"), caption="汾阳路13号 旱厕堵了，味道很大"
    )
    await step("王阿姨's report is registered", console, said(intake, contains="#1"))
    card = await step("张建国 gets the ticket", console, said(fenyang, method="sendPhoto"))
    await step("with a location pin", console, said(fenyang, method="sendLocation"))

    await cast.li.send_photo(
        intake, another_shot(sample_photo(1, "toilet")), caption="汾阳路13号旁边的旱厕又堵了"
    )
    merged = said(intake, contains="已经有工单")
    await step("李大爷's photo of the same toilet is merged into #1", console, merged)
    await step("张建国 hears it was reported again", console, said(fenyang, contains="又有人反映"))

    await cast.li.send_photo(
        intake, sample_photo(2, "stair light"), caption="楼道灯坏了，晚上很黑"
    )
    ask = await step("李大爷 is asked where", console, said(intake, contains="缺地址"))
    await cast.li.send_location(intake, 36.16975, 120.42875, reply_to=ask)  # shares a pin
    await step(
        "李大爷's shared location is placed", console, said(intake, contains="金水路社区工作站")
    )
    await step("刘秀兰 gets the ticket", console, said(jinshui, method="sendPhoto"))

    await cast.wang.send_photo(
        intake, sample_photo(4, "billboard"), caption="青岛北站东广场 广告牌松动，有点危险"
    )
    await step(
        "outside every grid: the street office triages it", console,
        said(cast.office, contains="待分派"),
    )
    await step("王阿姨 is told who handles it", console, said(intake, contains="#4"))

    console.rule("上午：站长揭榜、处理 (chiefs claim and fix)")
    await fenyang.press(card, text="✋ 认领")
    desk = await step("张建国 claims #1", console, said(fenyang, contains="已认领"))
    await step("the group sees it claimed", console, said(intake, contains="认领"))
    await step("李大爷 hears #1 is being handled", console, said(intake, contains="您反映的问题"))
    await fenyang.press(desk, text="✅ 已处理")
    asked = said(fenyang, contains="处理后的现场照片")
    await step("the bot asks for an after-photo", console, asked)
    await fenyang.send_photo(fenyang, sample_photo(3, "fixed"), caption="已疏通，周边已清理")
    confirm = await step("王阿姨 is asked to confirm", console, said(intake, method="sendPhoto"))

    console.rule("下午：报告人评价 (the reporter confirms)")
    await cast.wang.press(confirm, text="😊 满意")
    await step("#1 is closed", console, said(intake, contains="已办结"))
    await step("张建国 hears the verdict", console, said(fenyang, contains="满意"))

    console.rule("下午：李大爷私聊一步一步报事 (a guided report in private chat)")
    li = cast.li
    await li.command(li, "/report")
    await step("李大爷 sends /report: the bot asks for a photo", console,
               said(li, contains="1/5"))
    await li.send_photo(li, sample_photo(5, "garage flooded"))
    await step("his photo is taken", console, said(li, contains="已收到 1 张照片"))
    await li.send_text(li, "金秋小区3号楼")
    suggest = await step("he types the address; the bot is unsure and offers places", console,
                         said(li, contains="是下面哪一个"))
    await li.press(suggest, text="金秋小区二期3号楼")
    category = await step("he picks one; the bot asks what kind of problem", console,
                          said(li, contains="3/5"))
    await li.press(category, text="环境卫生")
    await step("the bot asks him to describe it", console, said(li, contains="4/5"))
    await li.send_text(li, "车库积水，一下雨就淹")
    summary = await step("he checks the summary", console, said(li, contains="5/5"))
    await li.press(summary, text="✅ 提交")
    await step("李大爷's guided report is registered as #5", console,
               said(li, contains="已登记：工单 #5"))
    await step("刘秀兰 gets it", console, said(jinshui, method="sendPhoto"))

    console.rule("傍晚：站长看待办 (a chief checks open work)")
    await jinshui.command(jinshui, "/tickets")
    await step("刘秀兰 sees her open ticket", console, said(jinshui, contains="待办工单"))

    console.rule("晚上：提醒与督办 (reminders and escalation, at the demo's pace)")
    reminder = await step(
        "刘秀兰 has not claimed #3: she is reminded", console,
        said(jinshui, contains="提醒（第 1 次）", timeout=REMINDER_WAIT), within=REMINDER_WAIT,
    )
    await step(
        "reminded in vain: the street office is told (督办)", console,
        said(cast.office, contains="督办", timeout=REMINDER_WAIT), within=REMINDER_WAIT,
    )
    await jinshui.press(reminder, text="⏳ 处理中")
    day = await step("刘秀兰 answers 处理中: the bot asks which day", console,
                     said(jinshui, contains="预计哪天"))
    await jinshui.press(day, text="明天")
    await step("reminders pause until tomorrow", console, said(jinshui, contains="不再提醒"))


async def the_weeks_digest(app: Gridbot, cast: Cast, console: Console, out: Path) -> Path:
    """The day ends with the digest of its week (so far) in the street office's chat; its
    files are copied to ``out``, which outlives the demo. Returns where they are."""
    console.rule("周报：本周到目前为止 (the digest of the demo's week)")
    week = Week.containing(app.clock(), tz=app.deployment.zone)
    files = await step(
        f"the digest of {week.label} is made", console,
        app.digests.send_to(app.deployment.street_office.chat_id, week), within=DIGEST_WAIT,
    )
    office = cast.office
    await step("the street office gets the summary", console,
               cast.emulator.wait_for(office, contains=f"周报 {week.label}"))
    await step("the chart as a photo", console,
               cast.emulator.wait_for(office, method="sendPhoto", contains=week.label))
    for kind in ("PDF", "XLSX"):
        await step(f"the {kind} as a document", console,
                   cast.emulator.wait_for(office, method="sendDocument"))
    kept = out / files.directory.name
    shutil.copytree(files.directory, kept, dirs_exist_ok=True)
    console.print(Text(f"📊 the digest of {week.label} is in {kept}:", style="bold green"))
    for path in (files.pdf, files.xlsx, files.csv, files.chart, files.map):
        console.print(Text(f"    {kept / path.name}"))
    return kept


def another_shot(photo: bytes) -> bytes:
    """The same scene as another captain's phone takes it: a little closer, other light."""
    with Image.open(io.BytesIO(photo)) as image:
        width, height = image.size
        box = (width // 25, height // 25, width - width // 30, height - height // 30)
        closer = image.crop(box)
        closer = ImageEnhance.Brightness(closer.resize((800, 600))).enhance(1.1)
        out = io.BytesIO()
        closer.save(out, "JPEG", quality=80)
    return out.getvalue()


async def summary(app: Gridbot, console: Console) -> Table:
    async with app.sessions() as session:
        tickets = await repo.all_tickets(session=session)
        outbox = await repo.outbox_of(session=session)
        names = {}
        for ticket in tickets:
            person = await repo.get_person(session=session, person_id=ticket.reporter_id)
            names[ticket.reporter_id] = person.name if person else "?"
    table = Table(title="Tickets at the end of the day", title_style="bold")
    for column in ("#", "address", "station", "status", "reporter", "reports",
                   "claimed after", "resolved after", "rating"):
        table.add_column(column)
    for ticket in tickets:
        station = app.deployment.station(ticket.station_key) if ticket.station_key else None
        table.add_row(
            str(ticket.id),
            ticket.address or "—",
            station.name if station else "street office",
            ticket.status + (f" → #{ticket.duplicate_of}" if ticket.duplicate_of else ""),
            names[ticket.reporter_id],
            str(ticket.reports),
            _after(ticket.created_at, ticket.claimed_at),
            _after(ticket.created_at, ticket.resolved_at),
            ticket.rating or "—",
        )
    sent = sum(1 for m in outbox if m.status == "sent")
    table.caption = f"{sent} of {len(outbox)} outbox messages sent"
    return table


def _after(start: datetime, end: datetime | None) -> str:
    return f"{(end - start).total_seconds():.1f} s" if end else "—"


async def run_demo(
    console: Console, *, deployment_path: Path = SAMPLE_DEPLOYMENT, out: Path = DIGEST_OUT
) -> int:
    """Play the day and end with its week's digest (files kept in ``out``); 0 when every
    step happened, 1 (with the failed step named) otherwise."""
    deployment = load_deployment(deployment_path).model_copy(
        update={"reminders": DEMO_REMINDERS}
    )
    with tempfile.TemporaryDirectory(prefix="gridbot-demo-") as tmp:
        async with BotAPIEmulator() as emulator:
            cast = _cast(emulator, deployment)
            settings = Settings(
                bot_token=SecretStr(DEMO_TOKEN), api_base=emulator.base_url, data_dir=Path(tmp)
            )
            app = build(
                settings, deployment, album_quiet=0.5, sender_poll_interval=0.2,
                reminder_tick=timedelta(seconds=1),
                weekly_digest=False,  # the day ends with its own week's digest instead
            )
            emulator.on_event(Transcript(console, deployment))
            console.print(Text(
                f"gridbot demo — {deployment.street_office.name}; Bot API emulator at "
                f"{emulator.base_url}; database {settings.effective_database_url}",
                style="bold",
            ))
            polling = asyncio.create_task(
                app.dp.start_polling(app.bot, handle_signals=False, polling_timeout=1)
            )
            try:
                await _until(app.started.wait, "the bot starts")
                for chief in cast.chiefs.values():
                    await chief.start_bot()
                await play_day(cast, console)
                await the_weeks_digest(app, cast, console, out)
                await emulator.wait_until_idle()
                app.sender.wake()  # what the scheduler wrote meanwhile, sent before counting
                await _until(app.sender.idle.wait, "the last messages are sent")
                console.print(await summary(app, console))
                return 0
            except DemoFailed as failure:
                console.print(Text(f"✗ demo step failed: {failure}", style="bold red"))
                return 1
            finally:
                await app.dp.stop_polling()
                await asyncio.wait_for(polling, timeout=WAIT)


async def _until(wait: Callable[[], Awaitable[object]], what: str) -> None:
    try:
        await asyncio.wait_for(wait(), timeout=WAIT)
    except TimeoutError as error:
        raise DemoFailed(what) from error


def _cast(emulator: BotAPIEmulator, deployment: Deployment) -> Cast:
    emulator.add_bot(DEMO_TOKEN, username="gridbot_demo_bot", first_name="网格巡查助手")
    wang = emulator.user(200000001, "王阿姨")
    li = emulator.user(200000002, "李大爷")
    chiefs = {
        s.key: emulator.user(s.chief, CHIEF_NAMES.get(s.key, f"{s.key} chief"))
        for s in deployment.stations
    }
    people = [wang, li, *chiefs.values()]
    intake = emulator.group(deployment.intake_chats[0], "汾阳路·金水路报事群", members=people)
    office = emulator.group(deployment.street_office.chat_id, deployment.street_office.name,
                            members=list(chiefs.values()))
    return Cast(emulator=emulator, intake=intake, office=office, wang=wang, li=li, chiefs=chiefs)
