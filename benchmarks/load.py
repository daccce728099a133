"""Load through the emulator: how many photo reports a second the bot takes, how long a captain
waits for its answer, and how that compares with the floor — a bare aiogram bot doing only the
unavoidable work (download the photo, reply once) on the same emulator, in the same run.

The bot runs as a real process (`python -m bot run`, polling, SQLite by default), the emulator
and the captains in this one. Captains in the sample district's intake groups post photo
reports with an address from the gazetteer and a description; one in ten repeats an earlier
report (same photo, same place). `--concurrency` captains post at once, each waiting for the
bot's answer to their message before posting the next (a closed loop); latency is from
posting to the emulator receiving the bot's reply. After the reports, the chiefs press 认领 on
the cards they received (button latency: press to the callback's answer). The bot process's
peak resident memory (VmHWM) is read before it stops.

The emulator shares this machine with the bot, and its work for each photo (resizing it to
Telegram's four sizes, about 55 ms of CPU at 1280x960) is more than the floor bot's: with
`--telegram-work in-run` (the default) it happens as captains post, on the cores the bot also
needs, so the floor mostly measures the emulator; with `--telegram-work ahead` it is done
before the clock starts, as Telegram does it on its own machines, and the ratio measures the
bot's own cost against the floor's.

Pacing to Telegram's limits is off (GRIDBOT_SEND_LIMITS=false): the emulator is not Telegram,
and a group's 20 messages a minute would measure Telegram, not the bot.

    .venv/bin/python benchmarks/load.py [--reports 400] [--concurrency 32] [--photo 1280x960]
        [--telegram-work in-run|ahead] [--workers 1 2]
        [--setups floor polling-sqlite webhook-postgres]
        [--postgres postgresql+asyncpg://…/postgres --redis redis://…/0]

`webhook-postgres` runs two `gridbot webhook` workers and a `gridbot scheduler` on a throwaway
PostgreSQL database and Redis, behind a round-robin proxy in this process that the emulator's
webhook posts to (Caddy plays that part in docker-compose.yml).

Prints JSON lines {"bench": "load", "metric": ..., "value": ..., "unit": ..., "setup": ...}
and the ratio project/floor for photo reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import benchkit
from aiohttp import web

from bot.emulator import BotAPIEmulator
from bot.emulator.media import recompress
from bot.photos import sample_photo
from bot.webhook import update_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bot" / "sample"
TOKEN = "424242:load-benchmark"
INTAKE = (-1001000000002, -1001000000003)
OFFICE = -1001000000001
CHIEFS = range(100000001, 100000009)
PROBLEMS = ("路灯不亮", "垃圾没人清", "井盖松动", "下水道堵了", "楼道灯坏了", "健身器材破损")


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)
    presses: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    peak_rss_kib: list[int] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # each process's, during reports


def addresses() -> list[str]:
    with (SAMPLE / "addresses.csv").open(encoding="utf-8") as handle:
        return [row["address"] for row in csv.DictReader(handle)]


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def process(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stdout=out, stderr=out, cwd=ROOT
        )


async def stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.terminate()
    try:
        await asyncio.wait_for(child.wait(), timeout=30)
    except TimeoutError:
        child.kill()
        await child.wait()


async def until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"load: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def gridbot_env(workdir: Path, emulator: BotAPIEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(
        GRIDBOT_BOT_TOKEN=TOKEN, GRIDBOT_API_BASE=emulator.base_url,
        GRIDBOT_CONFIG=str(SAMPLE / "deployment.yaml"), GRIDBOT_DATA_DIR=str(workdir / "data"),
        GRIDBOT_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'gridbot.db'}",
        GRIDBOT_SEND_LIMITS="false", GRIDBOT_LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


Start = Callable[[BotAPIEmulator, Path], Awaitable[list[asyncio.subprocess.Process]]]


async def start_floor(emulator: BotAPIEmulator, workdir: Path) -> list[asyncio.subprocess.Process]:
    child = await process(
        str(ROOT / "benchmarks" / "floor_bot.py"), "--token", TOKEN, "--api", emulator.base_url,
        env=dict(os.environ), log=workdir / "floor.log",
    )  # fmt: skip
    await until(lambda: emulator.calls["getUpdates"] > 0, 60, "the floor bot to poll")
    return [child]


async def start_polling_sqlite(
    emulator: BotAPIEmulator, workdir: Path
) -> list[asyncio.subprocess.Process]:
    child = await process(
        "-m", "bot", "run", env=gridbot_env(workdir, emulator), log=workdir / "gridbot.log"
    )
    await until(lambda: emulator.calls["getUpdates"] > 0, 120, "gridbot to poll")
    return [child]


SECRET = "load-benchmark-secret"
WORKERS = 2
SERVERS: dict[str, str] = {}  # --postgres / --redis, set by main()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def round_robin(ports: list[int]) -> web.AppRunner:
    """The load balancer in front of the workers (Caddy in docker-compose.yml): each update
    to the next worker, its answer passed back."""
    client = aiohttp.ClientSession()
    turn = 0

    async def forward(request: web.Request) -> web.Response:
        nonlocal turn
        port, turn = ports[turn % len(ports)], turn + 1
        async with client.post(
            f"http://127.0.0.1:{port}{request.path}", data=await request.read(),
            headers={k: v for k, v in request.headers.items()
                     if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")},
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    app.on_cleanup.append(lambda _: client.close())
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


async def start_webhook_postgres(
    emulator: BotAPIEmulator, workdir: Path
) -> list[asyncio.subprocess.Process]:
    """WORKERS `gridbot webhook` processes and a `gridbot scheduler` on PostgreSQL and Redis,
    behind a round-robin proxy that the emulator's webhook posts to."""
    env = gridbot_env(workdir, emulator)
    env.update(GRIDBOT_DATABASE_URL=SERVERS["database"], GRIDBOT_REDIS_URL=SERVERS["redis"],
               GRIDBOT_REDIS_PREFIX=f"load{os.getpid()}", GRIDBOT_WEBHOOK_SECRET=SECRET)
    ports = [free_port() for _ in range(WORKERS)]
    children = [await process("-m", "bot", "scheduler", env=env, log=workdir / "scheduler.log")]
    for n, port in enumerate(ports):
        children.append(await process(
            "-m", "bot", "webhook", "--no-register", "--no-scheduler",
            env={**env, "GRIDBOT_WEBHOOK_PORT": str(port)}, log=workdir / f"worker{n}.log",
        ))

    async def healthy() -> bool:
        async with aiohttp.ClientSession() as client:
            for port in ports:
                try:
                    async with client.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status != 200:
                            return False
                except aiohttp.ClientError:
                    return False
        return True

    deadline = time.monotonic() + 120
    while not await healthy():
        if time.monotonic() > deadline:
            raise SystemExit(f"load: the webhook workers did not start; see {workdir}")
        await asyncio.sleep(0.2)
    proxy = await round_robin(ports)
    site = web.TCPSite(proxy, "127.0.0.1", proxy_port := free_port())
    await site.start()
    PROXIES.append(proxy)
    async with aiohttp.ClientSession() as client, client.post(
        f"{emulator.base_url}/bot{TOKEN}/setWebhook",
        json={"url": f"http://127.0.0.1:{proxy_port}{update_path(SECRET)}",
              "secret_token": SECRET, "max_connections": 40},
    ) as answer:
        assert answer.status == 200, await answer.text()
    return children


