"""Memory of one `tadamon run` holding many conversations at once.

Starts throwaway Redis and PostgreSQL servers, the fake Bot API (tests/fakes/telegram.py) and
one `tadamon run --no-worker` in Telegram webhook mode, then has 10,000 distinct people write
to it (a greeting, then a stand number: each is left mid-conversation, with a session in
Redis and a contact in PostgreSQL). Prints the process's resident memory (VmRSS of
/proc/PID/status) once started, after every thousand people and at the end, and its peak
(VmHWM). Goal: under 150 MB at the end.

    .venv/bin/python bench/memory.py [--people 10000] [--quick]

The `tadamon` run is the one installed next to the interpreter running the bench, so another
virtualenv (say with another aiogram) is measured by running the bench with its python.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import Call, FakeTelegram  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

FIRST_PERSON = 900_000
CONNECTIONS = 40  # Telegram's default webhook max_connections
GOAL_MB = 150


class CountingFake(FakeTelegram):
    """The fake Bot API, counting the messages sent to each chat (and keeping no call)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[int, int] = {}
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}

    async def _record(self, call: Call) -> None:
        # The calls are not kept: 20,000 answers would make this process, not the bot, big.
        if call.method == "setWebhook":
            await super()._record(call)
        if call.method != "sendMessage" or not isinstance(call.chat_id, int):
            return
        chat = call.chat_id
        self.sent[chat] = self.sent.get(chat, 0) + 1
        waiting = self._waiters.get(chat)
        if waiting is not None and self.sent[chat] >= waiting[0]:
            del self._waiters[chat]
            waiting[1].set_result(None)

    def answered(self, chat: int, count: int) -> asyncio.Future[None]:
        """Resolved once `chat` has received `count` messages."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.sent.get(chat, 0) >= count:
            future.set_result(None)
        else:
            self._waiters[chat] = (count, future)
        return future


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process, in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def deliver(fake: CountingFake, update: dict[str, Any]) -> None:
    """A webhook delivery, again until the bot keeps it (its server may still be starting)."""
    for _attempt in range(300):
        if await fake.push(update) == 200:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the bot never accepted the webhook delivery")


async def converse(fake: CountingFake, person: int) -> None:
    """A greeting, answered (welcome and language question), then a stand number, answered."""
    sent = fake.sent.get(person, 0)
    greeted = fake.answered(person, sent + 1)
    await deliver(fake, fake.message(person, "bonjour"))
    await asyncio.wait_for(greeted, 120)
    card = fake.answered(person, fake.sent.get(person, 0) + 1)
    await deliver(fake, fake.message(person, "A12"))
    await asyncio.wait_for(card, 120)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000, help="distinct people")
    parser.add_argument("--quick", action="store_true", help="1,000 people")
    args = parser.parse_args()
    people = 1_000 if args.quick else args.people
    print(f"memory: one tadamon run, {people} people mid-conversation by Telegram webhook, "
          f"real Redis and PostgreSQL, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    redis, postgres = start_redis(), start_postgres()
    try:
        async with CountingFake() as fake:
            port = free_port()
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith("TADAMON_")}
            env.update({
                "TADAMON_DATABASE_URL": postgres.url,
                "TADAMON_REDIS_URL": redis.url,
                "TADAMON_HTTP_PORT": str(port),
                "TADAMON_TELEGRAM_TOKEN": fake.token,
                "TADAMON_TELEGRAM_API_BASE": fake.base_url,
                "TADAMON_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
                "PYTHONPATH": str(ROOT),  # this tree's code, whichever venv installed tadamon
            })
            with tempfile.TemporaryDirectory() as folder:
                child = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).parent / "tadamon"), "run", "--no-worker",
                    cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    await fake.wait_for("setWebhook", timeout=600)  # the classifier is fitted first
                    await asyncio.sleep(1.0)
                    rss, _peak = memory_mb(child.pid)
                    print(f"{0:>7} people  RSS {rss:7.1f} MiB (started)", flush=True)
                    await drive(fake, child.pid, people)
                    await asyncio.sleep(2.0)
                    rss, peak = memory_mb(child.pid)
                    verdict = "under" if rss < GOAL_MB else "OVER"
                    print(f"RSS with {people} people mid-conversation: {rss:.1f} MiB "
                          f"(peak {peak:.1f} MiB), {verdict} the goal of {GOAL_MB} MB",
                          flush=True)
                finally:
                    child.terminate()
                    try:
                        await asyncio.wait_for(child.wait(), 20)
                    except TimeoutError:
                        child.kill()
                        await child.wait()
    finally:
        redis.stop()
        postgres.stop()


async def drive(fake: CountingFake, pid: int, people: int) -> None:
    """Every person's conversation, CONNECTIONS at a time; RSS printed every thousand."""
    queue = iter(range(FIRST_PERSON, FIRST_PERSON + people))
    done = 0
    started = time.monotonic()

    async def connection() -> None:
        nonlocal done
        for person in queue:
            await converse(fake, person)
            done += 1
            if done % 1000 == 0:
                rss, _peak = memory_mb(pid)
                print(f"{done:>7} people  RSS {rss:7.1f} MiB  "
                      f"({done / (time.monotonic() - started):.0f} people/s)", flush=True)

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))


if __name__ == "__main__":
    asyncio.run(main())
