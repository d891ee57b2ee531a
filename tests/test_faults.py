"""Faults inside one process, with nothing lost: Redis restarted, PostgreSQL restarted, and the
platforms answering 429 and 5xx for a while, while people write and broadcasts go out.

Each server that is restarted here is the test's own (tests/servers.py), never the session's."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.channels.telegram import SEND_RETRY
from bot.i18n import FSI, PDI
from bot.worker import OutboxWorker
from storage.models import Contact, OutboxMessage, OutboxStatus, utcnow
from storage.outbox import Outbox
from storage.state import State, connect_redis
from tests.conftest import AppFactory, ChatFactory
from tests.conftest import _create_pg_database as create_pg_database
from tests.conftest import _loaded as load_sample
from tests.fakes.telegram import FakeTelegram
from tests.platforms import TelegramFactory, WhatsAppFactory
from tests.servers import RunningServer, start_postgres, start_redis

AMINA, KARIM = 2001, 2002
YOUSSEF = "212600000031"
TEXT = {"fr": "Le salon ouvre à 10:00.", "ar": "يفتح المعرض على الساعة 10:00."}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RunningServer]:
    """A Redis server of this test alone, which it may stop and restart."""
    server = start_redis(tmp_path)
    yield server
    server.stop()


async def restart(server: RunningServer) -> None:
    await asyncio.to_thread(server.restart)


async def halt(server: RunningServer) -> None:
    await asyncio.to_thread(server.halt)


async def add_contacts(app: App, channel: str, user_ids: list[str]) -> None:
    async with app.sessions() as session, session.begin():
        session.add_all(Contact(channel=channel, user_id=user_id,
                                language="ar" if index % 2 else "fr", last_inbound_at=utcnow())
                        for index, user_id in enumerate(user_ids))


async def broadcast(app: App) -> int:
    """A broadcast to everyone, sent at once (urgent: not held by quiet hours); its id."""
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    broadcast_id, _count = await Outbox(app.sessions).queue_broadcast(
        fair.id, "all", TEXT, utcnow(), urgent=True)
    return broadcast_id


async def statuses(app: App, broadcast_id: int) -> dict[str, int]:
    async with app.sessions() as session:
        rows = (await session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(OutboxMessage.status))).all()
    return {status.value: count for status, count in rows}


async def until_sent(app: App, broadcast_id: int, count: int) -> None:
    """Wait (generously) until the broadcast's `count` rows are recorded as sent."""
    async with asyncio.timeout(60):
        while True:
            if (await statuses(app, broadcast_id)).get(OutboxStatus.SENT.value, 0) >= count:
                return
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_worker(app: App) -> AsyncIterator[OutboxWorker]:
    """The outbox worker of `app`, running as `tadamon run` runs it."""
    worker = OutboxWorker(app)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# ------------------------------------------------------------------------------- Redis


async def test_the_first_redis_commands_after_a_restart_succeed(
        own_redis: RunningServer) -> None:
    """Every pooled connection died with the server; none of the commands after its restart
    fails for it (each would be a message handled without dedupe or state)."""
    redis = connect_redis(own_redis.url)
    state = State(redis)
    try:
        await asyncio.gather(*(state.save_session("web", f"p{n}", {"n": n}) for n in range(8)))
        await restart(own_redis)
        for n in range(8):
            assert await state.load_session("web", f"p{n}") == {}  # no persistence
        async with state.turn("web", "p1", "m-1") as turn:  # its Lua script is loaded again
            turn.session = {"n": 1}
        assert await state.load_session("web", "p1") == {"n": 1}
    finally:
        await redis.aclose(close_connection_pool=True)


