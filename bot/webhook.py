"""`gridbot webhook`: Telegram posts each update to a secret path; the worker answers 200 once
the update is in the inbox and handles it in the background, so an answered update is never
lost and a redelivered one is never handled twice. Also /healthz and /metrics."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiogram import BaseMiddleware
from aiogram.types import ErrorEvent, TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.app import INBOX_LEASE, Gridbot
from bot.lifecycle import TicketError
from bot.middlewares import ChatScope, Handler
from storage import repo

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # Telegram's updates are a few kB; anything this big is not one
CHECK_TIMEOUT = 5.0  # seconds a /healthz or /metrics database (or Redis) read may take
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def update_path(secret: str) -> str:
    """The path updates arrive on, derived from the webhook secret so one setting serves both:
    the header is the check; the path keeps scanners away (and the secret out of any proxy's
    access log)."""
    digest = hashlib.sha256(f"gridbot-webhook-path:{secret}".encode()).hexdigest()
    return f"/telegram/{digest[:32]}"


def update_type(update: Update) -> str:
    """message, callback_query, edited_message, my_chat_member, …"""
    try:
        return update.event_type
    except UpdateTypeLookupError:
        return "unknown"


def parse_update(body: bytes, context: dict[str, Any]) -> Update | None:
    """The update in a request body, or None when it is not one (not JSON, not an object, no
    integer update_id, not what Telegram sends)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(data, dict):
        return None
    update_id = data.get("update_id")
    # update_id is a BIGINT in the inbox: a larger one could never be recorded.
    if type(update_id) is not int or not 0 <= update_id < 2**63:
        return None
    try:
        return Update.model_validate(data, context=context)
    except (ValidationError, RecursionError):
        return None


class WorkerMetrics:
    """The worker's Prometheus metrics, in a registry of its own: several workers in one
    process (the tests) do not clash, and nothing else's metrics leak in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "gridbot_updates_received", "Updates recorded in the inbox, by type",
            ["type"], registry=self.registry,
        )
        self.redelivered = Counter(
            "gridbot_updates_redelivered",
            "Updates posted again after they were recorded: answered, not handled again",
            ["type"], registry=self.registry,
        )
        self.refused = Counter(
            "gridbot_webhook_refused",
            "Requests on the update path refused, by reason (secret, malformed, too_large, "
            "stopping, database)", ["reason"], registry=self.registry,
        )
        self.latency = Histogram(
            "gridbot_handler_seconds", "Time to handle an update after it was recorded",
            ["type"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.errors = Counter(
            "gridbot_handler_errors",
            "Updates whose handling failed unexpectedly (polite refusals not counted)",
            ["type"], registry=self.registry,
        )
        self.in_flight = Gauge(
            "gridbot_updates_in_flight", "Updates this worker is handling now",
            registry=self.registry,
        )
        self.readings = DatabaseReadings()
        self.registry.register(self.readings)


class DatabaseReadings(Collector):
    """Figures read from the database at scrape time (None: the read failed, so the metric is
    left out rather than shown stale)."""

    def __init__(self) -> None:
        self.outbox_pending: int | None = None
        self.reminders: dict[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.outbox_pending is not None:
            yield GaugeMetricFamily(
                "gridbot_outbox_pending", "Messages in the outbox waiting to be sent",
                value=self.outbox_pending,
            )
        if self.reminders is not None:
            family = CounterMetricFamily(
                "gridbot_reminders",
                "Reminders and escalations (督办) written since this worker started, by any "
                "scheduler of the bot (the same on every worker: aggregate with max)",
                labels=["kind"],
            )
            for kind in ("remind", "escalate"):
                family.add_metric([kind], self.reminders.get(kind, 0))
            yield family


class CountErrors(BaseMiddleware):
    """Counts each update whose handling raised something other than a domain refusal; sits on
    the dispatcher's error events, so errors anywhere in the middlewares count too."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, ErrorEvent) and not isinstance(event.exception, TicketError):
            self.metrics.errors.labels(update_type(event.update)).inc()
        return await handler(event, data)


