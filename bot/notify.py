"""Turns domain results into outbox messages: rendered in the reader's language, user text escaped.

Nothing here talks to Telegram; rows are added to the caller's transaction and the
outbox sender delivers them after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from typing import Any, Literal, Protocol

from babel.dates import format_skeleton, format_timedelta
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import ExpectedDay, TicketButton
from bot.deployment import Deployment
from bot.lifecycle import Action, Light, Role, Status, allowed_actions, deadline_light
from bot.reminders import REMINDED_STATUSES
from storage import repo
from storage.models import OutboxMessage, Person, Photo, Station, Ticket


class Translate(Protocol):
    def get(self, key: str, locale: str, /, **params: Any) -> str: ...


@dataclass(frozen=True)
class Button:
    text_key: str
    action: str


LIGHT_MARK = {Light.GREEN: "🟢", Light.YELLOW: "🟡", Light.RED: "🔴"}
# The answers offered to "#12 预计哪天处理好？": (button, days from today).
QUICK_PICKS = (
    (("button.today", 0), ("button.tomorrow", 1)),
    (("button.day_after_tomorrow", 2), ("button.within_a_week", 7)),
)


def desk_buttons(ticket: Ticket, *, in_progress: bool = True) -> list[list[Button]]:
    """What a chief can do next with a ticket on their desk: with ``in_progress``, also
    "⏳ 处理中" (say which day it will be done) while the chief owes work on it; then
    "🔀 转派" to another station and "📝 备注"."""
    status = Status(ticket.status)
    if status is Status.ASSIGNED:
        rows = [[Button("button.claim", "claim"), Button("button.reject", "reject")]]
    else:
        rows = [[Button("button.resolve", "resolve"), Button("button.reject", "reject")]]
    if in_progress and status in REMINDED_STATUSES:
        rows.append([Button("button.in_progress", "progress")])
    more = [Button("button.note", "note")]
    if Action.REASSIGN in allowed_actions(status, [Role.CHIEF]):
        more.insert(0, Button("button.reassign", "move"))
    rows.append(more)
    return rows


# The street office's buttons on a ticket card, for the actions the lifecycle allows it now.
OFFICE_BUTTONS = {
    Action.REASSIGN: Button("button.reassign", "move"),
    Action.REJECT: Button("button.reject", "reject"),
    Action.REOPEN: Button("button.reopen", "reopen"),
    Action.NOTE: Button("button.note", "note"),
}


def office_buttons(ticket: Ticket) -> list[list[Button]]:
    """What the street office can do with a ticket now (claiming stays the chief's)."""
    buttons = [
        OFFICE_BUTTONS[action]
        for action in allowed_actions(Status(ticket.status), [Role.OFFICE])
        if action in OFFICE_BUTTONS
    ]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


class Notifier:
    """Writes the messages a change causes into the outbox of the same transaction."""

    def __init__(
        self,
        *,
        translator: Translate,
        deployment: Deployment,
        clock: Callable[[], datetime],
        group_locale: str,
    ) -> None:
        self.translator = translator
        self.deployment = deployment
        self.clock = clock
        self.group_locale = group_locale  # groups are read by everyone: the deployment's language

    def t(self, key: str, locale: str, /, **params: Any) -> str:
        return self.translator.get(key, locale, **params)

    # --- building blocks ------------------------------------------------------------------

    async def send(
        self,
        session: AsyncSession,
        *,
        chat_id: int,
        text: str,
        locale: str,
        reply_to: int | None = None,
        buttons: Sequence[Sequence[Button]] = (),
        ticket: Ticket | None = None,
        photo: Photo | None = None,
        purpose: str | None = None,
    ) -> None:
        """A text (or a photo with the text as caption), with buttons drawn for ``ticket``."""
        payload: dict[str, Any] = {"text": text, "reply_to": reply_to}
        if buttons:
            payload["buttons"] = self.buttons(buttons, locale, ticket=ticket)
        kind = "message"
        if photo is not None:
            kind = "photo"
            if photo.as_document:  # a document's file_id cannot be sent as a photo
                payload["photo_sha256"] = photo.sha256
            else:
                payload["photo"] = photo.file_id
        await self._enqueue(
            session, chat_id=chat_id, kind=kind, payload=payload, ticket=ticket, purpose=purpose
        )

    async def send_rows(
        self, session: AsyncSession, *, chat_id: int, text: str, rows: list[list[dict[str, str]]]
    ) -> None:
        """A message whose buttons are already rendered (e.g. a /tickets page)."""
        payload: dict[str, Any] = {"text": text, "reply_to": None}
        if any(rows):
            payload["buttons"] = rows
        await self._enqueue(session, chat_id=chat_id, kind="message", payload=payload)

    async def _enqueue(
        self, session: AsyncSession, *, chat_id: int, kind: str, payload: dict[str, Any],
        ticket: Ticket | None = None, purpose: str | None = None,
    ) -> None:
        await repo.enqueue(
            session=session,
            message=OutboxMessage(
                chat_id=chat_id, kind=kind, payload=payload, purpose=purpose,
                ticket_id=ticket.id if ticket else None,
                created_at=self.clock(), not_before=self.clock(),
            ),
        )

    def buttons(
        self, rows: Sequence[Sequence[Button]], locale: str, *, ticket: Ticket | None
    ) -> list[list[dict[str, str]]]:
        """Rows of {"text", "data"}; with a ticket, ``action`` becomes that ticket's button."""
        return [
            [
                {
                    "text": self.t(button.text_key, locale),
                    "data": TicketButton(action=button.action, ticket=ticket.id or 0).pack()
                    if ticket is not None
                    else button.action,
                }
                for button in row
            ]
            for row in rows
        ]

    async def send_location(
        self, session: AsyncSession, *, chat_id: int, ticket: Ticket
    ) -> None:
        if ticket.lat is None or ticket.lon is None:
            return
        await self._enqueue(
            session, chat_id=chat_id, kind="location",
            payload={"lat": ticket.lat, "lon": ticket.lon}, ticket=ticket,
        )

    async def send_file(
        self, session: AsyncSession, *, chat_id: int, kind: Literal["photo", "document"],
        path: str, caption: str, reply_to: int | None = None, purpose: str | None = None,
    ) -> None:
        """A stored file as a photo or a document; ``path`` is relative to the data directory,
        read by the sender when it sends (a file gone by then fails that message alone)."""
        await self._enqueue(
            session, chat_id=chat_id, kind=kind, purpose=purpose,
            payload={"path": path, "text": caption, "reply_to": reply_to},
        )

    async def digest(
        self, session: AsyncSession, *, chat_id: int, summary: str, title: str, chart: str,
        documents: Sequence[str], locale: str, reply_to: int | None = None,
        purpose: str | None = None,
    ) -> None:
        """A week's digest in a chat: the summary, the chart as a photo, then the documents
        (PDF, XLSX); ``title`` (escaped) captions them, paths relative to the data directory."""
        await self._enqueue(
            session, chat_id=chat_id, kind="message", purpose=purpose,
            payload={"text": summary, "reply_to": reply_to},
        )
        await self.send_file(
            session, chat_id=chat_id, kind="photo", path=chart, purpose=purpose,
            caption=self.t("digest.chart_caption", locale, title=title),
        )
        for document in documents:
            await self.send_file(
                session, chat_id=chat_id, kind="document", path=document, caption=title,
                purpose=purpose,
            )

    def fields(
        self, ticket: Ticket, locale: str, *, station: Station | None = None
    ) -> dict[str, Any]:
        """The placeholders every ticket text may use, user text already escaped."""
        category = self.deployment.category(ticket.category_key)
        return {
            "number": ticket.id,
            "address": escape(ticket.address or ticket.address_text or "")
            or self.t("ticket.no_address", locale),
            "description": escape(ticket.description) or self.t("ticket.no_description", locale),
            "category": escape(category.name_in(locale)) if category else ticket.category_key,
            "station": escape(station.name) if station else "",
            "office": escape(self.deployment.street_office.name),
            "due": self.format_time(ticket.due_at, locale) if ticket.due_at else "—",
            "light": self.light(ticket),
            "status": self.t(f"status.{ticket.status}", locale),
        }

    def light(self, ticket: Ticket) -> str:
        if ticket.due_at is None or Status(ticket.status) not in (
            Status.ASSIGNED, Status.CLAIMED, Status.REOPENED, Status.NEW
        ):
            return ""
        return LIGHT_MARK[
            deadline_light(started=ticket.created_at, due=ticket.due_at, now=self.clock())
        ]

    def format_time(self, moment: datetime, locale: str) -> str:
        """A moment in the district's time, as the reader writes it: "11月3日 09:00",
        "Nov 3 09:00" (the year only when it is not this year's)."""
        local = moment.astimezone(self.deployment.zone)
        this_year = self.clock().astimezone(self.deployment.zone).year
        day = format_skeleton("MMMd" if local.year == this_year else "yMMMd", local, locale=locale)
        return f"{day} {format_skeleton('Hm', local, locale=locale)}"

    def format_span(self, span: timedelta, locale: str) -> str:
        """A duration as the reader says it: "3天", "3 days"."""
        return format_timedelta(span, threshold=2, locale=locale)  # 36 h: "36小时", not "2天"

    def format_day(self, day: date, locale: str) -> str:
        """A day with its weekday as the reader writes it: "12月5日周六", "Sat, Dec 5"."""
        this_year = self.clock().astimezone(self.deployment.zone).year
        return format_skeleton("MMMEd" if day.year == this_year else "yMMMEd", day, locale=locale)

    def reply_in_group(self, ticket: Ticket) -> dict[str, Any]:
        return {"chat_id": ticket.source_chat_id, "reply_to": ticket.source_message_id}

    def thread_locale(self, ticket: Ticket) -> str:
        """The language of a ticket's own thread: the group's, or the reporter's when the
        report was made in private (the guided /report; private chats have positive ids)."""
        return ticket.language if ticket.source_chat_id > 0 else self.group_locale

    # --- what people are told --------------------------------------------------------------

    async def reply(
        self, session: AsyncSession, *, chat_id: int, reply_to: int | None, key: str,
        locale: str | None = None, **params: Any,
    ) -> None:
        """A plain answer in a chat, e.g. a polite refusal of bad input."""
        locale = locale or self.group_locale
        await self.send(
            session, chat_id=chat_id, reply_to=reply_to, locale=locale,
            text=self.t(key, locale, **params),
        )

    async def acknowledged(
        self, session: AsyncSession, *, ticket: Ticket, station: Station | None
    ) -> None:
        """The thread answer to a located report: number, place, who is responsible."""
        locale = self.thread_locale(ticket)
        key = "ack.created" if station is not None else "ack.triage"
        await self.send(
            session, **self.reply_in_group(ticket), locale=locale, ticket=ticket,
            text=self.t(key, locale, **self.fields(ticket, locale, station=station)),
        )

    async def ask_for_address(
        self, session: AsyncSession, *, ticket: Ticket, unknown: str | None,
        guess: str | None = None, key: str | None = None, building: str | None = None,
    ) -> None:
        """Ask in the thread where the problem is; the answer is a reply to this message.
        A captain with a registered ``building`` also gets a one-tap "it is there" button."""
        locale = self.thread_locale(ticket)
        fields = self.fields(ticket, locale)
        if key is None:
            key = "ack.ask_address"
            if unknown:
                key = "ack.address_unsure" if guess else "ack.address_unknown"
        text = self.t(
            key, locale, unknown=escape(unknown or ""), guess=escape(guess or ""), **fields
        )
        buttons: list[list[Button]] = []
        if building:
            text += "\n" + self.t("ack.building_hint", locale, building=escape(building))
            buttons = [[Button("button.my_building", "home")]]
        await self.send(
            session, **self.reply_in_group(ticket), locale=locale, ticket=ticket, text=text,
            buttons=buttons, purpose="ask_address",
        )

    async def chief_card(
        self, session: AsyncSession, *, ticket: Ticket, station: Station, chief: Person | None,
        photo: Photo | None, reporter: Person, key: str = "chief.card", **extra: Any,
    ) -> None:
        """The chief's desk: the photo, the facts, a location pin and the buttons."""
        locale = chief.language if chief else self.group_locale
        text = self.t(
            key, locale, reporter=escape(reporter.name), **extra,
            **self.fields(ticket, locale, station=station),
        )
        # The card itself asks only to claim (or to fix, after a reopen): 处理中 comes with
        # the claim and with reminders, when a chief has something to say about the work.
        buttons = desk_buttons(ticket, in_progress=False)
        await self.send(
            session, chat_id=station.chief_telegram_id, locale=locale, ticket=ticket, text=text,
            buttons=buttons, photo=photo,
        )
        await self.send_location(session, chat_id=station.chief_telegram_id, ticket=ticket)

    async def triage(
        self, session: AsyncSession, *, ticket: Ticket, photo: Photo | None
    ) -> None:
        """A report outside every grid goes to the street office to be assigned by hand."""
        locale = self.group_locale
        await self.send(
            session, chat_id=self.deployment.street_office.chat_id, locale=locale, ticket=ticket,
            text=self.t("office.triage", locale, **self.fields(ticket, locale)),
            photo=photo,
        )
        await self.send_location(
            session, chat_id=self.deployment.street_office.chat_id, ticket=ticket
        )

    async def to_chief(
        self, session: AsyncSession, *, ticket: Ticket, station: Station, chief: Person | None,
        key: str, buttons: Sequence[Sequence[Button]] = (), **extra: Any,
    ) -> None:
        locale = chief.language if chief else self.group_locale
        await self.send(
            session, chat_id=station.chief_telegram_id, locale=locale, ticket=ticket,
            buttons=buttons,
            text=self.t(key, locale, **extra, **self.fields(ticket, locale, station=station)),
        )

    async def to_reporter(
        self, session: AsyncSession, *, ticket: Ticket, reporter: Person, key: str,
        buttons: Sequence[Sequence[Button]] = (), photo: Photo | None = None,
        station: Station | None = None, **extra: Any,
    ) -> None:
        """In private when the reporter has started the bot, else as a reply in the group."""
        where, locale = self.reporter_chat(ticket, reporter)
        await self.send(
            session, **where, locale=locale, ticket=ticket, buttons=buttons,
            photo=photo,
            text=self.t(
                key, locale, reporter=escape(reporter.name), **extra,
                **self.fields(ticket, locale, station=station),
            ),
        )

    def reporter_chat(self, ticket: Ticket, reporter: Person) -> tuple[dict[str, Any], str]:
        """Where the reporter hears of a ticket, and in which language."""
        if reporter.private_chat_started:
            return {"chat_id": reporter.telegram_id, "reply_to": None}, reporter.language
        return self.reply_in_group(ticket), self.group_locale

    async def auto_closed(
        self, session: AsyncSession, *, ticket: Ticket, reporter: Person | None,
        station: Station | None, chief: Person | None, after: timedelta,
    ) -> None:
        """The reporter and the chief hear that a fix nobody answered was closed."""
        if reporter is not None:
            where, locale = self.reporter_chat(ticket, reporter)
            await self.send(
                session, **where, locale=locale, ticket=ticket,
                text=self.t(
                    "reporter.auto_closed", locale, after=self.format_span(after, locale),
                    **self.fields(ticket, locale, station=station),
                ),
            )
        if station is not None:
            locale = chief.language if chief else self.group_locale
            await self.send(
                session, chat_id=station.chief_telegram_id, locale=locale, ticket=ticket,
                text=self.t(
                    "chief.auto_closed", locale, after=self.format_span(after, locale),
                    **self.fields(ticket, locale, station=station),
                ),
            )

    async def in_group(
        self, session: AsyncSession, *, ticket: Ticket, key: str, station: Station | None = None,
        **extra: Any,
    ) -> None:
        locale = self.thread_locale(ticket)
        await self.send(
            session, **self.reply_in_group(ticket), locale=locale, ticket=ticket,
            text=self.t(key, locale, **extra, **self.fields(ticket, locale, station=station)),
        )

    async def ask_expected_day(
        self, session: AsyncSession, *, ticket: Ticket, chat_id: int, locale: str
    ) -> None:
        """"#12 预计哪天处理好？" with quick picks; a typed date answers it too."""
        rows = [
            [
                {"text": self.t(key, locale),
                 "data": ExpectedDay(ticket=ticket.id or 0, days=days).pack()}
                for key, days in row
            ]
            for row in QUICK_PICKS
        ]
        await self._enqueue(
            session, chat_id=chat_id, kind="message", ticket=ticket,
            payload={
                "text": self.t("chief.ask_expected", locale, **self.fields(ticket, locale)),
                "reply_to": None,
                "buttons": rows,
            },
        )

    # --- repeats ------------------------------------------------------------------------

    async def merged(self, session: AsyncSession, *, duplicate: Ticket, original: Ticket) -> None:
        """In the repeat's thread: the original's number and state, and a way to split it out."""
        locale = self.thread_locale(duplicate)
        await self.send(
            session, **self.reply_in_group(duplicate), locale=locale, ticket=duplicate,
            buttons=[[Button("button.split", "split")]],
            text=self.t(
                "repeat.merged", locale, **self.fields(original, locale),
                reports=original.reports,
            ),
        )

    async def ask_same_problem(
        self, session: AsyncSession, *, ticket: Ticket, original: Ticket
    ) -> None:
        locale = self.thread_locale(ticket)
        await self.send(
            session, **self.reply_in_group(ticket), locale=locale, ticket=ticket,
            buttons=[[Button("button.same", "same"), Button("button.different", "diff")]],
            text=self.t(
                "repeat.ask", locale, **self.fields(original, locale), new=ticket.id,
            ),
        )

    async def to_followers(
        self, session: AsyncSession, *, ticket: Ticket,
        followers: Sequence[tuple[Person, Ticket]], key: str, **extra: Any,
    ) -> None:
        """Captains whose repeat was merged into ``ticket`` hear of its progress, in the
        thread of their own report (or in private, if they started the bot)."""
        for person, via in followers:
            if person.private_chat_started:
                where: dict[str, Any] = {"chat_id": person.telegram_id, "reply_to": None}
                locale = person.language
            else:
                where, locale = self.reply_in_group(via), self.group_locale
            await self.send(
                session, **where, locale=locale, ticket=ticket,
                text=self.t(key, locale, **extra, **self.fields(ticket, locale)),
            )

    async def escalation(
        self, session: AsyncSession, *, ticket: Ticket, station: Station | None
    ) -> None:
        """督办: the street office hears of a ticket that is overdue or reminded in vain."""
        locale = self.group_locale
        overdue = ""
        if ticket.due_at is not None and self.clock() > ticket.due_at:
            hours = (self.clock() - ticket.due_at).total_seconds() / 3600
            overdue = self.t("office.overdue", locale, hours=f"{hours:.1f}")
        text = self.t(
            "office.escalation", locale, overdue=overdue, reminders=ticket.reminders_sent,
            **self.fields(ticket, locale, station=station),
        )
        if ticket.expected_by is not None:  # the chief said 处理中 and named a day
            day = ticket.expected_by.astimezone(self.deployment.zone).date()
            text += "\n" + self.t("office.expected", locale, day=self.format_day(day, locale))
        await self.send(
            session, chat_id=self.deployment.street_office.chat_id, locale=locale, ticket=ticket,
            text=text,
        )

    async def chat_gone(self, session: AsyncSession, *, chat_id: int, error: str) -> None:
        """The street office hears that the bot can no longer write to a person or a group
        (blocked, removed, never started) — once, until a message gets through again."""
        office = self.deployment.street_office.chat_id
        purpose = f"gone:{chat_id}"
        if chat_id == office or await repo.told_since_delivered(
            session=session, chat_id=chat_id, purpose=purpose
        ):
            return
        locale = self.group_locale
        why = self.t(f"gone.{_why_gone(error)}", locale)
        if chat_id < 0:  # groups and supergroups have negative ids
            text = self.t("office.gone.group", locale, chat=chat_id, why=why)
        else:
            person = await repo.person_by_telegram_id(session=session, telegram_id=chat_id)
            if person is not None:  # write to them in their group threads from now on
                person.private_chat_started = False
                session.add(person)
            stations = await repo.stations_of_chief(session=session, telegram_id=chat_id)
            duty = (
                self.t("office.gone.chief", locale, stations="、".join(s.name for s in stations))
                if stations else ""
            )
            name = escape(person.name) if person is not None and person.name else str(chat_id)
            text = self.t("office.gone.person", locale, name=name, why=why, duty=duty)
        await self.send(session, chat_id=office, text=text, locale=locale, purpose=purpose)


# Telegram's refusal text → the catalog's reason (gone.*); the last is the fallback.
GONE_MARKERS = (
    ("blocked", "blocked"), ("initiate", "not_started"), ("kicked", "removed"),
    ("not a member", "removed"), ("deactivated", "deactivated"),
)
GONE_REASONS = (*dict.fromkeys(reason for _, reason in GONE_MARKERS), "not_found")


def _why_gone(error: str) -> str:
    lowered = error.lower()
    return next((reason for marker, reason in GONE_MARKERS if marker in lowered), "not_found")
