"""Fuzzing benchmark: the strategies of tests/test_fuzz.py (tests/fuzzing.py), many more cases.

Telegram updates through the webhook, WhatsApp webhook bodies (signed and forged), web chat
requests and catalogue files, against one app per target on the embedded defaults (SQLite and
the in-process Redis stand-in), or on throwaway PostgreSQL and Redis servers with `--real`.
Prints per target: cases run, HTTP statuses, unhandled exceptions (errors logged, requests that
failed), invariant violations (seats over capacity, two ratings a day, a broadcast to someone
who opted out) and the seconds taken; then the first problems found.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--quick] [--real] [--seed N]
        [--targets telegram,whatsapp,web,catalogue]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from bot.app import App  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fuzzing import (  # noqa: E402
    CATALOGUES,
    TELEGRAM_CASES,
    WEB_CASES,
    WHATSAPP_CASES,
    CatalogueCase,
    ErrorLog,
    Findings,
    TelegramTarget,
    WebTarget,
    WhatsAppTarget,
    import_case,
    run_case,
)
from tests.servers import RunningServer, start_postgres, start_redis  # noqa: E402

# Shares of the cases: the conversations cost the most per case, files the least.
SHARES = {"telegram": 0.3, "whatsapp": 0.3, "web": 0.25, "catalogue": 0.15}
TARGETS = {"telegram": (TelegramTarget, TELEGRAM_CASES),
           "whatsapp": (WhatsAppTarget, WHATSAPP_CASES),
           "web": (WebTarget, WEB_CASES)}
# The opt-out broadcast is sent after every this many cases (and after the last).
BROADCAST_EVERY = 25


class Apps:
    """Apps on fresh databases: SQLite files and the stand-in, or the throwaway servers."""

    def __init__(self, folder: Path, real: bool) -> None:
        self.folder = folder
        self.count = 0
        self.redis: RunningServer | None = start_redis() if real else None
        self.postgres: RunningServer | None = start_postgres() if real else None
        self.apps: list[App] = []

    async def database(self) -> str:
        self.count += 1
        if self.postgres is None:
            return f"sqlite+aiosqlite:///{self.folder / f'fuzz{self.count}.db'}"
        import asyncpg  # type: ignore[import-untyped]

        admin = self.postgres.url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(f"CREATE DATABASE fuzz{self.count}")
        finally:
            await connection.close()
        return self.postgres.url.rsplit("/", 1)[0] + f"/fuzz{self.count}"

    async def __call__(self, **overrides: Any) -> App:
        values: dict[str, Any] = {"database_url": await self.database(),
                                  "redis_url": self.redis.url if self.redis else None}
        values.update(overrides)
        app = App(Settings(_env_file=None, **values))  # type: ignore[call-arg]
        await app.prepare(load_sample=True)
        self.apps.append(app)
        return app

    async def close(self) -> None:
        for app in self.apps:
            await app.close()

    def stop_servers(self) -> None:
        for server in (self.redis, self.postgres):
            if server is not None:
                server.stop()


def fuzz_settings(cases: int, seed_value: int | None) -> Callable[[Any], Any]:
    chosen = settings(max_examples=cases, deadline=None, database=None,
                      phases=[Phase.generate],  # count everything, shrink nothing
                      suppress_health_check=list(HealthCheck))

    def apply(function: Any) -> Any:
        function = chosen(function)
        return seed(seed_value)(function) if seed_value is not None else function

    return apply


def conversation(loop: asyncio.AbstractEventLoop, name: str, cases: int, apps: Apps,
                 seed_value: int | None) -> Findings:
    """`cases` generated cases against one app serving the target `name`."""
    kind, strategy = TARGETS[name]
    findings = Findings()
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    target: Any = loop.run_until_complete(kind.start(apps))

    async def one(actions: list[Any]) -> None:
        await run_case(target, actions, findings, errors)
        if findings.cases % BROADCAST_EVERY == 0:
            await opt_out_check(target, findings)

    @fuzz_settings(cases, seed_value)
    @given(actions=strategy)
    def case(actions: list[Any]) -> None:
        loop.run_until_complete(one(actions))

    try:
        case()
        loop.run_until_complete(opt_out_check(target, findings))
    finally:
        loop.run_until_complete(target.close())
        logging.getLogger().removeHandler(errors)
    return findings


async def opt_out_check(target: Any, findings: Findings) -> None:
    reached = await target.opted_out_reached()
    findings.violations += len(reached)
    findings.problems.extend(reached)


def catalogue(loop: asyncio.AbstractEventLoop, cases: int, apps: Apps,
              seed_value: int | None) -> tuple[Findings, Counter[str]]:
    """Catalogue files imported as `tadamon import` does, into a database with the sample fair."""
    findings = Findings()
    outcomes: Counter[str] = Counter()
    app = loop.run_until_complete(apps())
    with tempfile.TemporaryDirectory() as folder:

        @fuzz_settings(cases, seed_value)
        @given(case=CATALOGUES)
        def check(case: CatalogueCase) -> None:
            findings.cases += 1
            try:
                outcomes[loop.run_until_complete(
                    import_case(app.sessions, case, Path(folder), findings.cases))] += 1
            except Exception as exc:  # what the fuzzing looks for: counted, not raised
                findings.exceptions += 1
                findings.fail(f"{type(exc).__name__}: {exc} <- {case!r}")

        check()
    return findings, outcomes


def report(name: str, findings: Findings, seconds: float, extra: str = "") -> None:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(
        findings.statuses.items())) or extra
    print(f"{name:<10} {findings.cases:>6} cases  {findings.exceptions:>4} unhandled  "
          f"{findings.violations:>3} invariant violations  {seconds:7.1f} s  [{statuses}]",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in total")
    parser.add_argument("--quick", action="store_true", help="a small run (200 cases)")
    parser.add_argument("--real", action="store_true",
                        help="throwaway PostgreSQL and Redis servers instead of the defaults")
    parser.add_argument("--seed", type=int, default=None, help="a fixed seed, to replay a run")
    parser.add_argument("--targets", default=",".join(SHARES))
    options = parser.parse_args()
    total = 200 if options.quick else options.cases
    chosen = [name for name in options.targets.split(",") if name]
    shares = {name: SHARES[name] for name in chosen}
    # Nothing printed: the ErrorLog handler of each target keeps what matters.
    logging.getLogger().setLevel(logging.WARNING)
    print(f"fuzzing: {total} cases, {'PostgreSQL + Redis' if options.real else 'embedded'}",
          flush=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        apps = Apps(Path(folder), options.real)
        try:
            for name in chosen:
                cases = max(1, round(total * shares[name] / sum(shares.values())))
                started = time.perf_counter()
                if name == "catalogue":
                    findings, outcomes = catalogue(loop, cases, apps, options.seed)
                    report(name, findings, time.perf_counter() - started,
                           ", ".join(f"{key}: {count}" for key, count in sorted(outcomes.items())))
                else:
                    findings = conversation(loop, name, cases, apps, options.seed)
                    report(name, findings, time.perf_counter() - started)
                problems.extend(f"{name}: {problem}" for problem in findings.problems)
        finally:
            loop.run_until_complete(apps.close())
            apps.stop_servers()
            loop.close()
    for problem in problems[:20]:
        print("  " + problem[:400])
    if len(problems) > 20:
        print(f"  ... and {len(problems) - 20} more")
    sys.exit(1 if problems else 0)



if __name__ == "__main__":
    main()
