"""Shared send-rate buckets, against the real Redis server and against the in-process stand-in."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator

import fakeredis
import pytest
from redis.asyncio import Redis

from storage import keys
from storage.ratelimit import RateLimiter

# Waits the script answers can only be shorter than the exact ones (time passes between calls,
# refilling the bucket), never longer. The rates below are slow, so that waits are seconds long
# and this much slack is still right on a slow, shared machine; nothing here sleeps them.
SLACK = 0.5


@pytest.fixture(params=["real", "fake"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """A RateLimiter on the real throwaway redis-server (flushed) or on fakeredis (flushed too)."""
    if request.param == "real":
        redis_url: str = request.getfixturevalue("redis_url")
        client: Redis = Redis.from_url(redis_url, decode_responses=True)
        await client.flushdb()
    else:
        client = fakeredis.FakeAsyncRedis(decode_responses=True)
        await client.flushall()  # fakeredis instances may share one in-process server
    try:
        yield RateLimiter(client)
    finally:
        await client.flushdb()  # its buckets would outlive the test by seconds
        await client.aclose()


async def test_fresh_bucket_grants_the_burst_then_books_a_place_in_the_queue(
    limiter: RateLimiter,
) -> None:
    """`burst` sends go at once; after that each one is booked 1/rate after the one before."""
    rate = 0.5
    waits = [await limiter.reserve("t", rate, burst=3) for _ in range(5)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 1 / rate - SLACK < waits[3] <= 1 / rate
    assert 1 / rate - SLACK < waits[4] - waits[3] <= 1 / rate + SLACK
    assert 2 / rate - 2 * SLACK < waits[4] <= 2 / rate


async def test_default_burst_is_one_second_of_sending(limiter: RateLimiter) -> None:
    """Without a burst, `rate` sends go at once (at least one, even below one per second)."""
    assert [await limiter.reserve("fast", 5.0) for _ in range(5)] == [0.0] * 5
    assert 0.0 < await limiter.reserve("fast", 5.0) <= 0.2

    assert await limiter.reserve("slow", 0.25) == 0.0
    assert 4.0 - SLACK < await limiter.reserve("slow", 0.25) <= 4.0


async def test_cost_takes_several_tokens(limiter: RateLimiter) -> None:
    """A send that costs 3 takes 3 tokens, and its debt delays the next send accordingly."""
    assert await limiter.reserve("c", 1.0, burst=4, cost=3) == 0.0
    # 1 token left: 2 more must come in, 2 s at 1 per second.
    assert 2.0 - SLACK < await limiter.reserve("c", 1.0, burst=4, cost=3) <= 2.0


async def test_concurrent_senders_stay_under_the_rate_in_every_second(
    limiter: RateLimiter,
) -> None:
    """Four senders sharing a 50/s bucket for two seconds: never more than 50/s together, and
    no one-second window holds more than rate + burst sends. Each send is counted at the time
    the limiter gave it (asked at t, told to wait w: t + w), not when a busy event loop woke
    the sender: how late timers fire is not the bucket's doing (the channels' send window
    answers for that, tests/test_send_window.py). No lower bound: no timed assertion."""
    rate, burst, duration = 50.0, 1.0, 2.0
    sent: list[float] = []
    start = time.monotonic()

    async def sender() -> None:
        while time.monotonic() - start < duration:
            asked = time.monotonic()
            wait = await limiter.reserve("t", rate, burst=burst)
            sent.append(asked + wait)
            await asyncio.sleep(wait)

    await asyncio.gather(*(sender() for _ in range(4)))

    sent.sort()
    in_time = [t for t in sent if t - start <= duration]
    expected = rate * duration + burst
    assert 0 < len(in_time) <= expected, (len(in_time), expected)
    busiest = max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent))
    assert busiest <= rate + burst, busiest


async def test_chat_bucket_holds_back_one_recipient_while_others_go_on(
    limiter: RateLimiter,
) -> None:
    """With the bot's bucket and one bucket per chat at 1/s, a second message to the same chat
    waits a second, while messages to other chats go at once; the bot's bucket counts them all."""
    bot = ("telegram", 50.0, None)

    def chat(name: str) -> tuple[str, float, float | None]:
        return (f"telegram:chat:{name}", 0.25, 1.0)

    assert await limiter.reserve_all([bot, chat("a")]) == 0.0
    second = await limiter.reserve_all([bot, chat("a")])
    assert 4.0 - SLACK < second <= 4.0
    third = await limiter.reserve_all([bot, chat("a")])
    assert 8.0 - 2 * SLACK < third <= 8.0

    others = await asyncio.gather(*(limiter.reserve_all([bot, chat(name)]) for name in "bcdef"))
    assert others == [0.0] * 5  # nobody else waits for "a"

    tokens = float(await limiter.redis.hget(keys.rate_bucket("telegram"), "tokens") or "nan")
    assert 50 - 8 <= tokens <= 50  # eight sends, refilled a little in between

    # acquire_all sleeps the longest wait: here the chat's (5/s), not the bot's.
    await limiter.acquire_all([bot, ("telegram:chat:g", 5.0, 1.0)])
    began = time.monotonic()
    await limiter.acquire_all([bot, ("telegram:chat:g", 5.0, 1.0)])
    assert time.monotonic() - began >= 0.2 - SLACK


