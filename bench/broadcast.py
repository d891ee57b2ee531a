"""Broadcast benchmark: queueing, sender capacity, rate-limit accuracy and crash recovery.

Starts throwaway Redis and PostgreSQL servers (a fresh database per phase) and the fake Bot API
server (tests/fakes/telegram.py) in this process; every worker runs in its own process. Phases:

1. seconds to queue a broadcast to 100,000 Telegram contacts (one INSERT ... SELECT);
2. messages per second one worker sends with the platform limit lifted;
3. the rate achieved with the limit at 30/s, and the most sends in any one-second window;
4. a worker killed (SIGKILL) mid-broadcast and a new one started: recipients lost, duplicated;
5. the busiest one-second window at the platform, measured from outside: `tadamon run` (long
   polling) answering people who write during a broadcast to 160 contacts at 40/s, then a second
   broadcast right after (warm), on the embedded defaults (its own worker) and on PostgreSQL +
   Redis with one and two `tadamon worker` processes.

    .venv/bin/python bench/broadcast.py [--quick] [--queue-contacts 100000]
        [--capacity-messages 20000] [--rate-seconds 60] [--kill-messages 5000]
        [--only 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bot.app import App  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.models import Contact, Fair  # noqa: E402
from storage.outbox import Outbox  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

FIRST_USER = 800_000_000
CHUNK = 10_000
TEXT = {"fr": "La foire ouvre à 10 h demain.", "ar": "يفتح المعرض غدا على الساعة 10."}
LIFTED = 1_000_000.0
RATE = 30.0
# A worker like `tadamon worker`, with a lease given as the first argument (seconds).
WORKER = """
import asyncio, logging, signal, sys
from bot.app import App
from bot.settings import Settings
from bot.worker import OutboxWorker

