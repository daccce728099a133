"""The guided report (/report in private chat): photos → place → category → description →
summary, one step at a time, with back and cancel; then a ticket, made the way a group
report is made (`TicketService.submit_form`).

A form is plain data (photos by Telegram file_id only) that the handlers keep in aiogram's
FSM storage as JSON: in memory on one machine, in Redis when several workers share the
chats, so any of them can take the next step. Every step answers with what to say next;
the handlers store the form before the answer is sent, so a quick reply finds it stored.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import FormButton
from bot.deployment import Deployment
from bot.locating import Place
from bot.notify import Notifier
from bot.photos import PhotoError, inspect_image
from bot.placing import Placer
from bot.tickets import MAX_CAPTION, IncomingPhoto, IncomingReport, Sender

STEPS = ("photos", "place", "category", "description", "confirm")
STALE_AFTER = timedelta(minutes=30)  # a form untouched this long is gone at the next input
MAX_PHOTOS = 10  # as many as one Telegram album holds
MAX_ADDRESS = 256  # storage.models.Ticket.address_text
MAX_DESCRIPTION = MAX_CAPTION  # storage.models.Ticket.description
SUGGESTIONS = 5
# What each step is waiting for, said when something else arrives.
NEEDED = {
    "photos": "form.need_photo",
    "place": "form.need_place",
    "category": "form.need_category",
    "description": "form.need_description",
    "confirm": "form.need_confirm",
}

Rows = list[list[dict[str, str]]]


@dataclass(frozen=True)
class FormPhoto:
    """A photo of the form, as Telegram knows it: downloaded again when the form is sent."""

    file_id: str
    file_unique_id: str
    as_document: bool = False


@dataclass(frozen=True)
class ReportForm:
    """What the reporter has said so far. ``turn`` counts the steps taken: a button drawn at
    an earlier turn is stale, so an old message's buttons cannot act on the form."""

    id: str
    step: str
    touched: datetime  # when the last step was taken
    turn: int = 0
    photos: tuple[FormPhoto, ...] = ()
    typed: str | None = None  # the address as typed, when it was typed
    place: Place | None = None
    suggestions: tuple[Place, ...] = ()
    category: str | None = None
    description: str | None = None

    def to_data(self) -> dict[str, Any]:
        """JSON-ready, for the FSM storage."""
        data = asdict(self)
        data["touched"] = self.touched.isoformat()
        return {"form": data}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReportForm | None:
        """The form in FSM data, or None when there is none (or it cannot be read)."""
        raw = data.get("form")
        if not isinstance(raw, dict):
            return None
        try:
            place = raw.get("place")
            return cls(
                id=str(raw["id"]),
                step=raw["step"] if raw["step"] in STEPS else STEPS[0],
                touched=datetime.fromisoformat(raw["touched"]),
                turn=int(raw.get("turn", 0)),
                photos=tuple(FormPhoto(**photo) for photo in raw.get("photos", ())),
                typed=raw.get("typed"),
                place=Place(**place) if place else None,
                suggestions=tuple(Place(**p) for p in raw.get("suggestions", ())),
                category=raw.get("category"),
                description=raw.get("description"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def button(self, action: str, value: str = "") -> str:
        return FormButton(form=self.id, turn=self.turn, action=action, value=value).pack()


@dataclass(frozen=True)
class Said:
    """A message for the reporter: rendered text and inline buttons."""

    text: str
    rows: Rows


@dataclass(frozen=True)
class Step:
    """The form after an input, and what to say. ``form`` None: the form is over."""

    form: ReportForm | None
    said: Said


class GuidedReports:
    """The form's rules: what each input does at each step, and what the reporter is told."""

    def __init__(
        self,
        *,
        deployment: Deployment,
        placer: Placer,
        notifier: Notifier,
        clock: Callable[[], datetime],
        wake_sender: Callable[[], None] = lambda: None,
    ) -> None:
        self.deployment = deployment
        self.placer = placer
        self.notifier = notifier
        self.clock = clock
        self.wake_sender = wake_sender

    # --- the form's life ------------------------------------------------------------------

    def start(self, locale: str) -> Step:
        form = ReportForm(id=secrets.token_hex(4), step="photos", touched=self.clock())
        return Step(form, self.ask(form, locale))

    def expired(self, form: ReportForm) -> bool:
        return self.clock() - form.touched > STALE_AFTER

    def expiry(self, locale: str) -> Step:
        return Step(None, Said(self.notifier.t("form.expired", locale), []))

    def cancel(self, locale: str) -> Step:
        return Step(None, Said(self.notifier.t("form.cancelled", locale), []))

    def report(
        self, form: ReportForm, *, chat_id: int, message_id: int, sender: Sender,
        photos: Sequence[IncomingPhoto],
    ) -> IncomingReport:
        """The finished form as a report; its source is the summary whose 提交 was pressed."""
        return IncomingReport(
            chat_id=chat_id, message_id=message_id, sender=sender, caption=None,
            photos=photos, place=form.place, category_key=form.category,
            description=form.description or "", address_text=form.typed,
        )

    def _to(self, form: ReportForm, step: str, **changes: Any) -> ReportForm:
        return replace(form, step=step, touched=self.clock(), turn=form.turn + 1, **changes)

    def _next(self, form: ReportForm, locale: str, **changes: Any) -> Step:
        moved = self._to(form, STEPS[STEPS.index(form.step) + 1], **changes)
        return Step(moved, self.ask(moved, locale))

    # --- inputs ---------------------------------------------------------------------------

    async def photos(
        self, form: ReportForm, photos: Sequence[IncomingPhoto], locale: str
    ) -> Step:
        """A photo or an album. Checked now (a corrupt file is refused at once), kept by id."""
        if form.step != "photos":
            return self.refuse(form, locale)
        if len(form.photos) + len(photos) > MAX_PHOTOS:
            return self.refuse(form, locale, "form.too_many_photos", limit=MAX_PHOTOS)
        for photo in photos:
            try:
                await asyncio.to_thread(inspect_image, photo.data)
            except PhotoError as error:
                return self.refuse(form, locale, error.message_key, **error.params)
        kept = form.photos + tuple(
            FormPhoto(p.file_id, p.file_unique_id, p.as_document) for p in photos
        )
        form = replace(form, photos=kept, touched=self.clock())
        return Step(form, self.ask(form, locale))

    async def typed(self, form: ReportForm, text: str, locale: str) -> Step:
        """Text: an address (also straight after the photos), a category's name, or the
        description."""
        text = text.strip()
        if form.step == "photos" and form.photos:
            form = self._to(form, "place")  # the photos are done: this is the place
        if form.step == "place":
            return await self._address(form, text, locale)
        if form.step == "category":
            chosen = next(
                (c.key for c in self.deployment.categories
                 if text.casefold() in (c.name.casefold(), c.name_in(locale).casefold())),
                None,
            )
            return self.choose(form, chosen, locale)
        if form.step == "description":
            if len(text) > MAX_DESCRIPTION:
                return self.refuse(
                    form, locale, "form.description_too_long", length=len(text),
                    limit=MAX_DESCRIPTION,
                )
            return self._next(form, locale, description=text)
        return self.refuse(form, locale)

    async def _address(self, form: ReportForm, text: str, locale: str) -> Step:
        if len(text) > MAX_ADDRESS:
            return self.refuse(
                form, locale, "form.place_too_long", length=len(text), limit=MAX_ADDRESS
            )
        finding = await self.placer.from_text(text)
        if finding.place is not None:  # sure enough to act on: no need to ask
            return self._next(form, locale, typed=text, place=finding.place, suggestions=())
        suggestions = tuple(self.placer.suggestions(text, limit=SUGGESTIONS))
        form = replace(form, typed=text, suggestions=suggestions)
        key = "form.suggest" if suggestions else "form.place_unknown"
        said = Said(self.notifier.t(key, locale, typed=escape(_shortened(text))),
                    self._rows(form, locale))
        return Step(form, said)

    async def located(
        self, form: ReportForm, lat: float, lon: float, locale: str, *, label: str | None = None
    ) -> Step:
        """A shared location or venue: at the place step, or straight after the photos."""
        if form.step == "photos" and form.photos:
            form = self._to(form, "place")
        if form.step != "place":
            return self.refuse(form, locale)
        source = "venue" if label else "location"
        finding = await self.placer.from_point(lat, lon, source=source, label=label)
        if finding.place is None:  # not a point on Earth: a forged location
            return self.refuse(form, locale)
        return self._next(form, locale, typed=None, place=finding.place, suggestions=())

    def pick(self, form: ReportForm, value: str, locale: str) -> Step:
        """One of the suggested places."""
        if form.step != "place" or not value.isdigit() or int(value) >= len(form.suggestions):
            return self.refuse(form, locale)
        place = self.placer.confirmed(form.suggestions[int(value)]).place
        return self._next(form, locale, place=place, suggestions=())

    def choose(self, form: ReportForm, key: str | None, locale: str) -> Step:
        if form.step != "category" or key not in {c.key for c in self.deployment.categories}:
            return self.refuse(form, locale, "form.need_category")
        return self._next(form, locale, category=key)

    def skip(self, form: ReportForm, locale: str) -> Step:
        if form.step != "description":
            return self.refuse(form, locale)
        return self._next(form, locale, description=None)

    def keep(self, form: ReportForm, locale: str) -> Step:
        """"下一步": what the step holds already is right (photos sent, a place from before)."""
        if form.step == "confirm" or not self._filled(form):
            return self.refuse(form, locale)
        return self._next(form, locale)

    def back(self, form: ReportForm, locale: str) -> Step:
        if form.step == STEPS[0]:
            return self.refuse(form, locale)
        moved = self._to(form, STEPS[STEPS.index(form.step) - 1], suggestions=())
        return Step(moved, self.ask(moved, locale))

    def refuse(self, form: ReportForm, locale: str, key: str | None = None, **params: Any) -> Step:
        """Input this step cannot take: why, and the step's buttons again. Nothing changes."""
        key = key or NEEDED[form.step]
        return Step(form, Said(self.notifier.t(key, locale, **params), self._rows(form, locale)))

    def _filled(self, form: ReportForm) -> bool:
        return {
            "photos": bool(form.photos),
            "place": form.place is not None,
            "category": form.category is not None,
            "description": True,
        }.get(form.step, False)

    # --- what the reporter sees -----------------------------------------------------------

    def ask(self, form: ReportForm, locale: str) -> Said:
        """The question of the form's step, with what it holds already and its buttons."""
        t = self.notifier.t
        if form.step == "photos":
            text = (t("form.got_photos", locale, count=len(form.photos)) if form.photos
                    else t("form.ask_photos", locale))
        elif form.step == "place":
            text = t("form.ask_place", locale)
            if form.place is not None:
                text += "\n" + t("form.current", locale, value=self._address_of(form, locale))
        elif form.step == "category":
            text = t("form.ask_category", locale, address=self._address_of(form, locale))
        elif form.step == "description":
            text = t("form.ask_description", locale)
            if form.description:
                text += "\n" + t("form.current", locale, value=escape(form.description))
        else:
            text = t(
                "form.summary", locale, photos=len(form.photos),
                address=self._address_of(form, locale), station=self._station_of(form, locale),
                category=self._category_of(form, locale),
                description=escape(form.description or "")
                or t("ticket.no_description", locale),
            )
        return Said(text, self._rows(form, locale))

    def _rows(self, form: ReportForm, locale: str) -> Rows:
        def button(key: str, action: str, value: str = "") -> dict[str, str]:
            return {"text": self.notifier.t(key, locale), "data": form.button(action, value)}

        rows: Rows = []
        if form.step == "place":
            rows += [[{"text": place.address, "data": form.button("pick", str(index))}]
                     for index, place in enumerate(form.suggestions)]
        elif form.step == "category":
            chosen = [{"text": category.name_in(locale), "data": form.button("pick", category.key)}
                      for category in self.deployment.categories]
            rows += [chosen[i : i + 2] for i in range(0, len(chosen), 2)]
        elif form.step == "description" and not form.description:
            rows.append([button("button.skip", "skip")])
        if form.step == "confirm":
            rows.append([button("button.submit", "submit")])
        elif self._filled(form) and not (form.step == "description" and not form.description):
            rows.append([button("button.next_step", "done")])
        last = [button("button.cancel", "cancel")]
        if form.step != STEPS[0]:
            last.insert(0, button("button.back", "back"))
        rows.append(last)
        return rows

    def _address_of(self, form: ReportForm, locale: str) -> str:
        place = form.place
        if place is None:
            return self.notifier.t("ticket.no_address", locale)
        if place.how == "near":
            return self.notifier.t("place.near", locale, address=escape(place.address))
        return escape(place.address)

    def _station_of(self, form: ReportForm, locale: str) -> str:
        routed = self.placer.confirmed(form.place).place if form.place else None
        if routed is not None and routed.station_key is not None:
            return escape(self.deployment.station(routed.station_key).name)
        return self.notifier.t(
            "form.no_station", locale, office=escape(self.deployment.street_office.name)
        )

    def _category_of(self, form: ReportForm, locale: str) -> str:
        for category in self.deployment.categories:
            if category.key == form.category:
                return escape(category.name_in(locale))
        return "—"

    async def say(self, session: AsyncSession, *, chat_id: int, said: Said) -> None:
        """Into the outbox, committed, and the sender woken."""
        await self.notifier.send_rows(session, chat_id=chat_id, text=said.text, rows=said.rows)
        await session.commit()
        self.wake_sender()


def _shortened(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
