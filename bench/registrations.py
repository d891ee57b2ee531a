"""Registrations benchmark: throughput and latency of workshop registration under contention.

Starts a throwaway PostgreSQL server; each round gets a fresh database (migrated, sample fair
loaded), one workshop with --seats seats (audience "all", starting in three days) and --attempts
plain visitors. --processes processes then each register their share of the visitors, all at
once (one `RegistrationRepository.register` call per visitor, gathered), starting together at
the same wall-clock moment once every process has connected and warmed its connection pool.
Prints the medians over the rounds of:

- registrations/s: attempts / (last finish - first start), across the processes;
- p50 and p99 latency of one `register` call (ms; includes waiting for a pooled connection and
  for the workshop's row lock);
- confirmed and waitlisted, read back from the registrations table, and whether the waiting
  positions are exactly 1..N. Exits with status 1 when that invariant fails in any round.

    .venv/bin/python bench/registrations.py [--attempts 500] [--seats 30] [--processes 2]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bot.app import App  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.models import Contact, Registration, RegistrationStatus, Workshop  # noqa: E402
from tests.servers import RunningServer, start_postgres  # noqa: E402

FIRST_USER = 900_000_000
# One process's share of the race: `python -c RACE URL WORKSHOP FIRST COUNT FAIR NOW` opens the
# pool's connections, prints "ready", reads the wall-clock start time from stdin, waits for it,
# then registers contacts FIRST..FIRST+COUNT-1 all at once and prints a JSON line: its first
# start and last finish (time.time()), each call's latency (s) and the outcomes.
RACE = """
import asyncio, contextlib, datetime as dt, json, sys, time
from sqlalchemy import text
from storage import database
from storage.registrations import RegistrationRepository

async def main():
    url, workshop, first, count, fair = sys.argv[1], *map(int, sys.argv[2:6])
    now = dt.datetime.fromisoformat(sys.argv[6])
    engine = database.create_engine(url)
    repo = RegistrationRepository(database.create_sessionmaker(engine), "Africa/Casablanca")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(engine.pool.size()):
            connection = await stack.enter_async_context(engine.connect())
            await connection.execute(text("SELECT 1"))
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    await asyncio.sleep(max(0.0, start_at - time.time()))
    latencies, outcomes = [], []

    async def one(contact):
        started = time.perf_counter()
        result = await repo.register(fair, contact, workshop, now)
        latencies.append(time.perf_counter() - started)
        outcomes.append(str(result.outcome))

    started = time.time()
    await asyncio.gather(*(one(contact) for contact in range(first, first + count)))
    finished = time.time()
    await engine.dispose()
    print(json.dumps({"started": started, "finished": finished, "latencies": latencies,
                      "outcomes": outcomes}), flush=True)

