"""Redis-held state: sessions, dedupe, per-user lock and throttle, catalogue version."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from storage import keys
from storage.batch import evalsha, pipelined

REDIS_CONNECTIONS = 64


def connect_redis(url: str | None) -> Redis:
    """A Redis client for `url`, or the in-process stand-in (fakeredis) when no URL is set."""
    if url is None:
        import fakeredis

        # The same bounded pool that waits as for a real server: fakeredis's own pool refuses
        # ("Too many connections") past 100 at once, which a burst of messages reaches.
        client: Redis = fakeredis.FakeAsyncRedis(
            decode_responses=True, connection_pool_class=BlockingConnectionPool,
            max_connections=REDIS_CONNECTIONS)
        return client
    # A bounded pool that waits for a free connection: redis-py's default pool refuses at once
    # ("Too many connections") when a burst of messages needs more than it holds.
    # One retry on a fresh connection: after a Redis restart every pooled connection is dead,
    # and without it the first command on each would fail although the server is back.
    pool = BlockingConnectionPool.from_url(url, decode_responses=True, health_check_interval=30,
                                           max_connections=REDIS_CONNECTIONS, timeout=20,
                                           retry=Retry(NoBackoff(), 1))
    return Redis(connection_pool=pool)


def in_process(redis: Redis) -> bool:
    """Whether `redis` is the in-process stand-in (the embedded default, one process)."""
    return type(redis).__module__.startswith("fakeredis")


class UserBusy(Exception):
    """The person's previous message is still being handled after the wait."""


@dataclass
class Turn:
    """What Redis knows of one message while it is handled."""

    duplicate: bool
    throttled: bool
    session: dict[str, Any]
    save: bool = True


