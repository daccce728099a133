"""The guided report in private chat: /report, then one step at a time (bot.guided_report).

The form lives in the FSM storage (memory, or Redis with GRIDBOT_REDIS_URL); each handler
reads it, asks the domain what the input means, stores the new form and then says the
answer, so the next input always finds the form as the reporter last saw it.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import BaseFilter, Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, TelegramObject
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.albums import Albums
from bot.callbacks import FormButton
from bot.guided_report import STEPS, GuidedReports, ReportForm, Step
from bot.i18n import Translator
from bot.permissions import Feature
from bot.photos import MAX_PHOTO_BYTES
from bot.telegram_files import TooLarge, fetch_again, fetch_image, has_image
from bot.tickets import IncomingPhoto, Sender, TicketService
from handlers.filters import Allowed, PrivateChat


class GuidedReport(StatesGroup):
    photos = State()
    place = State()
    category = State()
    description = State()
    confirm = State()


STATES: dict[str, State] = {step: getattr(GuidedReport, step) for step in STEPS}
NOT_A_COMMAND = F.func(lambda message: not (message.text or "").startswith("/"))


class OpenForm(BaseFilter):
    """The sender's form, fresh (``expired=False``) or untouched too long: gives ``form``."""

    def __init__(self, *, expired: bool = False) -> None:
        self.expired = expired

    async def __call__(
        self, event: TelegramObject, state: FSMContext, forms: GuidedReports
    ) -> dict[str, Any] | bool:
        form = ReportForm.from_data(await state.get_data())
        if form is None or forms.expired(form) != self.expired:
            return False
        return {"form": form}


class ThisTurn(BaseFilter):
    """A button drawn for the form as it is now; an earlier step's button is stale. With
    ``any_turn``, any button of this form (✖ 取消 works on every message of it)."""

    def __init__(self, *, any_turn: bool = False) -> None:
        self.any_turn = any_turn

    async def __call__(
        self, query: CallbackQuery, callback_data: FormButton, form: ReportForm
    ) -> bool:
        return callback_data.form == form.id and (
            self.any_turn or callback_data.turn == form.turn
        )


async def keep(state: FSMContext, step: Step) -> None:
    if step.form is None:
        await state.clear()
        return
    await state.set_state(STATES[step.form.step])
    await state.set_data(step.form.to_data())


async def go_on(
    step: Step, *, state: FSMContext, session: AsyncSession, forms: GuidedReports, chat_id: int
) -> None:
    """Store the form first, then say the answer: a quick next input finds it stored."""
    await keep(state, step)
    await forms.say(session, chat_id=chat_id, said=step.said)


async def start(
    message: Message, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    locale: str,
) -> None:
    """/report: a new form (one still open is dropped)."""
    await go_on(
        forms.start(locale), state=state, session=session, forms=forms, chat_id=message.chat.id
    )


async def expired(
    message: Message, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    locale: str,
) -> None:
    await go_on(forms.expiry(locale), state=state, session=session, forms=forms,
                chat_id=message.chat.id)


async def expired_press(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    locale: str,
) -> None:
    await go_on(forms.expiry(locale), state=state, session=session, forms=forms,
                chat_id=query.from_user.id)
    await query.answer()


async def pictures(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    albums: Albums, locale: str,
) -> None:
    """A photo, or an album (its first part's handler takes them all)."""
    parts = [message]
    if message.media_group_id:
        collected = await albums.collect((message.chat.id, message.media_group_id), message)
        if collected is None:
            return
        parts = sorted(collected, key=lambda m: m.message_id)
    form = ReportForm.from_data(await state.get_data())  # as it is after the wait
    if form is None:
        return
    photos: list[IncomingPhoto] = []
    step = None
    if form.step == "photos":  # elsewhere they are not downloaded, only refused
        try:
            photos = [await fetch_image(bot, part) for part in parts]
        except TooLarge:
            step = forms.refuse(
                form, locale, "error.photo.too_large", limit_mb=MAX_PHOTO_BYTES // 2**20
            )
    step = step or await forms.photos(form, photos, locale)
    await go_on(step, state=state, session=session, forms=forms, chat_id=message.chat.id)


async def typed(
    message: Message, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    form: ReportForm, locale: str,
) -> None:
    assert message.text is not None
    step = await forms.typed(form, message.text, locale)
    await go_on(step, state=state, session=session, forms=forms, chat_id=message.chat.id)