PROXIES: list[web.AppRunner] = []

SETUPS: dict[str, Start] = {
    "floor": start_floor,
    "polling-sqlite": start_polling_sqlite,
    "webhook-postgres": start_webhook_postgres,
}


async def drive(
    name: str, start: Start, *, reports: int, concurrency: int,
    photos: list[tuple[bytes, list[tuple[bytes, int, int]] | None]], places: list[str],
    workdir: Path,
) -> Measured:
    measured = Measured()
    async with BotAPIEmulator() as emulator:
        emulator.add_bot(TOKEN, username="gridbot_load_bot")
        for photo, sizes in photos:  # resized already, as Telegram would on its own machines
            if sizes is not None:
                emulator.files.add_photo(photo, sizes)
        captains = [emulator.user(300000000 + n, f"楼院长{n}") for n in range(concurrency)]
        chiefs = [emulator.user(chief, f"站长{chief % 100}") for chief in CHIEFS]
        groups = [emulator.group(chat, f"报事群{n}", members=captains)
                  for n, chat in enumerate(INTAKE)]
        emulator.group(OFFICE, "街道办", members=chiefs)
        for chief in chiefs:
            await chief.start_bot()
        children = await start(emulator, workdir)
        try:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(reports):
                queue.put_nowait(n)

            async def captain(index: int) -> None:
                me = captains[index]
                while not queue.empty():
                    n = queue.get_nowait()
                    # one report in ten repeats an earlier one: same photo, same place
                    seen = n - 1 - n % 7 if n % 10 == 9 and n > 10 else n
                    group = groups[n % len(groups)]
                    caption = f"{places[seen % len(places)]} {PROBLEMS[seen % len(PROBLEMS)]}"
                    began = time.monotonic()
                    photo, _ = photos[seen % len(photos)]
                    sent = await me.send_photo(group, photo, caption=caption)
                    answer = await emulator.wait_for(
                        group, predicate=lambda m, mine=sent.message_id: m.reply_to == mine,
                        timeout=300,
                    )
                    measured.latencies.append(answer.accepted_at - began)

            began = time.monotonic()
            cpu_before = [cpu_seconds(child.pid) for child in children]
            with benchkit.progress(f"{name}: reports") as bar:
                task = bar.add_task("reports", total=reports)
                workers = [asyncio.create_task(captain(i)) for i in range(concurrency)]
                while not all(w.done() for w in workers):
                    bar.update(task, completed=len(measured.latencies))
                    await asyncio.sleep(0.2)
                await asyncio.gather(*workers)
            measured.elapsed = time.monotonic() - began
            measured.cpu_seconds = [
                cpu_seconds(child.pid) - before
                for child, before in zip(children, cpu_before, strict=True)
            ]
            if name != "floor":
                measured.presses = await press_cards(emulator, chiefs)
            measured.peak_rss_kib = [peak_rss_kib(child.pid) for child in children]
        finally:
            for child in children:
                await stop(child)
            while PROXIES:
                await PROXIES.pop().cleanup()
    return measured