async def main():
    logging.basicConfig(level=logging.WARNING)
    app = App(Settings(_env_file=None))
    try:
        await app.prepare(load_sample=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await OutboxWorker(app, lease=float(sys.argv[1])).run(stop)
    finally:
        await app.close()

asyncio.run(main())
"""


class Servers:
    def __init__(self) -> None:
        self.redis = start_redis()
        self.postgres = start_postgres()
        self.databases = 0

    async def fresh_database(self) -> str:
        """A new empty database on the throwaway server; its SQLAlchemy URL."""
        import asyncpg

        self.databases += 1
        name = f"bench_{self.databases}"
        base = self.postgres.url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(base)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.postgres.url.rsplit("/", 1)[0] + f"/{name}"

    async def flush_redis(self) -> None:
        from redis.asyncio import Redis

        client: Any = Redis.from_url(self.redis.url)
        await client.flushall()
        await client.aclose()

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


@asynccontextmanager
async def prepared_app(database_url: str, redis_url: str, fake: FakeTelegram | None,
                       rate: float) -> AsyncIterator[App]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url, redis_url=redis_url,
        telegram_token=fake.token if fake else None,  # type: ignore[arg-type]
        telegram_api_base=fake.base_url if fake else "https://api.telegram.org",
        telegram_rate=rate,
    )
    app = App(settings)
    try:
        await app.prepare()
        yield app
    finally:
        await app.close()


async def add_contacts(app: App, count: int) -> None:
    """`count` Telegram contacts (chat ids FIRST_USER...), a third of them in Arabic."""
    async with app.sessions() as session, session.begin():
        for start in range(0, count, CHUNK):
            await session.execute(insert(Contact), [
                {"channel": "telegram", "user_id": str(FIRST_USER + index),
                 "language": "ar" if index % 3 == 0 else "fr"}
                for index in range(start, min(start + CHUNK, count))
            ])


async def broadcast(app: App) -> tuple[int, int]:
    async with app.sessions() as session:
        fair_id = await session.scalar(select(Fair.id).order_by(Fair.id.desc()).limit(1))
    assert fair_id is not None, "the sample fair was not loaded"
    return await Outbox(app.sessions).queue_broadcast(
        fair_id, "all", TEXT, dt.datetime.now(dt.UTC), urgent=True)


class Worker:
    """A worker process (`tadamon worker`, or the inline program when a lease is given)."""

    def __init__(self, database_url: str, redis_url: str, fake: FakeTelegram, rate: float,
                 lease: float | None = None) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("TADAMON_")}
        env.update({
            "TADAMON_DATABASE_URL": database_url,
            "TADAMON_REDIS_URL": redis_url,
            "TADAMON_TELEGRAM_TOKEN": fake.token,
            "TADAMON_TELEGRAM_API_BASE": fake.base_url,
            "TADAMON_TELEGRAM_RATE": repr(rate),
            "PYTHONPATH": str(ROOT),
        })
        if lease is None:
            command = [str(ROOT / ".venv" / "bin" / "tadamon"), "worker"]
        else:
            command = [sys.executable, "-c", WORKER, repr(lease)]
        self.folder = tempfile.TemporaryDirectory()
        self.log_path = Path(self.folder.name) / "worker.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(command, cwd=self.folder.name, env=env,
                                            stdout=subprocess.DEVNULL, stderr=log_file)

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            for _ in range(300):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                self.process.kill()
        self.process.wait()
        problems = [line for line in self.log_path.read_text(errors="replace").splitlines()
                    if "ERROR" in line or "Traceback" in line]
        if problems:
            print(f"  worker log: {len(problems)} error lines, first: {problems[0][:160]}",
                  flush=True)
        self.folder.cleanup()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


def sends(fake: FakeTelegram) -> list[float]:
    """Arrival times of the successful sendMessage calls, in order."""
    return [call.at for call in fake.calls
            if call.method == "sendMessage" and call.status == 200]


async def wait_sends(fake: FakeTelegram, count: int, within: float,
                     worker: Worker | None = None) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = sum(1 for call in fake.calls if call.method == "sendMessage")
        if got >= count:
            return got
        if worker is not None and worker.process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.process.returncode}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out: {count} sendMessage expected within {within:.0f} s")


def max_per_second(times: list[float]) -> int:
    """The most arrivals in any window of one second, sliding over every arrival."""
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


async def phase_queue(servers: Servers, contacts: int) -> None:
    url = await servers.fresh_database()
    async with prepared_app(url, servers.redis.url, None, RATE) as app:
        started = time.perf_counter()
        await add_contacts(app, contacts)
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        _, queued = await broadcast(app)
        elapsed = time.perf_counter() - started
    print(f"1. queue a broadcast to {queued:,} recipients: {elapsed:.2f} s "
          f"({queued / elapsed:,.0f} rows/s; contacts inserted in {inserted:.1f} s)",
          flush=True)


async def phase_capacity(servers: Servers, messages: int) -> None:
    url = await servers.fresh_database()
    await servers.flush_redis()
    async with FakeTelegram() as fake, \
            prepared_app(url, servers.redis.url, fake, LIFTED) as app:
        await add_contacts(app, messages)
        await broadcast(app)
        worker = Worker(url, servers.redis.url, fake, LIFTED)
        try:
            await wait_sends(fake, messages, within=600, worker=worker)
        finally:
            await worker.stop()
        times = sends(fake)
    per_second = (len(times) - 1) / (times[-1] - times[0])
    verdict = "met" if per_second >= 1000 else "NOT met"
    print(f"2. capacity, limit lifted, one worker: {per_second:,.0f} msg/s over {len(times):,} "
          f"messages in {times[-1] - times[0]:.1f} s (goal: at least 1,000/s: {verdict})",
          flush=True)


async def phase_rate(servers: Servers, seconds: float, contacts: int) -> None:
    url = await servers.fresh_database()
    await servers.flush_redis()
    async with FakeTelegram() as fake, \
            prepared_app(url, servers.redis.url, fake, RATE) as app:
        await add_contacts(app, contacts)
        await broadcast(app)
        worker = Worker(url, servers.redis.url, fake, RATE)
        try:
            await wait_sends(fake, 1, within=120, worker=worker)
            start = sends(fake)[0]
            await asyncio.sleep(start + seconds + 0.5 - time.monotonic())
        finally:
            await worker.stop()
        window = [at for at in sends(fake) if at < start + seconds]
    achieved = len(window) / seconds
    after_burst = [at for at in window if at >= start + 1.0]
    steady = len(after_burst) / (seconds - 1.0)
    peak = max_per_second(window)
    print(f"3. limit {RATE:.0f}/s over {seconds:.0f} s: {len(window):,} sent, achieved "
          f"{achieved:.2f}/s, ratio {achieved / RATE:.3f} (goal: at least 0.98); after the "
          f"first second {steady:.2f}/s", flush=True)
    print(f"   most sends in any one-second window [t, t + 1 s), as the fake server received "
          f"them: {peak} (goal: never above {RATE:.0f}: "
          f"{'met' if peak <= RATE else 'NOT met'})", flush=True)


async def phase_kill(servers: Servers, messages: int) -> None:
    url = await servers.fresh_database()
    await servers.flush_redis()
    lease = 5.0
    async with FakeTelegram() as fake, \
            prepared_app(url, servers.redis.url, fake, LIFTED) as app:
        await add_contacts(app, messages)
        broadcast_id, _ = await broadcast(app)
        outbox = Outbox(app.sessions)
        first = Worker(url, servers.redis.url, fake, LIFTED, lease=lease)
        await wait_sends(fake, int(messages * 0.4), within=600, worker=first)
        first.kill()
        await first.stop()
        await asyncio.sleep(1.0)  # requests the worker wrote before dying are answered
        at_kill = sum(1 for call in fake.calls if call.method == "sendMessage")
        recorded = (await outbox.progress(broadcast_id))["sent"]
        restarted = time.monotonic()
        second = Worker(url, servers.redis.url, fake, LIFTED, lease=lease)
        try:
            deadline = time.monotonic() + 600
            while True:
                progress = await outbox.progress(broadcast_id)
                if progress["pending"] + progress["sending"] == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the broadcast never finished: {progress}")
                await asyncio.sleep(0.25)
            finished = time.monotonic() - restarted
        finally:
            await second.stop()
        per_chat = Counter(call.chat_id for call in fake.calls if call.method == "sendMessage")
    recipients = {FIRST_USER + index for index in range(messages)}
    lost = sum(1 for chat in recipients if per_chat[chat] == 0)
    duplicated = sum(count - 1 for count in per_chat.values() if count > 1)
    in_flight = at_kill - recorded
    print(f"4. kill -9 after {at_kill:,} of {messages:,} sent, new worker (lease {lease:.0f} s) "
          f"finished in {finished:.1f} s: final {progress}", flush=True)
    print(f"   lost {lost} (goal: 0), duplicated {duplicated} (goal: at most the {in_flight} "
          f"sent but not recorded as sent when killed: "
          f"{'met' if lost == 0 and duplicated <= in_flight else 'NOT met'})", flush=True)


BURST_RATE = 40.0
BURST_CONTACTS = 160
# People writing during the first broadcast, as visitors do; each gets an answer.
SAYINGS = ("où sont les toilettes ?", "fin kayn l3sel", "فين كاين العسل؟", "merci",
           "what workshops are there tomorrow?", "je voudrais voir le programme des ateliers")
WRITERS = 60
MESSAGE_METHODS = ("send", "edit")


class Bot(Worker):
    """`tadamon run` in long polling against the fake, its own worker unless `no_worker`."""

    def __init__(self, database_url: str, redis_url: str | None,
                 fake: FakeTelegram, rate: float, no_worker: bool) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("TADAMON_")}
        env.update({
            "TADAMON_DATABASE_URL": database_url,
            "TADAMON_TELEGRAM_TOKEN": fake.token,
            "TADAMON_TELEGRAM_API_BASE": fake.base_url,
            "TADAMON_TELEGRAM_RATE": repr(rate),
            "TADAMON_HTTP_PORT": str(free_port()),
            "PYTHONPATH": str(ROOT),
        })
        if redis_url is not None:
            env["TADAMON_REDIS_URL"] = redis_url
        command = [str(ROOT / ".venv" / "bin" / "tadamon"), "run"]
        if no_worker:
            command.append("--no-worker")
        self.folder = tempfile.TemporaryDirectory()
        self.log_path = Path(self.folder.name) / "bot.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(command, cwd=self.folder.name, env=env,
                                            stdout=subprocess.DEVNULL, stderr=log_file)


async def settled(fake: FakeTelegram, at_least: int, quiet: float = 2.0) -> None:
    """Wait for `at_least` messages at the fake, then until none came for `quiet` seconds."""
    await wait_sends(fake, at_least, within=180)
    count, since = len(fake.calls), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.1)
        if len(fake.calls) != count:
            count, since = len(fake.calls), time.monotonic()


def message_arrivals(fake: FakeTelegram) -> list[float]:
    """When each message the platform accepted arrived there (sends and edits), in order."""
    return sorted(call.at for call in fake.calls
                  if call.method.startswith(MESSAGE_METHODS) and call.status == 200)


def per_second(times: list[float]) -> list[int]:
    """Arrivals in each second of the clock counted from the first one."""
    if not times:
        return []
    counts = [0] * (int(times[-1] - times[0]) + 1)
    for at in times:
        counts[int(at - times[0])] += 1
    return counts


async def phase_burst(servers: Servers, setup: str) -> None:
    """The issue's measure: sends per second from the first send, and the busiest window."""
    embedded = setup == "embedded"
    workers = 0 if embedded else int(setup[0])
    folder = tempfile.TemporaryDirectory()
    url = (f"sqlite+aiosqlite:///{folder.name}/tadamon.db" if embedded
           else await servers.fresh_database())
    redis_url = None if embedded else servers.redis.url
    if not embedded:
        await servers.flush_redis()
    async with FakeTelegram() as fake:
        async with prepared_app(url, servers.redis.url, None, BURST_RATE) as app:
            await add_contacts(app, BURST_CONTACTS)
        bot = Bot(url, redis_url, fake, BURST_RATE, no_worker=not embedded)
        running = [Worker(url, servers.redis.url, fake, BURST_RATE) for _ in range(workers)]
        try:
            try:
                await fake.wait_for("getUpdates", timeout=600)
            except AssertionError:
                print(f"tadamon run: exit code {bot.process.poll()}, log:",
                      bot.log_path.read_text(errors="replace")[-2000:])
                raise
            async with prepared_app(url, servers.redis.url, None, BURST_RATE) as app:
                await broadcast(app)  # cold
                await wait_sends(fake, 1, within=60)
                for index in range(WRITERS):
                    await fake.send_text(FIRST_USER + 10 * BURST_CONTACTS + index,
                                         SAYINGS[index % len(SAYINGS)])
                await wait_sends(fake, BURST_CONTACTS + WRITERS, within=120)
                await broadcast(app)  # warm: right after, on the window the first left
                await settled(fake, 2 * BURST_CONTACTS + 2 * WRITERS)
        finally:
            for worker in running:
                await worker.stop()
            await bot.stop()
            folder.cleanup()
        times = message_arrivals(fake)
    peak = max_per_second(times)
    name = {"embedded": "embedded defaults, `tadamon run` with its own worker",
            "1 worker": "PostgreSQL + Redis, `tadamon run --no-worker` + 1 worker",
            "2 workers": "PostgreSQL + Redis, `tadamon run --no-worker` + 2 workers"}[setup]
    print(f"5. {name}: {len(times)} messages ({2 * BURST_CONTACTS} broadcast, the rest replies "
          f"to {WRITERS} people), limit {BURST_RATE:.0f}/s; per second from the first send "
          f"{per_second(times)}; busiest window [t, t + 1 s) {peak} (goal: never above "
          f"{BURST_RATE:.0f}: {'met' if peak <= BURST_RATE else 'NOT met'})", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shrink every phase")
    parser.add_argument("--queue-contacts", type=int, default=None)
    parser.add_argument("--capacity-messages", type=int, default=None)
    parser.add_argument("--rate-seconds", type=float, default=None)
    parser.add_argument("--kill-messages", type=int, default=None)
    parser.add_argument("--only", type=int, choices=range(1, 6), default=None,
                        help="run one phase")
    args = parser.parse_args()
    defaults = (10_000, 3_000, 10.0, 1_000) if args.quick else (100_000, 20_000, 60.0, 5_000)
    queue_contacts = args.queue_contacts or defaults[0]
    capacity_messages = args.capacity_messages or defaults[1]
    rate_seconds = args.rate_seconds or defaults[2]
    kill_messages = args.kill_messages or defaults[3]
    print(f"broadcast bench{' (quick)' if args.quick else ''}: {os.cpu_count()} cores", flush=True)
    servers = Servers()
    try:
        if args.only in (None, 1):
            await phase_queue(servers, queue_contacts)
        if args.only in (None, 2):
            await phase_capacity(servers, capacity_messages)
        if args.only in (None, 3):
            await phase_rate(servers, rate_seconds, max(3_000, int(RATE * rate_seconds * 1.5)))
        if args.only in (None, 4):
            await phase_kill(servers, kill_messages)
        if args.only in (None, 5):
            for setup in ("embedded", "1 worker", "2 workers"):
                await phase_burst(servers, setup)
    finally:
        servers.stop()


if __name__ == "__main__":
    asyncio.run(main())
