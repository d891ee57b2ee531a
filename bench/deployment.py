"""A deployment of several processes, proved: 2 `tadamon run --no-worker` behind a round-robin
proxy, 2 `tadamon worker`, real PostgreSQL and Redis, the fake Bot API and Graph API delivering
webhooks (tests/deployment.py holds the harness).

People chat on Telegram and WhatsApp (French, Arabic, Darija in both scripts, English, stand
codes), each writing once the previous answer came; meanwhile a broadcast goes to every contact
and more people than seats register for one workshop at once, through the chat. Printed: updates
in, answered once, lost, answered twice; the registrations against what each person was told;
the broadcast, recipient by recipient, as the fake platforms received it.

    PYTHONPATH=. .venv/bin/python bench/deployment.py [--quick] [--chatters 40] [--rounds 8]
        [--race 60] [--capacity 25] [--broadcast 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.deployment import Deployment, Scenario, scenario  # noqa: E402


def report(result: Scenario, deployment: Deployment) -> bool:
    """Print what the run found; True when every check holds."""
    tally, race, broadcast = result.tally, result.race, result.broadcast
    once = tally.answered - len(tally.duplicated)
    print(f"  updates: {tally.line()}; answered exactly once: {once} of {tally.accepted}",
          flush=True)
    for update in tally.lost[:5]:
        print(f"    lost: {update.channel}:{update.person} {update.what!r}")
    for update in tally.duplicated[:5]:
        print(f"    answered twice: {update.channel}:{update.person} {update.what!r} "
              f"-> {update.answer!r}")
    print(f"  spread over the bot processes by the proxy: {deployment.proxy.forwarded}",
          flush=True)
    print(f"  registrations: {race.line()}", flush=True)
    for line in (race.mismatched + race.no_button)[:5]:
        print(f"    {line}")
    print(f"  {broadcast.line()}", flush=True)
    for person in (broadcast.missing + broadcast.repeated)[:5]:
        print(f"    {person}")
    problems = deployment.problems()
    for name, lines in problems.items():
        print(f"  {name} log: {len(lines)} error lines, first: {lines[0][:200]}")
    return (not tally.lost and not tally.duplicated and not tally.apologized
            and tally.accepted == tally.sent
            and race.exact and broadcast.complete)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--chatters", type=int, help="people chatting, per platform")
    parser.add_argument("--rounds", type=int, help="messages each of them writes")
    parser.add_argument("--race", type=int, help="people registering at once")
    parser.add_argument("--capacity", type=int, help="seats of the workshop")
    parser.add_argument("--broadcast", type=int, help="contacts added before the broadcast")
    parser.add_argument("--telegram-rate", type=float, default=30.0)
    args = parser.parse_args()
    chatters, rounds, race, capacity, extra = ((6, 4, 12, 5, 100) if args.quick
                                               else (40, 8, 60, 25, 1000))
    chatters = args.chatters or chatters
    rounds = args.rounds or rounds
    race = args.race or race
    capacity = args.capacity or capacity
    extra = args.broadcast or extra
    print(f"deployment bench{' (quick)' if args.quick else ''}: {os.cpu_count()} cores; "
          f"{chatters} people chatting per platform x {rounds} messages, {race} people for "
          f"{capacity} seats, a broadcast to the {extra + extra // 3} contacts known, "
          f"Telegram rate {args.telegram_rate:.0f}/s", flush=True)
    started = time.monotonic()
    async with Deployment(telegram_rate=args.telegram_rate) as deployment:
        print(f"  2 bot processes + 2 workers serving in {time.monotonic() - started:.1f} s",
              flush=True)
        result = await scenario(deployment, chatters=chatters, rounds=rounds, race_people=race,
                                capacity=capacity, broadcast_extra=extra)
        print(f"  scenario ran {result.seconds:.1f} s", flush=True)
        verdict = report(result, deployment)
    print(f"  verdict: {'every check holds' if verdict else 'NOT every check holds'}",
          flush=True)


if __name__ == "__main__":
    asyncio.run(main())