async def located(
    message: Message, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    form: ReportForm, locale: str,
) -> None:
    assert message.location is not None
    venue = message.venue
    step = await forms.located(
        form, message.location.latitude, message.location.longitude, locale,
        label=f"{venue.title} {venue.address}".strip() if venue else None,
    )
    await go_on(step, state=state, session=session, forms=forms, chat_id=message.chat.id)


async def something_else(
    message: Message, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    form: ReportForm, albums: Albums, locale: str,
) -> None:
    """A sticker, a voice note, a file that is no picture…: what this step needs instead."""
    if message.media_group_id and await albums.collect(
        (message.chat.id, message.media_group_id), message
    ) is None:
        return  # an album of files: answered once
    key = "error.photo.not_an_image" if form.step == "photos" and message.document else None
    await go_on(forms.refuse(form, locale, key), state=state, session=session, forms=forms,
                chat_id=message.chat.id)


async def pressed(
    query: CallbackQuery, callback_data: FormButton, state: FSMContext, session: AsyncSession,
    forms: GuidedReports, form: ReportForm, locale: str,
) -> None:
    """下一步, 返回, a suggested place, a category, 跳过."""
    action, value = callback_data.action, callback_data.value
    if action == "back":
        step = forms.back(form, locale)
    elif action == "done":
        step = forms.keep(form, locale)
    elif action == "skip":
        step = forms.skip(form, locale)
    elif action == "pick" and form.step == "category":
        step = forms.choose(form, value, locale)
    else:
        step = forms.pick(form, value, locale)
    await go_on(step, state=state, session=session, forms=forms, chat_id=query.from_user.id)
    await query.answer()


async def cancel(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, forms: GuidedReports,
    locale: str,
) -> None:
    """✖ 取消 on any message of the open form."""
    await go_on(forms.cancel(locale), state=state, session=session, forms=forms,
                chat_id=query.from_user.id)
    await query.answer()


async def submit(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, sender: Sender,
    forms: GuidedReports, tickets: TicketService, form: ReportForm, translator: Translator,
    locale: str,
) -> None:
    """提交: the ticket, made as a group report is; the summary is its source message, so a
    second press finds the same ticket."""
    assert query.message is not None
    photos = [
        await fetch_again(
            bot, file_id=p.file_id, file_unique_id=p.file_unique_id, as_document=p.as_document
        )
        for p in form.photos
    ]
    outcome = await tickets.submit_form(
        session,
        forms.report(
            form, chat_id=query.message.chat.id, message_id=query.message.message_id,
            sender=sender, photos=photos,
        ),
    )
    if outcome.ticket is None:  # refused (and told why); the form stays to be corrected
        await query.answer()
        return
    await state.clear()
    await query.answer(translator.get("callback.form_submitted", locale, number=outcome.ticket.id))


async def stale_press(
    query: CallbackQuery, callback_data: FormButton, session: AsyncSession,
    tickets: TicketService, translator: Translator, locale: str,
) -> None:
    """A button of an earlier step, or of a form that is over; 提交 pressed again says which
    ticket it made."""
    if callback_data.action == "submit" and query.message is not None:
        ticket = await tickets.reported_from(
            session, chat_id=query.message.chat.id, message_id=query.message.message_id
        )
        if ticket is not None:
            await query.answer(translator.get("callback.form_submitted", locale,
                                              number=ticket.id))
            return
    await query.answer(translator.get("callback.form_old_button", locale), show_alert=True)


def router() -> Router:
    """A fresh router for one Dispatcher (routers cannot be shared)."""
    router = Router(name="guided_report")
    router.message.filter(PrivateChat())
    router.message.register(start, Command("report"), Allowed(Feature.REPORT))
    in_form = StateFilter(GuidedReport)
    router.message.register(expired, in_form, NOT_A_COMMAND, OpenForm(expired=True))
    router.callback_query.register(expired_press, FormButton.filter(), OpenForm(expired=True))
    router.callback_query.register(
        cancel, FormButton.filter(F.action == "cancel"), OpenForm(), ThisTurn(any_turn=True)
    )
    router.callback_query.register(
        submit, FormButton.filter(F.action == "submit"), OpenForm(), ThisTurn()
    )
    router.callback_query.register(pressed, FormButton.filter(), OpenForm(), ThisTurn())
    router.callback_query.register(stale_press, FormButton.filter())
    router.message.register(pictures, in_form, F.func(has_image), OpenForm())
    router.message.register(located, in_form, F.location, OpenForm())
    router.message.register(typed, in_form, F.text, NOT_A_COMMAND, OpenForm())
    router.message.register(something_else, in_form, NOT_A_COMMAND, OpenForm())
    return router
