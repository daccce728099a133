"""`gridbot webhook`: updates posted by the emulator in webhook mode, answered once recorded,
never handled twice, refused when they are no updates or lack the secret; /healthz, /metrics,
the graceful stop, and the command as an operator starts it."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import build
from bot.cli import app as cli
from bot.deployment import Deployment
from bot.emulator import BotAPIEmulator
from bot.settings import Settings
from bot.webhook import SECRET_HEADER, WebhookServer, update_path
from storage import repo
from storage.db import create_engine, migrate, session_factory
from storage.models import OutboxMessage, ReceivedUpdate

from conftest import SAMPLE, TOKEN, Clock, World, district_people, sample_deployment_with
from factories import make_jpeg
from fake_geocoder import FakeGeocoder, FakePlace
from processes import GridbotProcess, free_port, wait_until

SECRET = "webhook_test-Secret_0123456789"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday, 09:00 in the district
REPORT = "汾阳路13号 旱厕堵了"
NEW_ROAD = "幸福路99号"  # only the (fake) map service knows it
UNKNOWN_ROAD = f"{NEW_ROAD} 井盖丢了"
NEW_ROAD_PLACE = FakePlace(lat=36.156, lon=120.433, display_name="幸福路99号, 李沧区, 青岛市")


def webhook_settings(emulator: BotAPIEmulator, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        bot_token=SecretStr(TOKEN), api_base=emulator.base_url, data_dir=tmp_path / "data",
        database_url=database_url, send_limits=False, webhook_secret=SecretStr(SECRET),
        standby_retry_seconds=0.2,
    )


@asynccontextmanager
async def serving(
    settings: Settings, deployment: Deployment, *, clock: Callable[[], datetime],
    register: bool = True, drain_seconds: float = 20.0,
) -> AsyncIterator[WebhookServer]:
    """A webhook worker in this process on a port of its own, stopped on exit."""
    gridbot = build(
        settings, deployment, clock=clock, album_quiet=0.3, sender_poll_interval=0.1,
        reminder_tick=timedelta(0),  # tests tick by hand
    )
    server = WebhookServer(gridbot, secret=SECRET, drain_seconds=drain_seconds)
    await server.start(host="127.0.0.1", port=0)
    try:
        if register:
            await server.register(f"http://127.0.0.1:{server.port}")
        yield server
    finally:
        await server.stop()
        await gridbot.engine.dispose()  # what the test read after a stop in the test


@dataclass
class Hooked:
    """A world whose bot gets its updates by webhook, and a way to post to it directly."""

    world: World
    server: WebhookServer
    http: aiohttp.ClientSession

    def url(self, server: WebhookServer | None = None, path: str | None = None) -> str:
        server = server or self.server
        return f"http://127.0.0.1:{server.port}{path or server.path}"

    async def post(
        self, body: bytes | dict[str, Any], *, secret: str | None = SECRET,
        server: WebhookServer | None = None, method: str = "POST",
    ) -> int:
        data = io.BytesIO(json.dumps(body).encode() if isinstance(body, dict) else body)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with self.http.request(
            method, self.url(server), data=data, headers=headers
        ) as response:
            await response.read()
            return response.status

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url(path=path)) as response:
            return response.status, await response.text()

    async def inbox(self) -> list[ReceivedUpdate]:
        async with self.world.app.sessions() as session:
            result = await session.exec(select(ReceivedUpdate).order_by(ReceivedUpdate.update_id))
            return list(result.all())

    async def taken_from_the_queue(self, action: Callable[[], Any]) -> dict[str, Any]:
        """The update an action makes, as Telegram would post it, without the bot seeing it:
        the webhook is taken away meanwhile and set again afterwards (which posts it too)."""
        await self.world.app.bot.delete_webhook()
        await action()
        [update] = self.world.emulator.pending_updates()
        return update

    async def registered_again(self) -> None:
        await self.server.register(f"http://127.0.0.1:{self.server.port}")


@asynccontextmanager
async def webhook_world(
    database_url: str, deployment: Deployment, tmp_path: Path, *, drain_seconds: float = 20.0,
    clock: Clock | None = None,
) -> AsyncIterator[Hooked]:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        people = await district_people(emulator, deployment)
        clock = clock or Clock()
        settings = webhook_settings(emulator, database_url, tmp_path)
        async with (
            serving(settings, deployment, clock=clock, drain_seconds=drain_seconds) as server,
            aiohttp.ClientSession() as http,
        ):
            world = World(emulator=emulator, app=server.gridbot, clock=clock, **people)
            await world.settle()  # the chiefs' /start greetings, posted by webhook
            yield Hooked(world=world, server=server, http=http)


@asynccontextmanager
async def restarted(hooked: Hooked, deployment: Deployment) -> AsyncIterator[Hooked]:
    """A new worker on the same database, emulator and people (the old one stopped)."""
    gridbot = hooked.server.gridbot
    async with serving(gridbot.settings, deployment, clock=hooked.world.clock) as server:
        world = dataclasses.replace(hooked.world, app=server.gridbot)
        yield Hooked(world=world, server=server, http=hooked.http)


@pytest.fixture
async def hooked(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> AsyncIterator[Hooked]:
    async with webhook_world(database_url, deployment, tmp_path) as hooked:
        yield hooked


def acks(world: World, number: int) -> list[str]:
    return [text for text in world.said_in(world.intake) if f"#{number}" in text]


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from Prometheus text, or None when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return None if found is None else float(found.group(1))


# --- updates by webhook ----------------------------------------------------------------------


async def test_a_photo_report_by_webhook_becomes_one_ticket_and_is_acknowledged(
    hooked: Hooked,
) -> None:
    world = hooked.world
    info = await world.app.bot.get_webhook_info()
    assert info.url == hooked.url() and info.url.startswith(f"http://127.0.0.1:{hooked.server.port}/telegram/")
    await world.captain.send_photo(world.intake, make_jpeg(seed=1), caption=REPORT)
    ack = await world.emulator.wait_for(world.intake, contains="#1")
    assert "汾阳路社区工作站" in ack.body
    await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
    [ticket] = await world.tickets()
    assert ticket.station_key == "fenyang"
    # Telegram posts it again (its answer was lost on the way, say): answered, not redone
    [report] = [u for u in await hooked.inbox() if "photo" in u.payload.get("message", {})]
    assert report.handled_at is not None and report.claimed_by == world.app.worker
    world.emulator.redeliver(report.update_id)
    world.emulator.redeliver(report.update_id)
    await world.settle()
    assert len(await world.tickets()) == 1
    assert len(acks(world, 1)) == 1
    assert world.emulator.webhook_failures == []
    _, metrics = await hooked.get("/metrics")
    assert metric(metrics, "gridbot_updates_redelivered_total", type="message") == 2


async def test_the_same_update_posted_to_two_workers_at_once_makes_one_ticket(
    hooked: Hooked, deployment: Deployment, tmp_path: Path, database_url: str
) -> None:
    world = hooked.world
    update = await hooked.taken_from_the_queue(
        lambda: world.captain.send_photo(world.intake, make_jpeg(seed=2), caption=REPORT)
    )
    settings = webhook_settings(world.emulator, database_url, tmp_path)
    async with serving(settings, deployment, clock=world.clock, register=False) as other:
        statuses = await asyncio.gather(
            hooked.post(update), hooked.post(update, server=other),
            hooked.post(update), hooked.post(update, server=other),
        )
        assert statuses == [200, 200, 200, 200]
    # the other worker has stopped: whatever it took on, it finished first
    await hooked.registered_again()  # and Telegram, never told, posts it once more
    await world.emulator.wait_for(world.intake, contains="#1")
    await world.settle()
    assert len(await world.tickets()) == 1
    assert len(acks(world, 1)) == 1
    [recorded] = [u for u in await hooked.inbox() if u.update_id == update["update_id"]]
    assert recorded.handled_at is not None and recorded.error is None


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_recorded(
    hooked: Hooked,
) -> None:
    world = hooked.world
    before = len(await hooked.inbox())
    # a webhook set with another secret: every post refused, retried, then given up on
    await world.app.bot.set_webhook(hooked.url(), secret_token="not-the-secret")
    await world.captain.send_photo(world.intake, make_jpeg(seed=3), caption=REPORT)
    await world.emulator.wait_until_idle(timeout=10)
    assert len(world.emulator.webhook_failures) == 1
    update = await hooked.taken_from_the_queue(
        lambda: world.captain.send_photo(world.intake, make_jpeg(seed=4), caption=REPORT)
    )
    for secret in (None, "", SECRET[:-1], SECRET + "x", SECRET.upper(), "秘密", "x" * 5000):
        assert await hooked.post(update, secret=secret) == 401, secret
    await world.app.bot.delete_webhook(drop_pending_updates=True)  # Telegram never got a 200
    # the right secret on the wrong path finds nothing
    async with hooked.http.post(
        hooked.url(path="/telegram/" + SECRET), json=update, headers={SECRET_HEADER: SECRET}
    ) as response:
        assert response.status == 404
    await world.settle()
    assert len(await hooked.inbox()) == before
    assert await world.tickets() == []
    assert acks(world, 1) == []
    _, metrics = await hooked.get("/metrics")
    tries = 4  # the emulator's first post and its three retries
    assert metric(metrics, "gridbot_webhook_refused_total", reason="secret") == tries + 7


async def test_what_is_no_update_is_refused_and_nothing_is_recorded(hooked: Hooked) -> None:
    world = hooked.world
    before = len(await hooked.inbox())
    photo = await hooked.taken_from_the_queue(
        lambda: world.captain.send_photo(world.intake, make_jpeg(seed=5), caption=REPORT)
    )
    no_id = {k: v for k, v in photo.items() if k != "update_id"}
    broken_message = {**photo, "message": {"text": "no chat, no date, no id"}}
    bad: list[bytes | dict[str, Any]] = [
        b"", b"{", b"not json at all", "汾阳路".encode("gbk"), b"\xff\xfe\x00",
        b"[1, 2, 3]", b'"update"', b"null", b"42", b"[" * 100_000 + b"]" * 100_000,
        no_id, {**photo, "update_id": "12"}, {**photo, "update_id": True},
        {**photo, "update_id": -1}, {**photo, "update_id": 2**70}, {**photo, "update_id": 1.5},
        broken_message, {"update_id": photo["update_id"], "message": "<b>hi</b>"},
    ]
    for body in bad:
        assert await hooked.post(body) == 400, body if isinstance(body, dict) else body[:40]
    huge = {**photo, "padding": "x" * (2 * 1024 * 1024)}
    assert await hooked.post(huge) == 413
    for method in ("GET", "PUT", "DELETE"):
        assert await hooked.post(photo, method=method) == 405
    assert len(await hooked.inbox()) == before
    assert await world.tickets() == []
    # and the worker still takes the real one, once
    assert await hooked.post(photo) == 200
    await world.emulator.wait_for(world.intake, contains="#1")
    await hooked.registered_again()
    await world.settle()
    assert len(await world.tickets()) == 1
    _, metrics = await hooked.get("/metrics")
    assert metric(metrics, "gridbot_webhook_refused_total", reason="malformed") == len(bad)
    assert metric(metrics, "gridbot_webhook_refused_total", reason="too_large") == 1


async def test_an_update_that_cannot_be_recorded_gets_503_and_is_taken_when_posted_again(
    hooked: Hooked,
) -> None:
    world = hooked.world
    update = await hooked.taken_from_the_queue(
        lambda: world.captain.send_photo(world.intake, make_jpeg(seed=6), caption=REPORT)
    )
    async with world.app.engine.begin() as db:  # the inbox cannot take a row
        await db.execute(sa.text("ALTER TABLE received_update RENAME TO received_update_away"))
    assert await hooked.post(update) == 503
    async with world.app.engine.begin() as db:
        await db.execute(sa.text("ALTER TABLE received_update_away RENAME TO received_update"))
    assert [u for u in await hooked.inbox() if u.update_id == update["update_id"]] == []
    await hooked.registered_again()  # Telegram posts it again
    await world.emulator.wait_for(world.intake, contains="#1")
    assert len(await world.tickets()) == 1


async def test_a_handler_that_fails_is_counted_and_its_update_kept_with_the_error(
    hooked: Hooked,
) -> None:
    world = hooked.world
    async with world.app.engine.begin() as db:  # the tickets cannot be written meanwhile
        await db.execute(sa.text("ALTER TABLE ticket RENAME TO ticket_away"))
    try:
        await world.captain.send_photo(world.intake, make_jpeg(seed=14), caption=REPORT)
        await world.settle()
    finally:
        async with world.app.engine.begin() as db:
            await db.execute(sa.text("ALTER TABLE ticket_away RENAME TO ticket"))
    [failed] = [u for u in await hooked.inbox() if u.error]
    assert failed.handled_at is not None and "ticket" in failed.error
    assert world.emulator.webhook_failures == []  # it was recorded, so answered 200
    _, metrics = await hooked.get("/metrics")
    assert metric(metrics, "gridbot_handler_errors_total", type="message") == 1
    # the next report goes through
    await world.captain.send_photo(world.intake, make_jpeg(seed=15), caption=REPORT)
    await world.emulator.wait_for(world.intake, contains="#1")


async def test_a_group_that_is_not_ours_is_answered_but_not_stored(hooked: Hooked) -> None:
    world = hooked.world
    before = len(await hooked.inbox())
    await world.captain.send_photo(world.stranger_group, make_jpeg(seed=7), caption=REPORT)
    await world.settle()
    assert len(await hooked.inbox()) == before
    assert world.emulator.webhook_failures == []
    assert await world.tickets() == []


# --- several workers: the inbox's claims ----------------------------------------------------


async def test_an_update_another_live_worker_holds_is_left_to_it_until_its_claim_goes_stale(
    database_url: str, deployment: Deployment, tmp_path: Path
) -> None:
    clock = Clock()
    clock.set(MORNING)
    async with webhook_world(database_url, deployment, tmp_path, clock=clock) as hooked:
        world = hooked.world
        update = await hooked.taken_from_the_queue(
            lambda: world.captain.send_photo(world.intake, make_jpeg(seed=8), caption=REPORT)
        )
        await world.app.bot.delete_webhook(drop_pending_updates=True)  # none by webhook now
        # another worker recorded it a minute ago and is handling it now
        async with world.app.sessions() as session:
            await repo.record_received(
                session=session, updates=[(update["update_id"], update)],
                now=MORNING - timedelta(minutes=1), claimed_by="worker-b",
            )
            await session.commit()
        assert await world.app.replay_unhandled() == 0  # what a worker starting now does
        assert await hooked.server.sweep() == 0
        assert await world.tickets() == []
        # still working on it: worker B renews its claim; then it dies
        clock.set(MORNING + timedelta(minutes=1))
        async with world.app.sessions() as session:
            await repo.renew_claims(
                session=session, update_ids=[update["update_id"]], claimed_by="worker-b",
                now=clock(),
            )
            await session.commit()
        clock.set(MORNING + timedelta(minutes=2, seconds=30))
        assert await hooked.server.sweep() == 0
        clock.set(MORNING + timedelta(minutes=3, seconds=30))  # its lease has run out
        assert await hooked.server.sweep() == 1
        await world.emulator.wait_for(world.intake, contains="#1")
        assert await hooked.server.sweep() == 0
        await world.settle()
        assert len(await world.tickets()) == 1
        [recorded] = [u for u in await hooked.inbox() if u.update_id == update["update_id"]]
        assert recorded.claimed_by == world.app.worker and recorded.handled_at is not None


async def test_claims_in_the_inbox(database_url: str) -> None:
    """What the replays rest on: recording tells what is new; a polling bot (no lease) takes
    everything unhandled; workers take only what nobody holds, each update once."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await migrate(engine)
        async with sessions() as session:
            new = await repo.record_received(
                session=session, updates=[(1, {"update_id": 1}), (2, {"update_id": 2})],
                now=MORNING, claimed_by="a",
            )
            again = await repo.record_received(
                session=session, updates=[(2, {"update_id": 2}), (3, {"update_id": 3})],
                now=MORNING, claimed_by="b",
            )
            assert (new, again) == ({1, 2}, {3})
            await repo.mark_updates_handled(session=session, handled=[(1, MORNING, None)])
            await session.commit()
        later = MORNING + timedelta(minutes=1)
        async with sessions() as session:  # both held less than a lease ago
            stale_before = later - timedelta(minutes=2)
            assert await repo.claim_unhandled(
                session=session, claimed_by="c", now=later, stale_before=stale_before
            ) == []
        async with sessions() as session:  # the only reader there is takes all
            taken = await repo.claim_unhandled(
                session=session, claimed_by="c", now=later, stale_before=None
            )
            assert [(u.update_id, u.claimed_by, u.claimed_at) for u in taken] == [
                (2, "c", later), (3, "c", later)
            ]
            assert taken[0].payload == {"update_id": 2}
            await repo.release_claims(session=session, update_ids=[2, 3], claimed_by="c")
            await session.commit()
        # released: workers racing for them take each once
        results = []
        for worker in ("d", "e", "f"):
            async with sessions() as session:
                results.append(await repo.claim_unhandled(
                    session=session, claimed_by=worker, now=later, stale_before=MORNING,
                ))
                await session.commit()
        assert sorted(u.update_id for batch in results for u in batch) == [2, 3]
    finally:
        await engine.dispose()


