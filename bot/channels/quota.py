"""A channel's send rate, shared by its replies and its bulk traffic.

The outbox workers book every bulk message with the channel's Redis token bucket. Replies to
people who just wrote never wait for that bucket, so they go before any bulk message; but each
one sent takes its token afterwards, so the bulk sends booked next leave room for it and the
channel as a whole stays under the platform's limit.
"""

from __future__ import annotations

import logging
from collections import Counter

from redis.asyncio import Redis
from redis.exceptions import RedisError

from storage.batch import GroupWrite
from storage.ratelimit import Bucket, RateLimiter

log = logging.getLogger(__name__)

# Sends are booked this much under a channel's limit: 31 sends spaced exactly 1/30 s apart
# span exactly one second, so a late timer or a slow packet on one of them is enough to put
# 31 into some second at the platform. 1.5% under leaves 15 ms of such lateness at 30/s.
UNDER_THE_LIMIT = 0.985


def channel_bucket(channel: str, rate: float) -> Bucket:
    """The bucket of a whole channel (a Telegram bot, a WhatsApp number). No burst: evenly
    spaced sends never put more than the limit into any one second."""
    return (channel, float(rate) * UNDER_THE_LIMIT, 1.0)


class ReplyQuota:
    """Counts the replies a channel sent against its shared rate, without making them wait."""

    def __init__(self, redis: Redis, channel: str, rate: float) -> None:
        self.limiter = RateLimiter(redis)
        self.bucket = channel_bucket(channel, rate)
        self._booked: GroupWrite[None] = GroupWrite(self._book)

    async def sent(self, messages: int) -> None:
        """`messages` replies went out: take their tokens (bulk sends booked later wait).
        Replies sent while a booking is under way are booked together by the next one: one
        Redis call for a burst of replies, not one each."""
        if messages > 0:
            await self._booked.add(None, messages)

    async def _book(self, replies: Counter[None]) -> None:
        name, rate, burst = self.bucket
        messages = replies.total()
        try:
            await self.limiter.reserve(name, rate, burst, cost=messages)
        except RedisError:
            log.debug("redis unavailable: %d replies not counted against %s's rate",
                      messages, name)
