"""Send-rate limits shared by every process: token buckets kept and updated atomically in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from storage import keys

# Each bucket: a hash {tokens, ts}, tokens as of ts (Redis time, seconds). KEYS are the buckets,
# ARGV[1] the cost, then rate and burst of each bucket in KEYS order. Returns the seconds to wait.
#
# The server's clock, not the callers': processes on several machines share one timeline.
# Tokens are taken even when not yet there (they go negative): the debt is a booked place in the
# queue, so concurrent callers get increasing waits rather than all retrying at the same moment.
# With several buckets, all are charged now even when another bucket's wait puts the send later:
# simple, and the long-run rate holds, but a send can land in a later second than it was counted.
# Numbers travel as "%.17g" strings: Redis truncates a Lua number it returns to an integer, and
# Lua's own tostring keeps only 14 digits, too few for a timestamp in microseconds.
RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local cost = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
    local rate = tonumber(ARGV[2 * i])
    local burst = tonumber(ARGV[2 * i + 1])
    local state = redis.call('HMGET', key, 'tokens', 'ts')
    local tokens = tonumber(state[1])
    local ts = tonumber(state[2])
    if tokens == nil or ts == nil then
        tokens = burst
    else
        tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
    end
    tokens = tokens - cost
    if tokens < 0 then
        wait = math.max(wait, -tokens / rate)
    end
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens),
               'ts', string.format('%.17g', now))
    -- Once full again the bucket is the same as no bucket: let it go a second after that.
    local ttl = math.ceil((burst - tokens) / rate * 1000) + 1000
    redis.call('PEXPIRE', key, string.format('%d', ttl))
end
return string.format('%.17g', wait)
"""

Bucket = tuple[str, float, float | None]


class RateLimiter:
    """Token buckets in Redis shared by every process: one per channel (whole bot / number) and,
    when asked, one per recipient."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = redis.register_script(RESERVE)

    async def reserve(self, bucket: str, rate: float, burst: float | None = None,
                      cost: float = 1.0) -> float:
        """Book `cost` tokens of `bucket`; the seconds to wait before sending (0.0: send now)."""
        return await self.reserve_all([(bucket, rate, burst)], cost)

    async def reserve_all(self, buckets: Sequence[Bucket], cost: float = 1.0) -> float:
        """Book `cost` tokens in every bucket at once; the longest of their waits."""
        if not buckets:
            return 0.0
        if cost < 0:
            raise ValueError(f"cost must not be negative, not {cost}")
        names: list[str] = []
        args: list[str] = [repr(float(cost))]
        for name, rate, burst in buckets:
            size = max(1.0, rate) if burst is None else burst
            if rate <= 0 or size <= 0:
                raise ValueError(f"bucket {name!r}: rate and burst must be positive")
            names.append(keys.rate_bucket(name))
            args += [repr(float(rate)), repr(float(size))]
        # The Script object sends EVALSHA and loads the script again on NOSCRIPT.
        wait = await self._reserve(keys=names, args=args)
        return max(0.0, float(wait))

    async def acquire(self, bucket: str, rate: float, burst: float | None = None,
                      cost: float = 1.0) -> None:
        """Book `cost` tokens of `bucket` and sleep until the booking is due."""
        await self.acquire_all([(bucket, rate, burst)], cost)

    async def acquire_all(self, buckets: Sequence[Bucket], cost: float = 1.0) -> None:
        """Book `cost` tokens in every bucket in one atomic call and sleep for the longest wait."""
        wait = await self.reserve_all(buckets, cost)
        if wait > 0:
            await asyncio.sleep(wait)