def troubles(caplog: pytest.LogCaptureFixture, since: int) -> list[str]:
    """What the service logged as a warning or an error since record `since`."""
    return [f"{record.name}: {record.getMessage()}" for record in caplog.records[since:]
            if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_telegram_comes_back_by_itself_after_a_redis_restart(
        make_telegram: TelegramFactory, own_redis: RunningServer, mode: str,
        caplog: pytest.LogCaptureFixture) -> None:
    tg = await make_telegram(mode, redis_url=own_redis.url)
    assert "Stand A12" in await tg.say(AMINA, "stand A12")

    await halt(own_redis)
    if mode == "webhook":
        # The update cannot be kept: 503, so that Telegram delivers it again, never a 200
        # that would drop it.
        update = tg.fake.message(KARIM, "السلام عليكم، فين كاين الستاند A12؟",
                                 language_code="ar")
        assert await tg.fake.push(update) == 503
        await restart(own_redis)
        before = len(tg.fake.calls_of("sendMessage", KARIM))
        assert await tg.fake.push(update) == 200  # Telegram's redelivery
        answer = "\n".join(await tg.settle(KARIM, before))
    else:
        # Polled updates are answered meanwhile, without the conversation's state.
        answer = await tg.say(KARIM, "السلام عليكم، فين كاين الستاند A12؟", language_code="ar")
        await restart(own_redis)
    assert f"الرواق {FSI}A12{PDI}" in answer
    back = len(caplog.records)

    # After the restart (an empty Redis: no stream, no consumer group, no scripts, every
    # pooled connection dead) the service goes on as before, without a restart of the app;
    # a webhook update delivered twice is answered once: dedupe, lock and state are back.
    for user, text in ((AMINA, "b 7"), (KARIM, "a 18"), (AMINA, "/lang")):
        update = tg.fake.message(user, text, language_code="ar" if user == KARIM else "fr")
        before = len(tg.fake.calls_of("sendMessage", user))
        await tg.fake.push(update)
        await tg.settle(user, before)
        if mode == "webhook":
            await tg.fake.push(update)
            await tg.channel.idle()
    assert len([text for text in tg.fake.texts(AMINA) if "Stand B7" in text]) == 1
    assert len([text for text in tg.fake.texts(KARIM) if f"{FSI}A18{PDI}" in text]) == 1
    assert "Français" in tg.labels(AMINA)
    assert "Langue choisie\u202f: français." in await tg.tap(AMINA, "Français")
    assert troubles(caplog, back) == []


async def test_whatsapp_webhook_refused_while_redis_is_down_is_answered_once_back(
        make_whatsapp: WhatsAppFactory, own_redis: RunningServer) -> None:
    wa = await make_whatsapp(redis_url=own_redis.url)
    assert "Stand A12" in await wa.say(YOUSSEF, "stand A12")

    await halt(own_redis)
    envelope = wa.fake.text_message(YOUSSEF, "Bonjour, où est le stand B7 ?")
    assert await wa.fake.post_webhook(wa.url, envelope) == 503  # Meta retries it later
    await restart(own_redis)
    answer = await wa.post(envelope, YOUSSEF)  # Meta's retry: 200, and answered
    assert "Stand B7" in answer
    assert "Stand A18" in await wa.say(YOUSSEF, "a18")
    # Once each: the refused delivery was not half-handled.
    answered = [call.text for call in wa.fake.messages(YOUSSEF) if "Stand B7" in (call.text or "")]
    assert len(answered) == 1


async def test_web_chat_answers_through_a_redis_restart_and_keeps_registrations(
        make_chat: ChatFactory, own_redis: RunningServer) -> None:
    chat = await make_chat(redis_url=own_redis.url)
    await chat("amina", "Bonjour, je veux m'inscrire à un atelier")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    registered = await chat.tap("amina", "S'inscrire")
    assert "Inscription confirmée" in registered.text
    await chat("karim", "تقييم")
    rated = await chat.tap("karim", "rate:5")
    assert "شكرًا على تقييمك" in rated.text

    await halt(own_redis)
    # Sessions are known to SQL; the answer comes without the conversation's state.
    down = await chat("karim", "A12")
    assert down.status == 200
    assert f"الرواق {FSI}A12{PDI}" in down.text
    await restart(own_redis)

    mine = await chat("amina", "mes ateliers")
    assert "Techniques de marketing" in mine.text
    assert (await chat("karim", "B7")).mentions("B7")
    karim = await chat.app.engine.contacts.get("web", chat.user_id("karim"))
    assert karim is not None
    assert [row["rating"] for row in await chat.app.engine.feedback.for_contact(karim.id)] == [5]


async def test_outbox_worker_goes_on_sending_after_a_redis_restart(
        make_app: AppFactory, own_redis: RunningServer) -> None:
    async with FakeTelegram() as fake:
        app = await make_app(redis_url=own_redis.url, telegram_token=fake.token,
                             telegram_api_base=fake.base_url)
        people = [str(3000 + index) for index in range(6)]
        await add_contacts(app, "telegram", people)
        async with running_worker(app):
            first = await broadcast(app)
            await until_sent(app, first, len(people))
            await restart(own_redis)  # the rate limiter's script and buckets are gone
            second = await broadcast(app)
            await until_sent(app, second, len(people))
            # Queued while Redis is down: the worker waits for its rate limiter rather than
            # take the rows and spend an attempt of each on the outage.
            await halt(own_redis)
            third = await broadcast(app)
            await asyncio.sleep(1.5)  # a few rounds of the worker's loop
            await restart(own_redis)
            await until_sent(app, third, len(people))
        per_chat = Counter(call.chat_id for call in fake.calls_of("sendMessage"))
        assert per_chat == {int(person): 3 for person in people}
        async with app.sessions() as session:
            attempts = set(await session.scalars(select(OutboxMessage.attempts).where(
                OutboxMessage.broadcast_id == third)))
        assert attempts == {1}


# -------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A PostgreSQL server of this module alone, which its tests stop and restart."""
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_templates() -> dict[str, str]:
    return {}


@pytest.fixture
async def own_database(own_postgres: RunningServer, own_templates: dict[str, str]) -> str:
    """A database with the sample fair on the module's own server (copied from a template)."""
    if "sample" not in own_templates:
        url = await create_pg_database(own_postgres)
        await load_sample(url)
        own_templates["sample"] = url.rsplit("/", 1)[1]
    return await create_pg_database(own_postgres, own_templates["sample"])


async def test_telegram_apologizes_while_postgresql_is_down_then_recovers_by_itself(
        make_telegram: TelegramFactory, own_postgres: RunningServer, own_database: str,
        caplog: pytest.LogCaptureFixture) -> None:
    tg = await make_telegram("webhook", database_url=own_database)
    assert "Stand A12" in await tg.say(AMINA, "stand A12")
    await tg.say(KARIM, "السلام عليكم", language_code="ar")

    await halt(own_postgres)
    # Someone new, and someone known asking for what needs the database: each is told, in
    # their language, that the service is briefly unavailable.
    newcomer = await tg.say(3003, "Bonjour, je cherche les ateliers", language_code="fr")
    assert "le service est momentanément indisponible" in newcomer
    mine = await tg.say(KARIM, "ورشاتي", language_code="ar")
    assert "الخدمة غير متاحة مؤقتًا" in mine
    await restart(own_postgres)
    back = len(caplog.records)

    # The first messages after the restart are answered as usual: no stale connection errs.
    assert "Stand B7" in await tg.say(3003, "b 7")
    assert f"{FSI}A18{PDI}" in await tg.say(KARIM, "a 18", language_code="ar")
    assert "ورشة" in await tg.say(KARIM, "ورشاتي", language_code="ar")
    assert troubles(caplog, back) == []


async def test_outbox_worker_survives_a_postgresql_restart_mid_broadcast(
        make_app: AppFactory, own_postgres: RunningServer, own_database: str) -> None:
    async with FakeTelegram() as fake:
        app = await make_app(database_url=own_database, telegram_token=fake.token,
                             telegram_api_base=fake.base_url, telegram_rate=20)
        people = [str(4000 + index) for index in range(40)]
        await add_contacts(app, "telegram", people)
        async with running_worker(app):
            broadcast_id = await broadcast(app)
            await fake.wait_for("sendMessage", count=5, timeout=30)
            await halt(own_postgres)
            await fake.wait_for("sendMessage", count=15, timeout=30)  # sending goes on
            await restart(own_postgres)
            await until_sent(app, broadcast_id, len(people))
            second = await broadcast(app)  # and the worker goes on claiming
            await until_sent(app, second, len(people))
        per_chat = Counter(call.chat_id for call in fake.calls_of("sendMessage"))
        assert per_chat == {int(person): 2 for person in people}  # none lost, none twice


async def test_a_delivery_status_kept_while_postgresql_is_down_is_recorded_once_back(
        make_whatsapp: WhatsAppFactory, own_postgres: RunningServer, own_database: str) -> None:
    """Meta's "read" report of a broadcast message arrives while the database is away: it was
    accepted (200), so it is not dropped; it is recorded once the database is back."""
    wa = await make_whatsapp(database_url=own_database)
    await add_contacts(wa.app, "whatsapp", [YOUSSEF])
    broadcast_id = await broadcast(wa.app)
    await OutboxWorker(wa.app).drain()
    async with wa.app.sessions() as session:
        row = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.broadcast_id == broadcast_id))).one()
    assert row.platform_message_id is not None and row.delivery_status == "sent"

    await halt(own_postgres)
    read = wa.fake.status(row.platform_message_id, "read", YOUSSEF)
    assert await wa.fake.post_webhook(wa.url, read) == 200
    await restart(own_postgres)
    await wa.channel.idle()
    async with wa.app.sessions() as session:
        assert await session.scalar(select(OutboxMessage.delivery_status).where(
            OutboxMessage.id == row.id)) == "read"


