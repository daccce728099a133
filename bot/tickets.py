"""Ticket service: reports become tickets, get placed and routed, and move through the lifecycle.

Plain Python over a database session: handlers call it, it changes rows, writes the events
and the outbox messages in one transaction, commits, and wakes the sender.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from math import ceil
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import MoveTo, MyPage, OpenPage, TicketButton, TicketsPage
from bot.dates import parse_expected_date
from bot.dedup import Sighting, Similarity, best_match, cell_of, cells_around
from bot.deployment import Deployment
from bot.intake import classify, looks_like_problem, parse_caption
from bot.lifecycle import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    NotPermitted,
    Role,
    Status,
    TicketError,
    TicketNotFound,
    next_status,
)
from bot.locating import Place
from bot.notify import Button, Notifier, desk_buttons, office_buttons
from bot.permissions import FEATURES, OFFICE_ROLES, Feature, Standing, may, standing_of
from bot.photos import (
    ImageInfo,
    PhotoError,
    PhotoStore,
    StoredPhoto,
    inspect_image,
    strip_metadata,
)
from bot.placing import Finding, Placer
from bot.reminders import REMINDED_STATUSES, first_reminder_at, plan
from storage import repo
from storage.models import Person, Photo, Station, Ticket, TicketEvent, TicketFollower

MAX_CAPTION = 1024  # Telegram's own caption limit; longer text is refused politely
ADDRESS_WAIT = timedelta(hours=6)  # a bare address reply completes a report this recent
# Merged reporters hear of these steps of the ticket they follow.
FOLLOWERS_HEAR = frozenset(
    {Action.CLAIM, Action.RESOLVE, Action.REJECT, Action.CONFIRM, Action.AUTO_CLOSE,
     Action.DISPUTE, Action.REASSIGN, Action.REOPEN}
)
# A note or a reason longer than this (TicketEvent.note) is cut, and the writer told so:
# Telegram clients split a long text into several messages, and only the first answers.
MAX_NOTE = 1024
NEEDS_REASON = frozenset({Action.REJECT, Action.REASSIGN, Action.REOPEN})
DESK_PAGE = 5  # tickets per /tickets page: fits a phone screen
OPEN_FOR_CHIEF = (Status.ASSIGNED, Status.CLAIMED, Status.REOPENED, Status.PARKED)
EXPECT_WITHIN = timedelta(days=90)  # "处理中" further out than this is not in progress
CARD_NOTES = 3  # the latest notes shown on the office's ticket card
CARD_REASON = 200  # characters of a reassignment's reason shown on the new chief's card
TELL_HOW_TO_JOIN_EVERY = timedelta(minutes=10)  # `intake: members`: one pointer per person


@dataclass(frozen=True)
class Sender:
    """Who sent an update, as Telegram describes them."""

    telegram_id: int
    name: str
    username: str | None = None
    language: str | None = None  # already normalised to a catalog locale


@dataclass(frozen=True)
class IncomingPhoto:
    file_id: str
    file_unique_id: str
    data: bytes
    as_document: bool = False  # sent as a file: keeps EXIF (GPS) that others must not see


@dataclass(frozen=True)
class IncomingReport:
    chat_id: int
    message_id: int
    sender: Sender
    caption: str | None
    photos: Sequence[IncomingPhoto] = ()
    media_group_id: str | None = None
    point: tuple[float, float] | None = None
    # A guided report (/report in private) says these outright rather than in a caption.
    place: Place | None = None
    category_key: str | None = None
    description: str | None = None
    address_text: str | None = None


@dataclass
class Outcome:
    ticket: Ticket | None
    created: bool = False
    notes: list[str] = field(default_factory=list)


class MissingInput(TicketError):
    """An action needs something the person has not given yet (a reason, an after-photo)."""

    message_key = "error.missing_input"


class NothingToExpect(TicketError):
    """"处理中" is an answer about work the chief owes; a finished ticket has none."""

    message_key = "error.not_allowed_in_state"

    def __init__(self, status: Status) -> None:
        super().__init__(f"no expected day for a ticket that is {status}", status=status)


class NotTheChief(TicketError):
    """Only the chief of the ticket's station says when it will be done."""

    message_key = "error.not_permitted"


class UnusableDay(TicketError):
    """An answer to "预计哪天处理好？" that names no usable day; the question stays open."""


class DayNotUnderstood(UnusableDay):
    message_key = "chief.expected_unclear"


class DayPassed(UnusableDay):
    message_key = "chief.expected_passed"


class DayTooFar(UnusableDay):
    message_key = "chief.expected_too_far"


