"""A durable inbox for accepted webhooks: a Redis stream read through a consumer group.

The webhook route adds the raw body and answers 200 at once; consumers in any process read,
handle and acknowledge. A body whose consumer died unacknowledged is claimed by another.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage import keys


class Inbox:
    """One channel's stream of accepted webhook bodies."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.stream = keys.inbox(channel)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._ready = False

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
        entry = await self.redis.xadd(self.stream, {"body": body}, maxlen=keys.INBOX_MAXLEN,
                                      approximate=True)
        return str(entry)

    async def read(self, count: int = 100, block_ms: int = 1000) -> list[tuple[str, str]]:
        """Entries for this consumer: first any left behind by a dead consumer, then new ones."""
        await self._ensure_group()
        try:
            claimed = await self.redis.xautoclaim(
                self.stream, keys.INBOX_GROUP, self.consumer,
                min_idle_time=int(keys.INBOX_CLAIM_IDLE * 1000), start_id="0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ready = False  # the stream was deleted (Redis flushed): make it again
            return []
        entries = list(claimed[1]) if claimed else []
        if not entries:
            answer: Any = await self.redis.xreadgroup(keys.INBOX_GROUP, self.consumer,
                                                      {self.stream: ">"}, count=count,
                                                      block=block_ms)
            if isinstance(answer, dict):  # RESP3 answers {stream: [entries]}
                entries = list(answer.get(self.stream, [[]])[0]) if answer else []
            else:
                entries = list(answer[0][1]) if answer else []
        return [(str(entry_id), str(fields.get("body", ""))) for entry_id, fields in entries
                if fields is not None]

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
