"""Send-rate limits shared by every process: token buckets kept and updated atomically in Redis."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from redis.asyncio import Redis

from storage import keys
from storage.batch import evalsha
from storage.state import in_process

# Each bucket: a hash {tokens, ts}, tokens as of ts (Redis time, seconds).
#
# The server's clock, not the callers': processes on several machines share one timeline.
# Tokens are taken even when not yet there (they go negative): the debt is a booked place in the
# queue, so concurrent callers get increasing waits rather than all retrying at the same moment.
# Numbers travel as "%.17g" strings: Redis truncates a Lua number it returns to an integer, and
# Lua's own tostring keeps only 14 digits, too few for a timestamp in microseconds.
TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local function fmt(number)
    return string.format('%.17g', number)
end
-- Take `cost` tokens of the bucket `key`; the seconds until they are there (0: now).
local function take(key, rate, burst, cost)
    local state = redis.call('HMGET', key, 'tokens', 'ts')
    local tokens = tonumber(state[1])
    local ts = tonumber(state[2])
    if tokens == nil or ts == nil then
        tokens = burst
    else
        tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
    end
    tokens = tokens - cost
    redis.call('HSET', key, 'tokens', fmt(tokens), 'ts', fmt(now))
    -- Once full again the bucket is the same as no bucket: let it go a second after that.
    local ttl = math.ceil((burst - tokens) / rate * 1000) + 1000
    redis.call('PEXPIRE', key, string.format('%d', ttl))
    if tokens < 0 then
        return -tokens / rate
    end
    return 0
end
"""

# KEYS are the buckets; ARGV[1] the cost, ARGV[2] "1" to charge them in order, then rate and
# burst of each bucket in KEYS order. Returns {seconds to wait, how many buckets were charged}.
#
# All at once: every bucket is charged now, even when another bucket's wait puts the send later
# (simple, and the long-run rate holds, but a send can land in a later second than it was
# counted). In order: charging stops at the first bucket that makes the caller wait; the caller
# waits, then asks again for the rest. So a recipient's bucket holds a message back without
# taking a place in the channel's second, and the usual case (nobody waits) is one round trip.
RESERVE = TAKE + """
local cost = tonumber(ARGV[1])
local in_order = ARGV[2] == '1'
local wait = 0
for i, key in ipairs(KEYS) do
    wait = math.max(wait, take(key, tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2]), cost))
    if in_order and wait > 0 then
        return {fmt(wait), i}
    end
end
return {fmt(wait), #KEYS}
"""

# Many messages of one channel in one round trip, each as `reserve_in_order` would book it:
# KEYS[1] is the channel's bucket, KEYS[2...] one bucket per message's recipient (or none).
# ARGV: cost, the channel's rate and burst, the number of messages, then each recipient's rate
# and burst. Returns, per message, the wait and 1 when the channel was charged (0: the
# recipient's wait came first, and the channel is still to be asked for, after it).
RESERVE_EACH = TAKE + """
local cost = tonumber(ARGV[1])
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local answer = {}
for i = 1, count do
    local wait = 0
    if #KEYS > 1 then
        wait = take(KEYS[i + 1], tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i]), cost)
    end
    if wait > 0 then
        answer[2 * i - 1], answer[2 * i] = fmt(wait), 0
    else
        answer[2 * i - 1], answer[2 * i] = fmt(take(KEYS[1], rate, burst, cost)), 1
    end
end
return answer
"""

# A limit rather than a queue: take `cost` tokens only when they are all there, else take
# nothing and return the seconds until they will be (a refused caller books no place).
# KEYS[1] the bucket; ARGV rate, burst, cost. Returns "0" when taken.
TRY_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
    tokens = burst
