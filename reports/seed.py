"""Synthetic history for demos and benchmarks (`gridbot seed`): weeks of reports on a
deployment's district, each ticket living the lifecycle the bot would have given it — located,
merged as a repeat, claimed, reminded, escalated, parked, resolved, confirmed, disputed,
auto-closed, reopened or rejected — written in bulk, with explicit ids, in a few minutes for a
million tickets.

Every ticket's events are the ones `bot.tickets` and `bot.scheduler` write (same actions,
roles, statuses and the station after each event), reminders and auto-closes follow the
deployment's policy through `bot.reminders.plan` itself, and the ticket's columns are what those
events leave behind at ``until``. The same plan and seed give the same rows.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from bot.dedup import cell_of
from bot.deployment import Deployment
from bot.grids import Grids
from bot.lifecycle import TRANSITIONS, Action, Role, Status
from bot.locating import Gazetteer
from bot.reminders import first_reminder_at, plan
from storage.models import Person, Station, Ticket, TicketEvent, TicketFollower, UTCDateTime

# Bump when the generated history changes: benchmarks keep seeded databases keyed by it.
SEED_FORMAT = 2

MAX_TICKETS = 20_000_000
MAX_WEEKS = 1_040  # twenty years
CHUNK = 5_000  # tickets per transaction (with their events: ~30,000 rows)

# Synthetic people's Telegram ids, far from the sample's chiefs (100000001…) and real users'.
OFFICE_IDS = 200_000_001
CAPTAIN_IDS = 300_000_001
OFFICE_STAFF = 2
# Source message ids no Telegram chat reaches (they count up from 1 per chat), so a bot later
# run on a seeded database never takes a real message for a seeded report.
MESSAGE_IDS = 10**12

# How a week looks: reports by local hour and weekday, and a slow growth over the history.
HOURS = (0.2, 0.1, 0.05, 0.05, 0.1, 0.3, 1.0, 2.5, 4.0, 5.0, 5.0, 4.0,
         2.5, 3.0, 4.0, 4.5, 4.0, 3.5, 3.0, 2.5, 2.0, 1.2, 0.6, 0.3)
WEEKDAYS = (1.1, 1.0, 1.0, 1.0, 0.95, 0.65, 0.55)
GROWTH = 0.3  # the last week has 30% more reports than the first
WORKDAY = (8, 21)  # local hours in which chiefs and reporters mostly act

# How tickets turn out (shares of the attempts at each step).
REPEAT_SHARE = 0.115  # a report that tries to repeat an open ticket nearby (~10% merge)
REPEAT_WITHIN = timedelta(days=5)  # how long after the original a repeat comes
REJECT_SHARE = 0.03
PARK_SHARE = 0.025
PARKED_FOR = (3, 90)  # days before a parked ticket is taken up again (none stays for ever)
EXPECT_SHARE = 0.85  # of claims whose work takes more than EXPECT_AFTER: 处理中 with a day
EXPECT_AFTER = timedelta(hours=4)
CONFIRM_SHARE = 0.55
DISPUTE_SHARE = 0.07  # on a first resolution; a rework is not disputed again
OFFICE_REOPEN_SHARE = 0.015
ADDRESS_SKEW = 0.7  # Zipf exponent of how often each address is reported: hotspots

CATEGORY_WEIGHTS = {"sanitation": 4.0, "facilities": 3.5, "safety": 1.0, "other": 1.5}
DESCRIPTIONS = {
    "sanitation": ("垃圾堆积没人清运", "下水道堵了，污水外溢", "旱厕满了，味道很大",
                   "楼道里有积水", "垃圾桶坏了，垃圾散落一地", "化粪池冒水",
                   "路边积水，走不了人", "小广告贴满墙"),
    "facilities": ("路灯不亮", "井盖松动，有响声", "健身器材坏了", "楼道灯坏了",
                   "路面破损有坑", "单元门禁坏了", "座椅断了一条腿", "电梯经常停"),
    "safety": ("电线垂下来很低", "楼道堆放杂物，堵住消防通道", "燃气管道有异味",
               "围墙有裂缝要塌", "高空有花盆没固定", "电动车在楼道充电"),
    "other": ("噪音扰民", "流浪狗很多", "占道经营", "树枝挡住路", "乱停车挡住出入口"),
}
RESOLUTIONS = ("已清理完毕", "已修复", "已联系物业处理", "已更换", "已安排人员处理，现场已恢复",
               "已疏通", "已加固")
DISPUTES = ("没有修好", "还是老样子", "只处理了一半", "过两天又坏了")
REJECTIONS = ("不属于社区管辖，已告知物业", "私人住宅内部问题，请联系房东", "已由市政统一处理")
PARKINGS = ("需要街道统一安排施工", "等待资金审批", "涉及多个部门，需协调")
REOPENINGS = ("居民再次反映，问题复发", "回访发现未彻底解决")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏")
GIVEN = "秀兰桂英玉兰凤英建国建华志强明华海燕丽娟国平春梅淑珍振华德胜红霞金凤文静晓东宝林"

# Roles the bot acts in.
REPORTER, CHIEF, OFFICE, SYSTEM = Role.REPORTER, Role.CHIEF, Role.OFFICE, Role.SYSTEM
MERGEABLE = frozenset(
    {Status.ASSIGNED, Status.CLAIMED, Status.REOPENED, Status.PARKED, Status.RESOLVED}
)
# Events that write history without a transition of the lifecycle table.
UNTABLED = frozenset({"report", "merged_in", "remind", "escalate", "expect"})


class SeedError(ValueError):
    """A seed that cannot be made: bad numbers, an unreadable date, a district with no places."""


class AlreadySeeded(SeedError):
    """The database holds tickets already (seeding adds after them only with ``append``)."""

    def __init__(self, tickets: int, last_id: int) -> None:
        super().__init__(f"the database already holds {tickets:,} tickets (up to #{last_id})")
        self.tickets = tickets
        self.last_id = last_id


@dataclass(frozen=True)
class SeedPlan:
    """What to make: ``tickets`` reports over the ``weeks`` before ``until``."""

    tickets: int
    weeks: int
    until: datetime  # aware; the history ends just before it
    seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.tickets <= MAX_TICKETS:
            raise SeedError(f"tickets must be between 1 and {MAX_TICKETS:,}, not {self.tickets}")
        if not 1 <= self.weeks <= MAX_WEEKS:
            raise SeedError(f"weeks must be between 1 and {MAX_WEEKS}, not {self.weeks}")
        if self.until.tzinfo is None or self.until.utcoffset() is None:
            raise SeedError("until must be an aware datetime")

    @property
    def start(self) -> datetime:
        return self.until.astimezone(UTC) - timedelta(weeks=self.weeks)


def parse_until(text: str, *, zone: ZoneInfo) -> datetime:
    """``2026-11-23`` (that day's midnight in the district) or ``2026-11-23T09:30`` (local
    unless it names an offset), as aware UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise SeedError(
            f"{text!r} is not a date: write 2026-11-23 or 2026-11-23T09:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class SeedResult:
    """What was written."""

    tickets: int
    events: int
    people: int  # new Person rows (people already there are reused)
    followers: int
    first_id: int
    last_id: int
    statuses: dict[str, int]
    actions: dict[str, int]
    start: datetime
    until: datetime


# --- the district -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    address: str
    lat: float
    lon: float
    station: str


@dataclass(frozen=True)
class _Category:
    key: str
    sla: timedelta
    descriptions: tuple[str, ...]


def _places(deployment: Deployment) -> list[_Place]:
    """The gazetteer's addresses inside a station's grid (or naming a station of the file)."""
    entries = list(Gazetteer.from_csv(deployment.gazetteer))
    keys = {station.key for station in deployment.stations}
    found = Grids.of(deployment).stations_at(
        [entry.lat for entry in entries], [entry.lon for entry in entries]
    )
    places = []
    for entry, inside in zip(entries, found, strict=True):
        station = entry.station_key if entry.station_key in keys else inside
        if station is not None:
            places.append(_Place(entry.address, entry.lat, entry.lon, station))
    if not places:
        raise SeedError(f"{deployment.gazetteer}: no address lies in a station's grid")
    return places


def _categories(deployment: Deployment) -> tuple[list[_Category], list[float]]:
    categories, weights = [], []
    for category in deployment.categories:
        said = DESCRIPTIONS.get(category.key) or tuple(
            f"{word}的问题" for word in category.keywords
        ) or (category.name,)
        categories.append(_Category(category.key, category.sla, said))
        weights.append(CATEGORY_WEIGHTS.get(category.key, 2.0))
    return categories, weights


def _name(rng: random.Random) -> str:
    given = rng.randrange(0, len(GIVEN), 2)
    return rng.choice(SURNAMES) + GIVEN[given : given + rng.choice((1, 2))]


# --- one ticket's life ------------------------------------------------------------------------

# An event as it is built: (at, actor_id, role, action, from, to, station, note, details).
_Event = tuple[datetime, int | None, str, str, str | None, str, str | None, str | None,
               dict[str, Any] | None]


@dataclass
class _Life:
    """A ticket while its history is made: the columns, and its events in time order."""

    id: int
    created: datetime
    reporter: int
    category: _Category
    place: _Place
    lat: float
    lon: float
    description: str
    chat: int
    status: str = Status.NEW
    station: str | None = None
    due: datetime | None = None
    claimed: datetime | None = None
    resolved: datetime | None = None
    closed: datetime | None = None
    resolution_note: str | None = None
    reason: str | None = None
    rating: str | None = None
    duplicate_of: int | None = None
    reports: int = 1
    next_at: datetime | None = None
    reminders_sent: int = 0
    escalated: datetime | None = None
    expected_by: datetime | None = None
    events: list[_Event] = field(default_factory=list)

    def status_at(self, moment: datetime) -> str:
        index = bisect.bisect_right([event[0] for event in self.events], moment)
        return self.events[index - 1][5] if index else Status.NEW


class _History:
    """Makes the tickets in creation order; a ticket is handed out once no later report can
    be merged into it any more (its events then final)."""

    def __init__(
        self, deployment: Deployment, seed_plan: SeedPlan, *, first_ticket: int,
        chiefs: dict[str, int], office: list[int], captains: dict[str, list[int]],
        places: list[_Place],
    ) -> None:
        self.plan = seed_plan
        self.rng = random.Random(f"gridbot-seed/{SEED_FORMAT}/{seed_plan.seed}")
        self.zone = deployment.zone
        self.policy = deployment.reminders
        self.auto_close_after = deployment.feedback.auto_close_after
        self.chats = deployment.intake_chats
        self.until = seed_plan.until.astimezone(UTC)
        self.next_id = first_ticket
        self.chiefs, self.office, self.captains = chiefs, office, captains
        self.categories, category_weights = _categories(deployment)
        self.category_weights = _cumulative(category_weights)
        self.places = list(places)
        self.rng.shuffle(self.places)  # which addresses are the hotspots
        self.place_weights = _cumulative(
            [1 / (rank + 1) ** ADDRESS_SKEW for rank in range(len(self.places))]
        )

    # the report times ----------------------------------------------------------------------

    def report_times(self) -> Iterator[datetime]:
        """``tickets`` moments in order, shaped by HOURS, WEEKDAYS and GROWTH."""
        rng, zone = self.rng, self.zone
        start, last = self.plan.start, self.until - timedelta(minutes=1)
        slots: list[tuple[datetime, float]] = []
        weights: list[float] = []
        first = day = start.astimezone(zone).date()
        while day <= last.astimezone(zone).date():
            grown = 1 + GROWTH * (day - first).days / (7 * self.plan.weeks)
            daily = WEEKDAYS[day.weekday()] * grown * rng.uniform(0.8, 1.2)
            for hour in range(24):
                begin = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
                low, high = max(begin, start), min(begin + timedelta(hours=1), last)
                if high > low:
                    slots.append((low, (high - low).total_seconds()))
                    weights.append(daily * HOURS[hour] * (high - low).total_seconds() / 3600)
            day += timedelta(days=1)
        for (low, seconds), count in zip(slots, _apportion(self.plan.tickets, weights, rng),
                                         strict=True):
            for offset in sorted(rng.random() * seconds for _ in range(count)):
                yield low + timedelta(seconds=round(offset, 3))

    # the tickets ---------------------------------------------------------------------------

    def tickets(self) -> Iterator[_Life]:
        """Each ticket once its history is final (no repeat can be merged into it any more),
        in id order."""
        pending: deque[_Life] = deque()
        for moment in self.report_times():
            while pending and pending[0].created < moment - REPEAT_WITHIN:
                yield pending.popleft()
            original = self._original(pending, moment) if (
                self.rng.random() < REPEAT_SHARE) else None
            life = self._repeat(moment, original) if original else self._new(moment)
            pending.append(life)
        while pending:
            yield pending.popleft()

    def _original(self, pending: deque[_Life], moment: datetime) -> _Life | None:
        """An open ticket reported shortly before, for a repeat at ``moment``."""
        for _ in range(4):
            if not pending:
                return None
            candidate = pending[self.rng.randrange(len(pending))]
            if (candidate.duplicate_of is None and candidate.created >= moment - REPEAT_WITHIN
                    and candidate.status_at(moment) in MERGEABLE):
                return candidate
        return None

    def _born(self, moment: datetime, place: _Place, category: _Category,
              near: tuple[float, float] | None = None) -> _Life:
        rng = self.rng
        reporters = self.captains.get(place.station) or [p for c in self.captains.values()
                                                          for p in c]
        lat, lon = near or (place.lat, place.lon)
        life = _Life(
            id=self.next_id, created=moment, reporter=rng.choice(reporters), category=category,
            place=place, lat=lat, lon=lon, description=rng.choice(category.descriptions),
            chat=self.chats[self.next_id % len(self.chats)],
        )
        self.next_id += 1
        life.events.append((moment, life.reporter, REPORTER, "report", None, Status.NEW, None,
                            f"{place.address} {life.description}", None))
        return life

    def _new(self, moment: datetime) -> _Life:
        rng = self.rng
        place = rng.choices(self.places, cum_weights=self.place_weights)[0]
        category = rng.choices(self.categories, cum_weights=self.category_weights)[0]
        life = self._born(moment, place, category)
        self._live(life)
        return life

    def _repeat(self, moment: datetime, original: _Life) -> _Life:
        """Another captain reports the same problem: placed a few metres off and merged."""
        rng = self.rng
        near = (original.lat + rng.uniform(-1e-4, 1e-4), original.lon + rng.uniform(-1e-4, 1e-4))
        life = self._born(moment, original.place, original.category, near)
        at = moment + timedelta(seconds=rng.uniform(2, 20))
        station = original.station
        life.station, life.duplicate_of, life.status = station, original.id, Status.DUPLICATE
        original.reports += 1
        score = round(rng.uniform(0.86, 0.99), 4)
        distance = round(rng.uniform(0, 15), 1)
        why = f"{score:.2f}: {distance:g} m apart, same category"
        life.events.append((at, None, SYSTEM, Action.MARK_DUPLICATE, Status.NEW,
                            Status.DUPLICATE, station, f"into #{original.id}: {why}",
                            {"into": original.id, "score": score, "distance_m": distance}))
        status = original.status_at(at)
        merged = (at, None, SYSTEM, "merged_in", status, status, station,
                  f"#{life.id} ({original.reports} reports)",
                  {"from": life.id, "score": score, "distance_m": distance})
        bisect.insort(original.events, merged, key=lambda event: event[0])
        return life

    # the lifecycle ---------------------------------------------------------------------------

    def _live(self, t: _Life) -> None:
        """Everything that happens to a located ticket until ``until``."""
        rng = self.rng
        at = t.created + timedelta(seconds=rng.uniform(2, 20))
        t.station, t.due = t.place.station, t.created + t.category.sla
        self._act(t, at, None, SYSTEM, Action.LOCATE,
                  note=f"{t.place.address} → {t.station} (gazetteer/exact 1.00)")
        chief = self.chiefs[t.station]

        if rng.random() < REJECT_SHARE:
            by_office = rng.random() < 0.3
            when = self._daytime(at + _hours(rng, 1.0, 1.0))
            if self._reached(t, when):
                self._act(t, when, rng.choice(self.office) if by_office else chief,
                          OFFICE if by_office else CHIEF, Action.REJECT,
                          note=rng.choice(REJECTIONS))
            return

        claim = self._daytime(at + _hours(rng, 1.0, 1.0))
        if not self._reached(t, claim):
            return
        self._act(t, claim, chief, CHIEF, Action.CLAIM)
        work = t.category.sla * rng.lognormvariate(math.log(0.3), 0.75)
        if rng.random() < PARK_SHARE:
            parked = self._daytime(claim + work / 3)
            if not self._reached(t, parked):
                return
            self._act(t, parked, chief, CHIEF, Action.PARK, note=rng.choice(PARKINGS))
            claim = self._daytime(parked + timedelta(days=rng.uniform(*PARKED_FOR)))
            if not self._reached(t, claim):
                return
            self._act(t, claim, chief, CHIEF, Action.UNPARK)
        elif work > EXPECT_AFTER and rng.random() < EXPECT_SHARE and not self._expect(
            t, claim + timedelta(seconds=rng.uniform(30, 600)), chief, claim + work
        ):
            return

        start, rework = claim, False
        while True:
            resolved = self._daytime(start + work)
            if not self._reached(t, resolved):
                return
            self._act(t, resolved, chief, CHIEF, Action.RESOLVE, note=rng.choice(RESOLUTIONS))
            answer = self._daytime(resolved + _hours(rng, 6.0, 1.2))
            verdict = rng.random()
            if verdict < CONFIRM_SHARE + (0 if rework else DISPUTE_SHARE):
                self._ticks(t, min(answer, self.until))  # the reply may come too late
                if t.status != Status.RESOLVED or answer >= self.until:
                    return
                if verdict < CONFIRM_SHARE:
                    self._act(t, answer, t.reporter, REPORTER, Action.CONFIRM)
                else:
                    self._act(t, answer, t.reporter, REPORTER, Action.DISPUTE,
                              note=rng.choice(DISPUTES))
                    start, rework = answer, True
                    work = t.category.sla * rng.lognormvariate(math.log(0.15), 0.6)
                    continue
            else:
                self._ticks(t, self.until)  # silence: it closes itself
            if t.status != Status.CLOSED or rng.random() >= OFFICE_REOPEN_SHARE:
                return
            assert t.closed is not None
            reopened = self._daytime(t.closed + timedelta(days=rng.uniform(1, 20)))
            if not self._reached(t, reopened):
                return
            self._act(t, reopened, rng.choice(self.office), OFFICE, Action.REOPEN,
                      note=rng.choice(REOPENINGS))
            start, rework = reopened, True
            work = t.category.sla * rng.lognormvariate(math.log(0.2), 0.6)

    def _expect(self, t: _Life, at: datetime, chief: int, done: datetime) -> bool:
        """The chief's 处理中: the day the work should be done; reminders wait for it."""
        if not self._reached(t, at):
            return False
        today = at.astimezone(self.zone).date()
        day = max(today, done.astimezone(self.zone).date() + timedelta(
            days=self.rng.choice((0, 0, 1))))
        t.expected_by = datetime.combine(day, time(23, 59, 59), tzinfo=self.zone).astimezone(UTC)
        t.events.append((at, chief, CHIEF, "expect", t.status, t.status, t.station,
                         f"expected by {day.isoformat()}", {"expected_by": day.isoformat()}))
        decision = plan(
            now=at, status=Status(t.status), due=t.due, reminders_sent=t.reminders_sent,
            escalated=t.escalated is not None, expected_by=t.expected_by, policy=self.policy,
            zone=self.zone,
        )
        if not decision.remind:
            t.next_at = decision.next_at
        return True

    def _reached(self, t: _Life, moment: datetime) -> bool:
        """Let the scheduler tick up to ``moment``; whether it comes before ``until``."""
        self._ticks(t, min(moment, self.until))
        return moment < self.until

    def _ticks(self, t: _Life, limit: datetime) -> None:
        """The reminder ticks the scheduler runs for this ticket before ``limit``."""
        while t.next_at is not None and t.next_at < limit:
            now = t.next_at
            decision = plan(
                now=now, status=Status(t.status), due=t.due, reminders_sent=t.reminders_sent,
                escalated=t.escalated is not None, expected_by=t.expected_by,
                policy=self.policy, zone=self.zone, resolved_at=t.resolved,
                auto_close_after=self.auto_close_after,
            )
            t.next_at = decision.next_at
            if decision.auto_close:
                self._act(t, now, None, SYSTEM, Action.AUTO_CLOSE, note=decision.reason)
                return
            if decision.remind:
                t.reminders_sent += 1
            if decision.escalate:
                t.escalated = now
            if decision.remind or decision.escalate:
                t.events.append((now, None, SYSTEM, "escalate" if decision.escalate else "remind",
                                 t.status, t.status, t.station, decision.reason, None))

    def _act(self, t: _Life, at: datetime, actor: int | None, role: Role, action: Action,
             *, note: str | None = None) -> None:
        """A lifecycle action, with the columns `TicketService.act` sets."""
        before = t.status
        after = TRANSITIONS[(Status(before), action)].target
        t.status = after
        if action is Action.CLAIM:
            t.claimed = at
        elif action is Action.RESOLVE:
            t.resolved, t.resolution_note = at, note
        elif action in (Action.REJECT, Action.DISPUTE, Action.REOPEN):
            t.reason = note
        if action is Action.REOPEN:
            t.closed = None
        if action in (Action.CONFIRM, Action.AUTO_CLOSE):
            t.closed = at
            t.rating = "satisfied" if action is Action.CONFIRM else None
        if action is Action.DISPUTE:
            t.rating = "unsatisfied"
        if action is Action.REJECT:
            t.closed = at
        # TicketService._schedule_reminders
        if after is Status.RESOLVED:
            t.next_at = at + self.auto_close_after
        elif after in (Status.ASSIGNED, Status.REOPENED) and after != before:
            t.reminders_sent, t.expected_by = 0, None
            t.next_at = first_reminder_at(created=at, policy=self.policy, zone=self.zone,
                                          due=t.due)
        elif after not in (Status.ASSIGNED, Status.CLAIMED, Status.REOPENED):
            t.next_at = None
        t.events.append((at, actor, role, action, before, after, t.station, note, None))

    def _daytime(self, moment: datetime) -> datetime:
        """People act in the daytime: a moment at night mostly moves to the next morning."""
        local = moment.astimezone(self.zone)
        if WORKDAY[0] <= local.hour < WORKDAY[1] or self.rng.random() < 0.1:
            return moment
        day = local.date() + timedelta(days=0 if local.hour < WORKDAY[0] else 1)
        morning = datetime.combine(day, time(WORKDAY[0]), tzinfo=self.zone).astimezone(UTC)
        return morning + timedelta(seconds=self.rng.uniform(0, 9_000))


def _hours(rng: random.Random, median: float, sigma: float) -> timedelta:
    return timedelta(hours=rng.lognormvariate(math.log(median), sigma))


def _cumulative(weights: list[float]) -> list[float]:
    total, running = 0.0, []
    for weight in weights:
        total += weight
        running.append(total)
    return running


def _apportion(total: int, weights: list[float], rng: random.Random) -> list[int]:
    """``total`` split over ``weights`` exactly, the remainders drawn at random."""
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    counts = [int(share) for share in shares]
    left = total - sum(counts)
    if left:
        for index in rng.choices(range(len(counts)), weights=[
                share - count for share, count in zip(shares, counts, strict=True)], k=left):
            counts[index] += 1
    return counts


# --- rows -------------------------------------------------------------------------------------


def _ticket_row(t: _Life) -> dict[str, Any]:
    moved = [event[0] for event in t.events if event[3] not in ("remind", "escalate")]
    return {
        "id": t.id, "status": str(t.status), "category_key": t.category.key,
        "station_key": t.station, "reporter_id": t.reporter, "description": t.description,
        "address_text": t.place.address, "address": t.place.address,
        "lat": t.lat, "lon": t.lon, "location_source": "gazetteer", "location_confidence": 1.0,
        "source_chat_id": t.chat, "source_message_id": MESSAGE_IDS + t.id,
        "media_group_id": None, "language": "zh_CN", "created_at": t.created,
        "updated_at": max(moved), "due_at": t.due, "claimed_at": t.claimed,
        "resolved_at": t.resolved, "closed_at": t.closed,
        "resolution_note": t.resolution_note, "reason": t.reason, "rating": t.rating,
        "duplicate_of": t.duplicate_of, "reports": t.reports, "next_reminder_at": t.next_at,
        "reminders_sent": t.reminders_sent, "escalated_at": t.escalated,
        "expected_by": t.expected_by, "cell": cell_of(t.lat, t.lon),
    }


NO_DETAILS: dict[str, Any] = {}  # an event's details when it has none (never changed)
# TicketEvent's columns in table order: its rows are made as tuples (there are many).
EVENT_COLUMNS = ("id", "ticket_id", "at", "station_key", "actor_id", "role", "action",
                 "from_status", "to_status", "note", "details")


def _event_rows(t: _Life, first_id: int) -> list[list[Any]]:
    return [
        [first_id + n, t.id, at, station, actor, str(role), str(action),
         None if before is None else str(before), str(after), note, details or NO_DETAILS]
        for n, (at, actor, role, action, before, after, station, note, details)
        in enumerate(t.events)
    ]


# --- writing ----------------------------------------------------------------------------------


class _Bulk:
    """One table's INSERT for ``executemany``, compiled once for the dialect, with rows turned
    into the driver's values as SQLAlchemy's bind processors would (UTC to naive, JSON to
    text) but without its per-row parameter machinery, which otherwise costs more than the
    database's own work."""

    def __init__(self, dialect: sa.Dialect, model: Any) -> None:
        table: sa.Table = model.__table__
        columns = [column.key for column in table.columns]
        compiled = sa.insert(table).compile(dialect=dialect, column_keys=columns)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.order = list(compiled.positiontup or columns)
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, key in enumerate(self.order):
            column_type = table.c[key].type.dialect_impl(dialect)
            processor = column_type.bind_processor(dialect)
            if isinstance(column_type, UTCDateTime):
                self.converters.append((index, _utc_converter(column_type, dialect)))
            elif processor is not None and isinstance(column_type, sa.JSON):
                self.converters.append((index, _json_converter(processor)))
            elif processor is not None:
                self.converters.append((index, processor))

    def values(self, row: dict[str, Any]) -> Any:
        return self.ordered([row[key] for key in self.order])

    def ordered(self, values: list[Any]) -> Any:
        """A row given as its values in table order (changed in place)."""
        for index, convert in self.converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        return tuple(values) if self.positional else dict(zip(self.order, values, strict=True))


def _json_converter(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    empty = processor({})  # most events have no details: their "{}" is made once

    def convert(value: Any) -> Any:
        return processor(value) if value else empty

    return convert


def _utc_converter(column_type: UTCDateTime, dialect: sa.Dialect) -> Callable[[datetime], Any]:
    """The column's bind processor for the aware UTC moments made here, at C speed where
    the result is the same: naive for PostgreSQL, ISO text with microseconds for SQLite
    (checked against SQLAlchemy's own processor before it is used)."""
    full = column_type.bind_processor(dialect)
    assert full is not None
    impl = column_type.impl_instance.bind_processor(dialect)
    if impl is None:
        def naive(moment: datetime) -> Any:
            return moment.replace(tzinfo=None)
        fast = naive
    else:
        def text(moment: datetime) -> Any:  # "2026-11-23 09:05:07.000000+00:00", less the zone
            return moment.isoformat(" ", "microseconds")[:26]
        fast = text
    samples = (datetime(2026, 11, 23, 9, 5, 7, tzinfo=UTC),
               datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC))
    return fast if all(fast(m) == full(m) for m in samples) else full


@dataclass
class _Batch:
    tickets: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    followers: list[Any] = field(default_factory=list)


def _batches(
    history: _History, dialect: sa.Dialect, *, first_event: int, first_follower: int,
    statuses: Counter[str], actions: Counter[str],
) -> Iterator[_Batch]:
    """The history in transactions of CHUNK tickets, as driver values."""
    tickets, events = _Bulk(dialect, Ticket), _Bulk(dialect, TicketEvent)
    followers = _Bulk(dialect, TicketFollower)
    if tuple(events.order) != EVENT_COLUMNS:
        raise SeedError(f"the ticketevent table's columns changed: {events.order}")
    next_event, next_follower = first_event, first_follower
    batch = _Batch()
    for life in history.tickets():
        batch.tickets.append(tickets.values(_ticket_row(life)))
        batch.events.extend(events.ordered(row) for row in _event_rows(life, next_event))
        next_event += len(life.events)
        statuses[str(life.status)] += 1
        actions.update(str(event[3]) for event in life.events)
        if life.duplicate_of is not None:
            batch.followers.append(followers.values({
                "id": next_follower, "ticket_id": life.duplicate_of, "person_id": life.reporter,
                "via_ticket_id": life.id, "created_at": life.events[-1][0],
            }))
            next_follower += 1
        if len(batch.tickets) >= CHUNK:
            yield batch
            batch = _Batch()
    if batch.tickets:
        yield batch


async def seed_history(
    engine: AsyncEngine,
    deployment: Deployment,
    seed_plan: SeedPlan,
    *,
    append: bool = False,
    on_progress: Callable[[int], None] = lambda written: None,
) -> SeedResult:
    """Write ``seed_plan``'s history into a migrated database whose stations match the
    deployment (`bot.app.prepare_database`). Refuses a database with tickets unless
    ``append``, which continues every id after the largest. ``on_progress`` hears 0 once the
    database is found fit, then how many tickets each transaction wrote."""
    places = _places(deployment)
    async with engine.begin() as connection:
        tickets = int((await connection.execute(
            sa.select(sa.func.count()).select_from(Ticket)
        )).scalar_one())
        last_ticket = await _largest(connection, col(Ticket.id))
        if tickets and not append:
            raise AlreadySeeded(tickets, last_ticket)
        stations = set((await connection.execute(sa.select(col(Station.key)))).scalars())
        missing = sorted({s.key for s in deployment.stations} - stations)
        if missing:
            raise SeedError(f"stations {', '.join(missing)} are not in the database; "
                            "prepare it as the bot does first")
        last_event = await _largest(connection, col(TicketEvent.id))
        last_follower = await _largest(connection, col(TicketFollower.id))
        people, chiefs, office, captains = await _people(
            connection, deployment, seed_plan, places
        )

    history = _History(deployment, seed_plan, first_ticket=last_ticket + 1, chiefs=chiefs,
                       office=office, captains=captains, places=places)
    on_progress(0)  # the checks passed: writing starts
    statuses: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    batches = _batches(history, engine.dialect, first_event=last_event + 1,
                       first_follower=last_follower + 1, statuses=statuses, actions=actions)
    sql = {name: _Bulk(engine.dialect, model).sql
           for name, model in (("tickets", Ticket), ("events", TicketEvent),
                               ("followers", TicketFollower))}
    written = events = followers = 0
    for batch in batches:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(sql["tickets"], batch.tickets)
            await connection.exec_driver_sql(sql["events"], batch.events)
            if batch.followers:
                await connection.exec_driver_sql(sql["followers"], batch.followers)
        written += len(batch.tickets)
        events += len(batch.events)
        followers += len(batch.followers)
        on_progress(len(batch.tickets))
    await _after_bulk_load(engine)
    return SeedResult(
        tickets=written, events=events, people=people, followers=followers,
        first_id=last_ticket + 1, last_id=last_ticket + written,
        statuses=dict(statuses.most_common()), actions=dict(actions.most_common()),
        start=seed_plan.start, until=seed_plan.until.astimezone(UTC),
    )


async def _largest(connection: AsyncConnection, column: Any) -> int:
    return int((await connection.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))))
               .scalar_one())


