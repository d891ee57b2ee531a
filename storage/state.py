"""Redis-held state: sessions, dedupe, per-user lock and throttle, catalogue version."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from storage import keys


def connect_redis(url: str | None) -> Redis:
    """A Redis client for `url`, or the in-process stand-in (fakeredis) when no URL is set."""
    if url is None:
        import fakeredis

        client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        return client
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


class UserBusy(Exception):
    """The person's previous message is still being handled after the wait."""


class State:
    """Typed access to everything Tadamon keeps in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def first_delivery(self, channel: str, message_id: str) -> bool:
        """True the first time a platform message id is seen, False on a redelivery."""
        added = await self.redis.set(keys.dedupe(channel, message_id), "1", nx=True,
                                     ex=keys.DEDUPE_TTL)
        return bool(added)

    async def forget_delivery(self, channel: str, message_id: str) -> None:
        """Allow a message to be processed again (its handling failed before any effect)."""
        await self.redis.delete(keys.dedupe(channel, message_id))

    async def load_session(self, channel: str, user_id: str) -> dict[str, Any]:
        raw = await self.redis.get(keys.session(channel, user_id))
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def save_session(self, channel: str, user_id: str, data: dict[str, Any]) -> None:
        await self.redis.set(keys.session(channel, user_id), json.dumps(data, ensure_ascii=False),
                             ex=keys.SESSION_TTL)

    async def clear_session(self, channel: str, user_id: str) -> None:
        await self.redis.delete(keys.session(channel, user_id))

    @asynccontextmanager
    async def user_lock(self, channel: str, user_id: str) -> AsyncIterator[None]:
        """Hold the person's lock: their messages are handled one at a time, in order."""
        lock = self.redis.lock(keys.user_lock(channel, user_id), timeout=keys.USER_LOCK_TTL,
                               blocking_timeout=keys.USER_LOCK_WAIT, sleep=0.02)
        if not await lock.acquire():
            raise UserBusy(f"{channel}:{user_id}")
        try:
            yield
        finally:
            # Expired while we worked (someone else may hold it now), or Redis went away: the
            # work is done either way, and the lock expires by itself.
            with contextlib.suppress(LockError, RedisError):
                await lock.release()

    async def throttled(self, channel: str, user_id: str) -> bool:
        """Count one message; True when the person is over the limit for the current window."""
        window = int(time.time()) // keys.THROTTLE_WINDOW
        key = keys.throttle(channel, user_id, window)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, keys.THROTTLE_WINDOW * 2)
            count, _ = await pipe.execute()
        return int(count) > keys.THROTTLE_LIMIT

    async def first_throttle_notice(self, channel: str, user_id: str) -> bool:
        """True once per throttle window: the person is told to slow down only once."""
        added = await self.redis.set(keys.throttle_notice(channel, user_id), "1", nx=True,
                                     ex=keys.THROTTLE_NOTICE_TTL)
        return bool(added)

    async def put_media(self, data: bytes, mime: str, filename: str) -> str:
        """Keep a reply's picture or file for the web chat to fetch; returns its token."""
        token = secrets.token_urlsafe(16)
        record = {"mime": mime, "filename": filename, "data": base64.b64encode(data).decode()}
        await self.redis.set(keys.media(token), json.dumps(record), ex=keys.MEDIA_TTL)
        return token

    async def get_media(self, token: str) -> tuple[bytes, str, str] | None:
        """(data, mime type, file name) of a stored reply file, or None when gone."""
        raw = await self.redis.get(keys.media(token))
        if not raw:
            return None
        record = json.loads(raw)
        return base64.b64decode(record["data"]), str(record["mime"]), str(record["filename"])

    async def first_group_notice(self, channel: str, chat_id: str) -> bool:
        """True the first time a group chat is seen: it is told once where the bot works."""
        added = await self.redis.set(keys.group_notice(channel, chat_id), "1", nx=True,
                                     ex=keys.GROUP_NOTICE_TTL)
        return bool(added)

    async def pause_channel(self, channel: str, seconds: float) -> None:
        """Hold every process's sends on a channel for `seconds` (never shortens a pause)."""
        milliseconds = max(int(seconds * 1000), 1)
        current = await self.redis.pttl(keys.channel_pause(channel))
        if current < milliseconds:
            await self.redis.set(keys.channel_pause(channel), "1", px=milliseconds)

    async def channel_paused_for(self, channel: str) -> float:
        """Seconds left of a pause on the channel (0 when none)."""
        remaining = await self.redis.pttl(keys.channel_pause(channel))
        return remaining / 1000 if remaining > 0 else 0.0

    async def catalogue_version(self) -> int:
        value = await self.redis.get(keys.CATALOGUE_VERSION)
        return int(value) if value else 0

    async def bump_catalogue_version(self) -> int:
        return int(await self.redis.incr(keys.CATALOGUE_VERSION))

    async def ping(self) -> bool:
        return bool(await self.redis.ping())