class TicketService:
    def __init__(
        self,
        *,
        deployment: Deployment,
        placer: Placer,
        photo_store: PhotoStore,
        notifier: Notifier,
        clock: Callable[[], datetime],
        wake_sender: Callable[[], None] = lambda: None,
    ) -> None:
        self.deployment = deployment
        self.placer = placer
        self.photo_store = photo_store
        self.notifier = notifier
        self.clock = clock
        self.wake_sender = wake_sender

    async def _commit(self, session: AsyncSession) -> None:
        await session.commit()
        self.wake_sender()

    async def person(self, session: AsyncSession, sender: Sender) -> Person:
        chief_of = next(
            (s.key for s in self.deployment.stations if s.chief == sender.telegram_id), None
        )
        return await repo.upsert_person(
            session=session,
            telegram_id=sender.telegram_id,
            name=sender.name,
            username=sender.username,
            language=sender.language,
            now=self.clock(),
            role="chief" if chief_of else None,
            station_key=chief_of,
        )

    def allows(self, person: Person | None, telegram_id: int, feature: Feature) -> bool:
        """The command table (bot.permissions) for someone already looked up."""
        return may(feature, standing_of(person, telegram_id, self.deployment), self.deployment)

    async def may(self, session: AsyncSession, sender: Sender, feature: Feature) -> bool:
        """The command table (bot.permissions) for this sender."""
        person = await repo.person_by_telegram_id(session=session, telegram_id=sender.telegram_id)
        return self.allows(person, sender.telegram_id, feature)

    async def may_report(self, session: AsyncSession, sender: Sender) -> bool:
        """Whether the deployment's `intake` takes reports from this person."""
        return await self.may(session, sender, Feature.REPORT)

    async def _tell_how_to_join(
        self, session: AsyncSession, *, chat_id: int, reply_to: int, sender: Sender
    ) -> None:
        """`intake: members` and not a member: how to join, not every time; nothing kept."""
        purpose = f"join:{sender.telegram_id}"
        if not await repo.recently_told(
            session=session, chat_id=chat_id, purpose=purpose,
            since=self.clock() - TELL_HOW_TO_JOIN_EVERY,
        ):
            locale = self.notifier.group_locale
            await self.notifier.send(
                session, chat_id=chat_id, reply_to=reply_to, locale=locale, purpose=purpose,
                text=self.notifier.t("intake.members_only", locale, name=escape(sender.name)),
            )
        await self._commit(session)

    # --- intake ---------------------------------------------------------------------------

    async def submit_report(self, session: AsyncSession, report: IncomingReport) -> Outcome:
        """A photo report from an intake chat; the same message twice makes one ticket."""
        if self.deployment.is_intake_chat(report.chat_id) and not await self.may_report(
            session, report.sender
        ):
            await self._tell_how_to_join(
                session, chat_id=report.chat_id, reply_to=report.message_id, sender=report.sender
            )
            return Outcome(None)
        existing = await repo.ticket_by_source(
            session=session, chat_id=report.chat_id, message_id=report.message_id
        )
        if existing is None and report.media_group_id:
            existing = await repo.ticket_by_album(
                session=session, chat_id=report.chat_id, media_group_id=report.media_group_id
            )
        if existing is not None:
            return Outcome(existing)

        caption = (report.caption or "").strip()
        if len(caption) > MAX_CAPTION:
            await self.notifier.reply(
                session, chat_id=report.chat_id, reply_to=report.message_id,
                key="error.caption_too_long", length=len(caption), limit=MAX_CAPTION,
            )
            await self._commit(session)
            return Outcome(None)

        checked: list[tuple[IncomingPhoto, ImageInfo]] = []
        for photo in report.photos:
            try:
                checked.append((photo, await asyncio.to_thread(inspect_image, photo.data)))
            except PhotoError as error:
                await self.notifier.reply(
                    session, chat_id=report.chat_id, reply_to=report.message_id,
                    key=error.message_key, **error.params,
                )
                await self._commit(session)
                return Outcome(None)

        # Find the place before writing anything: an online provider may take seconds, and
        # no write transaction should wait on the network.
        parsed = parse_caption(caption)
        finding = Finding(None)
        if report.place is not None:
            finding = self.placer.confirmed(report.place)
        elif report.point is not None:
            finding = await self.placer.from_point(*report.point, source="location")
        elif caption:
            finding = await self.placer.from_text(caption)
        if finding.place is None:
            # A picture sent as a file keeps the camera's GPS; compressed photos never do.
            gps = next((info.gps for _, info in checked if info.gps is not None), None)
            if gps is not None:
                from_gps = await self.placer.from_point(*gps, source="exif")
                if from_gps.place is not None:
                    finding = from_gps

        reporter = await self.person(session, report.sender)
        kept = [await self._keep_photo(photo, info) for photo, info in checked]
        now = self.clock()
        ticket = Ticket(
            status=Status.NEW,
            category_key=report.category_key or classify(
                parsed.description or caption,
                [(c.key, c.keywords) for c in self.deployment.categories],
                default=self.deployment.default_category,
            ),
            reporter_id=reporter.id or 0,
            description=(
                parsed.description or "" if report.description is None
                else report.description
            ),
            address_text=report.address_text or parsed.address,
            source_chat_id=report.chat_id,
            source_message_id=report.message_id,
            media_group_id=report.media_group_id,
            language=reporter.language,
            created_at=now,
            updated_at=now,
        )
        route = await self._route(
            session, ticket=ticket, finding=finding,
            photos=[k.keys for k in kept],
        )
        # Everything read: from here on this transaction only writes.
        await repo.add_ticket(session=session, ticket=ticket)
        photos = [
            await self._add_photo(session, ticket=ticket, kept=k, kind="report") for k in kept
        ]
        await self._event(
            session, ticket=ticket, actor=reporter, role=Role.REPORTER, action="report",
            before=None, note=caption or report.description or None,
        )
        await self._settle_place(
            session, ticket=ticket, finding=finding, route=route, reporter=reporter,
            photo=photos[0] if photos else None,
        )
        await self._commit(session)
        return Outcome(ticket, created=True)

    async def submit_form(self, session: AsyncSession, report: IncomingReport) -> Outcome:
        """A guided report from a private chat, its source message the form's summary: a
        second press of 提交, even one handled at the same moment, finds the first ticket."""
        reporter = await self.person(session, report.sender)
        reporter.private_chat_started = True  # they wrote to the bot: it may write back
        session.add(reporter)
        if report.category_key not in {c.key for c in self.deployment.categories}:
            report = replace(report, category_key=None)  # the deployment changed meanwhile
        try:
            return await self.submit_report(session, report)
        except IntegrityError:  # the other press made the ticket first
            await session.rollback()
            existing = await repo.ticket_by_source(
                session=session, chat_id=report.chat_id, message_id=report.message_id
            )
            if existing is None:
                raise
            return Outcome(existing)

    async def reported_from(
        self, session: AsyncSession, *, chat_id: int, message_id: int
    ) -> Ticket | None:
        """The ticket a message became (a group report, or a guided report's summary)."""
        return await repo.ticket_by_source(session=session, chat_id=chat_id, message_id=message_id)

    async def place_at_building(
        self, session: AsyncSession, *, chat_id: int, sender: Sender, ask_message_id: int
    ) -> Outcome:
        """The reporter taps "it is at my registered building" under "where is it?"."""
        reporter = await repo.person_by_telegram_id(
            session=session, telegram_id=sender.telegram_id
        )
        if reporter is None or not reporter.building:
            return Outcome(None)
        return await self.supply_place(
            session, chat_id=chat_id, sender=sender, reply_to=ask_message_id,
            text=reporter.building,
        )

    async def supply_place(
        self,
        session: AsyncSession,
        *,
        chat_id: int,
        sender: Sender,
        reply_to: int | None,
        text: str | None = None,
        point: tuple[float, float] | None = None,
        venue: str | None = None,
    ) -> Outcome:
        """A captain answers "where is it?" with text, a shared location or a venue.

        Returns ``Outcome(None)`` when the message is not an answer to a waiting report,
        so the caller can leave ordinary chat alone.
        """
        reporter = await repo.person_by_telegram_id(
            session=session, telegram_id=sender.telegram_id
        )
        if reporter is None:
            return Outcome(None)
        ticket = None
        if reply_to is not None:
            ticket = await repo.ticket_for_bot_message(
                session=session, chat_id=chat_id, message_id=reply_to
            ) or await repo.ticket_by_source(session=session, chat_id=chat_id, message_id=reply_to)
        if ticket is None:
            ticket = await repo.ticket_waiting_for_address(
                session=session, chat_id=chat_id, reporter_id=reporter.id or 0,
                since=self.clock() - ADDRESS_WAIT,
            )
        if (
            ticket is None
            or ticket.reporter_id != reporter.id
            or ticket.status != Status.NEW
            or ticket.lat is not None
        ):
            return Outcome(None)

        if point is not None:
            source = "venue" if venue else "location"
            finding = await self.placer.from_point(*point, source=source, label=venue)
            if finding.place is None:
                return Outcome(None)  # not a place on Earth: a forged location
        else:
            text = (text or "").strip()
            if not text or len(text) > MAX_CAPTION:
                return Outcome(None)
            finding = await self.placer.from_text(text)
            if finding.place is None and reply_to is None and not finding.span:
                return Outcome(None)  # chatter, not an answer
            parsed = parse_caption(text)
            if not ticket.description and parsed.description:
                ticket.description = parsed.description
            ticket.address_text = parsed.address or text
        with session.no_autoflush:  # the changes above are written with the rest
            route = await self._route(session, ticket=ticket, finding=finding)
            photo = await repo.card_photo(session=session, ticket_id=ticket.id or 0)
        await self._settle_place(
            session, ticket=ticket, finding=finding, route=route, reporter=reporter,
            photo=photo,
        )
        await self._commit(session)
        return Outcome(ticket)

    async def ask_for_photo(
        self, session: AsyncSession, *, chat_id: int, message_id: int, text: str,
        sender: Sender | None = None,
    ) -> bool:
        """A text that is clearly a report (a located address and a problem) but no photo;
        from someone `intake: members` does not take reports from: how to join."""
        if len(text) > MAX_CAPTION:
            return False
        parsed = parse_caption(text)
        if not parsed.address or not parsed.description:
            return False
        if not looks_like_problem(parsed.description):
            return False
        finding = await self.placer.from_text(text)
        if finding.place is None:
            return False
        if sender is not None and not await self.may_report(session, sender):
            await self._tell_how_to_join(
                session, chat_id=chat_id, reply_to=message_id, sender=sender
            )
            return True
        await self.notifier.reply(
            session, chat_id=chat_id, reply_to=message_id, key="ack.ask_photo",
            address=escape(finding.place.address),
        )
        await self._commit(session)
        return True

    async def refuse(
        self, session: AsyncSession, *, chat_id: int, reply_to: int | None, key: str,
        locale: str | None = None, **params: object,
    ) -> None:
        """A polite answer to bad input; nothing else changes."""
        await self.notifier.reply(
            session, chat_id=chat_id, reply_to=reply_to, key=key, locale=locale, **params
        )
        await self._commit(session)

    async def refuse_feature(
        self, session: AsyncSession, *, chat_id: int, reply_to: int | None, feature: Feature,
        locale: str,
    ) -> None:
        """A command this person may not use: say who may (bot.permissions)."""
        t = self.notifier.t
        separator = "、" if locale.startswith("zh") else ", "
        who = separator.join(
            t(f"role.{standing}", locale) for standing in Standing if standing in FEATURES[feature]
        )
        await self.refuse(
            session, chat_id=chat_id, reply_to=reply_to, key="error.command_not_permitted",
            locale=locale, command=feature.value, who=who,
        )

    async def greet(self, session: AsyncSession, *, sender: Sender) -> None:
        """/start in private: from now on the bot may write to this person directly."""
        person = await self.person(session, sender)
        person.private_chat_started = True
        session.add(person)
        key = "common.start_chief" if person.role == "chief" else "common.start"
        await self.notifier.reply(
            session, chat_id=sender.telegram_id, reply_to=None, key=key, locale=person.language,
            name=escape(person.name),
        )
        await self._commit(session)

    # --- the lifecycle --------------------------------------------------------------------

    async def roles_of(self, session: AsyncSession, person: Person, ticket: Ticket) -> set[Role]:
        roles: set[Role] = set()
        if ticket.reporter_id == person.id:
            roles.add(Role.REPORTER)
        if ticket.station_key:
            station = await repo.get_station(session=session, key=ticket.station_key)
            if station is not None and station.chief_telegram_id == person.telegram_id:
                roles.add(Role.CHIEF)
            # A deputy chief, invited or listed in the deployment file (joined_at): a former
            # chief of the station the deployment has since replaced never joined that way.
            if (
                person.role == "chief" and person.station_key == ticket.station_key
                and person.joined_at is not None
            ):
                roles.add(Role.CHIEF)
        if person.role in OFFICE_ROLES:
            roles.add(Role.OFFICE)
        return roles

    async def _load(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender
    ) -> tuple[Ticket, Person, set[Role]]:
        ticket = await repo.lock_ticket(session=session, ticket_id=ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket {ticket_id}")
        person = await self.person(session, sender)
        return ticket, person, await self.roles_of(session, person, ticket)

    async def prompt(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender, action: Action,
        chat_id: int, reply_to: int | None = None,
    ) -> Ticket:
        """Check the action is allowed, then ask for what it needs (reason, photo, comment)."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        next_status(Status(ticket.status), action, roles)
        key = {
            Action.RESOLVE: "chief.ask_resolution",
            Action.REJECT: "chief.ask_reject_reason",
            Action.DISPUTE: "reporter.ask_comment",
            Action.NOTE: "desk.ask_note",
            Action.REOPEN: "office.ask_reopen_reason",
        }[action]
        buttons = [[Button("button.skip", "skip")]] if action is Action.DISPUTE else []
        locale = person.language if chat_id == person.telegram_id else None
        locale = locale or self.notifier.group_locale
        await self.notifier.send(
            session, chat_id=chat_id, reply_to=reply_to, locale=locale, ticket=ticket,
            buttons=buttons,
            text=self.notifier.t(key, locale, **self.notifier.fields(ticket, locale)),
        )
        await self._commit(session)
        return ticket

    async def act(
        self,
        session: AsyncSession,
        *,
        ticket_id: int,
        sender: Sender,
        action: Action,
        note: str | None = None,
        photo: IncomingPhoto | None = None,
        station_key: str | None = None,
    ) -> Ticket:
        """Take a lifecycle action for a person, with the server-side permission check.

        A reassignment goes to ``station_key`` and keeps the deadline: the resident's clock
        started with the report and does not restart because a station passed it on; the
        new chief's reminders start afresh."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        before = Status(ticket.status)
        after = next_status(before, action, roles)
        target = None
        if action is Action.REASSIGN:
            target = await self._target_station(session, ticket, station_key)
        typed = len((note or "").strip())
        note = (note or "").strip()[:MAX_NOTE] or None
        if action in NEEDS_REASON and not note:
            raise MissingInput(f"{action} needs a reason")
        if action is Action.RESOLVE and photo is None:
            raise MissingInput("a resolution needs an after-photo")
        kept = None
        if photo is not None:
            try:
                info = await asyncio.to_thread(inspect_image, photo.data)
            except PhotoError as error:
                raise PhotoRefused(error) from error
            kept = await self._keep_photo(photo, info)
        audience = await self._audience(
            session, ticket=ticket, action=action,
            station_key=target.key if target is not None else ticket.station_key,
        )
        # Everything read: from here on this transaction only writes.
        after_photo = None
        if kept is not None:
            after_photo = await self._add_photo(session, ticket=ticket, kept=kept, kind="after")
        role = self._acting_role(before, action, roles)
        now = self.clock()
        ticket.status = after
        ticket.updated_at = now
        previous = ticket.station_key
        if action is Action.CLAIM:
            ticket.claimed_at = now
        elif action is Action.RESOLVE:
            ticket.resolved_at, ticket.resolution_note = now, note
        elif action in (Action.REJECT, Action.DISPUTE, Action.REOPEN):
            ticket.reason = note
        elif action is Action.REASSIGN and target is not None:
            ticket.station_key, ticket.claimed_at = target.key, None
        if action is Action.REOPEN:
            ticket.closed_at = None
        if action in (Action.CONFIRM, Action.AUTO_CLOSE):
            ticket.closed_at = now
            ticket.rating = "satisfied" if action is Action.CONFIRM else None
        if action is Action.DISPUTE:
            ticket.rating = "unsatisfied"
        if action is Action.REJECT:
            ticket.closed_at = now
        self._schedule_reminders(
            ticket, before=before, now=now, restart=action is Action.REASSIGN
        )
        session.add(ticket)
        moved = {"from": previous, "to": ticket.station_key} if target is not None else None
        await self._event(
            session, ticket=ticket, actor=person, role=role, action=action, before=before,
            note=note, details=moved,
        )
        await self._tell(
            session, ticket=ticket, action=action, photo=after_photo, note=note,
            audience=audience,
        )
        if action in NEEDS_REASON and typed > MAX_NOTE:
            await self._tell_cut(session, person=person, ticket=ticket, length=typed)
        if role is Role.OFFICE:  # the office acts from a card: say what became of it
            await self.notifier.reply(
                session, chat_id=person.telegram_id, reply_to=None, key="open.done",
                locale=person.language, number=ticket.id,
                status=self.notifier.t(f"status.{ticket.status}", person.language),
            )
        await self._commit(session)
        return ticket

    @staticmethod
    def _acting_role(before: Status, action: Action, roles: set[Role]) -> Role:
        """The role a person acts in, when they hold several (a chief reporting in their grid)."""
        allowed = TRANSITIONS[(before, action)].roles
        return next(r for r in (Role.CHIEF, Role.REPORTER, Role.OFFICE, Role.SYSTEM)
                    if r in roles and r in allowed)

    async def _audience(
        self, session: AsyncSession, *, ticket: Ticket, action: Action, station_key: str | None
    ) -> Audience:
        """Who hears about an action on a ticket (``station_key``: its station afterwards),
        read before the action writes anything (see `_route`)."""
        reporter = await repo.get_person(session=session, person_id=ticket.reporter_id)
        assert reporter is not None
        followers = (
            await repo.followers_with_reports(session=session, ticket_id=ticket.id or 0)
            if action in FOLLOWERS_HEAR
            else []
        )
        moved_from, card_photo = None, None
        if action is Action.REASSIGN:
            moved_from = await self._desk(session, ticket.station_key)
            card_photo = await repo.card_photo(session=session, ticket_id=ticket.id or 0)
        return Audience(
            reporter=reporter, desk=await self._desk(session, station_key), followers=followers,
            moved_from=moved_from, card_photo=card_photo,
        )

    async def _tell(
        self, session: AsyncSession, *, ticket: Ticket, action: Action, photo: Photo | None,
        note: str | None, audience: Audience,
    ) -> None:
        """Who hears about each transition, and what they are asked next."""
        if audience.followers:
            await self.notifier.to_followers(
                session, ticket=ticket, followers=audience.followers, key="repeat.progress"
            )
        reporter = audience.reporter
        station, chief = (audience.desk.station, audience.desk.chief) if audience.desk else (
            None, None
        )
        shown_note = escape(note or "") or self.notifier.t(
            "ticket.no_note", self.notifier.group_locale
        )
        if action is Action.CLAIM and station:
            await self.notifier.to_chief(
                session, ticket=ticket, station=station, chief=chief, key="chief.claimed",
                buttons=desk_buttons(ticket),
            )
            await self.notifier.in_group(
                session, ticket=ticket, key="group.claimed", station=station
            )
        elif action is Action.RESOLVE and station:
            await self.notifier.to_reporter(
                session, ticket=ticket, reporter=reporter, key="reporter.resolved", photo=photo,
                station=station, note=shown_note,
                buttons=[[Button("button.satisfied", "ok"), Button("button.unsatisfied", "nok")]],
            )
            await self.notifier.to_chief(
                session, ticket=ticket, station=station, chief=chief, key="chief.resolved"
            )
        elif action is Action.REJECT:
            await self.notifier.to_reporter(
                session, ticket=ticket, reporter=reporter, key="reporter.rejected",
                station=station, reason=shown_note,
            )
            if station:
                await self.notifier.to_chief(
                    session, ticket=ticket, station=station, chief=chief, key="chief.rejected"
                )
        elif action is Action.CONFIRM:
            await self.notifier.to_reporter(
                session, ticket=ticket, reporter=reporter, key="reporter.thanks", station=station
            )
            if station:
                await self.notifier.to_chief(
                    session, ticket=ticket, station=station, chief=chief, key="chief.confirmed"
                )
        elif action is Action.DISPUTE and station:
            await self.notifier.to_reporter(
                session, ticket=ticket, reporter=reporter, key="reporter.reopened",
                station=station,
            )
            await self.notifier.chief_card(
                session, ticket=ticket, station=station, chief=chief, photo=photo,
                reporter=reporter, key="chief.reopened", comment=shown_note,
            )
        elif action is Action.REOPEN and station:
            await self.notifier.to_reporter(
                session, ticket=ticket, reporter=reporter, key="reporter.reopened_by_office",
                station=station,
            )
            await self.notifier.chief_card(
                session, ticket=ticket, station=station, chief=chief, photo=None,
                reporter=reporter, key="chief.reopened_by_office", comment=shown_note,
            )
        elif action is Action.REASSIGN and station:
            await self._tell_reassigned(
                session, ticket=ticket, station=station, chief=chief, audience=audience,
                reason=note or "",
            )

    async def _tell_reassigned(
        self, session: AsyncSession, *, ticket: Ticket, station: Station, chief: Person | None,
        audience: Audience, reason: str,
    ) -> None:
        """The new chief gets the card as for a new ticket; the old chief and the reporter
        hear where it went. The reason stays between the chiefs and the office."""
        old = audience.moved_from
        reporter = audience.reporter
        # The card is a photo caption (1024 characters at most): a long reason is cut there
        # and sent whole to the old chief; the history keeps it all.
        short_reason = escape(_shortened(reason, CARD_REASON))
        await self.notifier.chief_card(
            session, ticket=ticket, station=station, chief=chief, photo=audience.card_photo,
            reporter=reporter, key="chief.card_moved",
            moved_from=escape(old.station.name) if old else "—", reason=short_reason,
        )
        if old is not None:
            await self.notifier.to_chief(
                session, ticket=ticket, station=old.station, chief=old.chief,
                key="chief.moved_away", to_station=escape(station.name), reason=escape(reason),
            )
        await self.notifier.to_reporter(
            session, ticket=ticket, reporter=reporter, key="reporter.moved", station=station
        )

    # --- 处理中: the chief says which day a ticket will be done ----------------------------

    async def ask_expected(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender
    ) -> Ticket:
        """"⏳ 处理中": an assigned ticket is claimed first (as ✋ 认领 would), then the chief is
        asked which day it will be done."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        self._check_expecting(ticket, roles)
        if Status(ticket.status) is Status.ASSIGNED:
            ticket = await self.act(
                session, ticket_id=ticket_id, sender=sender, action=Action.CLAIM
            )
        await self.notifier.ask_expected_day(
            session, ticket=ticket, chat_id=person.telegram_id,
            locale=person.language or self.notifier.group_locale,
        )
        await self._commit(session)
        return ticket

    async def expect(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender,
        in_days: int | None = None, said: str | None = None,
    ) -> Ticket:
        """The chief's answer: a quick pick (``in_days`` from today) or a typed day (``said``).

        No reminder until that local day has ended; a deadline before it still reminds and
        escalates when it passes (the policy in `bot.reminders.plan`). Raises `UnusableDay`
        for an answer to ask again about.
        """
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        self._check_expecting(ticket, roles)
        locale = person.language or self.notifier.group_locale
        zone = self.deployment.zone
        now = self.clock()
        today = now.astimezone(zone).date()
        day: date | None
        if in_days is not None:
            day = today + timedelta(days=in_days)
        else:
            day = parse_expected_date(said or "", today)
        if day is None:
            raise DayNotUnderstood(said=escape(_shortened(said or "")))
        shown = self.notifier.format_day(day, locale)
        if day < today:
            raise DayPassed(day=shown)
        if day - today > EXPECT_WITHIN:
            raise DayTooFar(day=shown, days=EXPECT_WITHIN.days)

        expected_by = datetime.combine(day, time(23, 59, 59), tzinfo=zone).astimezone(UTC)
        if ticket.expected_by != expected_by:  # a repeated answer is not a second event
            ticket.expected_by = expected_by
            ticket.updated_at = now
            await self._event(
                session, ticket=ticket, actor=person, role=Role.CHIEF, action="expect",
                before=Status(ticket.status), note=f"expected by {day.isoformat()}",
                details={"expected_by": day.isoformat()},
            )
        decision = plan(
            now=now, status=Status(ticket.status), due=ticket.due_at,
            reminders_sent=ticket.reminders_sent, escalated=ticket.escalated_at is not None,
            expected_by=expected_by, policy=self.deployment.reminders, zone=zone,
        )
        if not decision.remind:
            ticket.next_reminder_at = decision.next_at
        # else the deadline has passed: it outweighs the chief's day and the look already
        # scheduled stands (it reminds, and escalates if that has not happened yet).
        session.add(ticket)

        due = ticket.due_at
        if due is not None and now >= due:
            then = self.notifier.t(
                "chief.expected_overdue", locale, due=self.notifier.format_time(due, locale)
            )
        elif due is not None and expected_by > due:
            then = self.notifier.t(
                "chief.expected_after_due", locale, due=self.notifier.format_time(due, locale),
                office=escape(self.deployment.street_office.name),
            )
        else:
            then = self.notifier.t("chief.expected_quiet", locale)
        await self.notifier.send(
            session, chat_id=person.telegram_id, locale=locale, ticket=ticket,
            text=self.notifier.t(
                "chief.expected", locale, day=shown, then=then,
                **self.notifier.fields(ticket, locale),
            ),
        )
        await self._commit(session)
        return ticket

    @staticmethod
    def _check_expecting(ticket: Ticket, roles: set[Role]) -> None:
        status = Status(ticket.status)
        if status not in REMINDED_STATUSES:
            raise NothingToExpect(status)
        if Role.CHIEF not in roles:
            raise NotTheChief(f"roles {sorted(roles)} may not say when #{ticket.id} is done")

    # --- placing and routing --------------------------------------------------------------

    async def _route(
        self, session: AsyncSession, *, ticket: Ticket, finding: Finding,
        photos: Sequence[tuple[str, str, str | None]] | None = None,
    ) -> Route:
        """What placing a ticket reads: its station and chief, and the ticket it may repeat
        (``photos``, its report photos' keys, are read here unless given; ``photos=[]``
        with a ticket that has none). Read before the transaction writes anything: SQLite
        lets one connection write at a time, and a write transaction that stops to read
        keeps every other writer waiting (on PostgreSQL, it holds the ticket's row lock)."""
        place = finding.place
        if place is None or place.station_key is None:
            return Route()
        desk = await self._desk(session, place.station_key)
        if desk is None:
            return Route()
        if photos is None:
            keys = await repo.photo_keys(session=session, ticket_ids=[ticket.id or 0])
            photos = keys.get(ticket.id or 0, [])
        seen = self._sighting(ticket, photos, where=(place.lat, place.lon, self._address(place)))
        repeat = await self._find_repeat(session, ticket=ticket, seen=seen)
        if repeat is not None and repeat.decision == "merge":
            merged_into = await self._desk(session, repeat.original.station_key)
            return Route(desk=desk, repeat=repeat, merged_into=merged_into)
        return Route(desk=desk, repeat=repeat)

    async def _desk(self, session: AsyncSession, station_key: str | None) -> Desk | None:
        if station_key is None:
            return None
        found = await repo.stations_with_chiefs(session=session, keys=[station_key])
        if station_key not in found:
            return None
        return Desk(*found[station_key])

    def _address(self, place: Place) -> str:
        if place.how == "near":
            return self.notifier.t("place.near", self.notifier.group_locale, address=place.address)
        return place.address

    async def _settle_place(
        self, session: AsyncSession, *, ticket: Ticket, finding: Finding, route: Route,
        reporter: Person, photo: Photo | None,
    ) -> None:
        """What a finding means for a new ticket: routed, triaged, or the captain is asked.
        Writes only: ``route`` was read before (`_route`)."""
        if finding.place is not None:
            await self._place(
                session, ticket=ticket, place=finding.place, finding=finding, route=route,
                reporter=reporter, photo=photo,
            )
        elif finding.failures:
            # The map services could not answer: a person at the street office places it.
            await self._event(
                session, ticket=ticket, actor=None, role=Role.SYSTEM, action="triage",
                before=Status.NEW,
                note="; ".join(f"{f.provider}: {f.reason}" for f in finding.failures),
            )
            await self.notifier.triage(session, ticket=ticket, photo=photo)
            await self.notifier.ask_for_address(
                session, ticket=ticket, unknown=finding.span, key="ack.provider_down"
            )
        elif finding.guess is not None:
            await self.notifier.ask_for_address(
                session, ticket=ticket, unknown=finding.span, guess=finding.guess.address
            )
        else:
            # Captains mostly report where they live: their registered building is a hint.
            await self.notifier.ask_for_address(
                session, ticket=ticket, unknown=finding.span, building=reporter.building
            )

    async def _place(
        self, session: AsyncSession, *, ticket: Ticket, place: Place, finding: Finding,
        route: Route, reporter: Person, photo: Photo | None,
    ) -> None:
        """Put a ticket on the map; inside (or next to) a grid it goes to that station's chief,
        unless it repeats an open ticket there. Writes only: ``route`` was read before."""
        address = self._address(place)
        ticket.address = address
        ticket.lat, ticket.lon = place.lat, place.lon
        ticket.location_source = place.source
        ticket.location_confidence = place.confidence
        ticket.cell = cell_of(place.lat, place.lon)
        ticket.updated_at = self.clock()
        if route.desk is None:
            session.add(ticket)
            await self._event(
                session, ticket=ticket, actor=None, role=Role.SYSTEM, action="triage",
                before=Status.NEW, note=f"{address}: outside every grid",
            )
            await self.notifier.triage(session, ticket=ticket, photo=photo)
            await self.notifier.acknowledged(session, ticket=ticket, station=None)
            return
        station, chief = route.desk.station, route.desk.chief
        ticket.station_key = station.key
        repeat = route.repeat
        if repeat is not None and repeat.decision == "merge":
            await self._merge(
                session, duplicate=ticket, original=repeat.original, similarity=repeat.similarity,
                actor=None, role=Role.SYSTEM, desk=route.merged_into,
            )
            return
        ticket.status = next_status(Status.NEW, Action.LOCATE, [Role.SYSTEM])
        category = self.deployment.category(ticket.category_key)
        ticket.due_at = ticket.created_at + category.sla
        self._schedule_reminders(ticket, before=Status.NEW, now=self.clock())
        session.add(ticket)
        how = f"{place.source}/{place.how} {place.confidence:.2f}"
        if finding.routed == "nearest":
            how += f"; nearest grid, {finding.distance_m:.0f} m away"
        await self._event(
            session, ticket=ticket, actor=None, role=Role.SYSTEM, action=Action.LOCATE,
            before=Status.NEW, note=f"{address} → {station.key} ({how})",
        )
        await self.notifier.chief_card(
            session, ticket=ticket, station=station, chief=chief, photo=photo, reporter=reporter
        )
        await self.notifier.acknowledged(session, ticket=ticket, station=station)
        if repeat is not None:  # unsure: the reporter is asked whether it is the same problem
            await self._event(
                session, ticket=ticket, actor=None, role=Role.SYSTEM, action="repeat_asked",
                before=Status(ticket.status), note=f"like #{repeat.original.id}: "
                f"{repeat.similarity.explain()}",
                details={"candidate": repeat.original.id, **repeat.similarity.as_dict()},
            )
            await self.notifier.ask_same_problem(session, ticket=ticket, original=repeat.original)

    async def _keep_photo(self, photo: IncomingPhoto, info: ImageInfo) -> KeptPhoto:
        """The photo's file in the store, before any database work (a document without its
        metadata); its row comes with the ticket (`_add_photo`)."""

        def put() -> StoredPhoto:
            if not photo.as_document:
                return self.photo_store.put(photo.data, ext=info.ext)
            ext = "png" if info.ext == "png" else "jpg"
            return self.photo_store.put(strip_metadata(photo.data), ext=ext)

        return KeptPhoto(photo, info, await asyncio.to_thread(put))

    async def _add_photo(
        self, session: AsyncSession, *, ticket: Ticket, kept: KeptPhoto, kind: str
    ) -> Photo:
        photo, info, stored = kept.photo, kept.info, kept.stored
        return await repo.add_photo(
            session=session,
            photo=Photo(
                ticket_id=ticket.id or 0,
                kind=kind,
                file_id=photo.file_id,
                file_unique_id=photo.file_unique_id,
                sha256=stored.sha256,  # of the file kept (without metadata for documents)
                size=info.size,
                width=info.width,
                height=info.height,
                phash=info.phash,
                path=str(stored.path.relative_to(self.photo_store.root)),
                as_document=photo.as_document,
                created_at=self.clock(),
            ),
        )

    async def _event(
        self, session: AsyncSession, *, ticket: Ticket, actor: Person | None, role: Role,
        action: str, before: Status | None, note: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await repo.add_event(
            session=session,
            event=TicketEvent(
                ticket_id=ticket.id or 0,
                at=self.clock(),
                station_key=ticket.station_key,
                actor_id=actor.id if actor else None,
                role=role,
                action=action,
                from_status=before,
                to_status=ticket.status,
                note=note[:1024] if note else None,
                details=details or {},
            ),
        )

    # --- repeats ----------------------------------------------------------------------------

    async def _find_repeat(
        self, session: AsyncSession, *, ticket: Ticket, seen: Sighting
    ) -> Repeat | None:
        """The open (or recently closed) ticket nearby that this report, ``seen`` where it is
        being placed, most likely repeats."""
        rules = self.deployment.dedup
        nearby = await repo.nearby_tickets(
            session=session,
            cells=cells_around(seen.lat, seen.lon, rules.radius_m),
            closed_since=self.clock() - rules.window,
            exclude=ticket.id or 0,
        )
        if not nearby:
            return None
        keys = await repo.photo_keys(session=session, ticket_ids=[t.id or 0 for t in nearby])
        found = best_match(
            seen,
            [(t, self._sighting(t, keys.get(t.id or 0, []))) for t in nearby],
            radius_m=rules.radius_m, merge_above=rules.merge_above, ask_above=rules.ask_above,
            unknown_category=self.deployment.default_category,
        )
        if found is None:
            return None
        original, similarity, decision = found
        if decision == "new":
            return None
        return Repeat(original=original, similarity=similarity, decision=decision)

    @staticmethod
    def _sighting(
        ticket: Ticket, photos: Sequence[tuple[str, str, str | None]],
        where: tuple[float, float, str | None] | None = None,
    ) -> Sighting:
        """The ticket as the repeat check sees it; ``where`` (lat, lon, address) for one
        being placed there."""
        lat, lon, address = where or (ticket.lat, ticket.lon, ticket.address)
        assert lat is not None and lon is not None
        return Sighting(
            lat=lat, lon=lon, address=address,
            category=ticket.category_key, description=ticket.description,
            phashes=tuple(p for _, _, p in photos if p),
            sha256s=tuple(sha for _, sha, _ in photos),
            file_unique_ids=tuple(unique for unique, _, _ in photos),
            at=ticket.created_at,
        )

    async def _merge(
        self, session: AsyncSession, *, duplicate: Ticket, original: Ticket,
        similarity: Similarity | None, actor: Person | None, role: Role, desk: Desk | None,
    ) -> None:
        """One problem, one ticket: the report follows the original, which counts one more;
        ``desk`` is the original's station and chief, read before."""
        before = Status(duplicate.status)
        duplicate.status = next_status(before, Action.MARK_DUPLICATE, [role])
        duplicate.duplicate_of = original.id
        duplicate.next_reminder_at = None  # the original's chief is reminded, once
        duplicate.updated_at = original.updated_at = self.clock()
        original.reports += 1
        session.add_all([duplicate, original])
        await repo.add_follower(
            session=session,
            follower=TicketFollower(
                ticket_id=original.id or 0, person_id=duplicate.reporter_id,
                via_ticket_id=duplicate.id or 0, created_at=self.clock(),
            ),
        )
        details = similarity.as_dict() if similarity else {}
        why = similarity.explain() if similarity else "by hand"
        await self._event(
            session, ticket=duplicate, actor=actor, role=role, action=Action.MARK_DUPLICATE,
            before=before, note=f"into #{original.id}: {why}",
            details={"into": original.id, **details},
        )
        await self._event(
            session, ticket=original, actor=actor, role=role, action="merged_in",
            before=Status(original.status), note=f"#{duplicate.id} ({original.reports} reports)",
            details={"from": duplicate.id, **details},
        )
        if desk is not None:
            await self.notifier.to_chief(
                session, ticket=original, station=desk.station, chief=desk.chief,
                key="chief.repeat",
                reports=original.reports, repeat=duplicate.id,
                said=escape(duplicate.description) or "—",
            )
        await self.notifier.merged(session, duplicate=duplicate, original=original)

    async def split(self, session: AsyncSession, *, ticket_id: int, sender: Sender) -> Ticket:
        """"不是同一问题": a merged report becomes a ticket of its own, placed as before."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        if ticket.duplicate_of is not None and Role.CHIEF not in roles:
            original = await repo.get_ticket(session=session, ticket_id=ticket.duplicate_of)
            if original is not None:  # the original's chief may split what was merged into it
                roles |= await self.roles_of(session, person, original) & {Role.CHIEF}
        before = Status(ticket.status)
        after = next_status(before, Action.SPLIT, roles)
        original_id = ticket.duplicate_of
        original = None
        if original_id is not None:
            original = await repo.lock_ticket(session=session, ticket_id=original_id)
        # Placed as before, with no repeat check: read where it goes, then write.
        desk = await self._desk(session, ticket.station_key)
        reporter = await repo.get_person(session=session, person_id=ticket.reporter_id)
        assert reporter is not None
        photo = await repo.card_photo(session=session, ticket_id=ticket.id or 0)
        ticket.status, ticket.duplicate_of = after, None
        if original is not None:
            original.reports = max(1, original.reports - 1)
            session.add(original)
            await self._event(
                session, ticket=original, actor=person, role=self._acting_role(
                    before, Action.SPLIT, roles), action="split_out",
                before=Status(original.status), note=f"#{ticket.id} is a different problem",
            )
        await repo.remove_follower(session=session, via_ticket_id=ticket.id or 0)
        await self._event(
            session, ticket=ticket, actor=person,
            role=self._acting_role(before, Action.SPLIT, roles), action=Action.SPLIT,
            before=before, note=f"not the same problem as #{original_id}",
        )
        assert ticket.lat is not None and ticket.lon is not None
        place = Place(
            address=ticket.address or "", lat=ticket.lat, lon=ticket.lon,
            station_key=ticket.station_key, source=ticket.location_source or "gazetteer",
            confidence=ticket.location_confidence or 1.0,
        )
        await self._place(
            session, ticket=ticket, place=place, finding=Finding(place), route=Route(desk=desk),
            reporter=reporter, photo=photo,
        )
        await self._commit(session)
        return ticket

    async def merge(
        self, session: AsyncSession, *, ticket_id: int, into: int, sender: Sender
    ) -> Ticket:
        """Merge a ticket into another by hand: its reporter ("same problem") or a chief."""
        if ticket_id == into:
            raise NotARepeat("a ticket cannot repeat itself")
        duplicate, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        original = await repo.lock_ticket(session=session, ticket_id=into)
        if original is None:
            raise TicketNotFound(f"ticket {into}")
        if Status(original.status) in FINAL_STATUSES:
            raise NotARepeat(f"#{into} is {original.status}")
        next_status(Status(duplicate.status), Action.MARK_DUPLICATE, roles)  # permission
        role = self._acting_role(Status(duplicate.status), Action.MARK_DUPLICATE, roles)
        await self._merge(
            session, duplicate=duplicate, original=original, similarity=None, actor=person,
            role=role, desk=await self._desk(session, original.station_key),
        )
        await self._commit(session)
        return original

    async def same_problem(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender, same: bool
    ) -> Ticket:
        """The reporter's answer to "is this the same problem as #N?"."""
        events = await repo.events_of(session=session, ticket_id=ticket_id)
        asked = next((e for e in reversed(events) if e.action == "repeat_asked"), None)
        answered = any(
            e.action in ("repeat_denied", Action.MARK_DUPLICATE, Action.SPLIT) for e in events
        )
        if asked is None or answered:
            raise NotARepeat("no open question about this ticket")
        if same:
            return await self.merge(
                session, ticket_id=ticket_id, into=int(asked.details["candidate"]), sender=sender
            )
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        if Role.REPORTER not in roles:
            raise NotPermitted(Action.MARK_DUPLICATE, roles)
        await self._event(
            session, ticket=ticket, actor=person, role=Role.REPORTER, action="repeat_denied",
            before=Status(ticket.status), note=f"not the same as #{asked.details['candidate']}",
        )
        await self._commit(session)
        return ticket

    def _schedule_reminders(
        self, ticket: Ticket, *, before: Status, now: datetime, restart: bool = False
    ) -> None:
        """Reminders start when a chief gets a ticket (again: ``restart`` for another
        station's chief), and stop when it leaves them; a resolved ticket waits for the
        reporter's answer until it closes by itself (`bot.reminders.plan`)."""
        after = Status(ticket.status)
        if after is Status.RESOLVED:
            ticket.next_reminder_at = now + self.deployment.feedback.auto_close_after
        elif after in (Status.ASSIGNED, Status.REOPENED) and (after is not before or restart):
            ticket.reminders_sent = 0
            ticket.expected_by = None  # a new round: an earlier "处理中" no longer holds
            ticket.next_reminder_at = first_reminder_at(
                created=now, policy=self.deployment.reminders, zone=self.deployment.zone,
                due=ticket.due_at,
            )
        elif after not in REMINDED_STATUSES:
            ticket.next_reminder_at = None

    async def _station(self, session: AsyncSession, ticket: Ticket) -> Station | None:
        if ticket.station_key is None:
            return None
        return await repo.get_station(session=session, key=ticket.station_key)

    # --- the chief's desk -----------------------------------------------------------------

    async def desk_page(self, session: AsyncSession, *, sender: Sender, page: int) -> DeskPage:
        """One page of the chief's open tickets, most overdue first, with paging buttons."""
        person = await self.person(session, sender)
        locale = person.language
        station_key = person.station_key  # person() gives a deployment chief their station
        if station_key is None or not self.allows(person, sender.telegram_id, Feature.TICKETS):
            return DeskPage(self.notifier.t("tickets.not_chief", locale), [])
        rows, total, page, pages = await self._page(page, lambda offset: (
            repo.open_tickets_for_station(
                session=session, station_key=station_key,
                statuses=[s.value for s in OPEN_FOR_CHIEF], offset=offset, limit=DESK_PAGE,
            )
        ))
        if total == 0:
            return DeskPage(self.notifier.t("tickets.empty", locale), [])
        lines = [
            self.notifier.t("tickets.header", locale, total=total, page=page + 1, pages=pages)
        ]
        lines += [
            self.notifier.t("tickets.line", locale, **self.notifier.fields(ticket, locale))
            for ticket in rows
        ]
        return DeskPage(
            "\n".join(lines),
            [self._paging(locale, page, pages, lambda n: TicketsPage(page=n).pack())],
        )

    async def _page(
        self, page: int, fetch: Callable[[int], Awaitable[tuple[list[Ticket], int]]]
    ) -> tuple[list[Ticket], int, int, int]:
        """One page of a ticket list (``fetch`` takes the offset) as (rows, total, page,
        pages); a page number past the end (stale, or forged) shows the last page."""
        page = max(page, 0)
        rows, total = await fetch(page * DESK_PAGE)
        pages = max(ceil(total / DESK_PAGE), 1)
        if page >= pages:
            page = pages - 1
            rows, total = await fetch(page * DESK_PAGE)
        return rows, total, page, pages

    def _paging(
        self, locale: str, page: int, pages: int, turn: Callable[[int], str]
    ) -> list[dict[str, str]]:
        """◀ 上一页 / 下一页 ▶ under a list; ``turn`` packs a page number into button data."""
        buttons = []
        if page > 0:
            buttons.append(Button("button.prev", turn(page - 1)))
        if page + 1 < pages:
            buttons.append(Button("button.next", turn(page + 1)))
        return self.notifier.buttons([buttons], locale, ticket=None)[0]

    async def show_desk(
        self, session: AsyncSession, *, sender: Sender, chat_id: int, page: int
    ) -> None:
        desk = await self.desk_page(session, sender=sender, page=page)
        await self.notifier.send_rows(session, chat_id=chat_id, text=desk.text, rows=desk.buttons)
        await self._commit(session)

    # --- the reporter's view: /my -----------------------------------------------------------

    async def my_page(self, session: AsyncSession, *, sender: Sender, page: int) -> DeskPage:
        """One page of the tickets this person reported, newest first; a resolved one they
        have not judged yet carries its 满意 / 不满意 buttons."""
        person = await self.person(session, sender)
        locale = person.language
        rows, total, page, pages = await self._page(page, lambda offset: (
            repo.tickets_of_reporter(
                session=session, reporter_id=person.id or 0, offset=offset, limit=DESK_PAGE
            )
        ))
        t = self.notifier.t
        if total == 0:
            return DeskPage(t("my.empty", locale), [])
        lines = [t("my.header", locale, total=total, page=page + 1, pages=pages)]
        rating: list[list[dict[str, str]]] = []
        for ticket in rows:
            fields = self.notifier.fields(ticket, locale)
            fields["address"] = escape(
                _shortened(ticket.address or ticket.address_text or "", 20)
            ) or t("ticket.no_address", locale)
            if ticket.status == Status.DUPLICATE and ticket.duplicate_of is not None:
                lines.append(t("my.line_merged", locale, into=ticket.duplicate_of, **fields))
            else:
                lines.append(t("my.line", locale, **fields).strip())
            if ticket.status == Status.RESOLVED:
                rating.append([
                    {"text": t("button.rate_ok", locale, number=ticket.id),
                     "data": TicketButton(action="ok", ticket=ticket.id or 0).pack()},
                    {"text": t("button.rate_nok", locale, number=ticket.id),
                     "data": TicketButton(action="nok", ticket=ticket.id or 0).pack()},
                ])
        if rating:
            lines.append(t("my.rate_hint", locale))
        paging = self._paging(locale, page, pages, lambda n: MyPage(page=n).pack())
        return DeskPage("\n".join(lines), [row for row in (*rating, paging) if row])

    async def show_my(self, session: AsyncSession, *, sender: Sender, chat_id: int) -> None:
        mine = await self.my_page(session, sender=sender, page=0)
        await self.notifier.send_rows(session, chat_id=chat_id, text=mine.text, rows=mine.buttons)
        await self._commit(session)

    # --- the street office's view: /open, a ticket's card ----------------------------------

    async def show_open(
        self, session: AsyncSession, *, sender: Sender, chat_id: int, said: str | None
    ) -> None:
        """/open (every station), /open <station key or name>, or /open <number> (one
        ticket's card, whatever its state)."""
        said = (said or "").strip()
        number = said.removeprefix("#")
        if number.isdigit() and len(number) < 10:
            await self.office_card(session, ticket_id=int(number), sender=sender, chat_id=chat_id)
            return
        listing = await self.open_page(session, sender=sender, station=said, page=0)
        await self.notifier.send_rows(
            session, chat_id=chat_id, text=listing.text, rows=listing.buttons
        )
        await self._commit(session)

    async def open_page(
        self, session: AsyncSession, *, sender: Sender, station: str, page: int
    ) -> DeskPage:
        """One page of the open tickets of every station (``station`` empty) or of one, most
        overdue first, each number a button to its card. Street office staff only."""
        person = await self.person(session, sender)
        locale = person.language
        t = self.notifier.t
        if not self.allows(person, sender.telegram_id, Feature.OPEN):
            raise NotOffice(f"{person.role} is not the street office")
        chosen = None
        if station:
            chosen = next(
                (s for s in self.deployment.stations if station in (s.key, s.name)), None
            )
            if chosen is None:
                known = "、".join(f"{s.key}（{escape(s.name)}）" for s in self.deployment.stations)
                return DeskPage(t(
                    "open.unknown_station", locale, station=escape(_shortened(station)),
                    stations=known,
                ), [])
        scope = escape(chosen.name) if chosen else t("open.all", locale)
        rows, total, page, pages = await self._page(page, lambda offset: (
            repo.open_tickets_for_station(
                session=session, station_key=chosen.key if chosen else None,
                statuses=[s.value for s in OPEN_STATUSES], offset=offset, limit=DESK_PAGE,
            )
        ))
        if total == 0:
            return DeskPage(t("open.empty", locale, scope=scope), [])
        names = {s.key: s.name for s in self.deployment.stations}
        lines = [t("open.header", locale, scope=scope, total=total, page=page + 1, pages=pages)]
        for ticket in rows:
            fields = self.notifier.fields(ticket, locale)
            fields["address"] = escape(
                _shortened(ticket.address or ticket.address_text or "", 20)
            ) or t("ticket.no_address", locale)
            fields["station"] = escape(names.get(ticket.station_key or "", "—"))
            lines.append(t("open.line", locale, **fields).strip())
        numbers = [
            {"text": t("button.ticket", locale, number=ticket.id),
             "data": TicketButton(action="open", ticket=ticket.id or 0).pack()}
            for ticket in rows
        ]
        paging = self._paging(
            locale, page, pages,
            lambda n: OpenPage(station=chosen.key if chosen else "", page=n).pack(),
        )
        rows_of_five = [numbers[i : i + 5] for i in range(0, len(numbers), 5)]
        return DeskPage("\n".join(lines), [row for row in (*rows_of_five, paging) if row])

    async def office_card(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender, chat_id: int
    ) -> None:
        """One ticket for the street office: its facts, its latest notes, and the buttons
        for what the lifecycle lets the office do now."""
        ticket = await repo.get_ticket(session=session, ticket_id=ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket {ticket_id}")
        person = await self.person(session, sender)
        if Role.OFFICE not in await self.roles_of(session, person, ticket):
            raise NotOffice(f"{person.role} is not the street office")
        locale = person.language
        t = self.notifier.t
        station = await self._station(session, ticket)
        reporter = await repo.get_person(session=session, person_id=ticket.reporter_id)
        fields = self.notifier.fields(ticket, locale, station=station)
        fields["station"] = fields["station"] or "—"
        text = t("open.card", locale, reporter=escape(reporter.name if reporter else ""), **fields)
        notes = [e for e in await repo.events_of(session=session, ticket_id=ticket_id)
                 if e.action == Action.NOTE][-CARD_NOTES:]
        for event in notes:
            who = await repo.get_person(session=session, person_id=event.actor_id or 0)
            text += "\n" + t(
                "open.card_note", locale, at=self.notifier.format_time(event.at, locale),
                who=escape(who.name if who else ""), note=escape(_shortened(event.note or "", 80)),
            )
        photo = (
            await repo.card_photo(session=session, ticket_id=ticket_id)
            if len(text) <= MAX_CAPTION
            else None
        )
        await self.notifier.send(
            session, chat_id=chat_id, locale=locale, ticket=ticket, text=text,
            buttons=office_buttons(ticket), photo=photo,
        )
        await self._commit(session)

    # --- 🔀 转派 and 📝 备注 (the chief of the ticket's station, or the street office) -----

    async def offer_stations(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender, chat_id: int
    ) -> None:
        """"🔀 转派": if this person may reassign the ticket now, the other stations as buttons."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        next_status(Status(ticket.status), Action.REASSIGN, roles)
        others = [s for s in self.deployment.stations if s.key != ticket.station_key]
        if not others:
            raise NoOtherStation(f"no station but {ticket.station_key}")
        locale = person.language
        station = await self._station(session, ticket)
        buttons = [
            {"text": s.name, "data": MoveTo(ticket=ticket.id or 0, station=s.key).pack()}
            for s in others
        ]
        await self.notifier.send_rows(
            session, chat_id=chat_id,
            text=self.notifier.t(
                "move.ask_station", locale, **self.notifier.fields(ticket, locale, station=station)
            ),
            rows=[buttons[i : i + 2] for i in range(0, len(buttons), 2)],
        )
        await self._commit(session)

    async def choose_station(
        self, session: AsyncSession, *, ticket_id: int, station_key: str, sender: Sender,
        chat_id: int,
    ) -> None:
        """A station was picked: check again (the ticket may have moved on), then ask why."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        next_status(Status(ticket.status), Action.REASSIGN, roles)
        target = await self._target_station(session, ticket, station_key)
        locale = person.language
        await self.notifier.reply(
            session, chat_id=chat_id, reply_to=None, key="move.ask_reason", locale=locale,
            number=ticket.id, station=escape(target.name),
        )
        await self._commit(session)

    async def _tell_cut(
        self, session: AsyncSession, *, person: Person, ticket: Ticket, length: int
    ) -> None:
        await self.notifier.reply(
            session, chat_id=person.telegram_id, reply_to=None, key="desk.text_cut",
            locale=person.language, number=ticket.id, length=length, limit=MAX_NOTE,
        )

    async def _target_station(
        self, session: AsyncSession, ticket: Ticket, station_key: str | None
    ) -> Station:
        """The station a ticket is reassigned to: one of the deployment's, not its own."""
        if station_key not in {s.key for s in self.deployment.stations}:
            raise UnknownStation(f"no station {station_key!r}")
        station = await repo.get_station(session=session, key=station_key or "")
        if station is None:
            raise UnknownStation(f"station {station_key!r} is not in the database")
        if station.key == ticket.station_key:
            raise SameStation(number=ticket.id, station=escape(station.name))
        return station

    async def add_note(
        self, session: AsyncSession, *, ticket_id: int, sender: Sender, text: str | None
    ) -> Ticket:
        """"📝 备注": an internal remark in the ticket's history (the state stays). The
        reporter never sees notes; the chief hears of one the street office adds."""
        ticket, person, roles = await self._load(session, ticket_id=ticket_id, sender=sender)
        status = Status(ticket.status)
        next_status(status, Action.NOTE, roles)
        typed = (text or "").strip()
        if not typed:
            raise MissingInput("an empty note")
        note = typed[:MAX_NOTE]
        role = self._acting_role(status, Action.NOTE, roles)
        desk = await self._desk(session, ticket.station_key) if role is Role.OFFICE else None
        await self._event(
            session, ticket=ticket, actor=person, role=role, action=Action.NOTE, before=status,
            note=note,
        )
        await self.notifier.reply(
            session, chat_id=person.telegram_id, reply_to=None, key="desk.noted",
            locale=person.language, number=ticket.id,
        )
        if len(typed) > MAX_NOTE:
            await self._tell_cut(session, person=person, ticket=ticket, length=len(typed))
        if desk is not None:
            await self.notifier.to_chief(
                session, ticket=ticket, station=desk.station, chief=desk.chief,
                key="chief.office_note", note=escape(note),
            )
        await self._commit(session)
        return ticket


def _shortened(text: str, limit: int = 30) -> str:
    """A piece of what someone typed, short enough to quote back to them."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class DeskPage:
    text: str
    buttons: list[list[dict[str, str]]]


@dataclass(frozen=True)
class KeptPhoto:
    """A photo checked and in the store, its row still to be written."""

    photo: IncomingPhoto
    info: ImageInfo
    stored: StoredPhoto

    @property
    def keys(self) -> tuple[str, str, str | None]:
        """What a repeat is recognised by: (file_unique_id, sha256, phash)."""
        return self.photo.file_unique_id, self.stored.sha256, self.info.phash


@dataclass(frozen=True)
class Desk:
    """A station and its chief (None until the chief has written to the bot)."""

    station: Station
    chief: Person | None


@dataclass(frozen=True)
class Audience:
    """Who hears about an action on a ticket (`TicketService._audience`)."""

    reporter: Person
    desk: Desk | None  # the ticket's station after the action, and its chief
    followers: list[tuple[Person, Ticket]]  # captains whose repeats were merged into it
    moved_from: Desk | None = None  # a reassignment's old station
    card_photo: Photo | None = None  # the report's photo, for a reassigned card


@dataclass(frozen=True)
class Route:
    """Where a ticket being placed goes (`TicketService._route`): its grid's desk (None:
    outside every grid), the ticket it may repeat, and for a merge the original's desk."""

    desk: Desk | None = None
    repeat: Repeat | None = None
    merged_into: Desk | None = None


@dataclass(frozen=True)
class Repeat:
    original: Ticket
    similarity: Similarity
    decision: Literal["merge", "ask"]


class NotARepeat(TicketError):
    message_key = "error.not_a_repeat"


class SameStation(TicketError):
    message_key = "move.same_station"


class UnknownStation(TicketError):
    message_key = "move.unknown_station"


class NoOtherStation(TicketError):
    message_key = "move.no_other_station"


class NotOffice(TicketError):
    """Only the street office sees every station's tickets and acts on them from there."""

    message_key = "open.not_office"


class PhotoRefused(TicketError):
    """An after-photo that is not a usable image; answered like a refused report photo."""

    def __init__(self, error: PhotoError) -> None:
        super().__init__(error.reason, **error.params)
        self.message_key = error.message_key