async def test_concurrent_claims_take_each_update_once(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await migrate(engine)
        async with sessions() as session:
            await repo.record_received(
                session=session, updates=[(n, {"update_id": n}) for n in range(1, 41)],
                now=MORNING, claimed_by="dead",
            )
            await session.commit()
        later = MORNING + timedelta(minutes=5)

        async def claim(worker: str) -> list[int]:
            async with sessions() as session:
                taken = await repo.claim_unhandled(
                    session=session, claimed_by=worker, now=later,
                    stale_before=later - timedelta(minutes=2),
                )
                await session.commit()
                return [u.update_id for u in taken]

        batches = await asyncio.gather(*(claim(f"w{n}") for n in range(4)))
        assert sorted(n for batch in batches for n in batch) == list(range(1, 41))
    finally:
        await engine.dispose()


# --- /healthz and /metrics -------------------------------------------------------------------


async def test_healthz_says_what_is_reachable(hooked: Hooked) -> None:
    status, body = await hooked.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"database": "ok", "redis": "not configured"}


async def test_healthz_with_redis(
    database_url: str, deployment: Deployment, tmp_path: Path, redis_url: str
) -> None:
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_test_bot")
        settings = webhook_settings(emulator, database_url, tmp_path).model_copy(
            update={"redis_url": redis_url}
        )
        async with (
            serving(settings, deployment, clock=Clock(), register=False) as server,
            TestClient(TestServer(server.app)) as client,
        ):
            response = await client.get("/healthz")
            assert response.status == 200
            assert await response.json() == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("broken", ["sqlite", "postgres"])
