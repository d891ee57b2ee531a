"""The deployment the README describes for a large fair, proved in a short form: 2 `tadamon run
--no-worker` behind a round-robin proxy, 2 `tadamon worker`, real PostgreSQL and Redis, Telegram
and WhatsApp webhooks from the fake platforms (tests/deployment.py). People chat in French,
Arabic, Darija and English while a broadcast goes to every contact and more people than seats
register for one workshop at once; then a bot process is killed (SIGKILL) with webhook bodies
in hand, and the other one answers them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from storage import keys
from tests.deployment import (
    Deployment,
    Visitors,
    scenario,
    telegram_person,
    whatsapp_person,
)
from tests.fakes.telegram import FakeTelegram
from tests.platforms import TelegramFactory

# Starting four processes that each load aiogram, SQLAlchemy and the classifier takes a while
# on a busy machine; nothing here is timed, this only bounds a hang.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
async def deployment() -> AsyncIterator[Deployment]:
    async with Deployment(telegram_rate=200.0) as running:
        yield running


async def test_every_update_answered_once_seats_exact_broadcast_complete(
        deployment: Deployment) -> None:
    result = await scenario(deployment, chatters=3, rounds=3, race_people=6, capacity=4,
                            broadcast_extra=15)

    tally = result.tally
    assert tally.sent == 6 * 3 + 6 * 2  # 6 people chatting, 6 opening a card and tapping
    assert tally.accepted == tally.sent
    assert not tally.lost, [(u.channel, u.person, u.what) for u in tally.lost]
    assert not tally.duplicated, [(u.person, u.what, u.answer) for u in tally.duplicated]
    assert not tally.apologized, [(u.person, u.what, u.answer) for u in tally.apologized]
    assert not tally.throttled, [(u.person, u.what) for u in tally.throttled]
    # Both bot processes took their share of the webhooks.
    assert all(count > 0 for count in deployment.proxy.forwarded.values())

    race = result.race
    assert race.confirmed == 4 and race.waiting == 2 and race.other_status == 0
    assert not race.no_button and not race.mismatched, (race.no_button, race.mismatched)

    broadcast = result.broadcast
    assert broadcast.recipients == 15 + 5  # every contact when it was queued
    assert broadcast.progress["sent"] == broadcast.recipients
    assert not broadcast.missing and not broadcast.repeated
    assert not deployment.problems()


async def pending_of(redis: Any, pid: int) -> int:
    """Webhook bodies taken and not yet finished by the consumers of process `pid`."""
    held = 0
    for channel in ("telegram", "whatsapp"):
        summary = await redis.xpending(keys.inbox(channel), keys.INBOX_GROUP)
        for consumer in (summary or {}).get("consumers") or []:
            if f"-{pid}-" in str(consumer["name"]):
                held += int(consumer["pending"])
    return held


async def test_a_killed_bot_process_bodies_are_answered_by_the_other(
        deployment: Deployment) -> None:
    assert deployment.app is not None
    redis = deployment.app.redis
    victim, survivor = deployment.bots
    assert victim.process is not None
    pid = victim.process.pid
    visitors = Visitors(deployment)
    held_at_kill = 0

    async def kill_when_holding() -> None:
        nonlocal held_at_kill
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held_at_kill = await pending_of(redis, pid)
            if held_at_kill:
                victim.kill()
                return
            await asyncio.sleep(0.002)

    killer = asyncio.create_task(kill_when_holding())
    people = [visitors.telegram_says(telegram_person(3, i), text, "fr")
              for i, text in enumerate(["où sont les toilettes ?", "merci", "A12"] * 4)]
    people += [visitors.whatsapp_says(whatsapp_person(3, i), text)
               for i, text in enumerate(["fin kayn l3sel", "شكرا", "je voudrais voir le "
                                         "programme des ateliers"] * 4)]
    await asyncio.gather(*people)
    await killer
    assert not victim.alive and held_at_kill > 0

    # Everyone got an answer, once, though some of them were in the killed process's hands.
    tally = visitors.tally()
    assert tally.sent == tally.accepted == 24
    assert not tally.lost, [(u.channel, u.person, u.what) for u in tally.lost]
    assert not tally.duplicated, [(u.person, u.what, u.answer) for u in tally.duplicated]
    assert not tally.apologized, [(u.person, u.what, u.answer) for u in tally.apologized]
    assert not tally.throttled, [(u.person, u.what) for u in tally.throttled]
    assert survivor.alive
    # Nothing is left in the dead process's hands (bodies it had answered but not yet
    # acknowledged are taken over too), and it was taken over once its heartbeat stopped (the
    # consumer is gone) well before the minute a stuck consumer is given.
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < keys.INBOX_CLAIM_IDLE / 2:
        consumers = [str(item["name"]) for channel in ("telegram", "whatsapp")
                     for item in await redis.xinfo_consumers(keys.inbox(channel),
                                                             keys.INBOX_GROUP)]
        if not [name for name in consumers if f"-{pid}-" in name]:
            break
        await asyncio.sleep(0.2)
    assert await pending_of(redis, pid) == 0
    assert not [name for name in consumers if f"-{pid}-" in name]


async def test_bodies_left_by_a_dead_process_are_answered_even_if_marked_handled(
        redis_url: str, make_telegram: TelegramFactory) -> None:
    """What a process killed with webhook bodies in hand leaves in Redis, made by hand: one
    body just taken, one handled and marked so, its answer not sent yet, its person's lock
    still held. Another process answers both, neither with "please wait"."""
    builder = FakeTelegram()
    taken = builder.message(900_001, "où sont les toilettes ?", first_name="Amina")
    handled = builder.message(900_002, "A12", first_name="Karim")
    client: Any = Redis.from_url(redis_url, decode_responses=True)
    stream = keys.inbox("telegram")
    await client.xgroup_create(stream, keys.INBOX_GROUP, id="0", mkstream=True)
    for update in (taken, handled):
        await client.xadd(stream, {"body": json.dumps(update)})
    await client.xreadgroup(keys.INBOX_GROUP, "killed-4242-0a1b2c", {stream: ">"}, count=10)
    await client.set(keys.dedupe("telegram", f"u{handled['update_id']}"), "1")
    await client.set(keys.user_lock("telegram", "900002"), "killed-token",
                     px=int(keys.USER_LOCK_TTL * 1000))

    tg = await make_telegram("webhook")
    await tg.fake.wait_for("sendMessage", 900_001, timeout=60)
    await tg.fake.wait_for("sendMessage", 900_002, timeout=60)
    await tg.channel.idle()
    assert "toilettes" in "\n".join(tg.fake.texts(900_001)).lower()
    assert "Stand A12" in "\n".join(tg.fake.texts(900_002))
    assert not any("réponds encore" in text for text in tg.fake.texts(900_002))
    assert await client.xlen(stream) == 0
    assert [item["name"] for item in await client.xinfo_consumers(stream, keys.INBOX_GROUP)] \
        == [tg.channel.inbox.consumer]
    await client.aclose()