def blocks_the_bot(fake: FakeTelegram, user_id: int) -> dict[str, Any]:
    """Telegram's my_chat_member update: the person blocked the bot in their private chat."""
    bot = {"id": fake.bot_id, "is_bot": True, "first_name": "Tadamon", "username": fake.username}
    person = {"id": user_id, "is_bot": False, "first_name": "Amina"}
    return {"update_id": fake.next_update_id(), "my_chat_member": {
        "chat": {"id": user_id, "first_name": "Amina", "type": "private"}, "from": person,
        "date": int(time.time()), "old_chat_member": {"status": "member", "user": bot},
        "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0}}}


async def test_a_block_reported_while_postgresql_is_down_is_recorded_once_back(
        make_telegram: TelegramFactory, own_postgres: RunningServer, own_database: str) -> None:
    """Amina blocks the bot while the database is away: the update was accepted (200), so it
    is recorded once the database is back, and no broadcast is sent to her."""
    tg = await make_telegram("webhook", database_url=own_database)
    await tg.say(AMINA, "bonjour")
    await halt(own_postgres)
    assert await tg.fake.push(blocks_the_bot(tg.fake, AMINA)) == 200
    await restart(own_postgres)
    await tg.channel.idle()
    amina = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert amina is not None and amina.unreachable


# --------------------------------------------------------------------- the platforms


async def test_telegram_refusing_a_persons_messages_past_every_retry_loses_none(
        make_telegram: TelegramFactory) -> None:
    """Telegram answers 429 to every attempt at one person's messages, more times than the
    retries allow: the reply to what someone just wrote is tried until it goes, and a broadcast
    message waits for a later pass (as after a glitch); neither is given up."""
    tg = await make_telegram("webhook", telegram_rate=1000)
    fake, app = tg.fake, tg.app
    await add_contacts(app, "telegram", ["5001", "5002", "5003"])
    broadcast_id = await broadcast(app)
    refusals = SEND_RETRY.attempts + 1
    fake.fail("sendMessage", status=429, retry_after=1, chat_id=5002, times=refusals)
    fake.fail("sendMessage", status=429, retry_after=1, chat_id=AMINA, times=refusals + 1)
    assert await fake.send_text(AMINA, "Bonjour ! Où se trouve le stand A12 ?") == 200
    now = utcnow()
    await OutboxWorker(app, clock=lambda: now).drain()
    assert await statuses(app, broadcast_id) == {"sent": 2, "pending": 1}
    await tg.channel.idle()
    later = now + dt.timedelta(minutes=5)
    await OutboxWorker(app, clock=lambda: later).drain()
    assert await statuses(app, broadcast_id) == {"sent": 3}
    sent = delivered(fake.calls_of("sendMessage"))
    assert {chat: sent[chat] for chat in (5001, 5002, 5003)} == {5001: 1, 5002: 1, 5003: 1}
    amina = fake.calls_of("sendMessage", AMINA)
    assert answered_once(amina)
    assert any("Stand A12" in (call.text or "") for call in amina if call.status == 200)


def delivered(calls: list[Any]) -> Counter[Any]:
    """How many messages each person was sent: the calls the platform took (answered 200)."""
    return Counter(call.chat_id if hasattr(call, "chat_id") else call.to
                   for call in calls if call.status == 200)


def answered_once(calls: list[Any], times: int = 1) -> bool:
    """Whether every message tried (the answer may be several) went out `times` times, no
    more: refused tries do not count, and none was left out."""
    tried = {call.text for call in calls}
    return Counter(call.text for call in calls if call.status == 200) == dict.fromkeys(
        tried, times)


async def until(check: Callable[[], bool]) -> None:
    """Wait (generously) until `check()` holds."""
    async with asyncio.timeout(60):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def for_a_while(seconds: float, arm: Callable[[], None], heal: Callable[[], None]
                      ) -> None:
    """A fault that lasts `seconds`: armed now, healed then."""
    arm()
    await asyncio.sleep(seconds)
    heal()


async def test_telegram_429_and_5xx_for_a_while_lose_and_repeat_nothing(
        make_telegram: TelegramFactory) -> None:
    tg = await make_telegram("webhook")
    fake, app = tg.fake, tg.app
    people = [str(6000 + index) for index in range(12)]
    await add_contacts(app, "telegram", people)
    answered = {user: len(fake.calls_of("sendMessage", user)) for user in (AMINA, KARIM)}
    async with running_worker(app):
        # Server errors for a second: a broadcast and a reply go out once Telegram is back.
        errors = asyncio.create_task(for_a_while(
            1, lambda: fake.fail("sendMessage", status=502, times=10**6), fake.heal))
        first = await broadcast(app)
        assert await fake.send_text(AMINA, "stand A12") == 200
        await errors
        # Too many requests, retry after 2 s: a broadcast, and a reply to someone who writes
        # meanwhile, which the channel's pause holds rather than sends into the 429s.
        flood = asyncio.create_task(for_a_while(
            1, lambda: fake.fail("sendMessage", status=429, retry_after=2, times=10**6),
            fake.heal))
        second = await broadcast(app)
        await until(lambda: any(call.status == 429 for call in fake.calls_of("sendMessage")))
        assert await fake.send_text(KARIM, "السلام عليكم، بغيت نعرف فين الستاند B7",
                                    language_code="ar") == 200
        await flood
        await until_sent(app, first, len(people))
        await until_sent(app, second, len(people))
        await until(lambda: all(delivered(fake.calls_of("sendMessage", user))
                                for user in (AMINA, KARIM)))
        await tg.channel.idle()
    sent = delivered(fake.calls_of("sendMessage"))
    assert {person: sent[int(person)] for person in people} == {p: 2 for p in people}
    amina = fake.calls_of("sendMessage", AMINA)[answered[AMINA]:]
    assert answered_once(amina) and any("Stand A12" in (call.text or "") for call in amina)
    karim = fake.calls_of("sendMessage", KARIM)[answered[KARIM]:]
    assert answered_once(karim) and any(f"{FSI}B7{PDI}" in (call.text or "") for call in karim)
    assert all(call.status == 200 for call in karim)  # held by the pause, never refused


async def test_whatsapp_throughput_and_server_errors_for_a_while_lose_and_repeat_nothing(
        make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    fake, app = wa.fake, wa.app
    people = [f"2126000002{index:02d}" for index in range(8)]
    await add_contacts(app, "whatsapp", people)
    async with running_worker(app):
        # 500 "Something went wrong", then 429 "Rate limit hit"
        marks = []
        for rounds, code in enumerate((131000, 130429), start=1):
            marks.append(len(fake.messages(YOUSSEF)))
            fault = asyncio.create_task(for_a_while(
                1, lambda code=code: fake.fail(code, times=10**6), fake.heal))
            broadcast_id = await broadcast(app)
            envelope = fake.text_message(YOUSSEF, "Bonjour, où se trouve le stand B7 ?")
            assert await fake.post_webhook(wa.url, envelope) == 200
            await fault
            await until_sent(app, broadcast_id, len(people))
            await until(lambda rounds=rounds: sum(
                call.status == 200 and "Stand B7" in (call.text or "")
                for call in fake.messages(YOUSSEF)) >= rounds)
            await wa.channel.idle()
    sent = delivered(fake.messages())
    assert {person: sent[person] for person in people} == {person: 2 for person in people}
    calls = fake.messages(YOUSSEF)
    for start, end in ((marks[0], marks[1]), (marks[1], len(calls))):
        answer = [call for call in calls[start:end] if call.text not in TEXT.values()]
        assert answered_once(answer)