async def test_healthz_names_what_is_not_reachable(
    deployment: Deployment, tmp_path: Path, broken: str
) -> None:
    """A database that cannot be opened (a SQLite path that is a directory; a PostgreSQL port
    nobody listens on) and a Redis port nobody listens on."""
    closed = free_port()
    database_url = (
        f"sqlite+aiosqlite:///{tmp_path}" if broken == "sqlite"
        else f"postgresql+asyncpg://gridbot@127.0.0.1:{closed}/gridbot"
    )
    settings = Settings(
        bot_token=SecretStr(TOKEN), api_base="http://127.0.0.1:9", data_dir=tmp_path / "data",
        database_url=database_url, webhook_secret=SecretStr(SECRET),
        redis_url=f"redis://127.0.0.1:{closed}/0",
    )
    server = WebhookServer(build(settings, deployment), secret=SECRET)
    try:
        async with TestClient(TestServer(server.app)) as client:
            response = await client.get("/healthz")
            assert response.status == 503
            body = await response.json()
            assert body["database"].startswith("unreachable")
            assert body["redis"].startswith("unreachable")
            response = await client.get("/metrics")  # still served, without the database's
            assert response.status == 200
            assert "gridbot_outbox_pending" not in await response.text()
    finally:
        await server.stop()


async def test_metrics_count_updates_by_type_and_show_the_outbox_depth(
    database_url: str, tmp_path: Path
) -> None:
    district = sample_deployment_with(
        tmp_path, reminders={"first_after": "2h", "every": "4h", "escalate_after": 3}
    )
    clock = Clock()
    clock.set(MORNING)
    async with webhook_world(database_url, district, tmp_path, clock=clock) as hooked:
        world = hooked.world
        status, text = await hooked.get("/metrics")
        assert status == 200
        assert metric(text, "gridbot_outbox_pending") == 0
        assert metric(text, "gridbot_reminders_total", kind="remind") == 0
        await world.captain.send_photo(world.intake, make_jpeg(seed=9), caption=REPORT)
        await world.emulator.wait_for(world.intake, contains="#1")
        card = await world.emulator.wait_for(world.chiefs["fenyang"], method="sendPhoto")
        # the chief is reminded once the first reminder is due
        clock.set(MORNING + timedelta(hours=2, minutes=1))
        assert await world.app.ticker.tick() == 1
        await world.emulator.wait_for(world.chiefs["fenyang"], contains="提醒")
        query = await world.chiefs["fenyang"].press(card, text="✋ 认领")
        await world.emulator.wait_for_callback_answer(query)
        await world.captain.block_bot()
        await world.settle()
        # a message the outbox keeps for later
        async with world.app.sessions() as session:
            session.add(OutboxMessage(
                chat_id=world.office.id, kind="message", payload={"text": "稍后"},
                created_at=clock(), not_before=clock() + timedelta(days=1),
            ))
            await session.commit()
        _, text = await hooked.get("/metrics")
    messages = len(world.chiefs) + 1  # each chief's /start, the report
    assert metric(text, "gridbot_updates_received_total", type="message") == messages
    assert metric(text, "gridbot_updates_received_total", type="callback_query") == 1
    assert metric(text, "gridbot_updates_received_total", type="my_chat_member") == 1
    assert metric(text, "gridbot_handler_seconds_count", type="message") == messages
    assert (metric(text, "gridbot_handler_seconds_sum", type="message") or 0) > 0
    assert metric(text, "gridbot_outbox_pending") == 1
    assert metric(text, "gridbot_reminders_total", kind="remind") == 1
    assert metric(text, "gridbot_updates_in_flight") == 0
    assert metric(text, "gridbot_handler_errors_total", type="message") is None


