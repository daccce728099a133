"""App assembly: builds the long-lived objects once and wires them into aiogram."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.types import BotCommand, Message, Update
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.albums import AlbumCollector, AlbumGate, Albums, RedisAlbums
from bot.deployment import Deployment
from bot.digest import DigestService
from bot.geocoding import GeocoderChain, ensure_gazetteer
from bot.grids import Grids
from bot.guided_report import GuidedReports
from bot.i18n import Translator
from bot.isolation import ChatLocks
from bot.leadership import lead, leadership_for
from bot.middlewares import (
    ChatScope,
    ChatScopeMiddleware,
    InboxMiddleware,
    InboxRecorder,
    RecordedUpdates,
    SessionMiddleware,
)
from bot.notify import Notifier
from bot.outbox import OutboxSender, SendLimits, doorbell_for, redis_windows
from bot.people import PeopleService
from bot.photos import PhotoStore
from bot.placing import Placer
from bot.responses import keep_response_models
from bot.scheduler import ReminderTicker, ticking
from bot.settings import Settings
from bot.tickets import TicketService
from handlers import errors, get_routers
from storage import repo
from storage.db import (
    SessionFactory,
    create_engine,
    migrate,
    one_start_at_a_time,
    session_factory,
)
from storage.models import OutboxMessage

log = logging.getLogger("gridbot")

# Conversation state (a guided report, an open question) left in Redis this long is dropped;
# a form itself goes stale after 30 minutes (bot.guided_report).
FSM_TTL = timedelta(days=7)

COMMANDS = (
    "start", "tickets", "merge", "unmerge", "help", "cancel", "whoami", "lang", "invite",
    "my", "open", "report", "digest",
)


# How long a received update stays with the worker that claimed it before another worker's
# replay may take it over (Gridbot.replay_unhandled).
INBOX_LEASE = timedelta(minutes=2)


def utc_now() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    """This process, as its inbox claims name it: host, pid and a nonce (a restarted process
    that got the same pid is still someone else)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Gridbot:
    settings: Settings
    deployment: Deployment
    engine: AsyncEngine
    sessions: SessionFactory
    bot: Bot
    dp: Dispatcher
    tickets: TicketService
    sender: OutboxSender
    translator: Translator
    geocoders: GeocoderChain
    ticker: ReminderTicker
    digests: DigestService
    reminder_tick: timedelta | None = timedelta(seconds=30)
    weekly_digest: bool = True  # the scheduler also delivers the street office's weekly digest
    clock: Callable[[], datetime] = field(default=utc_now)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    leading: asyncio.Task[None] | None = None
    worker: str = field(default_factory=worker_name)
    # None: this process is the bot's only reader of updates (polling; Telegram allows one)
    # and replays everything unhandled at start. Webhook workers set INBOX_LEASE.
    inbox_lease: timedelta | None = None
    # Updates recorded (or claimed) here and not yet handled: the inbox need not be asked.
    recorded: RecordedUpdates = field(default_factory=RecordedUpdates)
    sending: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Migrate, sync the stations, look at our own privacy setting, start sending."""
        await prepare_database(self.engine, self.sessions, self.deployment, clock=self.clock)
        async with self.sessions() as session:
            # The database holds the gazetteer; a new install imports the deployment's CSV.
            gazetteer = await ensure_gazetteer(session, self.deployment.gazetteer)
        self.tickets.placer.use_gazetteer(gazetteer)
        await self._check_privacy()
        await self._set_commands()
        self.sending = asyncio.create_task(self.lead_sending())
        await self.replay_unhandled()
        if self.reminder_tick:
            self.leading = asyncio.create_task(self.lead_scheduler(self.reminder_tick))
        self.started.set()

    async def lead_scheduler(self, every: timedelta) -> None:
        """Tick reminders while this process leads the scheduling (one leader per database),
        stand by while another does; until stop()."""
        await lead(
            leadership_for(self.engine, "scheduler"),
            work=lambda: ticking(
                self.ticker, every=every, digests=self.digests if self.weekly_digest else None
            ),
            stopped=self.stopping,
            retry=self.settings.standby_retry_seconds,
        )

    async def lead_sending(self) -> None:
        """Send the outbox while this process leads the sending (one sender per bot, however
        many processes run it: bot.outbox), stand by while another does; until stop()."""
        await lead(
            leadership_for(self.engine, "sender"), work=self.sender.sending,
            stopped=self.stopping, retry=self.settings.standby_retry_seconds,
        )

    async def replay_unhandled(self) -> int:
        """Handle what was recorded but not finished: an earlier run crashed or was killed, or,
        with webhook workers, another worker died holding it.

        Telegram has already forgotten these updates (polling confirmed them, a webhook
        answered 200), so the inbox is the only copy; a ticket's source message is unique, so
        a replay never doubles one. Each recorded update is claimed by the process that
        records it (``claimed_by``, ``claimed_at``); a replay claims, in one conditional
        UPDATE, only updates nobody holds. A polling bot is the only reader there is
        (``inbox_lease`` None), so every unhandled update is its own. Webhook workers run side
        by side: an update another live worker is handling right now is left alone until its
        claim is older than ``inbox_lease`` — the worker renews the claims of what it is still
        handling (bot.webhook), so only a dead worker's claims go stale. A lease rather than
        "received more than a grace period ago": two workers replaying at once would both take
        the same old update, and a slow handler would lose it to the grace period.
        """
        pending = await self.claim_unhandled()
        for update in pending:
            await self.dp.feed_update(self.bot, update)
        return len(pending)

    async def claim_unhandled(self) -> list[Update]:
        """The unhandled updates nobody holds (see replay_unhandled), now claimed by us."""
        now = self.clock()
        stale_before = None if self.inbox_lease is None else now - self.inbox_lease
        async with self.sessions() as session:
            rows = await repo.claim_unhandled(
                session=session, claimed_by=self.worker, now=now, stale_before=stale_before
            )
            await session.commit()
        for row in rows:
            log.warning("replaying update %s recorded at %s", row.update_id, row.received_at)
        self.recorded.add(row.update_id for row in rows)
        return [Update.model_validate(r.payload, context={"bot": self.bot}) for r in rows]

    async def stop(self) -> None:
        self.stopping.set()
        await self.finish_in_flight()
        if self.leading is not None:
            await self.leading
        if self.sending is not None:
            await self.sending
        await self.sender.stop()
        await self.geocoders.close()
        await self.bot.session.close()
        await self.engine.dispose()

    async def finish_in_flight(self, within: float = 10.0) -> None:
        """Let the updates polling handed to handlers finish (aiogram's polling does not wait
        for them); stop() runs first at shutdown, while the FSM's Redis is still open."""
        tasks = [t for t in self.dp._handle_update_tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=within)

    async def _check_privacy(self) -> None:
        """Privacy mode is the classic silent failure of group bots: say so loudly."""
        me = await self.bot.get_me()
        if me.can_read_all_group_messages:
            return
        log.warning(
            "privacy mode is ON: the bot cannot see photos posted in groups. In BotFather "
            "send /setprivacy, choose @%s, Disable; then remove and re-add the bot to each "
            "intake group (or make it a group admin).", me.username,
        )
        async with self.sessions() as session:
            await self.tickets.refuse(
                session, chat_id=self.deployment.street_office.chat_id, reply_to=None,
                key="privacy.warning", username=me.username or "",
            )

    async def _set_commands(self) -> None:
        for locale, code in (("zh_CN", "zh"), ("en", "en")):
            commands = [
                BotCommand(command=c, description=self.translator.get(f"command.{c}", locale))
                for c in COMMANDS
            ]
            await self.bot.set_my_commands(commands, language_code=code)
        default = self.translator.normalise_locale(self.deployment.language)
        await self.bot.set_my_commands(
            [
                BotCommand(command=c, description=self.translator.get(f"command.{c}", default))
                for c in COMMANDS
            ]
        )

    async def run_polling(self) -> None:
        """Long polling until SIGINT/SIGTERM; aiogram stops gracefully on either."""
        await self.dp.start_polling(
            self.bot, allowed_updates=self.dp.resolve_used_update_types(), handle_signals=True
        )