async def test_buckets_are_independent_prefixed_and_expire(limiter: RateLimiter) -> None:
    """Each name is its own bucket, kept under `tadamon:rate:` for a little longer than it
    takes to fill up again."""
    assert await limiter.reserve("a", 2.0, burst=1) == 0.0
    assert await limiter.reserve("a", 2.0, burst=1) > 0.0
    assert await limiter.reserve("b", 2.0, burst=1) == 0.0

    redis = limiter.redis
    assert sorted([key async for key in redis.scan_iter("*")]) == [
        "tadamon:rate:a", "tadamon:rate:b"]
    assert keys.rate_bucket("a") == "tadamon:rate:a"
    state = await redis.hgetall("tadamon:rate:a")
    assert set(state) == {"tokens", "ts"}
    assert -1.0 <= float(state["tokens"]) < 0.0  # one send booked ahead
    # Full again after (1 - tokens) / rate <= 1 s; the key lives a second beyond that.
    assert 1000 < await redis.pttl("tadamon:rate:a") <= 2000
    assert 500 < await redis.pttl("tadamon:rate:b") <= 1500


async def test_script_is_loaded_again_after_a_flush(limiter: RateLimiter) -> None:
    """A Redis restart or SCRIPT FLUSH forgets the script; the next call loads it again."""
    assert await limiter.reserve("r", 1.0) == 0.0
    await limiter.redis.script_flush()
    assert await limiter.reserve("r", 1.0) > 0.0


async def test_nothing_to_reserve_and_bad_buckets(limiter: RateLimiter) -> None:
    """No bucket: no wait. A rate or burst that is not positive is a mistake, said at once."""
    assert await limiter.reserve_all([]) == 0.0
    await limiter.acquire_all([])
    with pytest.raises(ValueError):
        await limiter.reserve("x", 0.0)
    with pytest.raises(ValueError):
        await limiter.reserve("x", 1.0, burst=0.0)
    assert [key async for key in limiter.redis.scan_iter("*")] == []


async def test_in_order_a_recipients_wait_does_not_take_the_channels_place(
    limiter: RateLimiter,
) -> None:
    """In order, the recipient's bucket is asked first: when it holds the message back, the
    channel is not charged yet (nobody else loses a place in its second); when it does not,
    both are charged in the one call."""
    bot = ("whatsapp", 0.5, 2.0)
    person = ("whatsapp:to:212600000001", 0.25, 1.0)

    assert await limiter.reserve_in_order([person, bot]) == (0.0, 2)
    wait, charged = await limiter.reserve_in_order([person, bot])
    assert charged == 1 and 4.0 - SLACK < wait <= 4.0
    # the channel was charged once: one token of its two is left, and the next send is free
    tokens = float(await limiter.redis.hget(keys.rate_bucket("whatsapp"), "tokens") or "nan")
    assert 1.0 <= tokens <= 1.0 + SLACK
    assert await limiter.reserve_in_order([bot]) == (0.0, 1)
    # once its place is due, the person's message asks for the rest: now the channel waits
    wait, charged = await limiter.reserve_in_order([bot])
    assert charged == 1 and 2.0 - SLACK < wait <= 2.0
    assert await limiter.reserve_in_order([]) == (0.0, 0)


async def test_acquire_in_order_sleeps_for_each_bucket_in_turn(limiter: RateLimiter) -> None:
    """A message that waits for its recipient then for the channel sleeps for both, and the
    channel's bucket is charged once."""
    bot = ("telegram", 10.0, 1.0)
    person = ("telegram:chat:7", 5.0, 1.0)
    await limiter.acquire_in_order([person, bot])
    began = time.monotonic()
    await limiter.acquire_in_order([person, bot])  # 0.2 s for the chat, then the bot's bucket
    assert time.monotonic() - began >= 0.2 - SLACK / 10
    tokens = float(await limiter.redis.hget(keys.rate_bucket("telegram"), "tokens") or "nan")
    # charged after the chat's 0.2 s, when it had refilled: full (1) less this send
    assert tokens == 0.0


async def test_reserve_each_books_many_messages_in_one_call(limiter: RateLimiter) -> None:
    """A worker books a group of messages at once: each as `reserve_in_order` would, so the
    channel's places are spaced 1/rate apart and a recipient who comes twice waits, without
    taking a channel place before their own wait is over."""
    channel = ("telegram", 0.5, 1.0)
    recipients = [("telegram:chat:1", 0.25, 1.0), ("telegram:chat:2", 0.25, 1.0),
                  ("telegram:chat:1", 0.25, 1.0)]
    first, second, again = await limiter.reserve_each(channel, 3, recipients)
    assert first == (0.0, True)
    assert second.channel_charged and 2.0 - SLACK < second.wait <= 2.0
    assert not again.channel_charged and 4.0 - SLACK < again.wait <= 4.0  # chat 1's own second
    tokens = float(await limiter.redis.hget(keys.rate_bucket("telegram"), "tokens") or "nan")
    assert -1.0 <= tokens < -1.0 + SLACK  # charged for two messages, not three

    # a channel without recipient buckets (WhatsApp: one bucket for the number)
    number = ("whatsapp", 0.5, 2.0)
    waits = [booking.wait for booking in await limiter.reserve_each(number, 4)]
    assert waits[:2] == [0.0, 0.0]
    assert 2.0 - SLACK < waits[2] <= 2.0 and 4.0 - SLACK < waits[3] <= 4.0
    assert await limiter.reserve_each(number, 0) == []
    with pytest.raises(ValueError):
        await limiter.reserve_each(channel, 2, recipients)


async def test_try_take_refuses_without_booking_a_place(limiter: RateLimiter) -> None:
    """A limit, not a queue: past the burst each caller is told how long to wait, and being
    refused books nothing, so hammering does not push the next free token further away."""
    rate = 0.5
    assert [await limiter.try_take("sessions", rate, burst=2) for _ in range(2)] == [0.0, 0.0]
    refusals = [await limiter.try_take("sessions", rate, burst=2) for _ in range(5)]
    assert all(1 / rate - SLACK < wait <= 1 / rate for wait in refusals)
    assert await limiter.try_take("other", rate, burst=2) == 0.0