# --- stopping ---------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeocoder]:
    async with FakeGeocoder(places={NEW_ROAD: NEW_ROAD_PLACE}) as server:
        yield server


def online(tmp_path: Path, fake: FakeGeocoder) -> Deployment:
    provider = {
        "kind": "nominatim", "domain": fake.domain, "scheme": "http", "timeout": "60s",
        "user_agent": "gridbot-tests (tests@example.org)", "min_interval": "1s",
    }
    return sample_deployment_with(tmp_path, geocoding={"providers": [provider]})


async def test_stopping_finishes_the_update_in_hand_and_refuses_new_ones(
    database_url: str, tmp_path: Path, fake: FakeGeocoder
) -> None:
    deployment = online(tmp_path, fake)
    fake.mode = "slow"  # the map service holds the answer until released
    async with webhook_world(database_url, deployment, tmp_path) as hooked:
        world = hooked.world
        await world.captain.send_photo(world.intake, make_jpeg(seed=10), caption=UNKNOWN_ROAD)
        await wait_until(lambda: fake.count() == 1)  # the report is being handled
        next_one = await hooked.taken_from_the_queue(
            lambda: world.captain.send_photo(world.intake, make_jpeg(seed=11), caption=REPORT)
        )
        stopping = asyncio.create_task(hooked.server.stop())
        await wait_until(lambda: hooked.server.state == "stopping")
        assert await hooked.post(next_one) == 503
        status, body = await hooked.get("/healthz")
        assert status == 503 and json.loads(body)["worker"] == "stopping"
        assert not stopping.done()
        fake.release()
        await asyncio.wait_for(stopping, timeout=20)
        assert hooked.server.state == "stopped"
        # the report was finished; the refused update was never recorded
        [ticket] = await world.tickets()
        assert ticket.description and "井盖" in ticket.description
        assert [u.update_id for u in await hooked.inbox() if u.handled_at is None] == []
        # a new worker on the same database: the ticket's answer is out (if it was not
        # before), and Telegram posts the refused update again
        async with restarted(hooked, deployment) as again:
            world = again.world
            await world.emulator.wait_for(world.intake, contains="#1")
            await again.registered_again()
            await world.emulator.wait_for(world.intake, contains="#2")
            await world.settle()
            assert len(await world.tickets()) == 2
            assert len(acks(world, 1)) == 1 and len(acks(world, 2)) == 1


