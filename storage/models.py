"""SQLModel tables: people, invitations, stations, tickets, photos, events, outbox, inbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (portable across SQLite and PostgreSQL); hands back aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _big(**kwargs: Any) -> Any:
    return Field(sa_type=sa.BigInteger, **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_type=sa.JSON, default_factory=dict, **kwargs)


class Person(SQLModel, table=True):
    """Anyone the bot has met: captains, chiefs, street-office staff."""

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = _big(unique=True, index=True)
    name: str = Field(default="", max_length=256)
    username: str | None = Field(default=None, max_length=64)
    language: str = Field(default="zh_CN", max_length=8)
    role: str = Field(default="captain", max_length=16)  # captain | chief | office | admin
    station_key: str | None = Field(default=None, foreign_key="station.key", max_length=64)
    private_chat_started: bool = False  # a bot may only write to people who pressed /start
    created_at: datetime = _when()
    # A captain's registered building or address (from their invitation or the deployment
    # file): a hint for placing their reports.
    building: str | None = Field(default=None, max_length=128)
    # Set by /lang: from then on Telegram's language_code no longer changes `language`.
    language_chosen: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # When they joined through an invitation or the deployment file's `people:`; None for
    # people the bot merely met (with `intake: members` only members' reports are taken).
    joined_at: datetime | None = _when(default=None)


class Station(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=128)
    chief_telegram_id: int = _big()


class Invitation(SQLModel, table=True):
    """A one-time link (`https://t.me/<bot>?start=<token>`) giving a role to whoever opens it
    first, until it expires (bot.people)."""

    # Telegram's start parameter: up to 64 of [A-Za-z0-9_-]; secrets.token_urlsafe, unguessable.
    token: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)  # captain | chief | office
    station_key: str | None = Field(default=None, foreign_key="station.key", max_length=64)
    building: str | None = Field(default=None, max_length=128)
    created_by: int | None = Field(default=None, foreign_key="person.id")  # None: the CLI
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_by: int | None = Field(default=None, foreign_key="person.id")
    used_at: datetime | None = _when(default=None)


class Ticket(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("source_chat_id", "source_message_id", name="uq_ticket_source"),
        sa.UniqueConstraint("source_chat_id", "media_group_id", name="uq_ticket_album"),
        sa.Index("ix_ticket_station_status_due", "station_key", "status", "due_at"),
        # Repeats are looked for among open or recently closed tickets in a few cells: the
        # index keeps that O(nearby) however many old tickets a cell holds.
        sa.Index("ix_ticket_cell_status", "cell", "status", "closed_at"),
        # The digest: a week's deadlines and the oldest open tickets.
        sa.Index("ix_ticket_due_at", "due_at"),
        sa.Index("ix_ticket_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="new", max_length=16, index=True)
    category_key: str = Field(max_length=64)
    station_key: str | None = Field(default=None, foreign_key="station.key", max_length=64)
    reporter_id: int = Field(foreign_key="person.id", index=True)
    description: str = Field(default="", max_length=1024)
    address_text: str | None = Field(default=None, max_length=256)  # as the captain wrote it
    address: str | None = Field(default=None, max_length=256)  # as located
    lat: float | None = None
    lon: float | None = None
    # gazetteer | provider:<kind> | location | venue | exif | nearest | manual
    location_source: str | None = Field(default=None, max_length=32)
    location_confidence: float | None = None  # 0..1, how sure the match is
    source_chat_id: int = _big()
    source_message_id: int = _big()
    media_group_id: str | None = Field(default=None, max_length=64)
    language: str = Field(default="zh_CN", max_length=8)  # the reporter's, at report time
    created_at: datetime = _when()
    updated_at: datetime = _when()
    due_at: datetime | None = _when(default=None)
    claimed_at: datetime | None = _when(default=None)
    resolved_at: datetime | None = _when(default=None)
    closed_at: datetime | None = _when(default=None)
    resolution_note: str | None = Field(default=None, max_length=1024)
    reason: str | None = Field(default=None, max_length=1024)  # why rejected / disputed
    rating: str | None = Field(default=None, max_length=16)  # satisfied | unsatisfied
    duplicate_of: int | None = Field(default=None, foreign_key="ticket.id")
    # how many captains reported this problem (merged repeats included)
    reports: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # Reminders: the database, not the scheduler, knows what is due (see bot.scheduler).
    next_reminder_at: datetime | None = _when(default=None, index=True)
    reminders_sent: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalated_at: datetime | None = _when(default=None)
    expected_by: datetime | None = _when(default=None)  # "处理中": the chief's expected date
    cell: int | None = _big(default=None)  # spatial bucket for nearby look-ups (bot.dedup)


class TicketFollower(SQLModel, table=True):
    """A captain whose repeat report was merged into this ticket: told of its progress."""

    __tablename__ = "ticket_follower"
    __table_args__ = (sa.UniqueConstraint("ticket_id", "via_ticket_id", name="uq_follower"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    via_ticket_id: int = Field(foreign_key="ticket.id")  # their own (merged) report
    created_at: datetime = _when()


class Photo(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("ticket_id", "file_unique_id", name="uq_photo_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(default="report", max_length=16)  # report | after
    file_id: str = Field(max_length=256)
    file_unique_id: str = Field(max_length=64, index=True)
    sha256: str = Field(max_length=64, index=True)
    size: int
    width: int
    height: int
    phash: str | None = Field(default=None, max_length=32)
    path: str = Field(max_length=512)  # relative to the data directory
    # Sent as a file (keeps EXIF): stored without metadata and shown by uploading that copy,
    # since a document's file_id cannot be sent as a photo.
    as_document: bool = False
    created_at: datetime = _when()


class TicketEvent(SQLModel, table=True):
    """Append-only history: who did what to a ticket, when and why."""

    # The weekly digest counts a week's events by their time (reports.figures).
    __table_args__ = (sa.Index("ix_ticketevent_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = _when()
    # The ticket's station after the event: the digest credits each step to the station that
    # took it, and a later reassignment does not rewrite past weeks.
    station_key: str | None = Field(default=None, max_length=64)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    role: str = Field(max_length=16)
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=1024)
    details: dict[str, Any] = _json()


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "not_before", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = _big(index=True)
    kind: str = Field(max_length=16)  # message | photo | document | location
    payload: dict[str, Any] = _json()
    purpose: str | None = Field(default=None, max_length=32)  # e.g. ask_address
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    created_at: datetime = _when()
    not_before: datetime = _when()
    attempts: int = 0
    sent_at: datetime | None = _when(default=None)
    sent_message_id: int | None = _big(default=None)
    last_error: str | None = Field(default=None, max_length=512)


class WeeklyDigest(SQLModel, table=True):
    """A week's digest delivered to the street office: written with its outbox messages, so a
    week is sent once however many schedulers run or restart (bot.digest)."""

    __tablename__ = "weekly_digest"

    week: str = Field(primary_key=True, max_length=8)  # ISO week, 2026-W47
    delivered_at: datetime = _when()
    directory: str = Field(max_length=512)  # the files, relative to the data directory


class ReceivedUpdate(SQLModel, table=True):
    """Every update as received, recorded before it is handled (the durable inbox)."""

    __tablename__ = "received_update"
    __table_args__ = (
        sa.Index(
            "ix_received_update_unhandled", "update_id",
            sqlite_where=sa.text("handled_at IS NULL"),
            postgresql_where=sa.text("handled_at IS NULL"),
        ),
    )

    update_id: int = _big(primary_key=True)
    payload: dict[str, Any] = _json()
    received_at: datetime = _when()
    handled_at: datetime | None = _when(default=None)
    error: str | None = Field(default=None, max_length=512)
    # The process handling it and since when: a lease other workers' replays respect
    # (bot.app.Gridbot.replay_unhandled).
    claimed_at: datetime | None = _when(default=None)
    claimed_by: str | None = Field(default=None, max_length=128)


class GazetteerAddress(SQLModel, table=True):
    """One known address of the district, imported from the gazetteer CSV (replaced as a whole
    by `gridbot gazetteer import`)."""

    __tablename__ = "gazetteer"
    # Unique: the CSV reader drops duplicates, and two processes importing the same file on
    # their first start must not both succeed.
    __table_args__ = (sa.UniqueConstraint("address", name="uq_gazetteer_address"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=256)
    aliases: str = Field(default="", sa_type=sa.Text)  # `|`-separated, as in the CSV
    lat: float
    lon: float
    station_key: str | None = Field(default=None, max_length=64)  # the CSV's optional column
    line: int  # the row's line in the imported file, for problem reports
    imported_at: datetime = _when()


class GeocodeCacheEntry(SQLModel, table=True):
    """An online provider's answer to one normalised query (found or not), so the same address
    is asked once per `geocoding.cache_for`. Coordinates are WGS-84, already converted."""

    __tablename__ = "geocode_cache"
    __table_args__ = (sa.UniqueConstraint("provider", "query", name="uq_geocode_cache_query"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)  # e.g. nominatim, baidu, nominatim:reverse
    query: str = Field(max_length=256)
    found: bool
    address: str | None = Field(default=None, max_length=256)
    lat: float | None = None
    lon: float | None = None
    confidence: float | None = None  # 0..1, mapped from the provider's own score
    fetched_at: datetime = _when(index=True)
