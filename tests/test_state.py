"""Redis-held state, against the real Redis server and against the in-process stand-in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from storage import keys
from storage.batch import Pipelined
from storage.state import ChoicePages, State, UserBusy, connect_redis


@pytest.fixture(params=["real", "fake"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[State]:
    """A State on the real throwaway redis-server (flushed) or on fakeredis (flushed too)."""
    if request.param == "real":
        redis_url: str = request.getfixturevalue("redis_url")
        client: Redis = Redis.from_url(redis_url, decode_responses=True)
    else:
        client = connect_redis(None)
        await client.flushall()  # fakeredis instances may share one in-process server
    try:
        yield State(client)
    finally:
        await client.aclose()


async def _ttl(state: State, key: str) -> int:
    return int(await state.redis.ttl(key))


# ------------------------------------------------------------------------------- sessions


async def test_session_round_trip_keeps_arabic_and_expires(state: State) -> None:
    """A saved session loads back equal, Arabic included, and expires after SESSION_TTL."""
    data = {"flow": "feedback", "step": 2, "offered": ["ws:3", "ws:4"],
            "query": "زيت أركان", "name": "Coopérative Tifawin", "nested": {"ok": True}}
    await state.save_session("whatsapp", "212600000001", data)

    assert await state.load_session("whatsapp", "212600000001") == data
    raw = await state.redis.get(keys.session("whatsapp", "212600000001"))
    assert raw is not None and "زيت أركان" in raw  # stored readable, not \\u-escaped
    ttl = await _ttl(state, keys.session("whatsapp", "212600000001"))
    assert keys.SESSION_TTL - 60 <= ttl <= keys.SESSION_TTL

    # Sessions are per (channel, user): the same id on another channel is someone else.
    assert await state.load_session("telegram", "212600000001") == {}
    await state.save_session("whatsapp", "212600000001", {"flow": "menu"})
    assert await state.load_session("whatsapp", "212600000001") == {"flow": "menu"}


async def test_session_that_is_not_a_json_object_loads_empty(state: State) -> None:
    """Garbage or a non-object in the session key means a fresh conversation, not a crash."""
    for junk in ("{not json", "[1, 2]", "42", '"text"', "null"):
        await state.redis.set(keys.session("web", "s1"), junk)
        assert await state.load_session("web", "s1") == {}, junk
    assert await state.load_session("web", "never-seen") == {}


async def test_session_clear(state: State) -> None:
    """`clear_session` forgets the conversation of that person only."""
    await state.save_session("telegram", "1", {"flow": "stands"})
    await state.save_session("telegram", "2", {"flow": "workshops"})
    await state.clear_session("telegram", "1")
    assert await state.load_session("telegram", "1") == {}
    assert await state.redis.exists(keys.session("telegram", "1")) == 0
    assert await state.load_session("telegram", "2") == {"flow": "workshops"}
    await state.clear_session("telegram", "1")  # clearing twice is harmless


# ------------------------------------------------------------------------------- dedupe


async def test_first_delivery_once_per_channel_and_message(state: State) -> None:
    """A platform message id is new once; a redelivery is not; channels are independent."""
    assert await state.first_delivery("telegram", "1001") is True
    assert await state.first_delivery("telegram", "1001") is False
    assert await state.first_delivery("telegram", "1001") is False
    assert await state.first_delivery("whatsapp", "1001") is True
    assert await state.first_delivery("telegram", "1002") is True

    ttl = await _ttl(state, keys.dedupe("telegram", "1001"))
    assert keys.DEDUPE_TTL - 60 <= ttl <= keys.DEDUPE_TTL

    await state.forget_delivery("telegram", "1001")
    assert await state.first_delivery("telegram", "1001") is True
    assert await state.first_delivery("telegram", "1001") is False
    assert await state.first_delivery("whatsapp", "1001") is False


async def test_concurrent_deliveries_of_one_message_pass_once(state: State) -> None:
    """Twenty simultaneous redeliveries: exactly one is handled."""
    results = await asyncio.gather(
        *(state.first_delivery("whatsapp", "wamid.X") for _ in range(20)))
    assert results.count(True) == 1


# ------------------------------------------------------------------------------- turn: the lock


async def test_user_lock_serializes_one_persons_messages(state: State) -> None:
    """Two messages of the same person are handled one after the other, never interleaved."""
    events: list[str] = []

    async def handle(name: str) -> None:
        async with state.turn("web", "amina"):
            events.append(f"enter {name}")
            await asyncio.sleep(0.05)
            events.append(f"exit {name}")

    await asyncio.gather(handle("a"), handle("b"), handle("c"))

    assert len(events) == 6
    for index in range(0, 6, 2):
        entered, exited = events[index], events[index + 1]
        assert entered.startswith("enter ") and exited == entered.replace("enter", "exit"), events
    assert await state.redis.exists(keys.user_lock("web", "amina")) == 0


async def test_user_lock_does_not_block_other_people(state: State) -> None:
    """While A's message is being handled, B's message goes through."""
    a_inside = asyncio.Event()
    a_may_leave = asyncio.Event()
    events: list[str] = []

    async def person_a() -> None:
        async with state.turn("telegram", "A"):
            events.append("A in")
            a_inside.set()
            await a_may_leave.wait()
            events.append("A out")

    async def person_b() -> None:
        async with state.turn("telegram", "B"):
            events.append("B done")

    holder = asyncio.create_task(person_a())
    await asyncio.wait_for(a_inside.wait(), 10)
    # B finishes while A still holds its own lock (a deadline only guards against a hang).
    await asyncio.wait_for(person_b(), 10)
    assert await state.redis.exists(keys.user_lock("telegram", "A")) == 1
    a_may_leave.set()
    await asyncio.wait_for(holder, 10)
    assert events == ["A in", "B done", "A out"]
    # The same user id on another channel is another person.
    async with state.turn("telegram", "A"), state.turn("whatsapp", "A"):
        pass


async def test_user_lock_is_released_after_an_error(state: State) -> None:
    """A handler that raises leaves no lock behind; the next message is handled."""
    with pytest.raises(RuntimeError, match="boom"):
        async with state.turn("web", "crash"):
            assert await state.redis.exists(keys.user_lock("web", "crash")) == 1
            raise RuntimeError("boom")
    assert await state.redis.exists(keys.user_lock("web", "crash")) == 0

    entered = False
    async with state.turn("web", "crash"):
        entered = True
    assert entered


async def test_user_lock_gives_up_with_user_busy(
    state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the person's previous message holds the lock past the wait, UserBusy is raised."""
    monkeypatch.setattr(keys, "USER_LOCK_WAIT", 0.2)  # shorten the wait, not the behaviour
    async with state.turn("web", "slow"):
        with pytest.raises(UserBusy, match="web:slow"):
            async with state.turn("web", "slow"):
                pytest.fail("entered a lock that is held")  # pragma: no cover
    async with state.turn("web", "slow"):
        pass