async def test_an_update_unfinished_when_the_wait_runs_out_is_replayed_at_the_next_start(
    database_url: str, tmp_path: Path, fake: FakeGeocoder
) -> None:
    deployment = online(tmp_path, fake)
    fake.mode = "slow"
    async with webhook_world(database_url, deployment, tmp_path, drain_seconds=0.5) as hooked:
        world = hooked.world
        await world.captain.send_photo(world.intake, make_jpeg(seed=12), caption=UNKNOWN_ROAD)
        await wait_until(lambda: fake.count() == 1)
        await asyncio.wait_for(hooked.server.stop(), timeout=20)
        [left] = [u for u in await hooked.inbox() if u.handled_at is None]
        assert left.claimed_by is None  # given back: any worker may take it at once
        fake.mode = "normal"
        async with restarted(hooked, deployment) as again:
            world = again.world
            ack = await world.emulator.wait_for(world.intake, contains="兴城路社区工作站")
            assert "#1" in ack.body
            await world.settle()
            assert len(await world.tickets()) == 1
            assert [u for u in await again.inbox() if u.handled_at is None] == []


# --- the command, as an operator runs it -----------------------------------------------------


def operator_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "GRIDBOT_BOT_TOKEN": TOKEN,
        "GRIDBOT_CONFIG": str(SAMPLE),
        "GRIDBOT_DATA_DIR": str(tmp_path / "data"),
        "GRIDBOT_WEBHOOK_SECRET": SECRET,
        "GRIDBOT_WEBHOOK_PORT": str(port),
        "GRIDBOT_SEND_LIMITS": "false",
        **extra,
    }


