"""Telegram throughput: Tadamon's Telegram channel against a bare aiogram echo bot.

Starts the fake Bot API server (tests/fakes/telegram.py) and throwaway Redis and PostgreSQL
servers, then runs `tadamon run` against the fake in long-polling mode and in webhook mode, and
finally a bare aiogram echo bot (bench/echo_bot.py) on the same fake. Simulated users each send
a series of messages, one after the other, waiting for the reply; every bot runs in its own
process. Prints updates per second and p50/p99 latency (update in -> reply out) for each, and
Tadamon's throughput as a ratio of the echo bot's.

    .venv/bin/python bench/telegram_throughput.py [--users 100] [--messages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import Call, FakeTelegram  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

FIRST_USER = 700_000
# Each answered with exactly one message by Tadamon (a stand card) and by the echo bot.
MESSAGES = ["A12", "B7", "C3", "D5", "A1", "B20", "C10", "A30", "B2", "D1", "C7", "A5"]


class MeasuringFake(FakeTelegram):
    """The fake Bot API, telling waiting users as soon as a reply to their chat arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[int, int] = {}
        self.waiters: dict[int, tuple[int, asyncio.Future[float]]] = {}

    async def _record(self, call: Call) -> None:
        await super()._record(call)
        if call.method != "sendMessage" or not isinstance(call.chat_id, int):
            return
        chat = call.chat_id
        self.sent[chat] = self.sent.get(chat, 0) + 1
        waiting = self.waiters.get(chat)
        if waiting is not None and self.sent[chat] >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(call.at)
            del self.waiters[chat]

    def reply_number(self, chat: int, count: int) -> asyncio.Future[float]:
        """A future resolved (with the arrival time) when `chat` has received `count` replies."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self.sent.get(chat, 0) >= count:
            future.set_result(time.monotonic())
        else:
            self.waiters[chat] = (count, future)
        return future


@asynccontextmanager
async def process(args: list[str], env: dict[str, str]) -> AsyncIterator[None]:
    with tempfile.TemporaryDirectory() as folder:
        child = await asyncio.create_subprocess_exec(
            *args, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 20)
            except TimeoutError:
                child.kill()
                await child.wait()


async def push_until_accepted(fake: MeasuringFake, user: int, text: str) -> None:
    """In webhook mode the bot's HTTP server may still be starting: retry the delivery."""
    for _ in range(100):
        result = await fake.send_text(user, text)
        if fake.webhook_url is None or result == 200:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the bot never accepted the webhook delivery")


async def drive(fake: MeasuringFake, users: int, messages: int,
                warm_replies: int) -> dict[str, float]:
    """Warm every user up with one message, then measure `messages` each."""
    user_ids = [FIRST_USER + index for index in range(users)]
    fake.sent.clear()
    await asyncio.gather(*(push_until_accepted(fake, user, "bonjour") for user in user_ids))
    await asyncio.gather(*(fake.reply_number(user, warm_replies) for user in user_ids))
    await asyncio.sleep(0.5)
    latencies: list[float] = []

    async def one(user: int) -> None:
        for index in range(messages):
            expected = fake.sent.get(user, 0) + 1
            started = time.monotonic()
            reply = fake.reply_number(user, expected)
            await push_until_accepted(fake, user, MESSAGES[index % len(MESSAGES)])
            latencies.append(await asyncio.wait_for(reply, 60) - started)

    started = time.monotonic()
    await asyncio.gather(*(one(user) for user in user_ids))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "updates": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)],
    }


async def run_tadamon(mode: str, redis_url: str, postgres_url: str,
                      args: argparse.Namespace) -> dict[str, float]:
    async with MeasuringFake() as fake:
        port = free_port()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("TADAMON_")}
        env.update({
            "TADAMON_DATABASE_URL": postgres_url,
            "TADAMON_REDIS_URL": redis_url,
            "TADAMON_HTTP_PORT": str(port),
            "TADAMON_TELEGRAM_TOKEN": fake.token,
            "TADAMON_TELEGRAM_API_BASE": fake.base_url,
        })
        if mode == "webhook":
            env["TADAMON_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram/webhook"
        command = [str(ROOT / ".venv" / "bin" / "tadamon"), "run", "--no-worker"]
        async with process(command, env):
            await fake.wait_for("setWebhook" if mode == "webhook" else "getUpdates",
                                timeout=60)
            # a newcomer gets the welcome, then the language question: two messages
            return await drive(fake, args.users, args.messages, warm_replies=2)


async def run_echo(args: argparse.Namespace) -> dict[str, float]:
    async with MeasuringFake() as fake:
        command = [sys.executable, str(ROOT / "bench" / "echo_bot.py"), fake.token,
                   fake.base_url]
        async with process(command, dict(os.environ)):
            await fake.wait_for("getUpdates", timeout=60)
            return await drive(fake, args.users, args.messages, warm_replies=1)


def show(name: str, result: dict[str, float]) -> None:
    print(f"{name:<26} {result['updates']:>6.0f} updates  {result['per_second']:>7.1f} upd/s  "
          f"p50 {result['p50_ms']:>6.1f} ms  p99 {result['p99_ms']:>7.1f} ms", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100, help="simulated users at once")
    parser.add_argument("--messages", type=int, default=10, help="measured messages per user")
    args = parser.parse_args()
    print(f"telegram throughput: {args.users} users x {args.messages} messages, "
          f"{os.cpu_count()} cores", flush=True)
    redis, postgres = start_redis(), start_postgres()
    results: dict[str, dict[str, float]] = {}
    try:
        for mode in ("polling", "webhook"):
            await _flush(redis.url)
            results[f"tadamon {mode}"] = await run_tadamon(mode, redis.url, postgres.url, args)
            show(f"tadamon ({mode})", results[f"tadamon {mode}"])
    finally:
        redis.stop()
        postgres.stop()
    results["echo"] = await run_echo(args)
    show("aiogram echo (polling)", results["echo"])
    for mode in ("polling", "webhook"):
        ratio = results[f"tadamon {mode}"]["per_second"] / results["echo"]["per_second"]
        print(f"ratio tadamon ({mode}) / echo: {ratio:.2f} (goal: at least 0.50)")


async def _flush(url: str) -> None:
    from redis.asyncio import Redis

    client: Any = Redis.from_url(url)
    await client.flushall()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
