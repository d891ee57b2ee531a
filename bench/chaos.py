"""Faults in the multi-process deployment of bench/deployment.py, one at a time, while people
keep writing on Telegram and WhatsApp:

  bot-kill          kill -9 of a bot process holding webhook bodies; the other takes them over;
                    the killed one is started again
  worker-kill       kill -9 of a worker mid-broadcast; started again
  redis-restart     Redis stopped, then started again on the same port and data (append-only file)
  postgres-restart  PostgreSQL stopped, then started again on the same port and data
  platform-errors   both platforms answer 429, then 5xx, for ten seconds

Printed per fault: updates in (from the people writing during that fault), answered (and how
many with an apology), lost, answered twice, and the recovery time: seconds from the fault to
the first answer to a message written after it, and until every message that was waiting at
the fault or written before the service came back was answered.

    PYTHONPATH=. .venv/bin/python bench/chaos.py [--quick] [--only bot-kill,redis-restart]
        [--chatters 10] [--down 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import keys  # noqa: E402
from tests.deployment import (  # noqa: E402
    Deployment,
    Tally,
    Visitors,
    chatter,
    check_broadcast,
    telegram_person,
    whatsapp_person,
)

WARMUP = 3.0
"""Seconds of ordinary traffic before each fault."""


@dataclass
class Outcome:
    """What a fault did, as its action saw it."""

    fault_at: float
    """When the fault happened (the kill, the server stopped, the first error answer)."""
    back_at: float
    """When the service should be whole again (restarted, takeover due, errors over)."""
    notes: list[str] = field(default_factory=list)
    pending: list[Awaitable[Any]] = field(default_factory=list)
    """Work to finish before the tally (a restart under way, a broadcast to check)."""


async def held_by(deployment: Deployment, pid: int) -> int:
    """Webhook bodies taken and not finished by the consumers of process `pid`."""
    assert deployment.app is not None
    held = 0
    for channel in ("telegram", "whatsapp"):
        summary: Any = await deployment.app.redis.xpending(keys.inbox(channel), keys.INBOX_GROUP)
        for consumer in (summary or {}).get("consumers") or []:
            if f"-{pid}-" in str(consumer["name"]):
                held += int(consumer["pending"])
    return held


async def bot_kill(deployment: Deployment, down: float) -> Outcome:
    victim = deployment.bots[0]
    assert victim.process is not None
    pid, held = victim.process.pid, 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = await held_by(deployment, pid)
        if held:
            break
        await asyncio.sleep(0.002)
    victim.kill()
    killed = time.monotonic()

    async def restart() -> None:
        await asyncio.sleep(down)
        await deployment.restart(victim)

    return Outcome(killed, killed, [f"{held} webhook bodies in the killed process's hands"],
                   [restart()])


async def worker_kill(deployment: Deployment, down: float) -> Outcome:
    victim = deployment.workers[0]
    queued = time.monotonic()
    broadcast_id = await deployment.broadcast("Le salon ferme à 20 h : pensez aux navettes.",
                                              "يغلق المعرض على الساعة 20: لا تنسوا الحافلات.")
    recipients = len(await deployment.broadcast_recipients(broadcast_id))
    before = sum(deployment.broadcast_deliveries().values())
    while True:
        if sum(deployment.broadcast_deliveries().values()) - before >= recipients * 0.3:
            break
        await asyncio.sleep(0.02)
    victim.kill()
    killed = time.monotonic()
    at_kill = sum(deployment.broadcast_deliveries().values()) - before
    # Rows claimed and not recorded yet, by either worker (the other one goes on sending):
    # what may be sent twice is at most these.
    in_flight = (await deployment.broadcast_progress(broadcast_id)).get("sending", 0)
    notes = [f"killed after {at_kill} of {recipients} broadcast messages reached people; "
             f"{in_flight} rows in flight (claimed by either worker, not recorded)"]

    async def restart_and_check() -> None:
        await asyncio.sleep(down)
        await deployment.restart(victim)
        check = await check_broadcast(deployment, broadcast_id, queued)
        notes.append(f"{check.line()}; repeated at most the in-flight: "
                     f"{'yes' if len(check.repeated) <= in_flight else 'NO'}")

    return Outcome(killed, killed, notes, [restart_and_check()])


async def redis_restart(deployment: Deployment, down: float) -> Outcome:
    assert deployment.redis is not None
    stopped = time.monotonic()
    await asyncio.to_thread(deployment.redis.halt)
    await asyncio.sleep(down)
    await asyncio.to_thread(deployment.redis.restart)
    return Outcome(stopped, time.monotonic(),
                   [f"Redis down {down:.0f} s (append-only file kept)"])


async def postgres_restart(deployment: Deployment, down: float) -> Outcome:
    assert deployment.postgres is not None
    stopped = time.monotonic()
    await asyncio.to_thread(deployment.postgres.halt)
    await asyncio.sleep(down)
    await asyncio.to_thread(deployment.postgres.restart)
    return Outcome(stopped, time.monotonic(), [f"PostgreSQL down {down:.0f} s"])


async def platform_errors(deployment: Deployment, down: float) -> Outcome:
    telegram, whatsapp = deployment.telegram, deployment.whatsapp
    many = 1_000_000
    started = time.monotonic()
    for method in ("sendMessage", "sendPhoto", "answerCallbackQuery"):
        telegram.fail(method, status=429, retry_after=1, times=many)
    whatsapp.fail(130429, times=many)
    await asyncio.sleep(5)
    telegram._faults.clear()  # the fakes count faults; these last a time
    whatsapp._faults.clear()
    for method in ("sendMessage", "sendPhoto", "answerCallbackQuery"):
        telegram.fail(method, status=502, times=many)
    whatsapp.fail(131016, times=many)
    await asyncio.sleep(5)
    telegram._faults.clear()
    whatsapp._faults.clear()
    return Outcome(started, time.monotonic(), ["429 for 5 s, then 502 / 503 for 5 s"])


FAULTS: dict[str, Callable[[Deployment, float], Awaitable[Outcome]]] = {
    "bot-kill": bot_kill,
    "worker-kill": worker_kill,
    "redis-restart": redis_restart,
    "postgres-restart": postgres_restart,
    "platform-errors": platform_errors,
}


def distinct(lines: list[str]) -> list[tuple[str, int]]:
    """Error lines without their time, each with how many times it came, most frequent first."""
    counts: dict[str, int] = {}
    for line in lines:
        if line.startswith("Traceback"):
            continue
        text = re.sub(r"^\S+ \S+ ", "", line)
        text = re.sub(r"\d+", "N", text)
        counts[text] = counts.get(text, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def recovery(tally: Tally, fault_at: float, back_at: float) -> tuple[str, str]:
    """Seconds from the fault to the first answer to a message written after it, and until
    every message that was waiting for its answer at the fault, or written before the service
    was back, got it."""
    after = [u.answered_at for u in tally.updates if u.first_try >= fault_at
             and u.answered_at is not None]
    first = f"{min(after) - fault_at:.1f} s" if after else "never"
    affected = [u for u in tally.updates if u.first_try <= back_at
                and (u.answered_at is None or u.answered_at >= fault_at)]
    if any(u.answered_at is None for u in affected):
        return first, "never (some never answered)"
    done = [u.answered_at for u in affected if u.answered_at is not None]
    return first, f"{max(done) - fault_at:.1f} s" if done else "at once (none waiting)"


async def run_fault(deployment: Deployment, number: int, name: str, chatters: int,
                    down: float, after: float) -> bool:
    visitors = Visitors(deployment, answer_timeout=180.0)
    stop = asyncio.Event()
    talk = [asyncio.create_task(chatter(visitors, "telegram", telegram_person(10 + number, i),
                                        0, start=i, stop=stop)) for i in range(chatters)]
    talk += [asyncio.create_task(chatter(visitors, "whatsapp", whatsapp_person(10 + number, i),
                                         0, start=i + 3, stop=stop)) for i in range(chatters)]
    await asyncio.sleep(WARMUP)
    outcome = await FAULTS[name](deployment, down)
    await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*talk, *outcome.pending)
    tally = visitors.tally()  # this fault's people only
    first, caught_up = recovery(tally, outcome.fault_at, outcome.back_at)
    print(f"{name}: {tally.line()}; recovery: first answer {first} after the fault, all "
          f"caught up {caught_up}", flush=True)
    for note in outcome.notes:
        print(f"  {note}", flush=True)
    if visitors.retries_given_up:
        print(f"  {visitors.retries_given_up} webhooks never accepted (the platform gave up)")
    for update in tally.lost[:5]:
        print(f"  lost: {update.channel}:{update.person} {update.what!r} (tries {update.tries})")
    for update in tally.duplicated[:5]:
        print(f"  answered twice: {update.channel}:{update.person} {update.what!r}")
    for update in tally.throttled[:3]:
        print(f"  flood notice: {update.channel}:{update.person} {update.what!r}")
    for update in tally.apologized[:3]:
        print(f"  apology: {update.channel}:{update.person} {update.what!r} -> "
              f"{update.answer[-1][:100]!r}")
    return not tally.lost and not tally.duplicated


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer people, shorter outages")
    parser.add_argument("--only", help="comma list of faults: " + ", ".join(FAULTS))
    parser.add_argument("--chatters", type=int, help="people writing, per platform")
    parser.add_argument("--down", type=float, help="seconds a stopped server stays down")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(FAULTS)
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        parser.error(f"unknown fault {unknown[0]!r}")
    chatters = args.chatters or (4 if args.quick else 15)
    down = args.down or (3.0 if args.quick else 5.0)
    after = 10.0 if args.quick else 20.0
    print(f"chaos bench{' (quick)' if args.quick else ''}: {os.cpu_count()} cores, "
          f"{chatters} people writing per platform, servers down {down:.0f} s", flush=True)
    started = time.monotonic()
    async with Deployment() as deployment:
        print(f"2 bot processes + 2 workers serving in {time.monotonic() - started:.1f} s",
              flush=True)
        await deployment.add_contacts((telegram_person(9, i) for i in range(300)),
                                      (whatsapp_person(9, i) for i in range(100)))
        for number, name in enumerate(names):
            await run_fault(deployment, number, name, chatters, down, after)
        for process, lines in deployment.problems().items():
            print(f"{process} log: {len(lines)} error lines; the distinct ones:")
            for line, count in distinct(lines):
                print(f"  {count} x {line[:200]}")


if __name__ == "__main__":
    asyncio.run(main())