async def healthy(port: int, process: GridbotProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert process.alive, process.tail()
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # the process is starting (migrations)
    raise AssertionError(process.tail())


async def test_the_webhook_command_registers_serves_and_stops_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="operator_bot")
        captain = emulator.user(200000001, "王阿姨")
        intake = emulator.group(-1001000000002, "报事群", members=[captain])
        process = await GridbotProcess(
            "webhook",
            env=operator_env(
                tmp_path, port, GRIDBOT_API_BASE=emulator.base_url,
                GRIDBOT_DATABASE_URL=database_url,
                GRIDBOT_WEBHOOK_URL=f"http://127.0.0.1:{port}/",
            ),
            log=tmp_path / "webhook.log",
        ).start()
        try:
            await healthy(port, process)
            await wait_until(lambda: emulator.calls["setWebhook"] == 1)
            await captain.send_photo(intake, make_jpeg(seed=13), caption=REPORT)
            ack = await emulator.wait_for(intake, contains="#1", timeout=60)
            assert "汾阳路社区工作站" in ack.body
        finally:
            code = await process.stop()
        assert code == 0, process.tail()
        # stopping leaves the webhook set: other workers may still be serving it
        async with aiohttp.ClientSession() as http, http.get(
            f"{emulator.base_url}/bot{TOKEN}/getWebhookInfo"
        ) as response:
            info = (await response.json())["result"]
        assert info["url"] == f"http://127.0.0.1:{port}{update_path(SECRET)}"
    assert SECRET not in process.output()
    assert update_path(SECRET) not in process.output()
    assert "Run one webhook worker, or give every worker the same Redis" in process.output()


