"""A channel's send rate, shared by its replies and its bulk traffic, in every process.

Two things keep a channel under its platform's limit. The outbox workers book each bulk message
with the channel's Redis token bucket, which spaces them evenly a little under the limit. And
every message, reply or bulk, passes the channel's send window (storage.ratelimit.SendWindow):
at most the limit in any second at the platform, counted from letting the message go to the
platform's answer. The bucket makes the schedule; the window is the guarantee, whatever a late
timer, a slow network, a second worker or a burst of replies does to it. A reply passing the
window also takes its token of the bucket, so the bulk messages booked after it leave room.
Replies go first at the window: while one waits for room, no bulk message is let in, so a
person who writes during a broadcast sent at the full rate is answered at the next free place.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from contextvars import ContextVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from storage.ratelimit import Bucket, SendWindow

log = logging.getLogger(__name__)

# Bulk sends are booked this much under a channel's limit: 31 sends spaced exactly 1/30 s apart
# span exactly one second, and the window would hold back the 31st of each second for the time
# the 1st took to be answered. 1.5% under leaves 15 ms of it.
UNDER_THE_LIMIT = 0.985
# The platform's limit is per second.
WINDOW = 1.0
# A message the platform has not answered after this long (a process killed in the middle)
# stops taking a place a window after.
FLIGHT = 10.0

# Set (to True) by the outbox worker around a bulk message's sends: its place in the bucket
# was booked already, so the window does not charge the bucket again.
BULK: ContextVar[bool] = ContextVar("bulk", default=False)


def channel_bucket(channel: str, rate: float) -> Bucket:
    """The bucket of a whole channel (a Telegram bot, a WhatsApp number). No burst: evenly
    spaced sends never put more than the limit into any one second."""
    return (channel, float(rate) * UNDER_THE_LIMIT, 1.0)


class ChannelQuota:
    """One channel's place in the shared send window."""

    def __init__(self, redis: Redis, channel: str, rate: float) -> None:
        self.window = SendWindow(redis)
        self.channel = channel
        self.limit = max(1, math.floor(rate))
        self.bucket = channel_bucket(channel, rate)

    @contextlib.asynccontextmanager
    async def sending(self) -> AsyncIterator[None]:
        """Wait until one more message keeps every second at the platform under the limit,
        then send it within the block (a reply also takes its token of the bucket). Without
        Redis, it goes uncounted."""
        member = None
        bulk = BULK.get()
        try:
            member = await self.window.enter(self.channel, self.limit, WINDOW, FLIGHT,
                                             None if bulk else self.bucket, reply=not bulk)
        except RedisError:
            log.debug("redis unavailable: a message of %s leaves uncounted", self.channel)
        try:
            yield
        finally:
            if member is not None:
                with contextlib.suppress(RedisError):
                    await self.window.sent(self.channel, member)
