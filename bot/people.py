"""People: one-time invitation links and joining with them, who is who (/whoami), and the
language each person reads (/lang)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import LanguageChoice
from bot.deployment import MAX_BUILDING, clean_building
from bot.notify import Button
from bot.permissions import Feature, Standing, may, standing_of
from bot.tickets import Sender, TicketService
from storage import repo
from storage.models import Invitation, Person

ROLES = ("captain", "chief", "office")
INVITATION_LIFETIME = timedelta(days=7)
# Telegram's start parameter: 1-64 of these characters; anything else was never ours.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOKEN_BYTES = 24  # 192 random bits, 32 characters
# What /whoami calls each kind of member, and what they can do now.
ROLE_NAMES = {
    "captain": "role.captain",
    "chief": "role.chief",
    "deputy": "role.deputy",
    "office": "role.office",
    "admin": "role.admin",
}
CAN_DO = {
    "captain": "can.captain",
    "chief": "can.chief",
    "deputy": "can.deputy",
    "office": "can.office",
    "admin": "can.office",
}
# The catalogs' locales and the button that chooses each, in its own language.
LANGUAGES = {"zh_CN": "language.zh_CN", "en": "language.en"}


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def invitation_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={token}"


class BadInvitation(ValueError):
    """An invitation that cannot be made: ``str(error)`` tells the operator (CLI), ``key`` and
    ``params`` (raw text, escape before use) the office member who asked with /invite."""

    def __init__(self, detail: str, key: str, **params: str) -> None:
        super().__init__(detail)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class InvitationSpec:
    role: str
    station_key: str | None
    building: str | None


def check_invitation(
    station_keys: list[str], *, role: str, station: str | None, building: str | None
) -> InvitationSpec:
    """An invitation request made valid for the deployment's stations (keys): captains and
    chiefs need a station, the office has none, only captains have a building."""
    role = role.strip().lower()
    station = (station or "").strip() or None
    if role not in ROLES:
        raise BadInvitation(
            f"unknown role {role[:32]!r}; use captain, chief or office", "invite.bad_role",
            role=role[:32],
        )
    if role == "office":
        if station is not None:
            raise BadInvitation(
                "the street office belongs to no station; leave the station out",
                "invite.office_has_no_station",
            )
        station_key = None
    elif station is None:
        raise BadInvitation(
            f"a {role} needs a station: one of {', '.join(station_keys)}",
            "invite.needs_station",
        )
    elif station not in station_keys:
        raise BadInvitation(
            f"there is no station {station[:64]!r}; stations: {', '.join(station_keys)}",
            "invite.unknown_station", station=station[:64],
        )
    else:
        station_key = station
    if building is not None and building.strip():
        if role != "captain":
            raise BadInvitation(
                "only a captain has a building; leave the building out",
                "invite.building_for_captains",
            )
        try:
            building = clean_building(building)
        except ValueError as exc:
            raise BadInvitation(
                f"the building {exc}", "invite.bad_building", limit=str(MAX_BUILDING)
            ) from None
    else:
        building = None
    return InvitationSpec(role=role, station_key=station_key, building=building)


async def create_invitation(
    session: AsyncSession, *, spec: InvitationSpec, created_by: int | None, now: datetime,
    lifetime: timedelta = INVITATION_LIFETIME,
) -> Invitation:
    """A new one-time invitation, in the caller's transaction (not committed)."""
    return await repo.add_invitation(
        session=session,
        invitation=Invitation(
            token=new_token(), role=spec.role, station_key=spec.station_key,
            building=spec.building, created_by=created_by, created_at=now,
            expires_at=now + lifetime,
        ),
    )