async def test_no_register_leaves_the_webhook_alone(tmp_path: Path) -> None:
    port = free_port()
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="operator_bot")
        process = await GridbotProcess(
            "webhook", "--no-register", "--no-scheduler",
            env=operator_env(tmp_path, port, GRIDBOT_API_BASE=emulator.base_url),
            log=tmp_path / "webhook.log",
        ).start()
        try:
            await healthy(port, process)
            assert emulator.calls["setWebhook"] == 0
        finally:
            code = await process.stop()
        assert code == 0, process.tail()


def test_the_command_refuses_without_a_usable_secret_or_url(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    base.update(GRIDBOT_BOT_TOKEN=TOKEN, GRIDBOT_CONFIG=str(SAMPLE),
                GRIDBOT_DATA_DIR=str(tmp_path / "data"))
    runner = CliRunner()
    result = runner.invoke(cli, ["webhook", "--no-register"], env=base)
    assert result.exit_code == 1
    assert "GRIDBOT_WEBHOOK_SECRET is not set" in result.output
    for bad in ("has spaces in it", "秘密", "x" * 257, "semi;colon"):
        result = runner.invoke(cli, ["webhook"], env={**base, "GRIDBOT_WEBHOOK_SECRET": bad})
        assert result.exit_code == 1
        assert "GRIDBOT_WEBHOOK_SECRET: must be 1-256 characters" in result.output
        assert bad not in result.output
    result = runner.invoke(cli, ["webhook"], env={**base, "GRIDBOT_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 1
    assert "GRIDBOT_WEBHOOK_URL is not set" in result.output and "--no-register" in result.output
    result = runner.invoke(
        cli, ["webhook"],
        env={**base, "GRIDBOT_WEBHOOK_SECRET": SECRET, "GRIDBOT_WEBHOOK_URL": "ftp://bot"},
    )
    assert result.exit_code == 1 and "GRIDBOT_WEBHOOK_URL" in result.output
    result = runner.invoke(cli, ["webhook", "--no-register"], env={
        k: v for k, v in base.items() if k != "GRIDBOT_BOT_TOKEN"
    } | {"GRIDBOT_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 1 and "GRIDBOT_BOT_TOKEN" in result.output
    assert not (tmp_path / "data" / "gridbot.db").exists()  # nothing was started