async def prepare_database(
    engine: AsyncEngine, sessions: SessionFactory, deployment: Deployment,
    *, clock: Callable[[], datetime] = utc_now,
) -> None:
    """Migrate, and make the stations and the people it lists match the deployment file;
    processes starting together on one database take turns."""
    async with one_start_at_a_time(engine):
        await migrate(engine)
        async with sessions() as session:
            await repo.sync_stations(
                session=session, stations=[(s.key, s.name, s.chief) for s in deployment.stations]
            )
            await repo.import_people(
                session=session,
                people=[(m.telegram_id, m.role, m.station, m.building, m.name)
                        for m in deployment.people],
                now=clock(),
            )
            await repo.schedule_unanswered_resolutions(session=session)
            await session.commit()


async def run_scheduler(
    settings: Settings,
    deployment: Deployment,
    *,
    stopped: asyncio.Event,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """`gridbot scheduler`: the reminder tick alone, without Telegram. It writes reminders
    and escalations to the outbox; the bot processes send them. One process leads per
    database; the others stand by and take over when it dies. Returns once ``stopped``."""
    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    translator = Translator()
    notifier = _notifier(translator, deployment, clock)
    doorbell = doorbell_for(engine)  # the bot's sender hears of reminders at once
    ticker = ReminderTicker(
        sessions=sessions, deployment=deployment, clock=clock, notifier=notifier,
        wake_sender=doorbell.ring,
    )
    digests = DigestService(
        sessions=sessions, deployment=deployment, grids=Grids.of(deployment),
        translator=translator, notifier=notifier, data_dir=settings.data_dir, clock=clock,
        font=settings.font, wake_sender=doorbell.ring,
    )
    try:
        await prepare_database(engine, sessions, deployment, clock=clock)
        await lead(
            leadership_for(engine, "scheduler"),
            work=lambda: ticking(
                ticker, every=timedelta(seconds=settings.tick_seconds), digests=digests
            ),
            stopped=stopped,
            retry=settings.standby_retry_seconds,
        )
    finally:
        await engine.dispose()


def _notifier(
    translator: Translator, deployment: Deployment, clock: Callable[[], datetime]
) -> Notifier:
    return Notifier(
        translator=translator,
        deployment=deployment,
        clock=clock,
        group_locale=translator.normalise_locale(deployment.language),
    )


def shared_redis(storage: BaseStorage, settings: Settings) -> tuple[Redis, str] | None:
    """The Redis that workers share (where the conversations are) and the prefix of the
    keys kept there, or None when the bot keeps its state in memory."""
    if not isinstance(storage, RedisStorage):
        return None
    keys = storage.key_builder
    prefix = keys.prefix if isinstance(keys, DefaultKeyBuilder) else settings.redis_prefix
    return storage.redis, prefix


def build(
    settings: Settings,
    deployment: Deployment,
    *,
    clock: Callable[[], datetime] = utc_now,
    fsm_storage: BaseStorage | None = None,
    album_quiet: float = 1.0,
    sender_poll_interval: float = 1.0,
    reminder_tick: timedelta | None = None,
    weekly_digest: bool = True,
) -> Gridbot:
    """Everything the bot needs, built once. ``reminder_tick`` (default: the settings' tick)
    of 0 runs no scheduler here: tests tick by hand, `gridbot run --no-scheduler` leaves it
    to `gridbot scheduler` processes. Without ``weekly_digest`` the scheduler leaves the
    street office's weekly digest alone (the demo, whose day is not a week)."""
    if reminder_tick is None:
        reminder_tick = timedelta(seconds=settings.tick_seconds)
    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    translator = Translator()
    keep_response_models()
    bot = Bot(
        settings.require_token(),
        session=AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base)),
    )
    photo_store = PhotoStore(settings.data_dir)
    if fsm_storage is None:  # Redis lets any worker continue a form another one started
        fsm_storage = (
            RedisStorage.from_url(
                settings.redis_url, key_builder=DefaultKeyBuilder(prefix=settings.redis_prefix),
                state_ttl=FSM_TTL, data_ttl=FSM_TTL,
            )
            if settings.redis_url
            else MemoryStorage()
        )
    shared = shared_redis(fsm_storage, settings)
    sender = OutboxSender(
        bot=bot, sessions=sessions, photo_store=photo_store, clock=clock,
        poll_interval=sender_poll_interval,
        limits=SendLimits() if settings.send_limits else None,
        # In Redis the pace outlives a change of sender (bot.outbox).
        windows=redis_windows(shared[0], prefix=f"{shared[1]}:pace:{bot.id}") if shared else None,
        doorbell=doorbell_for(engine),
    )
    grids = Grids.of(deployment)  # one routing index, shared by placing and geocoding
    geocoders = GeocoderChain.from_deployment(
        deployment, sessions=sessions, clock=clock, city=deployment.geocoding.city, grids=grids
    )
    placer = Placer(
        grids=grids,
        geocoders=geocoders,
        nearest_within_m=deployment.routing.nearest_station_within_m,
        min_confidence=deployment.geocoding.min_confidence,
    )
    notifier = _notifier(translator, deployment, clock)

    async def chat_gone(message: OutboxMessage, error: str) -> None:
        """A chat the bot can no longer write to: the street office is told."""
        async with sessions() as session:
            await notifier.chat_gone(session, chat_id=message.chat_id, error=error)
            await session.commit()
        sender.wake()

    sender.on_undeliverable = chat_gone
    tickets = TicketService(
        deployment=deployment,
        placer=placer,
        photo_store=photo_store,
        notifier=notifier,
        clock=clock,
        wake_sender=sender.wake,
    )
    digests = DigestService(
        sessions=sessions, deployment=deployment, grids=grids, translator=translator,
        notifier=notifier, data_dir=settings.data_dir, clock=clock, wake_sender=sender.wake,
        font=settings.font,
    )
    albums: Albums = (
        RedisAlbums(shared[0], prefix=shared[1], quiet=album_quiet)
        if shared
        else AlbumCollector[Message](quiet=album_quiet)
    )
    dp = Dispatcher(
        storage=fsm_storage,
        # Workers on one Redis handle each chat's updates one at a time (bot.isolation).
        events_isolation=ChatLocks(shared[0], prefix=shared[1]) if shared else None,
        deployment=deployment,
        tickets=tickets,
        people=PeopleService(tickets=tickets),
        translator=translator,
        sessions=sessions,
        digests=digests,
        albums=albums,
        forms=GuidedReports(
            deployment=deployment, placer=placer, notifier=notifier, clock=clock,
            wake_sender=sender.wake,
        ),
    )
    scope = ChatScope(deployment)
    worker = worker_name()
    recorded = RecordedUpdates()
    bot.session.middleware(InboxRecorder(sessions, scope, clock, recorded, worker=worker))
    # Before a chat's turn is taken (the FSM middleware takes it): whether the update is ours,
    # and an album part noted as it arrives, so the part leading the album sees it (bot.albums).
    dp.update.outer_middleware.unregister(dp.fsm)
    dp.update.outer_middleware(ChatScopeMiddleware(scope))
    if isinstance(albums, RedisAlbums):
        dp.update.outer_middleware(AlbumGate(albums))
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(InboxMiddleware(sessions, clock, recorded))
    dp.update.outer_middleware(SessionMiddleware(sessions, translator))
    dp.include_routers(*get_routers())
    errors.install(dp)
    app = Gridbot(
        settings=settings, deployment=deployment, engine=engine, sessions=sessions, bot=bot,
        worker=worker, recorded=recorded,
        dp=dp, tickets=tickets, sender=sender, translator=translator, geocoders=geocoders,
        ticker=ReminderTicker(
            sessions=sessions, deployment=deployment, notifier=notifier, clock=clock,
            wake_sender=sender.wake,
        ),
        digests=digests, reminder_tick=reminder_tick, weekly_digest=weekly_digest, clock=clock,
    )
    dp.startup.register(app.start)
    dp.shutdown.register(app.stop)
    # Before the FSM storage closes (the Dispatcher registered that first): the updates in
    # hand and the sender still use its Redis.
    dp.shutdown.handlers.insert(0, dp.shutdown.handlers.pop())
    return app


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: easy to grep, easy to ship."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler()
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonLogFormatter() if json_lines else plain)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