class PeopleService:
    """Invitations, joining, /whoami and /lang, over the ticket service's notifier: every
    answer goes to the outbox in the transaction of the change."""

    def __init__(self, *, tickets: TicketService) -> None:
        self.tickets = tickets
        self.deployment = tickets.deployment
        self.notifier = tickets.notifier
        self.clock = tickets.clock

    @property
    def station_keys(self) -> list[str]:
        return [station.key for station in self.deployment.stations]

    async def _commit(self, session: AsyncSession) -> None:
        await session.commit()
        self.tickets.wake_sender()

    async def _say(
        self, session: AsyncSession, *, to: int, locale: str, text: str,
        buttons: list[list[Button]] | None = None,
    ) -> None:
        await self.notifier.send(
            session, chat_id=to, locale=locale, text=text, buttons=buttons or ()
        )

    # --- invitations ------------------------------------------------------------------------

    async def invite(
        self, session: AsyncSession, *, sender: Sender, args: str | None, bot_username: str
    ) -> None:
        """/invite captain KEY [building] | chief KEY | office — street office members only."""
        person = await self.tickets.person(session, sender)
        person.private_chat_started = True  # they wrote in private: the bot may write back
        session.add(person)
        locale = person.language
        t = self.notifier.t
        standing = standing_of(person, sender.telegram_id, self.deployment)
        if not may(Feature.INVITE, standing, self.deployment):
            await self._say(
                session, to=sender.telegram_id, locale=locale, text=t("invite.not_office", locale)
            )
            await self._commit(session)
            return
        usage = t("invite.usage", locale, stations=", ".join(self.station_keys))
        words = (args or "").split(maxsplit=2)  # role, station, the building (may have spaces)
        try:
            if not words:
                raise BadInvitation("no role", "invite.usage")
            spec = check_invitation(
                self.station_keys, role=words[0],
                station=words[1] if len(words) > 1 else None,
                building=words[2] if len(words) > 2 else None,
            )
        except BadInvitation as bad:
            params = {name: escape(value) for name, value in bad.params.items()}
            problem = "" if bad.key == "invite.usage" else t(bad.key, locale, **params) + "\n\n"
            await self._say(session, to=sender.telegram_id, locale=locale, text=problem + usage)
            await self._commit(session)
            return
        invitation = await create_invitation(
            session, spec=spec, created_by=person.id, now=self.clock()
        )
        await self._say(
            session, to=sender.telegram_id, locale=locale,
            text=t(
                "invite.created", locale, who=self._who(spec, locale),
                expires=self.notifier.format_time(invitation.expires_at, locale),
                link=invitation_link(bot_username, invitation.token),
            ),
        )
        await self._commit(session)

    def _who(self, spec: InvitationSpec, locale: str) -> str:
        """"汾阳路社区工作站的楼院长（3号楼）": whom an invitation is for, escaped."""
        t = self.notifier.t
        role = t(ROLE_NAMES["deputy" if spec.role == "chief" else spec.role], locale)
        if spec.station_key is None:
            return role
        station = escape(self._station_name(spec.station_key))
        who = t("invite.who", locale, role=role, station=station)
        if spec.building:
            who = t("invite.who_building", locale, who=who, building=escape(spec.building))
        return who

    # --- joining ----------------------------------------------------------------------------

    async def join(self, session: AsyncSession, *, sender: Sender, token: str) -> None:
        """/start <token>: the invitation's role for whoever opens it first, before it expires.

        A forged token and an unknown one get the same answer, so guessing learns nothing.
        """
        person = await self.tickets.person(session, sender)
        person.private_chat_started = True  # they pressed Start: the bot may write to them
        session.add(person)
        locale = person.language
        t = self.notifier.t
        now = self.clock()
        token = token.strip()
        invitation = None
        if TOKEN_SHAPE.fullmatch(token):
            invitation = await repo.get_invitation(session=session, token=token)
        if invitation is None:
            key = "join.invalid"
        elif invitation.used_by is not None and invitation.used_by == person.id:
            key = "join.already"
        elif invitation.used_by is not None:
            key = "join.used"
        elif invitation.expires_at <= now:
            key = "join.expired"
        elif self._set_by_deployment(sender.telegram_id):
            key = "join.fixed"
        elif not await repo.use_invitation(
            session=session, token=token, person_id=person.id or 0, now=now
        ):
            key = "join.used"  # someone else opened it a moment ago
        else:
            key = "join.welcome"
            person.role = invitation.role
            person.station_key = invitation.station_key
            person.building = invitation.building if invitation.role == "captain" else None
            person.joined_at = now
            session.add(person)
            await self._tell_inviter(session, invitation=invitation, newcomer=person)
        if key in ("join.already", "join.welcome", "join.fixed"):
            card = self._card(person, sender.telegram_id, locale)
            text = t(key, locale, name=escape(person.name), card=card)
        else:
            text = t(key, locale)
        await self._say(session, to=sender.telegram_id, locale=locale, text=text)
        await self._commit(session)

    async def _tell_inviter(
        self, session: AsyncSession, *, invitation: Invitation, newcomer: Person
    ) -> None:
        """The office member who made the link hears that it was used, and by whom."""
        if invitation.created_by is None:
            return  # made on the command line
        inviter = await repo.get_person(session=session, person_id=invitation.created_by)
        if inviter is None or not inviter.private_chat_started:
            return
        spec = InvitationSpec(invitation.role, invitation.station_key, invitation.building)
        locale = inviter.language
        await self._say(
            session, to=inviter.telegram_id, locale=locale,
            text=self.notifier.t(
                "invite.accepted", locale, name=escape(newcomer.name),
                who=self._who(spec, locale),
            ),
        )

    def _set_by_deployment(self, telegram_id: int) -> bool:
        return bool(self.deployment.stations_led_by(telegram_id)) or (
            self.deployment.member(telegram_id) is not None
        )

    # --- who is who -------------------------------------------------------------------------

    async def whoami(self, session: AsyncSession, *, sender: Sender) -> None:
        """/whoami: role, station and building; how to join for someone who has not."""
        person = await repo.person_by_telegram_id(session=session, telegram_id=sender.telegram_id)
        locale = sender.language or self.notifier.group_locale
        t = self.notifier.t
        name = escape(person.name if person and person.name else sender.name)
        if self._role(person, sender.telegram_id) is None:
            text = t("whoami.stranger", locale, name=name)
            if self.deployment.intake == "open":
                text += "\n" + t("whoami.may_report", locale)
        else:
            card = self._card(person, sender.telegram_id, locale)
            text = t("whoami.card", locale, name=name, card=card)
        await self._say(session, to=sender.telegram_id, locale=locale, text=text)
        await self._commit(session)

    def _role(self, person: Person | None, telegram_id: int) -> str | None:
        """captain | chief | deputy | office | admin; None for someone who has not joined."""
        standing = standing_of(person, telegram_id, self.deployment)
        if standing is Standing.STRANGER:
            return None
        if standing is Standing.OFFICE and person is not None:
            return person.role  # office or admin
        return standing.value

    def _card(self, person: Person | None, telegram_id: int, locale: str) -> str:
        """Role, station(s), building and what the role can do, one per line, escaped."""
        t = self.notifier.t
        role = self._role(person, telegram_id)
        if role is None:
            return ""
        lines = [t("whoami.role", locale, role=t(ROLE_NAMES[role], locale))]
        led = self.deployment.stations_led_by(telegram_id)
        names = [s.name for s in led] if led else (
            [self._station_name(person.station_key)] if person and person.station_key else []
        )
        if names:
            separator = "、" if locale.startswith("zh") else ", "
            lines.append(
                t("whoami.station", locale, station=escape(separator.join(names)))
            )
        if person is not None and person.building and role == "captain":
            lines.append(t("whoami.building", locale, building=escape(person.building)))
        lines.append(t(CAN_DO[role], locale))
        return "\n".join(lines)

    def _station_name(self, key: str) -> str:
        try:
            return self.deployment.station(key).name
        except KeyError:  # a station since removed from the deployment file
            return key

    # --- languages --------------------------------------------------------------------------

    async def offer_languages(self, session: AsyncSession, *, sender: Sender) -> None:
        """/lang: one button per language, each written in its own language."""
        locale = sender.language or self.notifier.group_locale
        buttons = [[
            Button(name_key, LanguageChoice(locale=code).pack())
            for code, name_key in LANGUAGES.items()
        ]]
        await self._say(
            session, to=sender.telegram_id, locale=locale,
            text=self.notifier.t("language.choose", locale), buttons=buttons,
        )
        await self._commit(session)

    async def choose_language(
        self, session: AsyncSession, *, sender: Sender, locale: str
    ) -> str | None:
        """The person reads ``locale`` from now on, whatever Telegram says; None for a
        language the bot does not have (a forged button), which changes nothing."""
        if locale not in LANGUAGES:
            return None
        person = await self.tickets.person(session, sender)
        person.language, person.language_chosen = locale, True
        person.private_chat_started = True
        session.add(person)
        await self._say(
            session, to=sender.telegram_id, locale=locale,
            text=self.notifier.t("language.chosen", locale),
        )
        await self._commit(session)
        return locale
