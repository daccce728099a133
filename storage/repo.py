"""Repositories: every query the bot makes lives here, with keyword-only arguments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from storage.models import (
    GazetteerAddress,
    GeocodeCacheEntry,
    Invitation,
    OutboxMessage,
    Person,
    Photo,
    ReceivedUpdate,
    Station,
    Ticket,
    TicketEvent,
    TicketFollower,
    WeeklyDigest,
)
from storage.sqlite_engine import GOES_FIRST

# The queries every report and every sent message make are built once, with their values as
# bind parameters: building a statement and its cache key costs about 0.1 ms of CPU each time,
# as much as SQLAlchemy then spends running it.


def _many(name: str) -> sa.BindParameter[Any]:
    """A parameter that takes a list (for IN)."""
    return sa.bindparam(name, expanding=True)


def _people(session: AsyncSession) -> dict[int, Person]:
    """The people this session has read, by Telegram id (`person_by_telegram_id`)."""
    people: dict[int, Person] = session.info.setdefault("people", {})
    return people


# --- stations and people -------------------------------------------------------------------


async def sync_stations(
    *, session: AsyncSession, stations: Sequence[tuple[str, str, int]]
) -> None:
    """Make the station table match the deployment file (key, name, chief's Telegram id)."""
    for key, name, chief in stations:
        station = await session.get(Station, key)
        if station is None:
            session.add(Station(key=key, name=name, chief_telegram_id=chief))
        else:
            station.name, station.chief_telegram_id = name, chief
            session.add(station)


async def get_station(*, session: AsyncSession, key: str) -> Station | None:
    return await session.get(Station, key)


_STATIONS_WITH_CHIEFS = (
    select(Station, Person)
    .outerjoin(Person, col(Person.telegram_id) == col(Station.chief_telegram_id))
    .where(col(Station.key).in_(_many("keys")))
)


async def stations_with_chiefs(
    *, session: AsyncSession, keys: Sequence[str]
) -> dict[str, tuple[Station, Person | None]]:
    """Stations by key, each with its chief's Person row (None if the chief never wrote), in
    one query; the chiefs are kept with the session as `person_by_telegram_id` keeps people."""
    if not keys:
        return {}
    result = await session.exec(_STATIONS_WITH_CHIEFS, params={"keys": sorted(set(keys))})
    desks: dict[str, tuple[Station, Person | None]] = {}
    for station, chief in result.all():
        desks[station.key] = (station, chief)
        if chief is not None:
            _people(session)[chief.telegram_id] = chief
    return desks


_PERSON_BY_TELEGRAM_ID = select(Person).where(
    col(Person.telegram_id) == sa.bindparam("telegram_id")
)


async def person_by_telegram_id(*, session: AsyncSession, telegram_id: int) -> Person | None:
    """The person, read once per session: handling one update asks for its sender several
    times (their language, whether they may report, the reporter), so the person found is
    kept with the session while it is current there (not expired by a rollback)."""
    found = _people(session)
    known = found.get(telegram_id)
    if known is not None and known in session and not sa.inspect(known).expired_attributes:
        return known
    result = await session.exec(_PERSON_BY_TELEGRAM_ID, params={"telegram_id": telegram_id})
    person = result.first()
    if person is not None:
        found[telegram_id] = person
    return person


async def get_person(*, session: AsyncSession, person_id: int) -> Person | None:
    return await session.get(Person, person_id)


async def upsert_person(
    *,
    session: AsyncSession,
    telegram_id: int,
    name: str,
    username: str | None,
    language: str | None,
    now: datetime,
    role: str | None = None,
    station_key: str | None = None,
) -> Person:
    """The person with this Telegram id, created on first sight; name and username refreshed."""
    person = await person_by_telegram_id(session=session, telegram_id=telegram_id)
    if person is None:
        person = Person(
            telegram_id=telegram_id,
            name=name[:256],
            username=username,
            language=language or "zh_CN",
            role=role or "captain",
            station_key=station_key,
            created_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(person)
        except IntegrityError:  # another worker created them a moment ago
            found = await person_by_telegram_id(session=session, telegram_id=telegram_id)
            assert found is not None
            return found
        return person
    person.name, person.username = name[:256], username
    if language and not person.language_chosen:  # a language chosen with /lang wins
        person.language = language
    if role is not None:
        person.role, person.station_key = role, station_key
    session.add(person)
    return person


# --- tickets --------------------------------------------------------------------------------


async def get_ticket(*, session: AsyncSession, ticket_id: int) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


_LOCK_TICKET = (
    select(Ticket)
    .where(col(Ticket.id) == sa.bindparam("ticket_id"))
    .with_for_update()
    .execution_options(populate_existing=True)  # fresh, even if this session had it
)


async def lock_ticket(*, session: AsyncSession, ticket_id: int) -> Ticket | None:
    """The ticket, locked for this transaction where the database can (PostgreSQL)."""
    result = await session.exec(_LOCK_TICKET, params={"ticket_id": ticket_id})
    return result.first()


_TICKET_BY_SOURCE = select(Ticket).where(
    col(Ticket.source_chat_id) == sa.bindparam("chat_id"),
    col(Ticket.source_message_id) == sa.bindparam("message_id"),
)


async def ticket_by_source(
    *, session: AsyncSession, chat_id: int, message_id: int
) -> Ticket | None:
    result = await session.exec(
        _TICKET_BY_SOURCE, params={"chat_id": chat_id, "message_id": message_id}
    )
    return result.first()


async def ticket_by_album(
    *, session: AsyncSession, chat_id: int, media_group_id: str
) -> Ticket | None:
    result = await session.exec(
        select(Ticket).where(
            Ticket.source_chat_id == chat_id, Ticket.media_group_id == media_group_id
        )
    )
    return result.first()


async def add_ticket(*, session: AsyncSession, ticket: Ticket) -> Ticket:
    session.add(ticket)
    await session.flush()
    return ticket


async def ticket_waiting_for_address(
    *, session: AsyncSession, chat_id: int, reporter_id: int, since: datetime
) -> Ticket | None:
    """The reporter's newest ticket in this chat still missing its place, if recent."""
    result = await session.exec(
        select(Ticket)
        .where(
            Ticket.source_chat_id == chat_id,
            Ticket.reporter_id == reporter_id,
            Ticket.status == "new",
            col(Ticket.lat).is_(None),
            Ticket.created_at >= since,
        )
        .order_by(col(Ticket.id).desc())
    )
    return result.first()


async def ticket_for_bot_message(
    *, session: AsyncSession, chat_id: int, message_id: int
) -> Ticket | None:
    """The ticket a message the bot sent (through the outbox) was about."""
    result = await session.exec(
        select(Ticket)
        .join(OutboxMessage, col(OutboxMessage.ticket_id) == Ticket.id)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.sent_message_id == message_id)
    )
    return result.first()


async def open_tickets_for_station(
    *, session: AsyncSession, station_key: str | None, statuses: Sequence[str], offset: int,
    limit: int,
) -> tuple[list[Ticket], int]:
    """One page of a station's open tickets (of every station's with ``station_key=None``),
    most overdue first, and how many there are."""
    where: tuple[Any, ...] = (col(Ticket.status).in_(statuses),)
    if station_key is not None:
        where += (Ticket.station_key == station_key,)
    total = (await session.exec(select(func.count()).select_from(Ticket).where(*where))).one()
    result = await session.exec(
        select(Ticket)
        .where(*where)
        .order_by(col(Ticket.due_at).asc().nulls_last(), col(Ticket.id).asc())
        .offset(offset)
        .limit(limit)
    )
    return list(result.all()), int(total)


async def tickets_of_reporter(
    *, session: AsyncSession, reporter_id: int, offset: int, limit: int
) -> tuple[list[Ticket], int]:
    """One page of the tickets a person reported, newest first, and how many there are."""
    where = Ticket.reporter_id == reporter_id
    total = (await session.exec(select(func.count()).select_from(Ticket).where(where))).one()
    result = await session.exec(
        select(Ticket).where(where).order_by(col(Ticket.id).desc()).offset(offset).limit(limit)
    )
    return list(result.all()), int(total)


async def add_photo(*, session: AsyncSession, photo: Photo) -> Photo:
    session.add(photo)
    await session.flush()
    return photo


async def photos_of(*, session: AsyncSession, ticket_id: int, kind: str) -> list[Photo]:
    result = await session.exec(
        select(Photo).where(Photo.ticket_id == ticket_id, Photo.kind == kind).order_by(
            col(Photo.id)
        )
    )
    return list(result.all())


async def card_photo(*, session: AsyncSession, ticket_id: int) -> Photo | None:
    """The ticket's first report photo: the one its cards show."""
    result = await session.exec(
        select(Photo)
        .where(Photo.ticket_id == ticket_id, Photo.kind == "report")
        .order_by(col(Photo.id))
        .limit(1)
    )
    return result.first()


async def add_event(*, session: AsyncSession, event: TicketEvent) -> None:
    session.add(event)


async def events_of(*, session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    result = await session.exec(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(
            col(TicketEvent.id)
        )
    )
    return list(result.all())



async def all_tickets(*, session: AsyncSession) -> list[Ticket]:
    return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())


# --- outbox ---------------------------------------------------------------------------------


async def enqueue(*, session: AsyncSession, message: OutboxMessage) -> None:
    session.add(message)


def _due_messages_query(*, per_chat: bool) -> SelectOfScalar[OutboxMessage]:
    due = (OutboxMessage.status == "pending", col(OutboxMessage.not_before) <= sa.bindparam("now"))
    deferred = (  # each chat's oldest message waiting for its time: few, by ix_outbox_due
        select(
            col(OutboxMessage.chat_id).label("chat_id"),
            func.min(OutboxMessage.id).label("first"),
        )
        .where(
            OutboxMessage.status == "pending", col(OutboxMessage.not_before) > sa.bindparam("now")
        )
        .group_by(col(OutboxMessage.chat_id))
        .subquery()
    )
    query = (
        select(OutboxMessage)
        .outerjoin(deferred, deferred.c.chat_id == col(OutboxMessage.chat_id))
        .where(*due, sa.or_(deferred.c.first.is_(None), col(OutboxMessage.id) < deferred.c.first))
    )
    if per_chat:
        ranked = (
            select(
                col(OutboxMessage.id).label("id"),
                func.row_number()
                .over(partition_by=col(OutboxMessage.chat_id), order_by=col(OutboxMessage.id))
                .label("place"),
            )
            .where(*due)
            .subquery()
        )
        query = query.join(ranked, ranked.c.id == col(OutboxMessage.id)).where(
            ranked.c.place <= sa.bindparam("per_chat")
        )
    return query.order_by(col(OutboxMessage.id)).limit(sa.bindparam("limit", type_=sa.Integer))


_DUE_MESSAGES = {per_chat: _due_messages_query(per_chat=per_chat) for per_chat in (False, True)}


async def due_messages(
    *, session: AsyncSession, now: datetime, limit: int, per_chat: int | None = None
) -> list[OutboxMessage]:
    """Pending messages whose time has come, oldest first, except those behind an earlier
    message of their chat that waits for its time (each chat's order is kept); at most
    ``per_chat`` of each chat (its oldest), so that a backlog in one chat does not hide the
    others."""
    result = await session.exec(
        _DUE_MESSAGES[per_chat is not None],
        params={"now": now, "limit": limit, "per_chat": per_chat},
    )
    return list(result.all())


async def told_since_delivered(*, session: AsyncSession, chat_id: int, purpose: str) -> bool:
    """Whether a message with ``purpose`` was written after the last one delivered to
    ``chat_id`` (e.g. the office was already told the chat is gone)."""
    last_sent = (
        select(func.coalesce(func.max(OutboxMessage.id), 0))
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "sent")
        .scalar_subquery()
    )
    found = await session.exec(
        select(OutboxMessage.id)
        .where(OutboxMessage.purpose == purpose, col(OutboxMessage.id) > last_sent)
        .limit(1)
    )
    return found.first() is not None