async def test_user_lock_expires_if_its_holder_dies(state: State) -> None:
    """The lock key carries a TTL, so a crashed process cannot block a person for ever."""
    async with state.turn("web", "mortal"):
        ttl_ms = int(await state.redis.pttl(keys.user_lock("web", "mortal")))
    assert 0 < ttl_ms <= keys.USER_LOCK_TTL * 1000


# ------------------------------------------------------------------------------- throttle


async def _flags(state: State, channel: str, user: str,
                 message_id: str | None = None) -> tuple[bool, bool]:
    async with state.turn(channel, user, message_id) as turn:
        return turn.duplicate, turn.throttled


async def test_throttle_lets_the_limit_through_then_stops(state: State) -> None:
    """THROTTLE_LIMIT messages pass in one window, the next one is throttled."""
    for _attempt in range(5):
        window = int(time.time()) // keys.THROTTLE_WINDOW
        passed = [(await _flags(state, "web", "flood"))[1] for _ in range(keys.THROTTLE_LIMIT)]
        over = (await _flags(state, "web", "flood"))[1]
        if int(time.time()) // keys.THROTTLE_WINDOW == window:
            break
        await state.redis.delete(*[key async for key in state.redis.scan_iter(
            match=f"{keys.PREFIX}:throttle:*")])  # crossed a window edge: count again
    else:  # pragma: no cover
        pytest.fail("could not stay in one throttle window")
    assert passed == [False] * keys.THROTTLE_LIMIT
    assert over is True
    assert (await _flags(state, "web", "someone-else"))[1] is False
    assert (await _flags(state, "telegram", "flood"))[1] is False
    key = keys.throttle("web", "flood", window)
    assert 0 < await _ttl(state, key) <= keys.THROTTLE_WINDOW * 2
    # a throttled turn does not keep the person's lock
    assert await state.redis.exists(keys.user_lock("web", "flood")) == 0


