"""Reminders, escalation (督办) and auto-close: a tick claims the tickets that are due and acts
on them.

The database is the source of truth for what is due (`ticket.next_reminder_at`); APScheduler
only calls `tick` at an interval. Claiming is one atomic UPDATE, and the reminders go to the
outbox in the same transaction, so a crash or a second scheduler never loses or doubles one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deployment import Deployment
from bot.lifecycle import Action, Role, Status, next_status
from bot.notify import Notifier, desk_buttons
from bot.reminders import plan
from storage import repo
from storage.db import SessionFactory
from storage.models import Person, Station, Ticket, TicketEvent

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed ticket a crashed tick did not finish is retried then
BATCH = 500


class ReminderTicker:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        deployment: Deployment,
        notifier: Notifier,
        clock: Callable[[], datetime],
        wake_sender: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.deployment = deployment
        self.notifier = notifier
        self.clock = clock
        self.wake_sender = wake_sender

    async def tick(self) -> int:
        """Act on every due ticket; returns how many reminders and escalations were written."""
        written = 0
        while True:
            async with self.sessions() as session:
                now = self.clock()
                due = await repo.claim_due_reminders(
                    session=session, now=now, lease_until=now + LEASE, limit=BATCH
                )
                stations = await repo.stations_with_chiefs(
                    session=session, keys=[t.station_key for t in due if t.station_key]
                )
                # One batched write at commit, not one per ticket before each query.
                with session.no_autoflush:
                    for ticket in due:
                        station, chief = stations.get(ticket.station_key or "", (None, None))
                        written += await self._act(session, ticket, now, station, chief)
                await session.commit()
            if written:
                self.wake_sender()
            if len(due) < BATCH:
                return written

    async def _act(
        self, session: AsyncSession, ticket: Ticket, now: datetime, station: Station | None,
        chief: Person | None,
    ) -> int:
        decision = plan(
            now=now, status=Status(ticket.status), due=ticket.due_at,
            reminders_sent=ticket.reminders_sent, escalated=ticket.escalated_at is not None,
            expected_by=ticket.expected_by, policy=self.deployment.reminders,
            zone=self.deployment.zone, resolved_at=ticket.resolved_at,
            auto_close_after=self.deployment.feedback.auto_close_after,
        )
        ticket.next_reminder_at = decision.next_at
        if decision.auto_close:
            return await self._auto_close(session, ticket, now, station, chief, decision.reason)
        written = 0
        if decision.remind and station is not None:
            ticket.reminders_sent += 1
            await self.notifier.to_chief(
                session, ticket=ticket, station=station, chief=chief, key="reminder.chief",
                buttons=desk_buttons(ticket), count=ticket.reminders_sent,
            )
            written += 1
        if decision.escalate:
            ticket.escalated_at = now
            await self.notifier.escalation(session, ticket=ticket, station=station)
            written += 1
        session.add(ticket)
        if written:
            session.add(TicketEvent(
                ticket_id=ticket.id or 0, at=now, station_key=ticket.station_key,
                role=Role.SYSTEM, action="escalate" if decision.escalate else "remind",
                from_status=ticket.status, to_status=ticket.status, note=decision.reason,
            ))
        return written

    async def _auto_close(
        self, session: AsyncSession, ticket: Ticket, now: datetime, station: Station | None,
        chief: Person | None, reason: str,
    ) -> int:
        """The reporter never answered "问题解决了吗？": the system closes the ticket (the
        lifecycle's AUTO_CLOSE) and tells the reporter, the chief and the followers."""
        before = Status(ticket.status)
        ticket.status = next_status(before, Action.AUTO_CLOSE, [Role.SYSTEM])
        ticket.closed_at = ticket.updated_at = now
        ticket.rating = None  # silence is no verdict
        session.add(ticket)
        session.add(TicketEvent(
            ticket_id=ticket.id or 0, at=now, station_key=ticket.station_key, role=Role.SYSTEM,
            action=Action.AUTO_CLOSE,
            from_status=before, to_status=ticket.status, note=reason,
        ))
        reporter = await repo.get_person(session=session, person_id=ticket.reporter_id)
        await self.notifier.auto_closed(
            session, ticket=ticket, reporter=reporter, station=station, chief=chief,
            after=self.deployment.feedback.auto_close_after,
        )
        followers = await repo.followers_with_reports(session=session, ticket_id=ticket.id or 0)
        await self.notifier.to_followers(
            session, ticket=ticket, followers=followers, key="repeat.progress"
        )
        return 1 + (reporter is not None) + len(followers)


FINISH_SECONDS = 10  # how long leaving the lead waits for a tick under way to finish


def scheduler_for(
    ticker: ReminderTicker, *, every: timedelta, digests: WeeklyDelivery | None = None,
    running: set[asyncio.Task[object]] | None = None,
) -> AsyncIOScheduler:
    """Fixed jobs with stable ids, each at once and then every ``every``: the reminder tick
    and, with ``digests``, the weekly digest's check (its own job, so the seconds a digest
    takes to draw never hold reminders up); start it inside the running loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs: list[tuple[str, Callable[[], Awaitable[object]]]] = [("reminder-tick", ticker.tick)]
    if digests is not None:
        jobs.append(("weekly-digest", digests.deliver_due))
    for job_id, job in jobs:
        scheduler.add_job(
            job if running is None else _tracked(job, running), "interval",
            seconds=every.total_seconds(), id=job_id,
            next_run_time=datetime.now(UTC), replace_existing=True, coalesce=True,
            max_instances=1, misfire_grace_time=300,
        )
    return scheduler


def _tracked(
    job: Callable[[], Awaitable[object]], running: set[asyncio.Task[object]]
) -> Callable[[], Awaitable[object]]:
    """``job``, its task in ``running`` while it runs."""

    async def run() -> object:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            return await job()
        finally:
            running.discard(task)

    return run


class WeeklyDelivery(Protocol):
    async def deliver_due(self) -> object: ...


@asynccontextmanager
async def ticking(
    ticker: ReminderTicker, *, every: timedelta, digests: WeeklyDelivery | None = None
) -> AsyncIterator[None]:
    """The reminder tick (and the weekly digest's check) run while inside: what a leading
    scheduler process does."""
    running: set[asyncio.Task[object]] = set()
    scheduler = scheduler_for(ticker, every=every, digests=digests, running=running)
    scheduler.start()
    try:
        yield
    finally:
        # A tick under way finishes its transaction: shutting down cancels what still runs,
        # and a statement cancelled half-way can leave aiosqlite's thread, which is not a
        # daemon, waiting for ever, so that the process never exits.
        scheduler.pause()
        if running:
            await asyncio.wait(set(running), timeout=FINISH_SECONDS)
        scheduler.shutdown(wait=False)
