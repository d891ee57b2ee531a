"""Cooperatives: link codes, the attempts to use them, and the chats of their members linked
to them."""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from storage import keys
from storage.catalogue import active_fair
from storage.feedback import digest_figures
from storage.models import Contact, Exhibitor, Role, Stand
from storage.notices import CoopDigestNotice, DigestComment
from storage.repositories import Sessions

log = logging.getLogger(__name__)

# No 0/O or 1/I/L: codes are read off paper and typed on phones. No 3, 7 or 9 either: in
# Latin-letter Darija they stand for Arabic letters, and a code must not look like Darija.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ2456"
# 27 ** 13 is about 2 ** 61.8: a code cannot be guessed, even by many people trying at once
# from many addresses within the limits of LinkAttempts. (Twelve symbols of this alphabet would
# give 57 bits; without 0, O, 1, I and L no alphabet reaches the 32 symbols that twelve would
# need for 60.)
CODE_LENGTH = 13
# Codes issued before (8 symbols) keep working until revoked.
EARLIER_CODE_LENGTHS = (8,)
CODE_LENGTHS = (*EARLIER_CODE_LENGTHS, CODE_LENGTH)


def normalize_code(code: str) -> str | None:
    """A code as stored: upper case, without the spaces and dashes people add; None when it
    cannot be a code (a length or a symbol no code has)."""
    normalized = code.strip().upper().replace("-", "").replace(" ", "")
    if len(normalized) not in CODE_LENGTHS or not set(normalized) <= set(CODE_ALPHABET):
        return None
    return normalized


@dataclass(frozen=True, slots=True)
class CoopCode:
    exhibitor: str
    name: dict[str, str]
    stand: str | None
    code: str


@dataclass(frozen=True, slots=True)
class LinkedCooperative:
    exhibitor: str
    name: dict[str, str]
    stand: str | None
    zone: dict[str, str] | None


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class CooperativeRepository:
    """Link codes of the served fair's exhibitors and the chats linked to them."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def codes(self, revoke: str | None = None) -> list[CoopCode]:
        """Every exhibitor's code, making the missing ones; `revoke` (an exhibitor id) gets a
        new code, so the old one stops working."""
        async with self.sessions() as session, session.begin():
            fair = await active_fair(session)
            if fair is None:
                return []
            rows = (await session.execute(
                select(Exhibitor, Stand.number)
                .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
                .where(Exhibitor.fair_id == fair.id).order_by(Exhibitor.key))).all()
            found: list[CoopCode] = []
            for exhibitor, number in rows:
                if exhibitor.link_code is None or exhibitor.key == revoke:
                    exhibitor.link_code = new_code()
                found.append(CoopCode(exhibitor.key, exhibitor.name, number,
                                      exhibitor.link_code))
            return found

    async def exhibitor_of(self, contact_id: int) -> int | None:
        """The exhibitor a chat is linked to, if any."""
        async with self.sessions() as session:
            return await session.scalar(select(Contact.exhibitor_id)
                                        .where(Contact.id == contact_id))

    async def stand_day(self, contact_id: int, day: dt.date) -> CoopDigestNotice | None:
        """The day so far at the stand of the exhibitor this chat is linked to: what the evening
        digest tells (card views, saves, ratings, comments). None when the chat is linked to no
        exhibitor of the served fair, or its exhibitor has no stand."""
        async with self.sessions() as session:
            fair = await active_fair(session)
            if fair is None:
                return None
            number = await session.scalar(
                select(Stand.number).join(Exhibitor, Exhibitor.stand_id == Stand.id)
                .join(Contact, Contact.exhibitor_id == Exhibitor.id)
                .where(Contact.id == contact_id, Exhibitor.fair_id == fair.id))
            if number is None:
                return None
            figures = (await digest_figures(session, fair, day, {number}))[number]
        return CoopDigestNotice(
            stand=number, day=day, views=figures["views"], views_total=figures["views_total"],
            saves=figures["saves"], ratings=figures["ratings"], average=figures["average"],
            comments=tuple(DigestComment(text=comment["text"], language=comment["language"])
                           for comment in figures["comments"]))

    async def link(self, contact_id: int, code: str) -> LinkedCooperative | None:
        """Link a chat to the cooperative whose code this is (several members may link);
        None when no exhibitor has this code. This is the only way to the cooperative role."""
        normalized = normalize_code(code)
        if normalized is None:
            return None
        async with self.sessions() as session, session.begin():
            fair = await active_fair(session)
            # A code of an earlier fair's exhibitor gives nothing at this one.
            row = None if fair is None else (await session.execute(
                select(Exhibitor, Stand)
                .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
                .where(Exhibitor.link_code == normalized,
                       Exhibitor.fair_id == fair.id))).first()
            if row is None:
                log.info("wrong link code from contact %d", contact_id)  # never the code
                return None
            exhibitor, stand = row
            contact = await session.get(Contact, contact_id)
            if contact is None:
                return None
            contact.exhibitor_id = exhibitor.id
            if contact.role != Role.ORGANIZER:  # an organizer keeps their rights
                contact.role = Role.COOPERATIVE
            return LinkedCooperative(exhibitor.key, exhibitor.name,
                                     stand.number if stand else None,
                                     stand.zone if stand else None)


# KEYS: the failure counters that apply; ARGV[1]: the window in ms, then each key's limit.
# Checks every counter, then counts this attempt in all of them, in one step: processes
# checking at the same moment cannot all pass at the limit. Returns {0, 0, 0} when the code may
# be checked; else {the number (from 1) of the counter at its limit, ms before it expires, how
# many attempts it refused}: a refused attempt is counted in that counter only.
TAKE_ATTEMPT = """
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[i + 1])
    if tonumber(redis.call("get", key) or "0") >= limit then
        local refused = redis.call("incr", key) - limit
        local left = redis.call("pttl", key)
        if left < 0 then
            redis.call("pexpire", key, ARGV[1])
            left = tonumber(ARGV[1])
        end
        return {i, left, refused}
    end
