"""A durable inbox for accepted webhooks: a Redis stream read through a consumer group.

The webhook route adds the raw body and answers 200 at once; consumers in any process read,
handle and acknowledge. A body whose consumer died unacknowledged is claimed by another: at once
when the consumer stopped beating (`beat`, a key with a short TTL), else once it has waited
INBOX_CLAIM_IDLE.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage import keys
from storage.batch import pipelined

# Seconds between two heartbeats of a consumer, and between two looks for dead consumers.
HEARTBEAT = keys.INBOX_HEARTBEAT


class Entry(NamedTuple):
    """One accepted webhook body in the stream."""

    id: str
    body: str
    retaken: bool = False
    """Taken over from a consumer that died with it in hand: it may have been marked handled
    before its answer went out."""


class Inbox:
    """One channel's stream of accepted webhook bodies."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.stream = keys.inbox(channel)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        # Seconds after which an entry taken and not acknowledged is given to a reader again.
        self.claim_idle = keys.INBOX_CLAIM_IDLE
        self._ready = False
        self._next_takeover = 0.0

    async def _ensure_group(self) -> None:
        if self._ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, keys.INBOX_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._ready = True

    async def add(self, body: str) -> str:
        """Keep an accepted body until a consumer has handled it; returns its entry id."""
        # Webhooks arriving together share a round trip.
        entry, = await pipelined(self.redis).run(lambda pipe: pipe.xadd(
            self.stream, {"body": body}, maxlen=keys.INBOX_MAXLEN, approximate=True))
        return str(entry)

    async def beat(self) -> None:
        """Say this consumer is alive, for INBOX_CONSUMER_TTL seconds."""
        await self.redis.set(keys.inbox_consumer(self.channel, self.consumer), "1",
                             px=int(keys.INBOX_CONSUMER_TTL * 1000))

    async def leave(self) -> None:
        """This consumer stops: anything it still holds is taken over at once."""
        await self.redis.delete(keys.inbox_consumer(self.channel, self.consumer))

    async def read(self, count: int = 100, block_ms: int = 1000) -> list[Entry]:
        """Entries for this consumer: first any left behind by a dead consumer, then new ones."""
        await self._ensure_group()
        retaken = False
        try:
            entries: list[Any] = []
            # Looks for what others left behind once a beat, not before every read: under a
            # flow of webhooks each read finds one or two bodies, and would pay a round trip
            # more for each.
            looking = time.monotonic() >= self._next_takeover
            if looking:
                self._next_takeover = time.monotonic() + HEARTBEAT
                entries = await self._take_over(count)
                retaken = bool(entries)
            if not entries and looking:
                claimed = await self.redis.xautoclaim(
                    self.stream, keys.INBOX_GROUP, self.consumer,
                    min_idle_time=int(keys.INBOX_CLAIM_IDLE * 1000), start_id="0-0",
                    count=count)
                entries = list(claimed[1]) if claimed else []
            if len(entries) >= count:
                self._next_takeover = 0.0  # more may be left: look again at the next read
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ready = False  # the stream was deleted (Redis flushed): make it again
            return []
        if not entries:
            answer: Any = await self.redis.xreadgroup(keys.INBOX_GROUP, self.consumer,
                                                      {self.stream: ">"}, count=count,
                                                      block=block_ms)
            if isinstance(answer, dict):  # RESP3 answers {stream: [entries]}
                entries = list(answer.get(self.stream, [[]])[0]) if answer else []
            else:
                entries = list(answer[0][1]) if answer else []
        return [Entry(str(entry_id), str(fields.get("body", "")), retaken)
                for entry_id, fields in entries if fields is not None]

    async def _take_over(self, count: int) -> list[Any]:
        """Claim what consumers that stopped beating had taken and not finished (a process
        killed with bodies in hand); a dead consumer left with nothing is removed."""
        summary: Any = await self.redis.xpending(self.stream, keys.INBOX_GROUP)
        taken: list[Any] = []
        for holder in (summary or {}).get("consumers") or []:
            name = str(holder["name"])
            if name == self.consumer or await self.redis.exists(
                    keys.inbox_consumer(self.channel, name)):
                continue
            rows = await self.redis.xpending_range(self.stream, keys.INBOX_GROUP, min="-",
                                                   max="+", count=count, consumername=name)
            ids: list[Any] = [row["message_id"] for row in rows]
            if ids:
                # Not taken from a consumer that got them in the last beat: another live
                # consumer that claimed them a moment ago (they would be handled twice).
                taken += await self.redis.xclaim(self.stream, keys.INBOX_GROUP, self.consumer,
                                                 min_idle_time=int(HEARTBEAT * 1000),
                                                 message_ids=ids)
            if not await self.redis.xpending_range(self.stream, keys.INBOX_GROUP, min="-",
                                                   max="+", count=1, consumername=name):
                await self.redis.xgroup_delconsumer(self.stream, keys.INBOX_GROUP, name)
            if len(taken) >= count:
                break
        return taken

    async def done(self, *entry_ids: str) -> None:
        """The entries are handled: acknowledge and drop them (in one round trip)."""
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, keys.INBOX_GROUP, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            await pipe.execute()

    async def pending(self) -> int:
        """Entries added and not yet handled (waiting or in hand)."""
        await self._ensure_group()
        info = await self.redis.xpending(self.stream, keys.INBOX_GROUP)
        waiting = await self.redis.xlen(self.stream)
        return max(int(waiting), int(info.get("pending", 0) if info else 0))