async def _people(
    connection: AsyncConnection, deployment: Deployment, seed_plan: SeedPlan,
    places: list[_Place],
) -> tuple[int, dict[str, int], list[int], dict[str, list[int]]]:
    """The chiefs, two office members and a few hundred captains (each with a building in
    their station's grid); people already in the database (by Telegram id) are reused.
    Returns how many rows were new, and the ids of chiefs by station, office, captains by
    station."""
    rng = random.Random(f"gridbot-seed-people/{SEED_FORMAT}/{seed_plan.seed}")
    joined = seed_plan.start - timedelta(days=90)
    wanted: list[dict[str, Any]] = []

    def person(telegram_id: int, role: str, station: str | None, building: str | None) -> None:
        wanted.append({
            "telegram_id": telegram_id, "name": _name(rng), "username": None,
            "language": "zh_CN", "role": role, "station_key": station,
            "private_chat_started": True, "created_at": joined, "building": building,
            "language_chosen": False, "joined_at": joined,
        })

    for station in deployment.stations:
        person(station.chief, "chief", station.key, None)
    for n in range(OFFICE_STAFF):
        person(OFFICE_IDS + n, "office", None, None)
    by_station: dict[str, list[_Place]] = {}
    for place in places:
        by_station.setdefault(place.station, []).append(place)
    count = min(600, max(4 * len(by_station), seed_plan.tickets // 20))
    keys = sorted(by_station)
    homes = [keys[n] if n < len(keys) else rng.choices(
        keys, weights=[len(by_station[k]) for k in keys])[0] for n in range(count)]
    for n, key in enumerate(homes):
        person(CAPTAIN_IDS + n, "captain", key, rng.choice(by_station[key]).address)

    known: dict[int, int] = {
        telegram_id: int(person_id or 0)
        for telegram_id, person_id in (await connection.execute(
            sa.select(col(Person.telegram_id), col(Person.id))
            .where(col(Person.telegram_id).in_([row["telegram_id"] for row in wanted]))
        )).all()
    }
    next_id = await _largest(connection, col(Person.id)) + 1
    new = []
    for row in wanted:
        if row["telegram_id"] not in known:
            known[row["telegram_id"]] = next_id
            new.append({"id": next_id, **row})
            next_id += 1
    if new:
        await connection.execute(sa.insert(Person), new)
    chiefs = {s.key: known[s.chief] for s in deployment.stations}
    office = [known[OFFICE_IDS + n] for n in range(OFFICE_STAFF)]
    captains: dict[str, list[int]] = {}
    for n, key in enumerate(homes):
        captains.setdefault(key, []).append(known[CAPTAIN_IDS + n])
    return len(new), chiefs, office, captains


async def _after_bulk_load(engine: AsyncEngine) -> None:
    """PostgreSQL: move the id sequences past the explicit ids, and gather the planner's
    statistics as autovacuum would on a live server."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.begin() as connection:
        for table in ("person", "ticket", "ticketevent", "ticket_follower"):
            await connection.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            ))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(sa.text("ANALYZE"))
