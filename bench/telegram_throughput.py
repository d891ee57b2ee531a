"""Telegram throughput, measured from outside: Tadamon against bare aiogram and
python-telegram-bot echo bots on the same fake Bot API, in the same run.

Starts the fake Bot API server (tests/fakes/telegram.py) in this process and every bot in its
own process: `tadamon run --no-worker` in long-polling and in webhook mode, on PostgreSQL +
Redis (throwaway servers) and on the embedded defaults (SQLite + the in-process Redis
stand-in), then the aiogram echo bot (bench/echo_bot.py) in long polling and in webhook mode
(aiogram's own aiohttp webhook handler) and the python-telegram-bot one (bench/ptb_echo_bot.py).

Each run first greets every simulated user once (and waits until the bot is quiet), then
queues all users x messages updates at the fake at once (open loop: nobody waits for an
answer before writing again) and stops the clock when every user has an answer to each of
their messages. Every message is one that each bot answers with exactly one message (Tadamon:
a stand card). In webhook mode the fake posts the updates over at most 40 connections at once,
Telegram's default `max_connections`. Prints updates/s, p50/p99 latency (update queued ->
its answer received), the ratios to the aiogram echoes and to the PTB echo, and any answer
beyond the one expected. The goals are against aiogram in the same mode: in webhook mode the
fake also posts every update, work a polling peer is spared.

    .venv/bin/python bench/telegram_throughput.py [--users 100] [--messages 10]
        [--only tadamon-pg-polling,aiogram-echo,...] [--quick] [--closed]
        [--profile DIR [--profile-format txt]]   (py-spy record of each Tadamon run's
        measured part, as DIR/<run>.svg, or collapsed stacks in DIR/<run>.txt)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import Call, FakeTelegram  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

# Each answered with exactly one message by Tadamon (a stand card) and by the echo bots.
MESSAGES = ["A12", "B7", "C3", "D5", "A1", "B20", "C10", "A30", "B2", "D1", "C7", "A5"]
# Telegram's default number of simultaneous webhook connections (setWebhook max_connections).
WEBHOOK_CONNECTIONS = 40
RUNS = ("tadamon-pg-polling", "tadamon-pg-webhook", "tadamon-embedded-polling",
        "tadamon-embedded-webhook", "aiogram-echo", "aiogram-echo-webhook", "ptb-echo")
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"


@dataclass
class Result:
    """One run's figures."""

    updates: int
    per_second: float
    p50_ms: float
    p99_ms: float
    extra: int
    calls: Counter[str]


class MeasuringFake(FakeTelegram):
    """The fake Bot API, keeping the arrival time of every message sent to each chat and
    telling the driver when each chat has the number of messages it waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[int, list[float]] = {}
        self.methods: Counter[str] = Counter()
        self.last_send = time.monotonic()
        self._targets: dict[int, int] = {}
        self._missing = 0
        self._all_there: asyncio.Future[float] | None = None
        self._waiters: dict[int, tuple[int, asyncio.Future[float]]] = {}

    async def _record(self, call: Call) -> None:
        await super()._record(call)
        if not call.method.startswith(("send", "answer", "edit")):
            return
        self.methods[call.method] += 1
        self.last_send = call.at
        if call.method != "sendMessage" or not isinstance(call.chat_id, int):
            return
        chat = call.chat_id
        times = self.sent.setdefault(chat, [])
        times.append(call.at)
        waiting = self._waiters.get(chat)
        if waiting is not None and len(times) >= waiting[0]:
            del self._waiters[chat]
            waiting[1].set_result(call.at)
        if self._targets.get(chat) == len(times):
            self._missing -= 1
            if self._missing == 0 and self._all_there is not None:
                self._all_there.set_result(call.at)

    def expect(self, targets: dict[int, int]) -> asyncio.Future[float]:
        """Resolved (with the arrival time of the last one) once every chat has received the
        number of messages given for it."""
        self._targets = targets
        self._missing = sum(1 for chat, count in targets.items()
                            if len(self.sent.get(chat, [])) < count)
        self._all_there = asyncio.get_running_loop().create_future()
        if self._missing == 0:
            self._all_there.set_result(time.monotonic())
        return self._all_there

    def answer_number(self, chat: int, count: int) -> asyncio.Future[float]:
        """Resolved (with its arrival time) when `chat` has received `count` messages."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        times = self.sent.get(chat, [])
        if len(times) >= count:
            future.set_result(times[count - 1])
        else:
            self._waiters[chat] = (count, future)
        return future

    async def quiet(self, seconds: float) -> None:
        """Wait until nothing has been sent for `seconds`."""
        while True:
            left = seconds - (time.monotonic() - self.last_send)
            if left <= 0:
                return
            await asyncio.sleep(left)


@asynccontextmanager
async def process(args: list[str], env: dict[str, str], profile: Path | None = None
                  ) -> AsyncIterator[int]:
    """A bot in its own process (in a fresh folder: the embedded database is made there);
    yields its pid."""
    with tempfile.TemporaryDirectory() as folder:
        child = await asyncio.create_subprocess_exec(
            *args, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield child.pid
        finally:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 20)
            except TimeoutError:
                child.kill()
                await child.wait()


