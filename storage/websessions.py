"""Web chat sessions: tokens this deployment issues, kept in SQL only as hashes. The person behind
a token is known everywhere else (contacts, logs, exports, Redis keys) by a public id derived
from it one way, which gives nothing back: the token is a credential, the public id is not."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from storage import keys
from storage.models import WebSession, utcnow
from storage.ratelimit import RateLimiter
from storage.repositories import Sessions

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 random bits
# What `secrets.token_urlsafe(TOKEN_BYTES)` gives: anything else was not issued here.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")

# Tokens recently seen by this process: most messages then cost no round trip at all. Entries
# grow old so that a session removed from SQL stops working here too, soon enough.
CACHE_SIZE = 20_000
CACHE_AGE = 300.0
# How long this process trusts its copy of the shared key of client hashes (Redis may lose it).
CLIENT_KEY_AGE = 600.0


def new_token() -> str:
    """A fresh session token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What SQL keeps of a token: enough to recognise it, useless to present it."""
    return hashlib.sha256(b"tadamon web session\0" + token.encode()).hexdigest()


def public_id(token: str) -> str:
    """The person's id everywhere else: 128 bits of a hash of the token, which nobody can turn
    back into the token (nor into its stored hash)."""
    return hashlib.sha256(b"tadamon web person\0" + token.encode()).hexdigest()[:32]


class WebSessionRepository:
    """Issues web chat sessions, recognises them, and limits new ones per client address."""

    def __init__(self, sessions: Sessions, redis: Redis, per_minute: int = 30) -> None:
        self.sessions = sessions
        self.redis = redis
        self.limiter = RateLimiter(redis)
        # A bucket of `per_minute` sessions, refilled at `per_minute` a minute.
        self.per_minute = per_minute
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._client_key: tuple[bytes, float] | None = None
        self._fallback_key = secrets.token_bytes(32)

    async def issue(self, client_hash: str | None) -> str:
        """A new session token, recorded (as a hash) before it is given out."""
        token = new_token()
        hashed, person = token_hash(token), public_id(token)
        async with self.sessions() as session, session.begin():
            session.add(WebSession(token_hash=hashed, public_id=person,
                                   client_hash=client_hash, created_at=utcnow()))
        self._remember(hashed, person)
        try:
            await self.redis.set(keys.web_session(hashed), person, ex=keys.WEB_SESSION_TTL)
        except RedisError:
            log.warning("redis unavailable: a new web chat session is known to SQL only")
        return token

    async def resolve(self, token: str) -> str | None:
        """The public id of a token this deployment issued; None for anything else. Memory
        first, then Redis, then SQL (the source of truth, so losing Redis logs no one out)."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        hashed = token_hash(token)
        person = self._recall(hashed)
        if person is not None:
            return person
        cached: str | bytes | None = None
        try:
            cached = await self.redis.getex(keys.web_session(hashed), ex=keys.WEB_SESSION_TTL)
        except RedisError:
            log.warning("redis unavailable: checking a web chat session in SQL")
        if cached:
            person = cached.decode() if isinstance(cached, bytes) else cached
        else:
            async with self.sessions() as session:
                person = await session.scalar(
                    select(WebSession.public_id).where(WebSession.token_hash == hashed))
            if person is None:
                return None
            with contextlib.suppress(RedisError):  # SQL answered; the copy is a shortcut
                await self.redis.set(keys.web_session(hashed), person, ex=keys.WEB_SESSION_TTL)
        self._remember(hashed, person)
        return person

    def forget(self, token: str) -> None:
        """Stop recognising a token in this process (its person was erased, with the SQL row
        and the Redis copy): their next message gets 401, and the page asks for a new session."""
        self._known.pop(token_hash(token), None)

    async def client_hash(self, address: str) -> str:
        """A keyed hash of a client's network address: the same in every process, and no way
        back to the address for whoever reads the database."""
        key = await self._key()
        return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:32]

    async def admit(self, client_hash: str) -> float:
        """0.0 when the client may open a new session now, else the seconds until it may."""
        try:
            return await self.limiter.try_take(keys.web_sessions_bucket(client_hash),
                                               self.per_minute / 60, self.per_minute)
        except RedisError:
            log.warning("redis unavailable: new web chat sessions are not limited meanwhile")
            return 0.0

    async def _key(self) -> bytes:
        now = time.monotonic()
        if self._client_key is not None and now - self._client_key[1] < CLIENT_KEY_AGE:
            return self._client_key[0]
        try:
            await self.redis.set(keys.WEB_CLIENT_KEY, secrets.token_hex(32), nx=True)
            shared = await self.redis.get(keys.WEB_CLIENT_KEY)
        except RedisError:
            log.warning("redis unavailable: client addresses hashed with this process's key")
            return self._fallback_key
        if not shared:
            return self._fallback_key
        self._client_key = (str(shared).encode(), now)
        return self._client_key[0]

    def _remember(self, hashed: str, person: str) -> None:
        self._known[hashed] = (person, time.monotonic())
        self._known.move_to_end(hashed)
        while len(self._known) > CACHE_SIZE:
            self._known.popitem(last=False)

    def _recall(self, hashed: str) -> str | None:
        found = self._known.get(hashed)
        if found is None:
            return None
        person, since = found
        if time.monotonic() - since > CACHE_AGE:
            del self._known[hashed]
            return None
        self._known.move_to_end(hashed)
        return person