async def test_turn_marks_deliveries_and_keeps_the_session(state: State) -> None:
    """A redelivered message is flagged; the session read and saved by the turn."""
    assert await _flags(state, "whatsapp", "k", "wamid.1") == (False, False)
    assert await _flags(state, "whatsapp", "k", "wamid.1") == (True, False)
    async with state.turn("whatsapp", "k", "wamid.2") as turn:
        turn.session["flow"] = "feedback"
    async with state.turn("whatsapp", "k", "wamid.3") as turn:
        assert turn.session == {"flow": "feedback"}
        turn.save = False
        turn.session["flow"] = "lost"
    assert await state.load_session("whatsapp", "k") == {"flow": "feedback"}


async def test_a_busy_turn_forgets_its_delivery_mark(
    state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message given up on (UserBusy) may be delivered and handled again."""
    monkeypatch.setattr(keys, "USER_LOCK_WAIT", 0.2)
    async with state.turn("web", "slow"):
        with pytest.raises(UserBusy):
            async with state.turn("web", "slow", "m-7"):
                pytest.fail("entered a lock that is held")  # pragma: no cover
    assert await _flags(state, "web", "slow", "m-7") == (False, False)


async def test_a_turn_costs_a_real_redis_one_command_to_open_and_one_to_close(
        redis_url: str) -> None:
    """On a real Redis a message's stay is two scripts, whatever it reads and writes: each
    command a pipeline carries costs the bot its packing and parsing."""
    client: Redis = Redis.from_url(redis_url, decode_responses=True)
    watcher: Redis = Redis.from_url(redis_url, decode_responses=True)
    state = State(client)
    try:
        async with state.turn("telegram", "4242", "m-first"):  # the scripts get loaded
            pass
        sent: list[str] = []
        async with watcher.monitor() as monitor:
            for number in range(5):
                async with state.turn("telegram", "4242", f"m-{number}") as turn:
                    turn.session["step"] = number
            await client.set("tadamon:test:end", "1")
            while True:
                command = await asyncio.wait_for(monitor.next_command(), 10)
                if command["command"] == "SET tadamon:test:end 1":
                    break
                if command["client_type"] != "lua":  # not those the scripts ran
                    sent.append(command["command"].split()[0].upper())
        assert sent == ["EVALSHA"] * 10
        assert await state.load_session("telegram", "4242") == {"step": 4}
        assert await client.exists(keys.user_lock("telegram", "4242")) == 0
        assert await _flags(state, "telegram", "4242", "m-3") == (True, False)
    finally:
        await client.aclose()
        await watcher.aclose()


async def test_a_turn_loads_its_scripts_again_after_redis_forgot_them(state: State) -> None:
    """A Redis restarted or flushed no longer knows the scripts: the next turn loads them."""
    async with state.turn("whatsapp", "212600000000", "wamid.a") as turn:
        turn.session["flow"] = "feedback"
    await state.redis.script_flush()
    async with state.turn("whatsapp", "212600000000", "wamid.b") as turn:
        assert turn.session == {"flow": "feedback"}
        turn.session["flow"] = "rating"
    assert await state.load_session("whatsapp", "212600000000") == {"flow": "rating"}
    assert await _flags(state, "whatsapp", "212600000000", "wamid.b") == (True, False)
    assert await state.redis.exists(keys.user_lock("whatsapp", "212600000000")) == 0


async def test_throttle_notice_is_given_once(state: State) -> None:
    """The person is told to slow down once, not at every throttled message."""
    assert await state.first_throttle_notice("web", "flood") is True
    assert await state.first_throttle_notice("web", "flood") is False
    assert await state.first_throttle_notice("web", "flood") is False
    assert await state.first_throttle_notice("web", "other") is True
    ttl = await _ttl(state, keys.throttle_notice("web", "flood"))
    assert 0 < ttl <= keys.THROTTLE_NOTICE_TTL


# ------------------------------------------------------------------------------- media, catalogue


async def test_media_round_trip(state: State) -> None:
    """Bytes stored for the web chat come back identical with their type and name."""
    picture = bytes(range(256)) * 40 + b"\x00\xff"
    token = await state.put_media(picture, "image/png", "plan-A12.png")
    other = await state.put_media(b"BEGIN:VCALENDAR", "text/calendar", "atelier.ics")
    assert token != other
    assert await state.get_media(token) == (picture, "image/png", "plan-A12.png")
    assert await state.get_media(other) == (b"BEGIN:VCALENDAR", "text/calendar", "atelier.ics")
    assert await state.get_media("no-such-token") is None
    ttl = await _ttl(state, keys.media(token))
    assert keys.MEDIA_TTL - 60 <= ttl <= keys.MEDIA_TTL
    # The same picture shown again is kept once (its time to live starts over).
    assert await state.put_media(picture, "image/png", "plan-A12.png") == token
    assert await state.put_media(picture, "image/png", "plan-B7.png") != token


async def test_choice_pages_round_trip_per_person_and_expire(state: State) -> None:
    """A long list kept for "more" comes back whole (Arabic too), per channel and person, with
    the pages' lifetime; a damaged record reads as gone."""
    pages = ChoicePages("اختر رواقًا", "ar", (("st:A1", "رواق A1"), ("st:A2", "Bio & Co")))
    assert await state.pages("whatsapp", "212600000001") is None
    await state.keep_pages("whatsapp", "212600000001", pages)
    assert await state.pages("whatsapp", "212600000001") == pages
    assert await state.pages("whatsapp", "212600000002") is None
    assert await state.pages("telegram", "212600000001") is None
    ttl = await _ttl(state, keys.choice_pages("whatsapp", "212600000001"))
    assert keys.PAGES_TTL - 60 <= ttl <= keys.PAGES_TTL
    await state.redis.set(keys.choice_pages("whatsapp", "212600000003"), '{"body": 1}')
    assert await state.pages("whatsapp", "212600000003") is None


async def test_catalogue_version_increments(state: State) -> None:
    """The catalogue version starts at 0 and every bump is seen by every reader."""
    assert await state.catalogue_version() == 0
    assert await state.bump_catalogue_version() == 1
    assert await state.bump_catalogue_version() == 2
    assert await state.catalogue_version() == 2
    assert await State(state.redis).catalogue_version() == 2
    assert await state.ping() is True


# ------------------------------------------------------------------------------- key names


async def test_every_key_is_under_the_tadamon_prefix(redis_url: str) -> None:
    """Every key State writes to the real server starts with `tadamon:`."""
    client: Redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.flushdb()  # keys other tests left (rate buckets live a few seconds)
        state = State(client)
        await state.save_session("web", "k", {"flow": "menu"})
        await state.first_delivery("web", "m1")
        await _flags(state, "web", "k", "m2")
        await state.first_throttle_notice("web", "k")
        await state.put_media(b"x", "text/plain", "x.txt")
        await state.bump_catalogue_version()
        async with state.turn("web", "k"):
            held = [key async for key in client.scan_iter("*")]
        after = [key async for key in client.scan_iter("*")]
    finally:
        await client.aclose()

    assert len(held) == 8
    assert len(after) == 7
    assert all(key.startswith(f"{keys.PREFIX}:") for key in held), held
    assert keys.PREFIX == "tadamon"


# ------------------------------------------------------------------- shared round trips

class CountedPipelines(Pipelined):
    """The batcher, counting the pipelines it sends."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.sent = 0

    async def _send(self, batch: list[Any]) -> None:
        self.sent += 1
        await super()._send(batch)


async def test_many_peoples_commands_share_round_trips_and_each_gets_its_own(
        state: State) -> None:
    batcher = CountedPipelines(state.redis)

    async def person(number: int) -> list[Any]:
        key = f"tadamon:test:person:{number}"
        return await batcher.run(lambda pipe: (pipe.set(key, f"Amina {number}"),
                                               pipe.incr(f"{key}:count"), pipe.get(key)))

    answers = await asyncio.gather(*(person(number) for number in range(200)))
    assert [answer[2] for answer in answers] == [f"Amina {number}" for number in range(200)]
    assert all(answer[1] == 1 for answer in answers)
    assert batcher.sent < 20  # 200 people's commands, a few round trips
    alone = await person(7)  # and alone
    assert alone[1:] == [2, "Amina 7"]


async def test_one_callers_failed_command_fails_only_that_caller(state: State) -> None:
    batcher = Pipelined(state.redis)
    await state.redis.set("tadamon:test:text", "not a number")

    async def bad() -> list[Any]:
        return await batcher.run(lambda pipe: pipe.incr("tadamon:test:text"))

    async def good() -> list[Any]:
        return await batcher.run(lambda pipe: pipe.incr("tadamon:test:counter"))

    results = await asyncio.gather(bad(), good(), good(), return_exceptions=True)
    assert isinstance(results[0], ResponseError)
    assert results[1:] == [[1], [2]]


async def test_redis_away_fails_every_waiting_caller() -> None:
    away: Redis = Redis(host="127.0.0.1", port=1, decode_responses=True)
    batcher = Pipelined(away)
    results = await asyncio.gather(
        *(batcher.run(lambda pipe: pipe.get("tadamon:test:x")) for _ in range(5)),
        return_exceptions=True)
    assert all(isinstance(result, RedisConnectionError) for result in results)
    await away.aclose()