class WebhookServer:
    """One webhook worker: the bot (started as `gridbot run` starts it) behind an aiohttp
    server. Several may run side by side on one database."""

    def __init__(
        self,
        gridbot: Gridbot,
        *,
        secret: str,
        drain_seconds: float = 30.0,
        lease: timedelta = INBOX_LEASE,
        max_body: int = MAX_BODY,
    ) -> None:
        self.gridbot = gridbot
        self.secret = secret.encode()
        self.path = update_path(secret)
        self.drain_seconds = drain_seconds
        self.lease = lease
        gridbot.inbox_lease = lease  # other workers run beside this one
        self.scope = ChatScope(gridbot.deployment)
        self.metrics = WorkerMetrics()
        gridbot.dp.errors.outer_middleware(CountErrors(self.metrics))
        redis_url = gridbot.settings.redis_url
        self.redis = (
            Redis.from_url(redis_url, socket_connect_timeout=CHECK_TIMEOUT,
                           socket_timeout=CHECK_TIMEOUT)
            if redis_url else None
        )
        self.state = "starting"  # → serving → stopping → stopped
        self.handling: dict[asyncio.Task[None], int] = {}  # task → the update it handles
        self._receiving = 0  # requests between the accepting check and their task
        self._started_at = gridbot.clock()
        self._keeper: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_post(self.path, self.receive)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/metrics", self.scrape)

    @property
    def port(self) -> int:
        assert self._runner is not None, "not listening"
        return int(self._runner.addresses[0][1])

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, host: str, port: int) -> None:
        """Start the bot as polling does (migrations, the replay of what nobody holds, the
        sender, the scheduler unless built without), then listen and accept updates."""
        dp, bot = self.gridbot.dp, self.gridbot.bot
        await dp.emit_startup(bot=bot, dispatcher=dp, bots=[bot], **dp.workflow_data)
        self._started_at = self.gridbot.clock()
        # No access log: the update path is a secret too.
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.state = "serving"
        self._keeper = asyncio.create_task(self._keep_claims(), name="inbox-claims")
        log.info("webhook worker %s listening on %s:%s", self.gridbot.worker, host, self.port)

    async def register(self, base_url: str, *, max_connections: int = 40) -> None:
        """Tell Telegram where to post: setWebhook with the secret and the update types the
        routers use. Pending updates are kept."""
        await self.gridbot.bot.set_webhook(
            url=base_url.rstrip("/") + self.path,
            secret_token=self.secret.decode(),
            allowed_updates=self.gridbot.dp.resolve_used_update_types(),
            max_connections=max_connections,
        )
        log.info("webhook registered at %s/telegram/…", base_url.rstrip("/"))

    async def stop(self) -> None:
        """Graceful: answer new updates 503 (Telegram posts them again, to whichever worker
        listens), finish the ones in hand for up to ``drain_seconds``, then stop the bot.
        Safe to call twice, and on a worker that never started."""
        if self.state in ("stopping", "stopped"):
            return
        self.state = "stopping"
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self._drain()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.redis is not None:
            await self.redis.aclose()
        dp, bot = self.gridbot.dp, self.gridbot.bot
        await dp.emit_shutdown(bot=bot, dispatcher=dp, bots=[bot], **dp.workflow_data)
        self.state = "stopped"

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while (self.handling or self._receiving) and loop.time() < deadline:
            if self.handling:
                await asyncio.wait(
                    set(self.handling), timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            else:  # a request is recording its update: its task comes in a moment
                await asyncio.sleep(0.01)
        if not self.handling:
            return
        left = dict(self.handling)
        log.warning(
            "stopping with %d updates unfinished after %gs; they are left to a replay: %s",
            len(left), self.drain_seconds, sorted(left.values()),
        )
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        try:  # let any worker take them at once rather than after the lease
            async with self.gridbot.sessions() as session:
                await repo.release_claims(
                    session=session, update_ids=list(left.values()),
                    claimed_by=self.gridbot.worker,
                )
                await session.commit()
        except Exception:
            log.exception("could not release the unfinished updates; they wait for the lease")

    # --- the inbox's claims -------------------------------------------------------------------

    async def _keep_claims(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 4)
            try:
                await self.sweep()
            except Exception:
                log.exception("inbox sweep failed; trying again later")

    async def sweep(self) -> int:
        """Renew the claims of the updates in hand, then take over the updates whose claims
        went stale (their worker died) and handle them here; how many were taken."""
        async with self.gridbot.sessions() as session:
            await repo.renew_claims(
                session=session, update_ids=list(self.handling.values()),
                claimed_by=self.gridbot.worker, now=self.gridbot.clock(),
            )
            await session.commit()
        taken = await self.gridbot.claim_unhandled()
        for update in taken:
            self._handle_in_background(update)
        return len(taken)

    # --- routes -------------------------------------------------------------------------------

    async def receive(self, request: web.Request) -> web.StreamResponse:
        """One update from Telegram: 200 once it is in the inbox (new or not), 401 without the
        secret, 400/413 for what is no update, 503 when it cannot be recorded or the worker is
        stopping (Telegram posts it again)."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.secret):
            self.metrics.refused.labels("secret").inc()
            return web.Response(status=401)
        if self.state != "serving":
            self.metrics.refused.labels("stopping").inc()
            return web.Response(status=503)
        self._receiving += 1
        try:
            return await self._record(request)
        finally:
            self._receiving -= 1

    async def _record(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.metrics.refused.labels("too_large").inc()
            raise
        update = parse_update(body, {"bot": self.gridbot.bot})
        if update is None:
            self.metrics.refused.labels("malformed").inc()
            return web.Response(status=400)
        if update not in self.scope:
            return web.Response()  # a group that is not ours: neither handled nor stored
        kind = update_type(update)
        payload = update.model_dump(mode="json", exclude_none=True)
        try:
            async with self.gridbot.sessions() as session:
                new = await repo.record_received(
                    session=session,
                    updates=[(update.update_id, payload)],
                    now=self.gridbot.clock(),
                    claimed_by=self.gridbot.worker,
                )
                await session.commit()
        except Exception:
            log.exception("could not record update %s; Telegram will post it again",
                          update.update_id)
            self.metrics.refused.labels("database").inc()
            return web.Response(status=503)
        if update.update_id not in new:
            # Posted again (a retry, or to another worker meanwhile): whoever recorded it
            # first handles it.
            self.metrics.redelivered.labels(kind).inc()
            return web.Response()
        self.metrics.received.labels(kind).inc()
        self.gridbot.recorded.add(new)
        self._handle_in_background(update)
        return web.Response()

    def _handle_in_background(self, update: Update) -> None:
        task = asyncio.create_task(self._handle(update), name=f"update-{update.update_id}")
        self.handling[task] = update.update_id
        self.metrics.in_flight.inc()
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self.handling.pop(task, None)
        self.metrics.in_flight.dec()

    async def _handle(self, update: Update) -> None:
        kind = update_type(update)
        started = time.perf_counter()
        try:
            await self.gridbot.dp.feed_update(self.gridbot.bot, update)
        except Exception:  # counted by CountErrors on its way here; the error handlers
            log.exception("update %s failed", update.update_id)  # did not take it
        finally:
            self.metrics.latency.labels(kind).observe(time.perf_counter() - started)

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        """200 with {"database": "ok", "redis": "ok" | "not configured"}; 503 naming what is
        not reachable (or that the worker is stopping)."""
        database, redis = await asyncio.gather(self._database_state(), self._redis_state())
        body = {"database": database, "redis": redis}
        healthy = database == "ok" and redis in ("ok", "not configured")
        if self.state != "serving":
            body["worker"] = self.state
            healthy = False
        return web.json_response(body, status=200 if healthy else 503)

    async def _database_state(self) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self.gridbot.engine.connect() as db:
                await db.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def _redis_state(self) -> str:
        if self.redis is None:
            return "not configured"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self.redis.ping()
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        """Prometheus text: this worker's counters and the database's figures of now."""
        readings = self.metrics.readings
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self.gridbot.sessions() as session:
                readings.outbox_pending = await repo.pending_outbox_count(session=session)
                readings.reminders = await repo.reminders_since(
                    session=session, since=self._started_at
                )
        except Exception as exc:
            log.warning("metrics: could not read the database (%s)", type(exc).__name__)
            readings.outbox_pending = readings.reminders = None
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


async def run_webhook(
    gridbot: Gridbot, *, secret: str, register_url: str | None, stopped: asyncio.Event
) -> None:
    """`gridbot webhook`: serve until ``stopped``, then stop gracefully. With ``register_url``
    (the public base URL) the webhook is set at start; it is never deleted at stop, since other
    workers may still be serving it."""
    settings = gridbot.settings
    if settings.redis_url is None:
        log.warning(
            "no GRIDBOT_REDIS_URL: half-filled forms, album parts and each chat's turn live in "
            "this process only. Run one webhook worker, or give every worker the same Redis."
        )
    server = WebhookServer(gridbot, secret=secret, drain_seconds=settings.webhook_drain_seconds)
    await server.start(host=settings.webhook_host, port=settings.webhook_port)
    try:
        if register_url is not None:
            await server.register(
                register_url, max_connections=settings.webhook_max_connections
            )
        await stopped.wait()
    finally:
        await server.stop()
