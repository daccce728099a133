"""The weekly digest reaches people: the street office's chat every week at the deployment's
``digest`` time, and whoever asks with /digest (a chief their station's week, the office any
week of any station or the district).

The database is the source of truth for what was delivered: a week's ``weekly_digest`` row is
written in the same transaction as its outbox messages, and its primary key lets only one
scheduler (or one run after a restart) deliver a week. A scheduler that was down at the
moment delivers the latest week it missed once, never a backlog of older ones. Weeks that
ended before the district's first report are not sent (a new install stays quiet until its
first week is over). Quiet hours do not apply: the office chose the moment, and the digest
asks nothing of anyone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deployment import WEEKDAYS, Deployment
from bot.grids import Grids
from bot.i18n import Translator
from bot.lifecycle import TicketError
from bot.notify import Notifier
from bot.permissions import FEATURES, Feature, Standing, may, standing_of
from bot.tickets import Sender
from reports.digest import DigestFiles, Step, directory_for, produce, summary, title
from reports.week import Week, WeekError
from storage import repo
from storage.db import SessionFactory
from storage.models import WeeklyDigest

log = logging.getLogger(__name__)

REUSE = timedelta(minutes=10)  # a digest asked for again this soon is sent from the same files
RETRY_AFTER_FAILURE = timedelta(minutes=15)  # a scheduled digest that failed is tried again then
FIRST_YEAR = 2000  # weeks before this are refused: nobody patrolled a grid with this bot then
MAX_SAID = 200  # characters of /digest arguments read; longer is refused, not parsed
SHOWN = 30  # characters of a refused argument repeated back

# A word of /digest's arguments that means a week (whether or not such a week exists).
_WEEKISH = re.compile(r"^(\d{1,4}-?w\d{1,3}|last|this|previous|current|上周|本周)$", re.I)
_SPOKEN = {"上周": "last", "本周": "this"}


# --- what /digest may answer ----------------------------------------------------------------


class DigestError(TicketError):
    """A /digest that cannot be answered; the message says what to write instead."""


class DigestUsage(DigestError):
    message_key = "digest.usage"


class NoSuchWeek(DigestError):
    message_key = "digest.bad_week"


class WeekAhead(DigestError):
    message_key = "digest.future_week"


class OwnStationOnly(DigestError):
    message_key = "digest.own_station_only"


class WhichStation(DigestError):
    message_key = "digest.which_station"


class NotHere(DigestError):
    message_key = "digest.where"


class NoDigestForYou(DigestError):
    message_key = "error.command_not_permitted"


@dataclass(frozen=True)
class Asked:
    """A /digest read: which week, and whose (a station's key, or None for the district)."""

    week: Week
    station: str | None


def read_request(
    said: str | None, *, deployment: Deployment, now: datetime, own: tuple[str, ...] | None
) -> Asked:
    """``/digest [week] [station]`` in either order: the week as 2026-W47, last (the default),
    this, 上周 or 本周; the station by key or name. ``own``: the stations a chief may see
    (their first is the default), or None for the street office (default: the district)."""
    said = (said or "").strip()
    stations = _station_list(deployment, own)
    if len(said) > MAX_SAID:
        raise DigestUsage(said=escape(_cut(said)), stations=stations)
    words = said.split()
    weeks = [word for word in words if _WEEKISH.match(word)]
    if len(weeks) > 1:
        raise DigestUsage(said=escape(_cut(said)), stations=stations)
    week = read_week(weeks[0] if weeks else "last", deployment=deployment, now=now)
    named = " ".join(word for word in words if word not in weeks)
    if not named:
        if own is not None and len(own) > 1:
            raise WhichStation(stations=stations, example=own[0])
        return Asked(week, own[0] if own else None)
    station = find_station(deployment, named)
    if station is None:
        raise DigestUsage(said=escape(_cut(said)), stations=stations)
    if own is not None and station not in own:
        raise OwnStationOnly(stations=stations)
    return Asked(week, station)


def read_week(text: str, *, deployment: Deployment, now: datetime) -> Week:
    """A week as people write it (2026-W47, last, this, 上周, 本周) that has begun by ``now``;
    NoSuchWeek or WeekAhead otherwise."""
    try:
        week = Week.parse(_SPOKEN.get(text, text), tz=deployment.zone, now=now)
    except WeekError:
        raise NoSuchWeek(said=escape(_cut(text))) from None
    if week.year < FIRST_YEAR:
        raise NoSuchWeek(said=escape(_cut(text)))
    if week.start > now:
        raise WeekAhead(week=week.label)
    return week


def find_station(deployment: Deployment, named: str) -> str | None:
    """The key of the station called ``named`` (its key, any case, or its name)."""
    named = named.strip()
    return next(
        (s.key for s in deployment.stations if named.lower() == s.key or named == s.name), None
    )


def _station_list(deployment: Deployment, own: tuple[str, ...] | None) -> str:
    return "、".join(
        f"{s.key}（{escape(s.name)}）"
        for s in deployment.stations
        if own is None or s.key in own
    )


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


# --- when the street office gets it ---------------------------------------------------------


def due_week(now: datetime, *, zone: ZoneInfo, weekday: str, at: time) -> Week:
    """The week whose digest is due by ``now``: the week before the latest digest moment
    (``weekday`` at ``at``, local time) that is not after ``now``."""
    local = now.astimezone(zone)
    day: date = local.date() - timedelta(days=(local.weekday() - WEEKDAYS.index(weekday)) % 7)
    if datetime.combine(day, at, tzinfo=zone) > now:
        day -= timedelta(weeks=1)
    return Week.containing(datetime.combine(day, at, tzinfo=zone), tz=zone).previous()


# --- the service ----------------------------------------------------------------------------

Key = tuple[str, str | None]  # (week label, station key or None)


class DigestService:
    """Produces digests (once at a time for the same week and station, reusing files made
    in the last minutes) and puts them in the outbox for a chat."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        deployment: Deployment,
        grids: Grids,
        translator: Translator,
        notifier: Notifier,
        data_dir: Path,
        clock: Callable[[], datetime],
        wake_sender: Callable[[], None] = lambda: None,
        font: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.font = font  # GRIDBOT_FONT
        self.deployment = deployment
        self.grids = grids
        self.translator = translator
        self.notifier = notifier
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.wake_sender = wake_sender
        self._making: dict[Key, asyncio.Task[DigestFiles]] = {}
        self._made: dict[Key, tuple[datetime, DigestFiles]] = {}
        self._asking: set[tuple[Key, int]] = set()  # (digest, chat) with an answer on its way
        self._failed: dict[str, datetime] = {}  # scheduled weeks that failed, and when

    async def files(self, week: Week, station: str | None = None) -> DigestFiles:
        """The digest's files, made now or a few minutes ago; while one is being made, a
        second caller waits for the same one instead of making it again."""
        key: Key = (week.label, station)
        now = self.clock()
        self._made = {k: v for k, v in self._made.items() if now - v[0] < REUSE}
        if key in self._made:
            return self._made[key][1]
        task = self._making.get(key)
        if task is None:
            task = asyncio.create_task(self._produce(key, week, station))
            self._making[key] = task
            task.add_done_callback(lambda _: self._making.pop(key, None))
        return await asyncio.shield(task)

    async def _produce(self, key: Key, week: Week, station: str | None) -> DigestFiles:
        files = await self.produce(week, station=station)
        self._made[key] = (self.clock(), files)
        return files

    async def produce(
        self, week: Week, *, station: str | None = None, directory: Path | None = None,
        step: Step | None = None,
    ) -> DigestFiles:
        """Make the digest now (no reuse), by default into the data directory's ``digests``."""
        return await produce(
            sessions=self.sessions, deployment=self.deployment, grids=self.grids,
            translator=self.translator, week=week, station=station, now=self.clock(),
            directory=directory or directory_for(self.data_dir, week, station), step=step,
            font=self.font,
        )

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.data_dir).as_posix()

    async def send(
        self, session: AsyncSession, *, files: DigestFiles, chat_id: int, locale: str,
        reply_to: int | None = None, purpose: str | None = None,
    ) -> None:
        """Summary, chart and documents of ``files`` into the outbox (no commit)."""
        text = summary(
            files.figures, deployment=self.deployment, translator=self.translator, locale=locale
        )
        heading = title(
            files.figures, deployment=self.deployment, translator=self.translator, locale=locale
        )
        await self.notifier.digest(
            session, chat_id=chat_id, summary=text, title=heading, locale=locale,
            chart=self._relative(files.chart),
            documents=(self._relative(files.pdf), self._relative(files.xlsx)),
            reply_to=reply_to, purpose=purpose,
        )

    async def send_to(
        self, chat_id: int, week: Week, *, station: str | None = None, locale: str | None = None
    ) -> DigestFiles:
        """Make (or reuse) a digest and send it to a chat, e.g. the demo's week to the office."""
        files = await self.files(week, station)
        async with self.sessions() as session:
            await self.send(
                session, files=files, chat_id=chat_id, locale=locale or self.notifier.group_locale
            )
            await session.commit()
        self.wake_sender()
        return files

    # --- every week, to the street office -------------------------------------------------

    async def deliver_due(self) -> Week | None:
        """If the latest digest moment has passed and its week was not delivered, make the
        district's digest and deliver it to the street office chat; the week delivered, or
        None. Safe to call from every tick and from several schedulers at once."""
        now = self.clock()
        digest = self.deployment.digest
        week = due_week(now, zone=self.deployment.zone, weekday=digest.weekday, at=digest.time)
        async with self.sessions() as session:
            if await repo.digest_delivered(session=session, week=week.label):
                return None
            if not await repo.reported_before(session=session, moment=week.end):
                return None  # the district's first week is the first to be sent
        failed = self._failed.get(week.label)
        if failed is not None and now - failed < RETRY_AFTER_FAILURE:
            return None
        try:
            files = await self.files(week)
        except Exception:  # the next tick after RETRY_AFTER_FAILURE tries again
            log.exception("the digest of %s could not be made", week.label)
            self._failed[week.label] = now
            return None
        async with self.sessions() as session:
            try:
                await repo.record_digest(session=session, digest=WeeklyDigest(
                    week=week.label, delivered_at=self.clock(),
                    directory=self._relative(files.directory),
                ))
            except IntegrityError:  # another scheduler delivered it meanwhile
                log.info("the digest of %s was delivered by another scheduler", week.label)
                return None
            await self.send(
                session, files=files, chat_id=self.deployment.street_office.chat_id,
                locale=self.notifier.group_locale, purpose=f"digest:{week.label}",
            )
            await session.commit()
        self._failed.pop(week.label, None)
        self.wake_sender()
        log.info("the digest of %s went to the street office", week.label)
        return week

    # --- /digest ---------------------------------------------------------------------------

    async def request(
        self, session: AsyncSession, *, sender: Sender, chat_id: int, reply_to: int,
        said: str | None, locale: str,
    ) -> None:
        """/digest: read what is asked, say it is being made, then send the files to the
        chat it was asked in (a private chat, or the street office's)."""
        office_chat = self.deployment.street_office.chat_id
        if chat_id < 0 and chat_id != office_chat:  # groups have negative ids
            raise NotHere()
        person = await repo.person_by_telegram_id(session=session, telegram_id=sender.telegram_id)
        standing = standing_of(person, sender.telegram_id, self.deployment)
        if not may(Feature.DIGEST, standing, self.deployment):
            raise self._not_for_you(locale)
        own: tuple[str, ...] | None = None
        if standing is Standing.CHIEF:
            own = tuple(s.key for s in self.deployment.stations_led_by(sender.telegram_id))
        elif standing is Standing.DEPUTY:
            own = (person.station_key,) if person and person.station_key else ()
            if not own:
                raise self._not_for_you(locale)
        if chat_id == office_chat:
            locale = self.notifier.group_locale  # read by everyone there
        asked = read_request(said, deployment=self.deployment, now=self.clock(), own=own)
        key: Key = (asked.week.label, asked.station)
        scope = escape(
            self.deployment.station(asked.station).name
            if asked.station
            else self.deployment.street_office.name
        )
        if (key, chat_id) in self._asking:
            await self._say(
                session, chat_id, reply_to, "digest.busy", locale, scope=scope,
                week=asked.week.label,
            )
            return
        self._asking.add((key, chat_id))
        try:
            await self._say(
                session, chat_id, reply_to, "digest.making", locale, scope=scope,
                week=asked.week.label,
            )
            try:
                files = await self.files(asked.week, asked.station)
            except Exception:
                log.exception("the digest %s could not be made", key)
                await self._say(session, chat_id, reply_to, "digest.failed", locale)
                return
            await self.send(
                session, files=files, chat_id=chat_id, locale=locale, reply_to=reply_to
            )
            await session.commit()
            self.wake_sender()
        finally:
            self._asking.discard((key, chat_id))

    def _not_for_you(self, locale: str) -> NoDigestForYou:
        """The command table's answer (as the fallback router gives it), checked here too."""
        separator = "、" if locale.startswith("zh") else ", "
        who = separator.join(
            self.notifier.t(f"role.{standing}", locale)
            for standing in Standing
            if standing in FEATURES[Feature.DIGEST]
        )
        return NoDigestForYou(command=Feature.DIGEST.value, who=who)

    async def _say(
        self, session: AsyncSession, chat_id: int, reply_to: int, key: str, locale: str,
        **params: object,
    ) -> None:
        await self.notifier.reply(
            session, chat_id=chat_id, reply_to=reply_to, key=key, locale=locale, **params
        )
        await session.commit()
        self.wake_sender()
