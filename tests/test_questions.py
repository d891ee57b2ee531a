"""What people asked: intents counted, questions not understood stored folded and without
personal data, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import database
from storage.models import UnansweredQuestion
from storage.questions import QUESTION_MAX, IntentCount, QuestionLog, clean_question
from storage.repositories import CatalogueRepository, Sessions
from tests.conftest import DatabaseFactory

BOTH = pytest.mark.parametrize("kind", ["sqlite", "postgres"])
DAY = dt.date(2026, 12, 13)
NEXT_DAY = dt.date(2026, 12, 14)
AT = dt.datetime(2026, 12, 13, 10, 30, tzinfo=dt.UTC)

Opened = tuple[Sessions, QuestionLog, int]
OpenLog = Callable[[str], Awaitable[Opened]]


@pytest.fixture
async def open_log(make_database: DatabaseFactory) -> AsyncIterator[OpenLog]:
    """`await open_log("sqlite" | "postgres")` -> (sessions, QuestionLog, the sample fair's id)."""
    engines: list[AsyncEngine] = []

    async def make(kind: str) -> Opened:
        engine = database.create_engine(await make_database(kind))
        engines.append(engine)
        sessions = database.create_sessionmaker(engine)
        fair = await CatalogueRepository(sessions).fair()
        assert fair is not None
        return sessions, QuestionLog(sessions), fair.id

    yield make
    for engine in engines:
        await engine.dispose()


async def _stored_questions(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        return list(await session.scalars(select(UnansweredQuestion.question)))


@pytest.mark.parametrize(("typed", "stored"), [
    ("Où sont les TOILETTES ?", "ou sont les toilettes"),
    ("wach kayn parking 9rib ?", "wach kayn parking 9rib"),
    ("أين توجد قاعة الصلاة؟", "اين توجد قاعه الصلاه"),
    ("Appelez-moi au 06 12 34 56 78 svp", "appelez moi au <number> svp"),
    ("mon numéro : +212 6-12-34-56-78", "mon numero <number>"),
    ("رقمي ٠٦١٢٣٤٥٦٧٨ عافاك", "رقمي <number> عافاك"),
    ("écrivez à amina.benali@gmail.com", "ecrivez a <email>"),
    ("voir https://exemple.ma/programme?id=4 ou www.tadamon.ma", "voir <link> ou <link>"),
    ("demande à @karim_77", "demande a <user>"),
    ("code 1234567 reçu", "code <number> recu"),
    ("je m'appelle Amina Benali et je cherche le stand",
     "je m appelle <name> et je cherche le stand"),
    ("smiti Youssef, bghit ntsjl", "smiti <name> ntsjl"),
    ("A12 et 2 ateliers à 10h30", "a12 et 2 ateliers a 10h30"),
    ("3afak fin kayn 7anout dyal zit", "3afak fin kayn 7anout dyal zit"),
    ("?!…", None),
    ("👍", None),
])
def test_questions_are_folded_and_cleaned(typed: str, stored: str | None) -> None:
    assert clean_question(typed) == stored


def test_long_questions_are_cut_without_leaking_a_number() -> None:
    cleaned = clean_question("bonjour " * 30 + "0612345678 " + "merci " * 20)
    assert cleaned is not None
    assert len(cleaned) <= QUESTION_MAX
    assert not any(char.isdigit() for char in cleaned)
    near_the_end = clean_question("x" * 195 + " 0612345678")
    assert near_the_end == "x" * 195  # the placeholder would be cut: left out, never digits


@BOTH
async def test_record_counts_intents_and_unanswered_questions(
    open_log: OpenLog, kind: str
) -> None:
    _sessions, log, fair_id = await open_log(kind)
    await log.record(fair_id, DAY, "telegram", "fr", "info", None)
    await log.record(fair_id, DAY, "telegram", "fr", "info", None)
    await log.record(fair_id, DAY, "web", "ar", "unknown", "هل يوجد واي فاي؟", now=AT)
    later = AT + dt.timedelta(hours=2)
    await log.record(fair_id, DAY, "whatsapp", "ar", "unknown", "هل يوجد واي-فاي", now=later)
    await log.record(fair_id, DAY, "web", "fr", "unknown", "Quel temps fera-t-il ?", now=AT)
    await log.record(fair_id, NEXT_DAY, "web", "en", "unknown", "is there wifi?",
                     now=AT + dt.timedelta(days=1))
    await log.record(fair_id, NEXT_DAY, "web", None, "unknown", "🙂")  # counted, not stored
    await log.flush()  # the counts of understood texts are written a moment later

    assert await log.intent_counts(fair_id) == [
        IntentCount(DAY, "telegram", "fr", "info", 2),
        IntentCount(DAY, "web", "ar", "unknown", 1),
        IntentCount(DAY, "web", "fr", "unknown", 1),
        IntentCount(DAY, "whatsapp", "ar", "unknown", 1),
        IntentCount(NEXT_DAY, "web", "", "unknown", 1),
        IntentCount(NEXT_DAY, "web", "en", "unknown", 1),
    ]
    first_day = await log.top_questions(fair_id, DAY)
    assert [(item.question, item.count) for item in first_day] == [
        ("هل يوجد واي فاي", 2), ("quel temps fera t il", 1)]
    assert (first_day[0].first_seen, first_day[0].last_seen) == (AT, later)
    everything = await log.top_questions(fair_id, limit=None)
    assert [(item.question, item.count) for item in everything] == [
        ("هل يوجد واي فاي", 2), ("is there wifi", 1), ("quel temps fera t il", 1)]
    assert [item.question for item in await log.top_questions(fair_id, limit=1)] == [
        "هل يوجد واي فاي"]
    assert await log.top_questions(fair_id + 1) == []
    assert await log.intent_counts(fair_id + 1) == []


@BOTH
async def test_concurrent_records_count_exactly(open_log: OpenLog, kind: str) -> None:
    _sessions, log, fair_id = await open_log(kind)
    await asyncio.gather(*(
        log.record(fair_id, DAY, "whatsapp", "ar", "unknown", "fin kayn l wifi ?",
                   now=AT + dt.timedelta(seconds=index))
        for index in range(50)))
    await log.flush()
    assert await log.intent_counts(fair_id) == [IntentCount(DAY, "whatsapp", "ar", "unknown", 50)]
    [question] = await log.top_questions(fair_id, DAY)
    assert (question.question, question.count) == ("fin kayn l wifi", 50)
    assert question.first_seen == AT
    assert question.last_seen == AT + dt.timedelta(seconds=49)


@BOTH
async def test_a_stored_question_never_holds_a_phone_number_or_email(
    open_log: OpenLog, kind: str
) -> None:
    sessions, log, fair_id = await open_log(kind)
    for text in ("Rappelez-moi au 0612345678 pour l'atelier", "rappelez moi au 06.12.34.56.78",
                 "mail: fatima.zahra@example.ma, merci", "رقمي +212 661 23 45 67",
                 "call me on (0522) 12-34-56 please"):
        await log.record(fair_id, DAY, "web", "fr", "unknown", text)
    stored = await _stored_questions(sessions)
    assert sorted(stored) == sorted([
        "rappelez moi au <number> pour l atelier", "rappelez moi au <number>",
        "mail <email> merci", "رقمي <number>", "call me on <number> please"])
    for question in stored:
        assert not any(char.isdigit() for char in question), question
        assert "@" not in question and "example" not in question and "fatima" not in question


async def test_a_database_outage_loses_the_count_and_logs_no_question(
    make_database: DatabaseFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Counting is only a statistic: the person's message is answered anyway, and the log
    never holds what they wrote."""
    engine = database.create_engine(await make_database("sqlite", sample=False, migrated=False))
    try:
        log = QuestionLog(database.create_sessionmaker(engine))
        await log.record(1, DAY, "web", "fr", "unknown", "mon numéro 0612345678, Amina")
    finally:
        await engine.dispose()
    [record] = [item for item in caplog.records if item.name == "storage.questions"]
    assert record.getMessage() == "intent unknown on web not counted: database unavailable"
    assert "0612345678" not in caplog.text and "Amina" not in caplog.text