else
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
end
if tokens < cost then
    return string.format('%.17g', (cost - tokens) / rate)
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', now))
local ttl = math.ceil((burst - tokens) / rate * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return '0'
"""

# A channel's messages at the platform in its last `window` seconds, for every process: a sorted
# set with one member per send, scored with the time the platform answered it (the server's
# clock) or, while it is on its way, with a time far ahead. A send is let go only while fewer
# than `limit` members score after now - window. The platform took each message between our
# letting it go and its answer, so any `limit` + 1 of them lie at least a window apart there,
# however late a timer fired, a packet crawled or an event loop stalled.
# Replies go first: a reply refused for want of room is noted among the channel's waiting
# replies, and a bulk message is not let in while one waits, so a person who writes during a
# broadcast is answered at the next free place, not after the broadcast.
# ADMIT: KEYS[1] the set, KEYS[2] the waiting replies, KEYS[3] (optional) a token bucket
# charged on admission; ARGV the limit, the window, the seconds a send may stay on its way, a
# member naming this send (the same at each ask), "1" for a reply (else bulk), then the
# bucket's rate and burst when KEYS[3] is given. "0" when admitted, else the seconds to wait
# before asking again.
ADMIT = TAKE + """
local limit, window, flight = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reply = ARGV[5] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
if not reply and redis.call('ZCARD', KEYS[2]) > 0 then
    return fmt(0.02)  -- a reply waits for room: it goes first
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - window))
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
    local first = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    local leaves = tonumber(first[2]) + window - now
    if tonumber(first[2]) > now then
        leaves = 0.02  -- still on its way: ask again soon
    end
    leaves = math.max(0.001, leaves)
    if reply then
        redis.call('ZADD', KEYS[2], fmt(now + leaves + 1), ARGV[4])
        redis.call('PEXPIRE', KEYS[2], string.format('%d', math.ceil((leaves + 1) * 1000)))
    end
    return fmt(leaves)
end
redis.call('ZADD', KEYS[1], fmt(now + flight), ARGV[4])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((flight + window) * 1000)))
if reply then
    redis.call('ZREM', KEYS[2], ARGV[4])
end
if #KEYS > 2 then
    take(KEYS[3], tonumber(ARGV[6]), tonumber(ARGV[7]), 1)
end
return '0'
"""

# The platform answered the send ARGV[1] of the set KEYS[1]: it counts from now, for a window.
SENT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', string.format('%.17g', now), ARGV[1])
return 0
"""

Bucket = tuple[str, float, float | None]


def telegram_chat_bucket(user_id: str) -> Bucket:
    """One Telegram chat's bucket: one message a second to any one chat."""
    return (keys.telegram_chat_bucket(user_id), 1.0, 1.0)


class Booking(NamedTuple):
    """One message's place: the seconds to wait, and whether the channel is charged already
    (False: its recipient made it wait; ask the channel after that wait)."""

    wait: float
    channel_charged: bool