@asynccontextmanager
async def profiled(pid: int, output: Path | None) -> AsyncIterator[None]:
    """py-spy recording the process while the block runs (when an output is asked for)."""
    if output is None:
        yield
        return
    spy = await asyncio.create_subprocess_exec(
        str(PY_SPY if PY_SPY.exists() else shutil.which("py-spy")), "record", "--pid",
        str(pid), "--rate", "200", "--nonblocking", "-o", str(output),
        "--format", "raw" if output.suffix == ".txt" else "flamegraph",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its flame graph and ends
        await spy.wait()


async def push_until_accepted(fake: MeasuringFake, update: dict[str, Any]) -> None:
    """In webhook mode the bot's HTTP server may still be starting: retry the delivery."""
    for _ in range(200):
        result = await fake.push(update)
        if fake.webhook_url is None or result == 200:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the bot never accepted the webhook delivery")


async def warm_up(fake: MeasuringFake, user_ids: list[int]) -> None:
    """One greeting each, answered, then quiet: every user is known to the bot."""
    await asyncio.gather(*(push_until_accepted(fake, fake.message(user, "bonjour"))
                           for user in user_ids))
    await asyncio.wait_for(fake.expect({user: 1 for user in user_ids}), 120)
    await fake.quiet(1.0)


async def open_loop(fake: MeasuringFake, user_ids: list[int], messages: int,
                    profile: tuple[int, Path] | None) -> Result:
    """All updates queued at once; the clock stops at the last expected answer."""
    await warm_up(fake, user_ids)
    base = {user: len(fake.sent.get(user, [])) for user in user_ids}
    updates = [fake.message(user, MESSAGES[index % len(MESSAGES)])
               for index in range(messages) for user in user_ids]
    calls_before = Counter(fake.methods)
    done = fake.expect({user: base[user] + messages for user in user_ids})
    async with profiled(*profile) if profile else profiled(0, None):
        started = time.monotonic()
        if fake.webhook_url is None:
            for update in updates:
                await fake.push(update)
        else:
            pending = iter(updates)

            async def connection() -> None:
                for update in pending:
                    await push_until_accepted(fake, update)

            await asyncio.gather(*(connection() for _ in range(WEBHOOK_CONNECTIONS)))
        finished = await asyncio.wait_for(done, 300)
    await fake.quiet(1.0)
    elapsed = finished - started
    latencies = sorted(at - started for user in user_ids
                       for at in fake.sent[user][base[user]:base[user] + messages])
    extra = sum(max(0, len(fake.sent[user]) - base[user] - messages) for user in user_ids)
    return Result(len(latencies), len(latencies) / elapsed,
                  1000 * latencies[len(latencies) // 2],
                  1000 * latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)],
                  extra, fake.methods - calls_before)


async def closed_loop(fake: MeasuringFake, user_ids: list[int], messages: int) -> Result:
    """The earlier measure: each user writes again once answered (at most one message per
    user in flight), so the figure depends on the round-trip time as much as on the bot.
    Other users than the open loop's: Tadamon's flood limit counts each person's messages."""
    await warm_up(fake, user_ids)
    base = {user: len(fake.sent.get(user, [])) for user in user_ids}
    latencies: list[float] = []
    calls_before = Counter(fake.methods)

    async def one(user: int) -> None:
        for index in range(messages):
            expected = len(fake.sent.get(user, [])) + 1
            started = time.monotonic()
            answered = fake.answer_number(user, expected)
            await push_until_accepted(fake, fake.message(user, MESSAGES[index % len(MESSAGES)]))
            arrived = await asyncio.wait_for(answered, 60)
            latencies.append(arrived - started)

    started = time.monotonic()
    await asyncio.gather(*(one(user) for user in user_ids))
    elapsed = time.monotonic() - started
    await fake.quiet(1.0)
    latencies.sort()
    extra = sum(max(0, len(fake.sent[user]) - base[user] - messages) for user in user_ids)
    return Result(len(latencies), len(latencies) / elapsed,
                  1000 * latencies[len(latencies) // 2],
                  1000 * latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)],
                  extra, fake.methods - calls_before)


LIFTED_RATE = 1_000_000