async def press_cards(emulator: BotAPIEmulator, chiefs: list) -> list[float]:  # type: ignore[type-arg]
    """Each chief presses 认领 on the cards they received, all at once; seconds per press."""
    await emulator.wait_until_idle()
    cards = [
        (chief, message)
        for chief in chiefs
        for message in emulator.sent
        if message.chat_id == chief.id and any("认领" in b for b in message.button_texts)
    ]

    async def press(chief, card) -> float:  # type: ignore[no-untyped-def]
        began = time.monotonic()
        label = next(b for b in card.button_texts if "认领" in b)
        query = await chief.press(card, text=label)
        await emulator.wait_for_callback_answer(query, timeout=120)
        return time.monotonic() - began

    return list(await asyncio.gather(*(press(chief, card) for chief, card in cards[:200])))


def report(name: str, measured: Measured, reports: int, telegram_work: str) -> float:
    throughput = reports / measured.elapsed
    latencies = sorted(measured.latencies)
    benchkit.emit("load", "throughput", throughput, "reports/s", setup=name, reports=reports,
                  telegram_work=telegram_work)
    benchkit.emit("load", "latency_p50", statistics.median(latencies), "s", setup=name)
    benchkit.emit("load", "latency_p95", statistics.quantiles(latencies, n=20)[-1], "s",
                  setup=name)
    if measured.presses:
        benchkit.emit("load", "press_p50", statistics.median(measured.presses), "s", setup=name,
                      presses=len(measured.presses))
        benchkit.emit("load", "press_p95", statistics.quantiles(measured.presses, n=20)[-1], "s",
                      setup=name)
    for pid_index, cpu in enumerate(measured.cpu_seconds):
        benchkit.emit("load", "cpu_per_report", round(cpu / reports * 1000, 1), "ms",
                      setup=name, process=pid_index)
    for pid_index, kib in enumerate(measured.peak_rss_kib):
        benchkit.emit("load", "peak_rss", round(kib / 1024, 1), "MiB", setup=name,
                      process=pid_index)
    return throughput


@contextlib.contextmanager
def workspace(name: str, keep: Path | None) -> Iterator[str]:
    """A setup's working directory: thrown away, or a fresh one kept under ``keep``."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix=f"gridbot-load-{name}-") as workdir:
            yield workdir
        return
    kept = keep / name
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    yield str(kept)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--setups", nargs="+", default=["floor", "polling-sqlite"],
                        choices=list(SETUPS))
    parser.add_argument("--postgres", help="for webhook-postgres: a server to make a "
                        "throwaway database on, postgresql+asyncpg://user@host:port/postgres")
    parser.add_argument("--redis", help="for webhook-postgres: redis://host:port/db")
    parser.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="webhook-postgres: run it with each of these worker counts")
    parser.add_argument("--photo", default="1280x960", help="photo size, as Telegram sends")
    parser.add_argument("--telegram-work", choices=["in-run", "ahead"], default="in-run",
                        help="the emulator's photo resizing: as captains post, or before timing")
    parser.add_argument("--keep", type=Path, help="keep each setup's database, photos and logs "
                        "in a folder of this directory, to look into afterwards")
    args = parser.parse_args()
    width, height = (int(side) for side in args.photo.split("x"))
    photos = [sample_photo(seed, width=width, height=height) for seed in range(args.reports)]
    sizes: list[list[tuple[bytes, int, int]] | None] = [None] * len(photos)
    if args.telegram_work == "ahead":
        with benchkit.progress("Telegram's photo sizes") as bar:
            sizes = [recompress(photo) for photo in bar.track(photos)]
    places = addresses()
    if "webhook-postgres" in args.setups and not (args.postgres and args.redis):
        parser.error("webhook-postgres needs --postgres and --redis")
    throughput: dict[str, float] = {}
    runs = [(name, workers) for name in args.setups
            for workers in (args.workers if name == "webhook-postgres" else [0])]
    for setup, workers in runs:
        global WORKERS
        WORKERS = workers
        name = f"{setup}-{workers}" if workers else setup
        with workspace(name, args.keep) as workdir:
            async with benchkit.scratch_database(args.postgres, Path(workdir), "load") as url:
                SERVERS.update(database=url, redis=args.redis or "")
                measured = await drive(
                    name, SETUPS[setup], reports=args.reports, concurrency=args.concurrency,
                    photos=list(zip(photos, sizes, strict=True)), places=places,
                    workdir=Path(workdir),
                )
        throughput[name] = report(name, measured, args.reports, args.telegram_work)
    if "floor" in throughput:
        for name, value in throughput.items():
            if name != "floor":
                benchkit.emit("load", "ratio_to_floor", value / throughput["floor"], "x",
                              setup=name, telegram_work=args.telegram_work)


if __name__ == "__main__":
    asyncio.run(main())