asyncio.run(main())
"""


async def fresh_database(postgres: RunningServer, index: int) -> str:
    """A new empty database on the throwaway server; its SQLAlchemy URL."""
    import asyncpg

    name = f"bench_registrations_{index}"
    connection = await asyncpg.connect(postgres.url.replace("postgresql+asyncpg://",
                                                            "postgresql://"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


async def add_workshop(app: App, fair_id: int, seats: int, now: dt.datetime) -> int:
    starts = now + dt.timedelta(days=3)
    async with app.sessions() as session, session.begin():
        row = Workshop(fair_id=fair_id, key="bench-race",
                       title={"fr": "Atelier bench", "ar": "ورشة تجريبية"},
                       room={"fr": "Salle 9", "ar": "القاعة 9"}, starts_at=starts,
                       ends_at=starts + dt.timedelta(hours=2), capacity=seats,
                       language="ar+fr", audience="all")
        session.add(row)
        await session.flush()
        return row.id


async def add_visitors(app: App, count: int) -> int:
    """`count` Telegram visitors with consecutive ids; the first id."""
    async with app.sessions() as session, session.begin():
        start = int(await session.scalar(select(Contact.id).order_by(Contact.id.desc())
                                         .limit(1)) or 0) + 1
        await session.execute(insert(Contact), [
            {"id": start + index, "channel": "telegram", "user_id": str(FIRST_USER + index),
             "language": "fr"}
            for index in range(count)])
    return start


async def race(url: str, fair_id: int, workshop_id: int, first: int, now: dt.datetime,
               args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the processes' shares together; what each one printed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TADAMON_")}
    env["PYTHONPATH"] = str(ROOT)
    processes = []
    for index in range(args.processes):
        share = args.attempts // args.processes + (index < args.attempts % args.processes)
        processes.append(await asyncio.create_subprocess_exec(
            sys.executable, "-c", RACE, url, str(workshop_id), str(first), str(share),
            str(fair_id), now.isoformat(), cwd=ROOT, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        first += share
    for process in processes:
        assert process.stdout is not None
        if (await process.stdout.readline()).strip() != b"ready":
            _, err = await process.communicate()
            raise RuntimeError(f"a racer failed to start: {err.decode()[-2000:]}")
    start_at = f"{time.time() + 0.2!r}\n".encode()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(start_at)
        await process.stdin.drain()
        process.stdin.close()
    outputs = [await process.communicate() for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"a racer exited with {process.returncode}: "
                               f"{err.decode()[-2000:]}")
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


async def one_round(postgres: RunningServer, index: int, args: argparse.Namespace
                    ) -> dict[str, Any]:
    url = await fresh_database(postgres, index)
    app = App(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    try:
        await app.prepare()
        fair = await app.engine.catalogue.fair()
        assert fair is not None, "the sample fair was not loaded"
        now = dt.datetime.now(dt.UTC)
        workshop_id = await add_workshop(app, fair.id, args.seats, now)
        first = await add_visitors(app, args.attempts)
        shares = await race(url, fair.id, workshop_id, first, now, args)
        async with app.sessions() as session:
            rows = (await session.execute(
                select(Registration.status, Registration.position)
                .where(Registration.workshop_id == workshop_id))).all()
    finally:
        await app.close()
    latencies = sorted(latency for share in shares for latency in share["latencies"])
    elapsed = (max(share["finished"] for share in shares)
               - min(share["started"] for share in shares))
    statuses = Counter(str(status) for status, _ in rows)
    waiting = sorted(position or 0 for status, position in rows
                     if status == RegistrationStatus.WAITLISTED)
    reported = Counter(outcome for share in shares for outcome in share["outcomes"])
    return {
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "confirmed": statuses["confirmed"],
        "waitlisted": statuses["waitlisted"],
        "other": len(rows) - statuses["confirmed"] - statuses["waitlisted"],
        "positions_ok": waiting == list(range(1, len(waiting) + 1)),
        # what the calls answered agrees with the table
        "reported_ok": (reported["confirmed"], reported["waitlisted"])
        == (statuses["confirmed"], statuses["waitlisted"]),
    }


def across(rounds: list[dict[str, Any]], key: str) -> str:
    """One value when every round agrees, else each round's value."""
    values = [str(round_[key]) for round_ in rounds]
    return f"{values[0]} in every round" if len(set(values)) == 1 else ", ".join(values)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=500, help="visitors, one attempt each")
    parser.add_argument("--seats", type=int, default=30, help="the workshop's capacity")
    parser.add_argument("--processes", type=int, default=2, help="racing processes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    args = parser.parse_args()
    print(f"registrations bench: {args.attempts} attempts for {args.seats} seats from "
          f"{args.processes} processes on PostgreSQL, median of {args.rounds} rounds, "
          f"{os.cpu_count()} cores", flush=True)
    postgres = start_postgres()
    try:
        rounds = [await one_round(postgres, index, args) for index in range(1, args.rounds + 1)]
    finally:
        postgres.stop()
    seats = min(args.seats, args.attempts)
    waiting = args.attempts - seats
    median = {key: statistics.median(round_[key] for round_ in rounds)
              for key in ("per_second", "p50_ms", "p99_ms")}
    confirmed_ok = all(round_["confirmed"] == seats for round_ in rounds)
    waitlisted_ok = all(round_["waitlisted"] == waiting and round_["other"] == 0
                        for round_ in rounds)
    positions_ok = all(round_["positions_ok"] for round_ in rounds)
    reported_ok = all(round_["reported_ok"] for round_ in rounds)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"registrations/s    {median['per_second']:8.1f}  (attempts / (last finish - first "
          f"start), across the processes)", flush=True)
    print(f"register p50       {median['p50_ms']:8.1f} ms", flush=True)
    print(f"register p99       {median['p99_ms']:8.1f} ms", flush=True)
    print(f"confirmed          {across(rounds, 'confirmed')} (goal: exactly {seats}: "
          f"{verdict(confirmed_ok)})", flush=True)
    print(f"waitlisted         {across(rounds, 'waitlisted')} (goal: {waiting}, and no other "
          f"status: {verdict(waitlisted_ok)})", flush=True)
    print(f"positions 1..{waiting:<5} {across(rounds, 'positions_ok')} (goal: True: "
          f"{verdict(positions_ok)})", flush=True)
    if not reported_ok:
        print("the outcomes the calls returned disagree with the registrations table",
              flush=True)
    return 0 if confirmed_ok and waitlisted_ok and positions_ok and reported_ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