class RateLimiter:
    """Token buckets in Redis shared by every process: one per channel (whole bot / number) and,
    when asked, one per recipient."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = redis.register_script(RESERVE)
        self._reserve_each = redis.register_script(RESERVE_EACH)
        self._try_take = redis.register_script(TRY_TAKE)

    async def try_take(self, bucket: str, rate: float, burst: float | None = None,
                       cost: float = 1.0) -> float:
        """Take `cost` tokens of `bucket` if they are there (0.0); else take none and return
        the seconds until they will be."""
        name, args = _bucket_args((bucket, rate, burst))
        wait = await self._try_take(keys=[name], args=[*args, _number(cost)])
        return max(0.0, float(wait))

    async def reserve(self, bucket: str, rate: float, burst: float | None = None,
                      cost: float = 1.0) -> float:
        """Book `cost` tokens of `bucket`; the seconds to wait before sending (0.0: send now)."""
        return await self.reserve_all([(bucket, rate, burst)], cost)

    async def reserve_all(self, buckets: Sequence[Bucket], cost: float = 1.0) -> float:
        """Book `cost` tokens in every bucket at once; the longest of their waits."""
        wait, _charged = await self._call(buckets, cost, in_order=False)
        return wait

    async def reserve_in_order(self, buckets: Sequence[Bucket], cost: float = 1.0
                               ) -> tuple[float, int]:
        """Book `cost` tokens bucket after bucket, stopping at the first that makes the caller
        wait: that wait, and how many buckets were charged (all of them when it is 0.0)."""
        return await self._call(buckets, cost, in_order=True)

    async def reserve_each(self, channel: Bucket, count: int,
                           recipients: Sequence[Bucket] = (), cost: float = 1.0
                           ) -> list[Booking]:
        """Book `count` messages of one channel in one round trip, each in order: its
        recipient's bucket (when `recipients` gives one per message), then the channel's."""
        if count <= 0:
            return []
        if recipients and len(recipients) != count:
            raise ValueError(f"{len(recipients)} recipient buckets for {count} messages")
        channel_key, channel_args = _bucket_args(channel)
        names, args = [channel_key], [_number(cost), *channel_args, str(count)]
        for recipient in recipients:
            name, bucket_args = _bucket_args(recipient)
            names.append(name)
            args += bucket_args
        answer = await self._reserve_each(keys=names, args=args)
        return [Booking(max(0.0, float(answer[index])), int(answer[index + 1]) == 1)
                for index in range(0, len(answer), 2)]

    async def _call(self, buckets: Sequence[Bucket], cost: float, in_order: bool
                    ) -> tuple[float, int]:
        if not buckets:
            return 0.0, 0
        names: list[str] = []
        args: list[str] = [_number(cost), "1" if in_order else "0"]
        for bucket in buckets:
            name, bucket_args = _bucket_args(bucket)
            names.append(name)
            args += bucket_args
        # The Script object sends EVALSHA and loads the script again on NOSCRIPT.
        wait, charged = await self._reserve(keys=names, args=args)
        return max(0.0, float(wait)), int(charged)

    async def acquire(self, bucket: str, rate: float, burst: float | None = None,
                      cost: float = 1.0) -> None:
        """Book `cost` tokens of `bucket` and sleep until the booking is due."""
        await self.acquire_all([(bucket, rate, burst)], cost)

    async def acquire_all(self, buckets: Sequence[Bucket], cost: float = 1.0) -> None:
        """Book `cost` tokens in every bucket in one atomic call and sleep for the longest wait."""
        wait = await self.reserve_all(buckets, cost)
        if wait > 0:
            await asyncio.sleep(wait)

    async def acquire_in_order(self, buckets: Sequence[Bucket], cost: float = 1.0) -> None:
        """Wait for each bucket in turn (a recipient's, then the channel's): one round trip
        when none makes us wait."""
        rest = list(buckets)
        while rest:
            wait, charged = await self.reserve_in_order(rest, cost)
            rest = rest[charged:]
            if wait > 0:
                await asyncio.sleep(wait)


class SendWindow:
    """Every process's messages of a channel at the platform, kept in Redis (in this process
    for the embedded default): at most `limit` in any `window` seconds, from letting each go to
    the platform's answer."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._admit = redis.register_script(ADMIT)
        self._sent = redis.register_script(SENT)
        # Members only need to differ: a random prefix and a counter.
        self._names = (f"{secrets.token_hex(4)}:{number}" for number in itertools.count())
        # The in-process stand-in serves one process: its window is kept in this process,
        # the same rule without running the scripts in fakeredis's Lua, which cost more than
        # the rest of a reply's handling (see _departures).
        self._local = _departures(redis)

    async def admit(self, channel: str, limit: int, window: float, flight: float,
                    charge: Bucket | None = None, *, reply: bool = False,
                    member: str | None = None) -> tuple[float, str]:
        """Let one send of `channel` go if its window has room: (0.0, its name), also taking
        a token of the bucket `charge`. Else (the seconds to wait, "") and nothing counted.
        A `reply` goes before bulk sends: refused, it is noted as waiting (under `member`, to
        be given again at the next ask), and no bulk send is let in until it is."""
        if limit < 1 or window <= 0 or flight <= 0:
            raise ValueError(f"window {channel!r}: limit, window and flight must be positive")
        member = member or next(self._names)
        if self._local is not None:
            return self._admit_here(channel, limit, window, flight, reply, member)
        names = [keys.send_window(channel), keys.replies_waiting(channel)]
        args = [str(int(limit)), repr(float(window)), repr(float(flight)), member,
                "1" if reply else "0"]
        if charge is not None:
            name, bucket_args = _bucket_args(charge)
            names.append(name)
            args += bucket_args
        wait = max(0.0, float(await evalsha(self.redis, self._admit, names, args)))
        return (0.0, member) if wait == 0 else (wait, "")

    def _admit_here(self, channel: str, limit: int, window: float, flight: float,
                    reply: bool, member: str) -> tuple[float, str]:
        """ADMIT, for a window kept in this process. A reply does not take its bucket token
        here: the bulk messages of the only process yield to it at the window instead."""
        assert self._local is not None
        sends = self._local.sends.setdefault(channel, {})
        waiting = self._local.replies.setdefault(channel, {})
        now = time.time()
        for name, until in list(waiting.items()):
            if until <= now:
                del waiting[name]
        if not reply and waiting:
            return 0.02, ""  # a reply waits for room: it goes first
        for name, score in list(sends.items()):
            if score <= now - window:
                del sends[name]
        if len(sends) >= limit:
            first = sorted(sends.values())[len(sends) - limit]
            leaves = max(0.001, 0.02 if first > now else first + window - now)
            if reply:
                waiting[member] = now + leaves + 1
            return leaves, ""
        sends[member] = now + flight
        waiting.pop(member, None)
        return 0.0, member

    async def sent(self, channel: str, member: str) -> None:
        """The platform answered the send `member`: it counts from now, for one window."""
        if self._local is not None:
            sends = self._local.sends.get(channel, {})
            if member in sends:
                sends[member] = time.time()
            return
        await evalsha(self.redis, self._sent, [keys.send_window(channel)], [member])

    async def enter(self, channel: str, limit: int, window: float, flight: float,
                    charge: Bucket | None = None, *, reply: bool = False) -> str:
        """Wait for room in `channel`'s window and take it: the send's name, for `sent`. A
        reply (`reply`) goes before the bulk sends asking at the same time."""
        name = next(self._names)
        while True:
            wait, member = await self.admit(channel, limit, window, flight, charge,
                                            reply=reply, member=name)
            if wait <= 0:
                return member
            await asyncio.sleep(wait)


