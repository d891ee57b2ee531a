"""What the faster Telegram path keeps: every count, answer and order, with fewer round trips."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import database
from storage.catalogue import active_fair
from storage.feedback import FeedbackRepository
from storage.models import StandCardView

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
    """Sixty cards shown at once: every view is counted, by stand and day, each counted before
    its card is answered, and they share a handful of writes instead of one each."""
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
    async with sessions() as session:
        rows = (await session.execute(
            select(StandCardView.stand_number, StandCardView.day, StandCardView.views)
            .order_by(StandCardView.stand_number, StandCardView.day))).all()
    assert [tuple(row) for row in rows] == [
        ("A12", day, 30), ("A12", day + dt.timedelta(days=1), 1), ("B7", day, 15),
        ("C3", day, 15)]
    assert len(inserts) <= 3
