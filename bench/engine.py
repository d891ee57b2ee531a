"""Engine benchmark: messages per second and p50/p99 latency through the web chat API.

Starts `tadamon run` as a separate process (so the figures are the server's, not the load
generator's), first on the embedded defaults (SQLite + in-process Redis stand-in), then on
throwaway real Redis and PostgreSQL servers, and drives it with simulated visitors, each holding
a short conversation (greeting, language tap, stand card, workshop programme, a day, another
stand, practical information, menu). Prints medians of several rounds and the server's peak RSS.

Then, at fixed offered rates (`--rate`, 300 messages/s by default, or a list such as
`--rate 50,100,200,300` to find the highest rate a setup keeps under 100 ms, for `--seconds`
each), the same
conversations' messages are sent on a schedule whatever the answers' pace (open loop), each
visitor one message at a time, and the latency is counted from when each message was due:
p50, p99 and the worst, and how many messages were late because every visitor was waiting.

    .venv/bin/python bench/engine.py [--users 300] [--concurrency 40] [--rounds 3]
        [--rate 300[,RATE...]] [--seconds 15] [--only embedded|real]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, start_postgres, start_redis  # noqa: E402

CONVERSATION: list[dict[str, str]] = [
    {"text": "bonjour"},
    {"choice": "lang:fr"},
    {"text": "A12"},
    {"text": "ateliers"},
    {"choice": "wsd:1"},
    {"text": "stand B7"},
    {"text": "infos"},
    {"text": "menu"},
]


@contextmanager
def server(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`tadamon run` in a subprocess; yields its base URL and pid."""
    port = free_port()
    full_env = {key: value for key, value in os.environ.items()
                if not key.startswith("TADAMON_")}
    full_env.update(env)
    full_env.update({"TADAMON_HTTP_PORT": str(port), "TADAMON_HTTP_HOST": "127.0.0.1",
                     # every simulated visitor comes from 127.0.0.1: no limit on new sessions
                     "TADAMON_WEB_SESSIONS_PER_MINUTE": "100000000"})
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "tadamon"), "run", "--no-worker"],
            # Not a pipe nobody reads: once it is full, the server blocks in its next log line.
            cwd=folder, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 600  # the classifier is fitted at start
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            try:
                async with client.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


async def visitor(client: aiohttp.ClientSession, base: str,
                  latencies: list[float], errors: list[str]) -> None:
    """One visitor: a session from the server, as the page gets it, then the conversation."""
    async with client.post(f"{base}/chat/api/sessions", json={}) as response:
        issued = await response.json()
    if response.status != 201:
        errors.append(f"{response.status} new session {issued}")
        return
    session = issued["session"]
    for step in CONVERSATION:
        body: dict[str, Any] = {"session": session, **step}
        started = time.perf_counter()
        async with client.post(f"{base}/chat/api/messages", json=body) as response:
            data = await response.json()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or not data.get("replies"):
            errors.append(f"{response.status} {step} {data}")


