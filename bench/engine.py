"""Engine benchmark: messages per second and p50/p99 latency through the web chat API.

Starts `tadamon run` as a separate process (so the figures are the server's, not the load
generator's), first on the embedded defaults (SQLite + in-process Redis stand-in), then on
throwaway real Redis and PostgreSQL servers, and drives it with simulated visitors, each holding
a short conversation (greeting, language tap, stand card, workshop programme, a day, another
stand, practical information, menu). Prints medians of several rounds and the server's peak RSS.

    .venv/bin/python bench/engine.py [--users 300] [--concurrency 40] [--rounds 3]
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
            cwd=folder, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
    deadline = time.monotonic() + 60
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
        rss = peak_rss_mb(pid)
    result: dict[str, Any] = {"setup": name, "rss_mb": rss}
    for key in ("messages", "per_second", "p50_ms", "p99_ms"):
        result[key] = statistics.median(round_[key] for round_ in rounds)
    return result


def report(result: dict[str, Any]) -> None:
    print(f"{result['setup']:<28} {result['messages']:>7.0f} msgs/round  "
          f"{result['per_second']:>7.1f} msg/s  p50 {result['p50_ms']:>6.1f} ms  "
          f"p99 {result['p99_ms']:>7.1f} ms  peak RSS {result['rss_mb']:>6.1f} MiB", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300, help="visitors per round")
    parser.add_argument("--concurrency", type=int, default=40, help="visitors at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    print(f"engine benchmark: {args.users} visitors x {len(CONVERSATION)} messages per round, "
          f"{args.concurrency} at once, median of {args.rounds} rounds, {os.cpu_count()} cores",
          flush=True)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        embedded = {"TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db"}
        results.append(await measure("embedded (SQLite, stand-in)", embedded, args))
        report(results[-1])
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