@dataclass
class _Departures:
    """A process's own send windows (the in-process stand-in of Redis): each channel's sends
    (name -> score, as in ADMIT) and its waiting replies (name -> until when they count)."""

    sends: dict[str, dict[str, float]] = field(default_factory=dict)
    replies: dict[str, dict[str, float]] = field(default_factory=dict)


_local_windows: weakref.WeakKeyDictionary[Redis, _Departures] = weakref.WeakKeyDictionary()


def _departures(redis: Redis) -> _Departures | None:
    """Each channel's sends in this process, for the in-process stand-in of Redis (the
    embedded default, one process): shared by every window on that client. None for a real
    server, which every process shares."""
    if not in_process(redis):
        return None
    return _local_windows.setdefault(redis, _Departures())


def _number(cost: float) -> str:
    if cost < 0:
        raise ValueError(f"cost must not be negative, not {cost}")
    return repr(float(cost))


def _bucket_args(bucket: Bucket) -> tuple[str, list[str]]:
    """The Redis key of a bucket, and its rate and burst as script arguments (no burst given:
    one second of sending, at least one message)."""
    name, rate, burst = bucket
    size = max(1.0, rate) if burst is None else burst
    if rate <= 0 or size <= 0:
        raise ValueError(f"bucket {name!r}: rate and burst must be positive")
    return keys.rate_bucket(name), [repr(float(rate)), repr(float(size))]
