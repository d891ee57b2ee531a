"""WhatsApp webhook benchmark: signed webhooks from many simulated users.

Starts the fake Graph API (tests/fakes/whatsapp.py) and throwaway Redis and PostgreSQL servers,
runs `tadamon run` against them, greets every simulated user once (not measured), then posts
the measured messages as signed webhooks, many at once, exactly as Meta does. Prints accepted
webhooks per second with p50/p99 time to the 200, and end-to-end replies per second (from the
first post to the last reply received by the fake Graph API).

    .venv/bin/python bench/whatsapp_webhook.py [--users 200] [--messages 5] [--concurrency 50]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.whatsapp import FakeWhatsApp  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

# Each answered with exactly one message (a stand card) for a person already greeted.
MESSAGES = ["A12", "B7", "C3", "D5", "A1", "B20", "C10", "A30", "B2", "D1"]


def replies(fake: FakeWhatsApp) -> int:
    """Messages the bot sent (read receipts left out)."""
    return sum(1 for call in fake.calls
               if call.path.endswith("/messages") and call.type != "read" and call.status == 200)


async def wait_for_replies(fake: FakeWhatsApp, count: int, seconds: float) -> float:
    """Wait until the bot has sent `count` messages; returns when (monotonic)."""
    deadline = time.monotonic() + seconds
    while replies(fake) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {replies(fake)} of {count} replies arrived")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def post_all(fake: FakeWhatsApp, url: str, users: list[str], messages: int,
                   concurrency: int) -> list[float]:
    """Post every user's messages (each user's in order), `concurrency` at once; returns the
    time each post took to get its 200."""
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def user(wa_id: str) -> None:
        for index in range(messages):
            envelope = fake.text_message(wa_id, MESSAGES[index % len(MESSAGES)])
            async with gate:
                started = time.monotonic()
                status = await fake.post_webhook(url, envelope)
                times.append(time.monotonic() - started)
            if status != 200:
                raise RuntimeError(f"webhook answered {status}")

    await asyncio.gather(*(user(wa_id) for wa_id in users))
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="measured messages per user")
    parser.add_argument("--concurrency", type=int, default=50, help="webhook posts at once")
    args = parser.parse_args()
    print(f"whatsapp webhooks: {args.users} users x {args.messages} messages, "
          f"{args.concurrency} posts at once, {os.cpu_count()} cores", flush=True)
    redis, postgres = start_redis(), start_postgres()
    try:
        async with FakeWhatsApp() as fake:
            port = free_port()
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith("TADAMON_")}
            env.update({
                "TADAMON_DATABASE_URL": postgres.url,
                "TADAMON_REDIS_URL": redis.url,
                "TADAMON_HTTP_PORT": str(port),
                "TADAMON_WHATSAPP_TOKEN": fake.token,
                "TADAMON_WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
                "TADAMON_WHATSAPP_APP_SECRET": fake.app_secret,
                "TADAMON_WHATSAPP_VERIFY_TOKEN": fake.verify_token,
                "TADAMON_WHATSAPP_API_BASE": fake.base_url,
            })
            url = f"http://127.0.0.1:{port}/whatsapp/webhook"
            with tempfile.TemporaryDirectory() as folder:
                process = await asyncio.create_subprocess_exec(
                    str(ROOT / ".venv" / "bin" / "tadamon"), "run", "--no-worker", cwd=folder,
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    await run(fake, url, args)
                finally:
                    process.terminate()
                    await asyncio.wait_for(process.wait(), 30)
    finally:
        redis.stop()
        postgres.stop()


async def run(fake: FakeWhatsApp, url: str, args: argparse.Namespace) -> None:
    for _ in range(300):  # the server is starting
        try:
            if (await fake.verify(url))[0] == 200:
                break
        except OSError:
            pass
        await asyncio.sleep(0.1)
    users = [f"2126{index:08d}" for index in range(args.users)]
    # a newcomer gets the welcome (with the privacy notice), the stand's card and the
    # language question: three messages each
    await post_all(fake, url, users, 1, args.concurrency)
    await wait_for_replies(fake, 3 * len(users), seconds=300)
    await asyncio.sleep(1)
    before = replies(fake)
    started = time.monotonic()
    times = await post_all(fake, url, users, args.messages, args.concurrency)
    accepted_at = time.monotonic()
    expected = before + len(users) * args.messages
    done = await wait_for_replies(fake, expected, seconds=600)
    times.sort()
    count = len(times)
    print(f"accepted webhooks   {count / (accepted_at - started):8.1f} /s   "
          f"time to 200: p50 {1000 * times[count // 2]:6.1f} ms  "
          f"p99 {1000 * times[min(int(count * 0.99), count - 1)]:6.1f} ms", flush=True)
    print(f"end-to-end replies  {count / (done - started):8.1f} /s   "
          f"({count} replies, last {done - started:.1f} s after the first post)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