end
for _, key in ipairs(KEYS) do
    redis.call("incr", key)
    if redis.call("pttl", key) < 0 then
        redis.call("pexpire", key, ARGV[1])
    end
end
return {0, 0, 0}
"""

# KEYS: the counters an attempt was counted in; it turned out not to be a wrong code.
GIVE_BACK_ATTEMPT = """
for _, key in ipairs(KEYS) do
    if tonumber(redis.call("get", key) or "0") > 0 then
        redis.call("decr", key)
    end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Attempt:
    """Whether a link code may be checked now; when not, the minutes before it may, or
    Redis did not answer (`unavailable`): nothing can be counted, so nothing is checked."""

    allowed: bool
    counters: tuple[str, ...] = ()
    retry_minutes: int = 0
    unavailable: bool = False


class LinkAttempts:
    """Wrong link codes counted per person and per client address (keys.LINK_CODE_*): every
    attempt is counted before its code is checked, and given back when it was not a wrong one,
    so no more than the limit of wrong codes is ever checked in a window."""

    def __init__(self, redis: Redis) -> None:
        self._take = redis.register_script(TAKE_ATTEMPT)
        self._give_back = redis.register_script(GIVE_BACK_ATTEMPT)

    async def take(self, contact_id: int, client: str | None) -> Attempt:
        """Count an attempt by this person (and from this address, when known), unless a
        limit is reached."""
        counters = [keys.link_code_failures_of_contact(contact_id)]
        limits = [keys.LINK_CODE_PERSON_LIMIT]
        if client:
            counters.append(keys.link_code_failures_of_client(client))
            limits.append(keys.LINK_CODE_CLIENT_LIMIT)
        try:
            hit, left, refused = await self._take(
                keys=counters, args=[keys.LINK_CODE_WINDOW * 1000, *limits])
        except RedisError:
            log.exception("redis unavailable: link codes cannot be checked")
            return Attempt(allowed=False, unavailable=True)
        if int(hit) == 0:
            return Attempt(allowed=True, counters=tuple(counters))
        minutes = max(1, math.ceil(int(left) / 60_000))
        if int(refused) == 1:  # once per window, however many attempts follow
            log.warning("too many wrong link codes from this %s: no code is checked for %d "
                        "min (refused to contact %d)",
                        "address" if int(hit) == 2 else "person", minutes, contact_id)
        return Attempt(allowed=False, retry_minutes=minutes)

    async def give_back(self, attempt: Attempt) -> None:
        """The attempt was not a wrong code (it linked, or could not be a code at all)."""
        if not attempt.counters:
            return
        try:
            await self._give_back(keys=list(attempt.counters))
        except RedisError:
            log.warning("redis unavailable: an attempt at a link code stays counted")