async def load(base: str, users: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one(index: int) -> None:
            async with gate:
                await visitor(client, base, latencies, errors)

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(users)))
        elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} bad answers, first: {errors[0]}")
    latencies.sort()
    return {
        "messages": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


async def new_session(client: aiohttp.ClientSession, base: str) -> str:
    async with client.post(f"{base}/chat/api/sessions", json={}) as response:
        issued = await response.json()
    if response.status != 201:
        raise RuntimeError(f"{response.status} new session {issued}")
    return str(issued["session"])


async def fixed_rate(base: str, rate: float, seconds: float) -> dict[str, float]:
    """Messages due every 1/rate s, sent by whichever visitor is not waiting for an answer;
    latency from when each was due (so a server that falls behind is not spared)."""
    visitors = max(int(rate), 10)  # each writes about once a second: under the flood limit
    connector = aiohttp.TCPConnector(limit=visitors)
    latencies: list[float] = []
    errors: list[str] = []
    late = 0
    async with aiohttp.ClientSession(connector=connector) as client:
        idle: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for session in await asyncio.gather(*(new_session(client, base)
                                              for _ in range(visitors))):
            idle.put_nowait((session, 0))

        async def send(session: str, step: int, due: float) -> None:
            body: dict[str, Any] = {"session": session, **CONVERSATION[step]}
            async with client.post(f"{base}/chat/api/messages", json=body) as response:
                data = await response.json()
            latencies.append(time.perf_counter() - due)
            if response.status != 200 or not data.get("replies"):
                errors.append(f"{response.status} {CONVERSATION[step]} {data}")
            idle.put_nowait((session, (step + 1) % len(CONVERSATION)))

        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for index in range(int(rate * seconds)):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if idle.empty():
                late += 1
            session, step = await idle.get()
            tasks.append(asyncio.create_task(send(session, step, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} bad answers, first: {errors[0]}")
    latencies.sort()
    return {
        "messages": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "max_ms": 1000 * latencies[-1],
        "late": late,
        "offered": rate,
    }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(name: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    with server(env) as (base, pid):
        await wait_healthy(base)
        await load(base, min(args.users, 50), args.concurrency)
        rounds = [await load(base, args.users, args.concurrency) for _round in range(args.rounds)]
        steady = [await fixed_rate(base, rate, args.seconds) for rate in args.rate if rate > 0]
        rss = peak_rss_mb(pid)
    result: dict[str, Any] = {"setup": name, "rss_mb": rss, "fixed_rate": steady}
    for key in ("messages", "per_second", "p50_ms", "p99_ms"):
        result[key] = statistics.median(round_[key] for round_ in rounds)
    return result


def report(result: dict[str, Any]) -> None:
    print(f"{result['setup']:<28} {result['messages']:>7.0f} msgs/round  "
          f"{result['per_second']:>7.1f} msg/s  p50 {result['p50_ms']:>6.1f} ms  "
          f"p99 {result['p99_ms']:>7.1f} ms  peak RSS {result['rss_mb']:>6.1f} MiB", flush=True)
    for steady in result.get("fixed_rate") or []:
        print(f"{'':<28} at {steady['offered']:.0f} msg/s offered: {steady['per_second']:>6.1f} "
              f"msg/s answered  p50 {steady['p50_ms']:>6.1f} ms  p99 {steady['p99_ms']:>7.1f} ms"
              f"  max {steady['max_ms']:>7.1f} ms  {steady['late']:.0f} sent late "
              f"(goal embedded: p99 under 100 ms at 300/s)", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300, help="visitors per round")
    parser.add_argument("--concurrency", type=int, default=40, help="visitors at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--rate", type=lambda text: [float(rate) for rate in text.split(",")],
                        default=[300.0], help="messages/s offered in the fixed-rate measure, "
                        "or a comma-separated list of rates, each measured (0: none)")
    parser.add_argument("--seconds", type=float, default=15, help="fixed-rate measure length")
    parser.add_argument("--only", choices=("embedded", "real"), default=None,
                        help="one setup only")
    args = parser.parse_args()
    print(f"engine benchmark: {args.users} visitors x {len(CONVERSATION)} messages per round, "
          f"{args.concurrency} at once, median of {args.rounds} rounds, {os.cpu_count()} cores",
          flush=True)
    results = []
    if args.only != "real":
        with tempfile.TemporaryDirectory() as folder:
            embedded = {"TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db"}
            results.append(await measure("embedded (SQLite, stand-in)", embedded, args))
            report(results[-1])
    if args.only == "embedded":
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    redis, postgres = start_redis(), start_postgres()
    try:
        real = {"TADAMON_DATABASE_URL": postgres.url, "TADAMON_REDIS_URL": redis.url}
        results.append(await measure("Redis + PostgreSQL", real, args))
        report(results[-1])
    finally:
        redis.stop()
        postgres.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