def _session(raw: str | bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# Delete the lock only if it is still ours: it may have expired and been taken by another.
RELEASE_LOCK = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""

# A turn's opening on a real Redis, one command instead of five (each command in a pipeline
# costs the client its packing and parsing): take the lock if free, read the session, count
# the message in the flood window, and tell whether the message was already handled.
# KEYS: lock, session, flood count[, handled mark]; ARGV: token, lock ms, flood count's ttl.
OPEN_TURN = """
local locked = redis.call("set", KEYS[1], ARGV[1], "NX", "PX", ARGV[2])
local session = redis.call("get", KEYS[2])
local count = redis.call("incr", KEYS[3])
redis.call("expire", KEYS[3], ARGV[3])
local seen = 0
if KEYS[4] then seen = redis.call("exists", KEYS[4]) end
return {locked and 1 or 0, session, count, seen}
"""

# A turn's closing, one command: save the session (unless ARGV[2] is empty), mark the
# message handled, release the lock if still ours.
# KEYS: lock, session[, handled mark]; ARGV: token, session, session ttl, mark ttl.
CLOSE_TURN = """
if ARGV[2] ~= "" then redis.call("set", KEYS[2], ARGV[2], "EX", ARGV[3]) end
if KEYS[3] then redis.call("set", KEYS[3], "1", "EX", ARGV[4]) end
if redis.call("get", KEYS[1]) == ARGV[1] then redis.call("del", KEYS[1]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class ChoicePages:
    """A long list of choices shown a page at a time (WhatsApp lists hold ten rows): its text,
    its language and every (id, label), kept for the person's "more"."""

    body: str
    language: str
    choices: tuple[tuple[str, str], ...]


def _pages(raw: str | bytes | None) -> ChoicePages | None:
    if not raw:
        return None
    try:
        record = json.loads(raw)
        return ChoicePages(str(record["body"]), str(record["language"]),
                           tuple((str(item[0]), str(item[1])) for item in record["choices"]))
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # an older or damaged record: as if gone


class State:
    """Typed access to everything Tadamon keeps in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._release_script = redis.register_script(RELEASE_LOCK)
        self._open_script = redis.register_script(OPEN_TURN)
        self._close_script = redis.register_script(CLOSE_TURN)
        # The in-process stand-in serves one process, whose locks nobody else takes: one it
        # holds and that has not expired is its own, and is released with a plain DEL instead
        # of the compare-and-delete script, which fakeredis runs in an emulated Lua at a cost
        # of a good part of a message's handling.
        self._in_process = in_process(redis)

    async def first_delivery(self, channel: str, message_id: str) -> bool:
        """True the first time a platform message id is seen, False on a redelivery."""
        added = await self.redis.set(keys.dedupe(channel, message_id), "1", nx=True,
                                     ex=keys.DEDUPE_TTL)
        return bool(added)

    async def first_read_receipt(self, channel: str, message_id: str) -> bool:
        """True the first time a read receipt is due for a platform message id, False after."""
        added = await self.redis.set(keys.read_receipt(channel, message_id), "1", nx=True,
                                     ex=keys.DEDUPE_TTL)
        return bool(added)

    async def forget_delivery(self, channel: str, message_id: str) -> None:
        """Allow a message to be processed again (its handling failed before any effect)."""
        await self.redis.delete(keys.dedupe(channel, message_id))

    async def unlock_user(self, channel: str, user_id: str) -> None:
        """Release a person's lock whoever holds it: for their message taken over from a
        process that died holding it (else the lock would keep them waiting until it expires,
        longer than a message waits for it)."""
        await self.redis.delete(keys.user_lock(channel, user_id))

    async def load_session(self, channel: str, user_id: str) -> dict[str, Any]:
        return _session(await self.redis.get(keys.session(channel, user_id)))

    async def save_session(self, channel: str, user_id: str, data: dict[str, Any]) -> None:
        await self.redis.set(keys.session(channel, user_id), json.dumps(data, ensure_ascii=False),
                             ex=keys.SESSION_TTL)

    async def clear_session(self, channel: str, user_id: str) -> None:
        await self.redis.delete(keys.session(channel, user_id))

    @asynccontextmanager
    async def turn(self, channel: str, user_id: str,
                   message_id: str | None = None) -> AsyncIterator[Turn]:
        """One message's stay in Redis: the person's lock held for the whole block, so their
        messages are handled one at a time; the dedupe mark, the flood count and the session
        read in one round trip; the session saved, the message marked as handled and the lock
        released in one more (each shared with other people's messages under way).

        The message is marked handled only once handled: a process that dies half-way leaves
        it unmarked, so the platform's redelivery is handled (at least once, never lost)."""
        token = secrets.token_hex(8)
        asked = time.monotonic()  # the lock, if taken, was taken after this
        lock_key = keys.user_lock(channel, user_id)
        seen_key = keys.dedupe(channel, message_id) if message_id is not None else None
        window = int(time.time()) // keys.THROTTLE_WINDOW
        throttle_key = keys.throttle(channel, user_id, window)

        lock_ms = int(keys.USER_LOCK_TTL * 1000)
        session_key = keys.session(channel, user_id)
        if self._in_process:
            # fakeredis runs Lua in an emulation slower than the five commands it saves
            def opening(pipe: Any) -> None:
                pipe.set(lock_key, token, nx=True, px=lock_ms)
                pipe.get(session_key)
                pipe.incr(throttle_key)
                pipe.expire(throttle_key, keys.THROTTLE_WINDOW * 2)
                if seen_key is not None:
                    pipe.exists(seen_key)

            results = await pipelined(self.redis).run(opening)
            locked, raw, count = results[0], results[1], results[2]
            seen = bool(results[4]) if seen_key is not None else False
        else:
            names = [lock_key, session_key, throttle_key]
            if seen_key is not None:
                names.append(seen_key)
            locked, raw, count, marked = await evalsha(
                self.redis, self._open_script, names,
                [token, lock_ms, keys.THROTTLE_WINDOW * 2])
            seen = bool(marked)
        turn = Turn(duplicate=seen, throttled=int(count) > keys.THROTTLE_LIMIT,
                    session=_session(raw))
        if not locked and not turn.duplicate and not turn.throttled:
            await self._wait_for_lock(lock_key, token)
            locked = True
            # The person's previous message was handled meanwhile: read what it left.
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(keys.session(channel, user_id))
            if seen_key is not None:
                pipe.exists(seen_key)
            again = await pipe.execute()
            turn.session = _session(again[0])
            turn.duplicate = bool(again[1]) if seen_key is not None else False
        if turn.duplicate or turn.throttled:
            if locked:
                await self._release(lock_key, token, asked)
            yield turn
            return
        try:
            yield turn
        finally:
            # Redis gone, or the lock expired while we worked: the lock expires by itself.
            with contextlib.suppress(RedisError):
                await self._close_turn(channel, user_id, lock_key, token, turn, seen_key,
                                       asked)

    def _surely_mine(self, asked: float) -> bool:
        """In one process, a lock taken after `asked` that cannot have expired yet."""
        return self._in_process and time.monotonic() - asked < keys.USER_LOCK_TTL - 1

    async def _close_turn(self, channel: str, user_id: str, lock_key: str, token: str,
                          turn: Turn, seen_key: str | None, asked: float) -> None:
        """Save the session, mark the message handled and release the lock in one round trip."""
        session = json.dumps(turn.session, ensure_ascii=False) if turn.save else None
        if not self._in_process:
            names = [lock_key, keys.session(channel, user_id)]
            if seen_key is not None:
                names.append(seen_key)
            await evalsha(self.redis, self._close_script, names,
                          [token, session or "", keys.SESSION_TTL, keys.DEDUPE_TTL])
            return
        mine = self._surely_mine(asked)

        def closing(pipe: Any) -> None:
            if session is not None:
                pipe.set(keys.session(channel, user_id), session, ex=keys.SESSION_TTL)
            if seen_key is not None:
                pipe.set(seen_key, "1", ex=keys.DEDUPE_TTL)
            if mine:
                pipe.delete(lock_key)

        await pipelined(self.redis).run(closing)
        if not mine:  # held so long that it may have expired and been taken by another
            await self._release_script(keys=[lock_key], args=[token])

    async def _wait_for_lock(self, lock_key: str, token: str) -> None:
        deadline = time.monotonic() + keys.USER_LOCK_WAIT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            if await self.redis.set(lock_key, token, nx=True,
                                    px=int(keys.USER_LOCK_TTL * 1000)):
                return
        raise UserBusy(lock_key)

    async def _release(self, lock_key: str, token: str, asked: float) -> None:
        with contextlib.suppress(RedisError):
            if self._surely_mine(asked):
                await self.redis.delete(lock_key)
            else:
                await self._release_script(keys=[lock_key], args=[token])  # loads it if needed

    async def first_throttle_notice(self, channel: str, user_id: str) -> bool:
        """True once per throttle window: the person is told to slow down only once."""
        added = await self.redis.set(keys.throttle_notice(channel, user_id), "1", nx=True,
                                     ex=keys.THROTTLE_NOTICE_TTL)
        return bool(added)

    async def put_media(self, data: bytes, mime: str, filename: str) -> str:
        """Keep a reply's picture or file for the web chat to fetch; returns its token.

        The token is derived from the content: a floor map shown to thousands of visitors is
        kept once, not once per showing. Only someone who already has the exact bytes can
        derive it, so it reveals nothing."""
        digest = hashlib.sha256(b"\0".join((mime.encode(), filename.encode(), data)))
        token = base64.urlsafe_b64encode(digest.digest()[:18]).decode()
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

    async def keep_pages(self, channel: str, user_id: str, pages: ChoicePages) -> None:
        """Keep the person's long list for its next pages (replacing the one shown before)."""
        record = {"body": pages.body, "language": pages.language,
                  "choices": [list(choice) for choice in pages.choices]}
        await self.redis.set(keys.choice_pages(channel, user_id),
                             json.dumps(record, ensure_ascii=False), ex=keys.PAGES_TTL)

    async def pages(self, channel: str, user_id: str) -> ChoicePages | None:
        """The person's long list kept by `keep_pages`; None once expired (or unreadable)."""
        return _pages(await self.redis.get(keys.choice_pages(channel, user_id)))

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