def tadamon_env(fake: FakeTelegram, port: int, mode: str, redis_url: str | None,
                postgres_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TADAMON_")}
    env.update({
        "TADAMON_HTTP_PORT": str(port),
        "TADAMON_TELEGRAM_TOKEN": fake.token,
        "TADAMON_TELEGRAM_API_BASE": fake.base_url,
        # The platform's limit lifted, as the echo bots have none: at the default 30/s the
        # send window would hold every run to 30 replies a second, which measures the limit,
        # not the path (bench/broadcast.py measures the limit).
        "TADAMON_TELEGRAM_RATE": str(LIFTED_RATE),
    })
    if redis_url is not None and postgres_url is not None:
        env["TADAMON_REDIS_URL"] = redis_url
        env["TADAMON_DATABASE_URL"] = postgres_url
    if mode == "webhook":
        env["TADAMON_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram/webhook"
    return env


async def run_one(name: str, args: argparse.Namespace, first_user: int,
                  servers: tuple[str, str] | None) -> dict[str, Result]:
    """One bot on a fresh fake: the open-loop figure (and the closed-loop one if asked)."""
    user_ids = [first_user + index for index in range(args.users)]
    async with MeasuringFake() as fake:
        if name.startswith("tadamon"):
            mode = name.rsplit("-", 1)[1]
            port = free_port()
            env = tadamon_env(fake, port, mode, *(servers or (None, None)))
            command = [str(ROOT / ".venv" / "bin" / "tadamon"), "run", "--no-worker"]
            ready = "setWebhook" if mode == "webhook" else "getUpdates"
        else:
            script = "ptb_echo_bot.py" if name == "ptb-echo" else "echo_bot.py"
            command = [sys.executable, str(ROOT / "bench" / script), fake.token, fake.base_url]
            env, ready = dict(os.environ), "getUpdates"
            if name == "aiogram-echo-webhook":
                command.append(str(free_port()))
                ready = "setWebhook"
        async with process(command, env) as pid:
            await fake.wait_for(ready, timeout=600)  # the classifier is fitted first
            profile = None
            if args.profile is not None and name.startswith("tadamon"):
                profile = (pid, args.profile / f"{name}.{args.profile_format}")
            results = {"open": await open_loop(fake, user_ids, args.messages, profile)}
            if args.closed:
                results["closed"] = await closed_loop(
                    fake, [user + 5_000 for user in user_ids], args.messages)
            return results


def show(name: str, result: Result) -> None:
    calls = ", ".join(f"{method} {count}" for method, count in sorted(result.calls.items()))
    print(f"{name:<32} {result.updates:>6} updates  {result.per_second:>7.1f} upd/s  "
          f"p50 {result.p50_ms:>7.1f} ms  p99 {result.p99_ms:>7.1f} ms  ({calls})"
          + (f"  {result.extra} UNEXPECTED EXTRA ANSWERS" if result.extra else ""), flush=True)


def ratios(results: dict[str, dict[str, Result]], kind: str) -> None:
    """Each Tadamon run against each peer. The goal is against aiogram in the same mode: a
    webhook run also pays the fake's posting of every update, which a polling peer does not."""
    for peer in ("aiogram-echo", "aiogram-echo-webhook", "ptb-echo"):
        if peer not in results:
            continue
        yardstick = results[peer][kind].per_second
        for name, result in results.items():
            if not name.startswith("tadamon"):
                continue
            goal = ""
            same_mode = name.endswith("-webhook") == peer.endswith("-webhook")
            if peer.startswith("aiogram") and same_mode:
                goal = "  (goal: at least {})".format("0.80" if "-pg-" in name else "0.60")
            print(f"ratio {name} / {peer} ({kind}): {result[kind].per_second / yardstick:.2f}"
                  f"{goal}", flush=True)


async def flush(url: str) -> None:
    from redis.asyncio import Redis

    client: Any = Redis.from_url(url)
    await client.flushall()
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, default=100, help="simulated users")
    parser.add_argument("--messages", type=int, default=10, help="measured messages per user")
    parser.add_argument("--only", default=",".join(RUNS),
                        help="comma-separated runs, of: " + ", ".join(RUNS))
    parser.add_argument("--quick", action="store_true", help="30 users x 5 messages")
    parser.add_argument("--closed", action="store_true",
                        help="also the earlier closed-loop measure (one message in flight per "
                             "user)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="a folder for py-spy flame graphs of the Tadamon runs")
    parser.add_argument("--profile-format", choices=("svg", "txt"), default="svg",
                        help="flame graph (svg) or collapsed stacks (txt)")
    args = parser.parse_args()
    if args.quick:
        args.users, args.messages = 30, 5
    runs = [name for name in args.only.split(",") if name]
    unknown = set(runs) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"telegram throughput: {args.users} users x {args.messages} messages "
          f"= {args.users * args.messages} updates queued at once, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    redis = postgres = None
    if any("-pg-" in name for name in runs):
        redis, postgres = start_redis(), start_postgres()
    results: dict[str, dict[str, Result]] = {}
    try:
        for index, name in enumerate(runs):
            servers = None
            if "-pg-" in name and redis is not None and postgres is not None:
                await flush(redis.url)
                servers = (redis.url, postgres.url)
            # new people in every run: the database of the PostgreSQL runs is shared
            results[name] = await run_one(name, args, 700_000 + 10_000 * index, servers)
            for kind, result in results[name].items():
                show(name if kind == "open" else f"{name} (closed loop)", result)
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)
    ratios(results, "open")
    if args.closed:
        ratios(results, "closed")


if __name__ == "__main__":
    asyncio.run(main())