async def stations_of_chief(*, session: AsyncSession, telegram_id: int) -> list[Station]:
    result = await session.exec(select(Station).where(Station.chief_telegram_id == telegram_id))
    return list(result.all())


async def update_messages(
    *, session: AsyncSession, changes: Sequence[tuple[int, dict[str, Any]]]
) -> None:
    """Several messages' changes (id, values); they go before other SQLite writers, as every
    chat's next message waits for them."""
    await _update_each(session, OutboxMessage, "id", changes, GOES_FIRST)


async def outbox_of(*, session: AsyncSession, status: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return list((await session.exec(query)).all())


# --- inbox ----------------------------------------------------------------------------------


async def record_update(
    *, session: AsyncSession, update_id: int, payload: Callable[[], dict[str, Any]],
    now: datetime,
) -> bool:
    """Record a received update (``payload()`` is its JSON, asked for only when it is not
    recorded yet); False when this update id was handled before."""
    existing = await session.get(ReceivedUpdate, update_id)
    if existing is not None:
        return existing.handled_at is None
    try:
        async with session.begin_nested():
            session.add(ReceivedUpdate(update_id=update_id, payload=payload(), received_at=now))
    except IntegrityError:
        return False
    return True


async def record_received(
    *,
    session: AsyncSession,
    updates: Sequence[tuple[int, dict[str, Any]]],
    now: datetime,
    claimed_by: str | None = None,
) -> set[int]:
    """Record updates as received (before they are confirmed to Telegram), claimed by
    ``claimed_by`` from ``now``; the ids that were new. An update id recorded before is left
    as it is: that is a redelivery, and whoever recorded it first handles it."""
    if not updates:
        return set()
    rows = [
        {"update_id": u, "payload": p, "received_at": now, "claimed_at": now,
         "claimed_by": claimed_by}
        for u, p in updates
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ReceivedUpdate.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table).values(rows)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(table.c.update_id)
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return set(result.scalars().all())


async def claim_unhandled(
    *, session: AsyncSession, claimed_by: str, now: datetime, stale_before: datetime | None
) -> list[ReceivedUpdate]:
    """Claim for ``claimed_by`` the unhandled updates nobody holds: never claimed, or claimed
    before ``stale_before`` (every unhandled one when that is None); oldest first. One
    conditional UPDATE: two workers claiming at once never both get an update."""
    table = ReceivedUpdate.__table__  # type: ignore[attr-defined]
    free: sa.ColumnElement[bool] = sa.true()
    if stale_before is not None:
        free = sa.or_(table.c.claimed_at.is_(None), table.c.claimed_at < stale_before)
    result = await session.exec(  # type: ignore[call-overload]
        sa.update(table)
        .where(table.c.handled_at.is_(None), free)
        .values(claimed_at=now, claimed_by=claimed_by)
        .returning(*table.c)
    )
    rows = [ReceivedUpdate.model_validate(dict(row._mapping)) for row in result.all()]
    return sorted(rows, key=lambda row: row.update_id)


async def renew_claims(
    *, session: AsyncSession, update_ids: Sequence[int], claimed_by: str, now: datetime
) -> None:
    """Still working on these: keep others' replays off them for another lease."""
    await _own_unhandled_claims(session, update_ids, claimed_by, {"claimed_at": now})


async def release_claims(
    *, session: AsyncSession, update_ids: Sequence[int], claimed_by: str
) -> None:
    """Given up on these (a worker stopping before it could finish): anyone may take them."""
    await _own_unhandled_claims(
        session, update_ids, claimed_by, {"claimed_at": None, "claimed_by": None}
    )


async def _own_unhandled_claims(
    session: AsyncSession, update_ids: Sequence[int], holder: str, values: dict[str, Any]
) -> None:
    """Set ``values`` on those of ``update_ids`` that ``holder`` claimed and nobody handled."""
    if not update_ids:
        return
    await session.exec(  # type: ignore[call-overload]
        sa.update(ReceivedUpdate)
        .where(
            col(ReceivedUpdate.update_id).in_(update_ids),
            col(ReceivedUpdate.claimed_by) == holder,
            col(ReceivedUpdate.handled_at).is_(None),
        )
        .values(**values)
    )


async def mark_updates_handled(
    *, session: AsyncSession, handled: Sequence[tuple[int, datetime, str | None]]
) -> None:
    """Several updates handled: (update id, when, the error if one stopped it)."""
    await _update_each(
        session, ReceivedUpdate, "update_id",
        [(u, {"handled_at": at, "error": error[:512] if error else None})
         for u, at, error in handled],
    )  # fmt: skip


async def _update_each(
    session: AsyncSession, model: type[SQLModel], key: str,
    changes: Sequence[tuple[Any, dict[str, Any]]], options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Set each change's values on the row whose ``key`` column holds its first part: one
    executemany for each set of columns changed."""
    table = model.__table__  # type: ignore[attr-defined]
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_key, values in changes:
        # Bound under names of their own: SQLAlchemy keeps a column's own name for itself.
        bound = {f"new_{column}": value for column, value in values.items()}
        shapes[tuple(sorted(values))].append({"row_key": row_key, **bound})
    for columns, rows in shapes.items():
        await session.exec(  # type: ignore[call-overload]
            sa.update(table)
            .where(table.c[key] == sa.bindparam("row_key"))
            .values({column: sa.bindparam(f"new_{column}") for column in columns})
            .execution_options(**(options or {})),
            params=rows,
        )


async def unhandled_updates(*, session: AsyncSession) -> list[ReceivedUpdate]:
    """Updates recorded but never marked handled, oldest first."""
    result = await session.exec(
        select(ReceivedUpdate)
        .where(col(ReceivedUpdate.handled_at).is_(None))
        .order_by(col(ReceivedUpdate.update_id))
    )
    return list(result.all())


# --- what a worker's /metrics reads at scrape time (each one cheap, through an index) --------


async def pending_outbox_count(*, session: AsyncSession) -> int:
    """Messages waiting to be sent (the outbox's depth), through ix_outbox_due."""
    result = await session.exec(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
    )
    return int(result.one())


async def reminders_since(*, session: AsyncSession, since: datetime) -> dict[str, int]:
    """Reminder ticks' events since ``since`` by action ("remind", "escalate"), whichever
    scheduler wrote them, through ix_ticketevent_at."""
    result = await session.exec(
        select(TicketEvent.action, func.count())
        .where(
            col(TicketEvent.at) >= since,
            col(TicketEvent.action).in_(("remind", "escalate")),
        )
        .group_by(col(TicketEvent.action))
    )
    return {action: int(count) for action, count in result.all()}



# --- gazetteer and geocode cache ------------------------------------------------------------


GAZETTEER_BATCH = 2_000  # rows per INSERT: large enough to be fast, small enough to show progress

GazetteerTuple = tuple[str, str, float, float, str | None, int]


async def replace_gazetteer(
    *,
    session: AsyncSession,
    rows: Sequence[Mapping[str, Any]],
    now: datetime,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete every gazetteer row and insert `rows` (address, aliases, lat, lon, station_key,
    line) in the caller's transaction: until it commits, everyone keeps the old gazetteer.
    `on_batch` is told how many rows each INSERT wrote. Returns how many rows were removed."""
    removed = await session.exec(sa.delete(GazetteerAddress))  # type: ignore[call-overload]
    for start in range(0, len(rows), GAZETTEER_BATCH):
        batch = [{**row, "imported_at": now} for row in rows[start : start + GAZETTEER_BATCH]]
        await session.exec(sa.insert(GazetteerAddress), params=batch)  # type: ignore[call-overload]
        if on_batch is not None:
            on_batch(len(batch))
    return int(removed.rowcount or 0)


async def gazetteer_rows(*, session: AsyncSession) -> list[GazetteerTuple]:
    """Every gazetteer row as a plain tuple (address, aliases, lat, lon, station_key, line), in
    the imported file's order; no ORM object per row, so 200,000 rows load quickly."""
    table = GazetteerAddress.__table__  # type: ignore[attr-defined]
    query = sa.select(
        table.c.address, table.c.aliases, table.c.lat, table.c.lon, table.c.station_key,
        table.c.line,
    ).order_by(table.c.line, table.c.id)
    result = await session.exec(query)  # type: ignore[call-overload]
    return [tuple(row) for row in result.all()]  # type: ignore[misc]


async def count_gazetteer(*, session: AsyncSession) -> int:
    result = await session.exec(select(func.count()).select_from(GazetteerAddress))
    return int(result.one())


@dataclass(frozen=True)
class GazetteerStats:
    """What `gridbot gazetteer stats` shows."""

    addresses: int
    aliases: int
    by_station: dict[str | None, int]
    imported_at: datetime | None


async def gazetteer_stats(*, session: AsyncSession) -> GazetteerStats:
    table = GazetteerAddress.__table__  # type: ignore[attr-defined]
    per_station = await session.exec(  # type: ignore[call-overload]
        sa.select(table.c.station_key, sa.func.count()).group_by(table.c.station_key)
    )
    by_station = {key: int(count) for key, count in per_station.all()}
    aliases = await session.exec(  # type: ignore[call-overload]
        sa.select(table.c.aliases).where(table.c.aliases != "")
    )
    alias_count = sum(len([a for a in text.split("|") if a]) for (text,) in aliases.all())
    newest = await session.exec(sa.select(sa.func.max(table.c.imported_at)))  # type: ignore[call-overload]
    return GazetteerStats(
        addresses=sum(by_station.values()),
        aliases=alias_count,
        by_station=by_station,
        imported_at=newest.scalar_one_or_none(),
    )


async def cached_geocode(
    *, session: AsyncSession, provider: str, query: str, since: datetime
) -> GeocodeCacheEntry | None:
    """A provider's remembered answer to a query, if fetched at or after `since`."""
    result = await session.exec(
        select(GeocodeCacheEntry).where(
            GeocodeCacheEntry.provider == provider,
            GeocodeCacheEntry.query == query,
            col(GeocodeCacheEntry.fetched_at) >= since,
        )
    )
    return result.first()


async def remember_geocode(*, session: AsyncSession, entry: GeocodeCacheEntry) -> None:
    """Store a provider's answer, replacing an older one for the same query."""
    try:
        async with session.begin_nested():
            await session.exec(  # type: ignore[call-overload]
                sa.delete(GeocodeCacheEntry).where(
                    col(GeocodeCacheEntry.provider) == entry.provider,
                    col(GeocodeCacheEntry.query) == entry.query,
                )
            )
            session.add(entry)
    except IntegrityError:
        pass  # another worker stored the same query a moment ago; its answer will do


async def forget_geocodes(*, session: AsyncSession, before: datetime) -> int:
    """Drop cached answers fetched before `before` (expired ones are never used anyway)."""
    result = await session.exec(  # type: ignore[call-overload]
        sa.delete(GeocodeCacheEntry).where(col(GeocodeCacheEntry.fetched_at) < before)
    )
    return int(result.rowcount or 0)


# --- repeats --------------------------------------------------------------------------------


def _nearby_tickets_query() -> Any:
    still_open = ("new", "assigned", "claimed", "reopened", "parked", "resolved")
    near = (col(Ticket.cell).in_(_many("cells")), col(Ticket.id) != sa.bindparam("exclude"))
    # Two index range scans on (cell, status, closed_at) rather than one OR that would read
    # every old ticket in the cells; in one statement.
    both = sa.union_all(
        select(Ticket).where(*near, col(Ticket.status).in_(still_open)),
        select(Ticket).where(
            *near, Ticket.status == "closed", col(Ticket.closed_at) >= sa.bindparam("closed_since")
        ),
    )
    return select(Ticket).from_statement(both)


_NEARBY_TICKETS = _nearby_tickets_query()


async def nearby_tickets(
    *, session: AsyncSession, cells: Sequence[int], closed_since: datetime, exclude: int
) -> list[Ticket]:
    """Tickets in these spatial buckets that a new report could repeat: open ones, and ones
    closed since ``closed_since``. Uses the cell index: cost grows with what is nearby."""
    result = await session.exec(  # type: ignore[call-overload]
        _NEARBY_TICKETS,
        params={"cells": list(cells), "exclude": exclude, "closed_since": closed_since},
    )
    return list(result.scalars().all())


_PHOTO_KEYS = select(Photo.ticket_id, Photo.file_unique_id, Photo.sha256, Photo.phash).where(
    col(Photo.ticket_id).in_(_many("ticket_ids")), Photo.kind == "report"
)


async def photo_keys(
    *, session: AsyncSession, ticket_ids: Sequence[int]
) -> dict[int, list[tuple[str, str, str | None]]]:
    """For each ticket, its report photos' (file_unique_id, sha256, phash)."""
    if not ticket_ids:
        return {}
    result = await session.exec(_PHOTO_KEYS, params={"ticket_ids": list(ticket_ids)})
    keys: dict[int, list[tuple[str, str, str | None]]] = {}
    for ticket_id, unique, sha, phash in result.all():
        keys.setdefault(ticket_id, []).append((unique, sha, phash))
    return keys


async def add_follower(*, session: AsyncSession, follower: TicketFollower) -> None:
    session.add(follower)


async def remove_follower(*, session: AsyncSession, via_ticket_id: int) -> None:
    await session.exec(  # type: ignore[call-overload]
        sa.delete(TicketFollower).where(col(TicketFollower.via_ticket_id) == via_ticket_id)
    )


async def followers_of(*, session: AsyncSession, ticket_id: int) -> list[TicketFollower]:
    result = await session.exec(
        select(TicketFollower).where(TicketFollower.ticket_id == ticket_id).order_by(
            col(TicketFollower.id)
        )
    )
    return list(result.all())


async def followers_with_reports(
    *, session: AsyncSession, ticket_id: int
) -> list[tuple[Person, Ticket]]:
    """The captains following a ticket, each with their own (merged) report."""
    result = await session.exec(
        select(Person, Ticket)
        .join(TicketFollower, col(TicketFollower.person_id) == col(Person.id))
        .join(Ticket, col(Ticket.id) == col(TicketFollower.via_ticket_id))
        .where(TicketFollower.ticket_id == ticket_id)
        .order_by(col(TicketFollower.id))
    )
    return [(person, via) for person, via in result.all()]


# --- reminders ------------------------------------------------------------------------------


async def claim_due_reminders(
    *, session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[Ticket]:
    """Tickets whose next reminder is due, claimed atomically for this transaction.

    One UPDATE … RETURNING moves their time to ``lease_until`` (so another scheduler, or a
    later tick after a crash, skips them); on PostgreSQL the candidates are also locked with
    SKIP LOCKED so two schedulers never wait on each other. Cost: O(due), by the index.
    """
    due = (
        select(Ticket.id)
        .where(col(Ticket.next_reminder_at) <= now)
        .order_by(col(Ticket.next_reminder_at))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.exec(  # type: ignore[call-overload]
        sa.update(Ticket)
        .where(col(Ticket.id).in_(due.scalar_subquery()), col(Ticket.next_reminder_at) <= now)
        .values(next_reminder_at=lease_until)
        .returning(col(Ticket.id))
    )
    ids = [row[0] for row in claimed.all()]
    if not ids:
        return []
    result = await session.exec(
        select(Ticket).where(col(Ticket.id).in_(ids)).order_by(col(Ticket.id))
        .execution_options(populate_existing=True)
    )
    return list(result.all())


# --- people: invitations, members, languages ------------------------------------------------


async def add_invitation(*, session: AsyncSession, invitation: Invitation) -> Invitation:
    session.add(invitation)
    await session.flush()
    return invitation


async def get_invitation(*, session: AsyncSession, token: str) -> Invitation | None:
    return await session.get(Invitation, token)


async def use_invitation(
    *, session: AsyncSession, token: str, person_id: int, now: datetime
) -> bool:
    """Mark an unused, unexpired invitation used by this person; False if it was not (two
    people opening the same link at once: exactly one gets it)."""
    result = await session.exec(  # type: ignore[call-overload]
        sa.update(Invitation)
        .where(
            col(Invitation.token) == token,
            col(Invitation.used_by).is_(None),
            col(Invitation.expires_at) > now,
        )
        .values(used_by=person_id, used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def chosen_language(*, session: AsyncSession, telegram_id: int) -> str | None:
    """The language this person chose with /lang, or None if they never did."""
    person = await person_by_telegram_id(session=session, telegram_id=telegram_id)
    return person.language if person is not None and person.language_chosen else None


async def import_people(
    *,
    session: AsyncSession,
    people: Sequence[tuple[int, str, str | None, str | None, str | None]],
    now: datetime,
) -> None:
    """Make these people (Telegram id, role, station key, building, name) members with the
    roles given; whatever else they are in the database is overwritten."""
    for telegram_id, role, station_key, building, name in people:
        person = await person_by_telegram_id(session=session, telegram_id=telegram_id)
        if person is None:
            person = Person(telegram_id=telegram_id, created_at=now)
        person.role, person.station_key, person.building = role, station_key, building
        if name:
            person.name = name
        person.joined_at = person.joined_at or now
        session.add(person)


async def recently_told(
    *, session: AsyncSession, chat_id: int, purpose: str, since: datetime
) -> bool:
    """Whether a message with this purpose was written to the chat since then."""
    found = await session.exec(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.purpose == purpose,
            col(OutboxMessage.created_at) >= since,
        )
        .limit(1)
    )
    return found.first() is not None


async def schedule_unanswered_resolutions(*, session: AsyncSession) -> None:
    """Resolved tickets with no next look (resolved before auto-close existed) are looked at
    by the next tick, which counts the delay from their resolution."""
    await session.exec(  # type: ignore[call-overload]
        sa.update(Ticket)
        .where(col(Ticket.status) == "resolved", col(Ticket.next_reminder_at).is_(None))
        .values(next_reminder_at=sa.func.coalesce(Ticket.resolved_at, Ticket.updated_at))
    )


# --- the weekly digest -------------------------------------------------------------------------


async def reported_before(*, session: AsyncSession, moment: datetime) -> bool:
    """Whether any ticket was reported before ``moment`` (ix_ticket_created_at): a week that
    ended before the district's first report has nothing to say."""
    found = await session.exec(
        select(Ticket.id).where(col(Ticket.created_at) < moment).limit(1)
    )
    return found.first() is not None


async def digest_delivered(*, session: AsyncSession, week: str) -> bool:
    """Whether the street office has had this week's digest (2026-W47)."""
    return await session.get(WeeklyDigest, week) is not None


async def record_digest(*, session: AsyncSession, digest: WeeklyDigest) -> None:
    """Note a week as delivered, in the transaction that writes its messages; IntegrityError
    (raised here, before any message is added) when it already was."""
    session.add(digest)
    await session.flush()
