"""Moving a web chat person to WhatsApp or Telegram: one-time transfer codes (Redis), and the
move itself (SQL, one transaction): language, registrations and waiting-list places, saved
stands."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import delete, select, update

from storage import keys
from storage.cooperatives import CODE_ALPHABET
from storage.models import (
    Contact,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    SavedStand,
    WebInboxEntry,
)
from storage.privacy import person
from storage.registrations import RegistrationRepository, registration_key
from storage.repositories import Sessions

log = logging.getLogger(__name__)

# 27 ** 8 is about 2 ** 38: with single use, half an hour of life and the wrong-code limits of
# LinkAttempts, out of reach of guessing; and eight symbols are typed without a mistake.
TRANSFER_CODE_LENGTH = 8


# Which of two registrations for the same workshop is kept: a seat before an offer before a
# place in the waiting list.
_RANK = {RegistrationStatus.WAITLISTED: 0, RegistrationStatus.OFFERED: 1,
         RegistrationStatus.CONFIRMED: 2, RegistrationStatus.CANCELLED: -1}


def normalize_transfer_code(code: str) -> str | None:
    """A code as issued: upper case, without the spaces and dashes people add; None when it
    cannot be one."""
    normalized = code.strip().upper().replace("-", "").replace(" ", "")
    if len(normalized) != TRANSFER_CODE_LENGTH or not set(normalized) <= set(CODE_ALPHABET):
        return None
    return normalized


class TransferCodes:
    """One-time codes naming the web chat contact they were issued to (keys.transfer_code)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def issue(self, contact_id: int, now: dt.datetime) -> str:
        """A new code for this contact, valid keys.TRANSFER_CODE_TTL seconds from `now`."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(TRANSFER_CODE_LENGTH))
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.transfer_code(code), f"{contact_id}:{int(now.timestamp())}",
                 ex=keys.TRANSFER_CODE_TTL)
        pipe.sadd(keys.transfer_code_of_contact(contact_id), code)
        pipe.expire(keys.transfer_code_of_contact(contact_id), keys.TRANSFER_CODE_TTL)
        await pipe.execute()
        return code

    async def revoke(self, contact_id: int) -> None:
        """The codes issued to this contact no longer work (they were erased)."""
        name = keys.transfer_code_of_contact(contact_id)
        codes = await self.redis.smembers(name)
        await self.redis.delete(name, *(keys.transfer_code(
            code.decode() if isinstance(code, bytes) else str(code)) for code in codes))

    async def take(self, code: str, now: dt.datetime) -> int | None:
        """The contact a valid code was issued to, the code used up; None for a wrong, used or
        expired one. The time is checked too: Redis' expiry is the clock of its server."""
        value = await self.redis.getdel(keys.transfer_code(code))
        if value is None:
            return None
        contact, _sep, issued = (value.decode() if isinstance(value, bytes) else str(value)
                                 ).partition(":")
        if now.timestamp() - int(issued) > keys.TRANSFER_CODE_TTL:
            return None
        return int(contact)


@dataclass(frozen=True, slots=True)
class Moved:
    """What a transfer moved: registrations (waiting-list places included) and saved stands,
    and the language the person had chosen (None when they had not)."""

    registrations: int
    stands: int
    language: str | None


class Transfers:
    """The move of everything a web chat person has to the contact they continue on."""

    def __init__(self, sessions: Sessions, registrations: RegistrationRepository) -> None:
        self.sessions = sessions
        self.registrations = registrations

    async def move(self, source_id: int, target_id: int, now: dt.datetime) -> Moved:
        """Move the source contact's language, live registrations (with their reminders and
        their place in a waiting list) and saved stands to the target, in one transaction; a
        workshop or stand the target already has is kept once. The source keeps none of them,
        and what waited in its web inbox is dropped (the target is told what moved)."""
        async with self.sessions() as session, session.begin():
            source = await session.get(Contact, source_id)
            target = await session.get(Contact, target_id)
            if source is None or target is None or source_id == target_id:
                return Moved(0, 0, None)
            if source.language and source.language_confirmed:
                target.language, target.language_confirmed = source.language, True
            rows = list(await session.scalars(select(Registration).where(
                Registration.contact_id == source_id,
                Registration.status != RegistrationStatus.CANCELLED)))
            moved = 0
            for row in rows:
                theirs = await session.scalar(select(Registration).where(
                    Registration.workshop_id == row.workshop_id,
                    Registration.contact_id == target_id))
                if theirs is not None and theirs.status != RegistrationStatus.CANCELLED:
                    # Kept once, the better of the two; the other is cancelled like any other.
                    if _RANK[row.status] <= _RANK[theirs.status]:
                        await self.registrations.drop_in(session, row, now)
                        continue
                    await self.registrations.drop_in(session, theirs, now)
                if theirs is not None:  # cancelled now: it would clash with the unique key
                    await session.delete(theirs)
                    await session.flush()
                row.contact_id = target_id
                # Its reminders and offer go to the app now.
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.idempotency_key.startswith(registration_key(row.id)),
                           OutboxMessage.status == OutboxStatus.PENDING)
                    .values(contact_id=target_id, channel=target.channel))
                moved += 1
            stands = list(await session.scalars(select(SavedStand).where(
                SavedStand.contact_id == source_id)))
            held = {(fair, number) for fair, number in (await session.execute(
                select(SavedStand.fair_id, SavedStand.stand_number)
                .where(SavedStand.contact_id == target_id))).all()}
            for saved in stands:
                if (saved.fair_id, saved.stand_number) in held:
                    await session.delete(saved)
                else:
                    saved.contact_id = target_id
            await session.execute(delete(WebInboxEntry).where(
                WebInboxEntry.contact_id == source_id, WebInboxEntry.shown_at.is_(None)))
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.contact_id == source_id,
                       OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SKIPPED, error="moved to another channel"))
            log.info("%s moved to %s: %d registrations, %d stands",
                     person(source.channel, source.user_id),
                     person(target.channel, target.user_id), moved, len(stands))
            return Moved(moved, len(stands),
                         source.language if source.language_confirmed else None)
