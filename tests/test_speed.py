"""What the faster Telegram path keeps: every count, answer and order, with fewer round trips."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import App
from bot.channels.intake import InboxReader
from bot.channels.ordering import PerPersonQueue
from bot.channels.quota import ChannelQuota
from bot.settings import Settings
from storage import database, keys
from storage.catalogue import active_fair
from storage.feedback import FeedbackRepository
from storage.inbox import Inbox
from storage.models import StandCardView
from storage.state import State, connect_redis

KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sample_engine(
    make_database: Callable[..., Awaitable[str]], request: pytest.FixtureRequest
) -> AsyncIterator[Callable[[str], Awaitable[AsyncEngine]]]:
    made: list[AsyncEngine] = []

    async def make(kind: str) -> AsyncEngine:
        engine = database.create_engine(await make_database(kind, sample=True))
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
async def test_card_views_at_once_are_all_counted_in_few_writes(
    kind: str, sample_engine: Callable[[str], Awaitable[AsyncEngine]]
) -> None:
    """Sixty cards shown at once: every view is counted, by stand and day, and they share a
    handful of writes instead of one each (here one: no answer waits for them)."""
    engine = await sample_engine(kind)
    sessions = database.create_sessionmaker(engine)
    async with sessions() as session:
        fair = await active_fair(session)
    assert fair is not None
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO STAND_CARD_VIEWS"):
            inserts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    feedback = FeedbackRepository(sessions)
    day = dt.date(2026, 12, 13)
    stands = ["A12", "B7", "A12", "C3"] * 15
    await asyncio.gather(*(feedback.count_view(fair.id, number, day) for number in stands))
    await feedback.count_view(fair.id, "A12", day + dt.timedelta(days=1))
    await feedback.flush()
    async with sessions() as session:
        rows = (await session.execute(
            select(StandCardView.stand_number, StandCardView.day, StandCardView.views)
            .order_by(StandCardView.stand_number, StandCardView.day))).all()
    assert [tuple(row) for row in rows] == [
        ("A12", day, 30), ("A12", day + dt.timedelta(days=1), 1), ("B7", day, 15),
        ("C3", day, 15)]
    assert len(inserts) == 1


async def _command_calls(client: Any, *names: str) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


async def test_replies_sent_at_once_all_count_against_the_channels_rate(redis_url: str) -> None:
    """Forty replies at once: the channel's send window lets no more than its 30 go in any
    second, and each takes its token of the bucket, so bulk sends booked after them wait."""
    client: Any = Redis.from_url(redis_url, decode_responses=True)
    try:
        quota = ChannelQuota(client, "telegram-speed-test", 30)
        let_go: list[float] = []

        async def reply() -> None:
            async with quota.sending():
                let_go.append(time.monotonic())

        started = time.monotonic()
        await asyncio.gather(*(reply() for _ in range(40)))
        elapsed = time.monotonic() - started
        let_go.sort()
        assert let_go[30] - let_go[0] >= 0.99  # the 31st waited for the first's second
        name, rate, _burst = quota.bucket
        tokens = float(await client.hget(keys.rate_bucket(name), "tokens"))
        assert tokens <= 1 - 40 + rate * elapsed
    finally:
        await client.aclose()


async def test_inbox_entries_handled_at_once_are_all_acknowledged_together(
    redis_url: str,
) -> None:
    """Sixty webhook bodies kept in the inbox: each person's are handled in order, every one
    is acknowledged and dropped from the stream, in a few round trips instead of sixty."""
    client: Any = Redis.from_url(redis_url, decode_responses=True)
    handled: list[str] = []

    async def handle(item: str) -> None:
        await asyncio.sleep(0)
        handled.append(item)

    def events(body: str) -> list[tuple[str, str]]:
        return [(body.partition(":")[0], body)]

    inbox = Inbox(client, "telegram")
    reader = InboxReader(inbox, PerPersonQueue(handle), events)
    try:
        bodies = [f"p{person}:{number}" for number in range(6) for person in range(10)]
        for body in bodies:
            assert await reader.keep(body.encode())
        await client.config_resetstat()
        reader.start("test-inbox")
        await asyncio.wait_for(reader.idle(), 30)
        acknowledgements = await _command_calls(client, "xack")
        assert sorted(handled) == sorted(bodies)
        for person in range(10):
            assert [item for item in handled if item.startswith(f"p{person}:")] == [
                f"p{person}:{number}" for number in range(6)]
        assert await inbox.pending() == 0
        assert await client.xlen(inbox.stream) == 0
        assert acknowledgements <= 10
    finally:
        await reader.stop(5)
        await client.aclose()


async def test_the_embedded_redis_stand_in_serves_hundreds_of_turns_at_once() -> None:
    """Three hundred people writing at once to a process on the embedded defaults: each turn
    gets its conversation from the stand-in (it waits for a free connection instead of
    refusing past a hundred, which made the engine answer without dedupe, lock or session)."""
    state = State(connect_redis(None))
    try:
        for person in range(300):
            await state.save_session("telegram", str(person), {"v": 1, "lang": "ar"})

        async def one(person: int) -> str:
            async with state.turn("telegram", str(person), f"u{person}") as turn:
                await asyncio.sleep(0.01)
                return str(turn.session.get("lang"))

        languages = await asyncio.gather(*(one(person) for person in range(300)))
        assert languages == ["ar"] * 300
    finally:
        await state.redis.aclose()


async def test_views_counted_just_before_shutdown_are_written(
        make_database: Callable[..., Awaitable[str]]) -> None:
    """Card views wait a moment to be written together; stopping the bot writes them."""
    url = await make_database("sqlite", sample=True)
    app = App(Settings(_env_file=None, database_url=url, redis_url=None))  # type: ignore[call-arg]
    await app.prepare(load_sample=True)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    day = dt.date(2026, 12, 13)
    for number in ("A12", "A12", "B7"):
        await app.engine.feedback.count_view(fair.id, number, day)
    await app.close()
    engine = database.create_engine(url)
    try:
        async with async_sessionmaker(engine)() as session:
            rows = (await session.execute(
                select(StandCardView.stand_number, StandCardView.views)
                .order_by(StandCardView.stand_number))).all()
        assert [tuple(row) for row in rows] == [("A12", 2), ("B7", 1)]
    finally:
        await engine.dispose()
