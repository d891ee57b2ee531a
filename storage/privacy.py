"""Personal data: how people are named where they must not be (log lines, shared exports),
what is kept about one person, and their erasure (on request, or after the retention time)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import String, case, cast, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import keys
from storage.models import (
    Broadcast,
    Contact,
    ErasedContacts,
    Exhibitor,
    ExhibitorSurvey,
    Fair,
    Feedback,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    SavedStand,
    WebInboxEntry,
    WebPushSubscription,
    WebSession,
    Workshop,
)
from storage.questions import redact
from storage.registrations import HOLDING, RegistrationRepository
from storage.reports import QUARTER_HOUR
from storage.repositories import Sessions
from storage.webinbox import service_key

log = logging.getLogger(__name__)

# The service keys (table service_keys) of the two ways of naming someone without their id.
LOG_KEY_NAME = "log-reference"
PSEUDONYM_KEY_NAME = "export-pseudonym"

# Until the process has read the deployment's key (`load_log_key`), a key of its own: the
# references of one process still match each other.
_log_key: bytes = secrets.token_bytes(32)


def person(channel: str, user_id: str) -> str:
    """How a log line names a person: the channel and a short keyed hash of their id
    (`whatsapp:#3f9a0c1d`), never the id itself (a phone number on WhatsApp). The same person
    gets the same reference in every process of a deployment once `load_log_key` ran, so one
    person's lines can be followed; the id cannot be found back from it."""
    digest = hmac.new(_log_key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{channel}:#{digest[:8]}"


async def load_log_key(sessions: Sessions) -> None:
    """Use the deployment's log-reference key, kept in the database (made the first time)."""
    global _log_key
    value = await service_key(sessions, LOG_KEY_NAME, lambda: secrets.token_hex(32))
    _log_key = value.encode()


class Pseudonyms:
    """Stable pseudonyms for shared exports (`tadamon export --anonymous`): the same person has
    the same pseudonym in every file and every run of a deployment, so rows can be matched
    across files, and nobody without the key can find the id back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    async def of(cls, sessions: Sessions) -> Pseudonyms:
        value = await service_key(sessions, PSEUDONYM_KEY_NAME, lambda: secrets.token_hex(32))
        return cls(value.encode())

    def __call__(self, channel: str, user_id: str) -> str:
        """`p-` and 16 hex digits; the empty text for a row that names nobody."""
        if not user_id:
            return ""
        digest = hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256)
        return "p-" + digest.hexdigest()[:16]


PERSON_CHANNELS = ("telegram", "whatsapp", "web")
# What people write a WhatsApp number with (+212 6 12-34-56-78): the wa_id is its digits.
_NUMBER_SIGNS = re.compile(r"[\s+().-]")


def parse_person(who: str) -> tuple[str, str]:
    """`whatsapp:+212 612 345 678` -> ("whatsapp", "212612345678"); ValueError otherwise."""
    channel, sep, user_id = who.strip().partition(":")
    channel, user_id = channel.strip().lower(), user_id.strip()
    if channel == "whatsapp":
        user_id = _NUMBER_SIGNS.sub("", user_id)
    if not sep or channel not in PERSON_CHANNELS or not user_id:
        raise ValueError(f"{who.strip()!r} is not CHANNEL:USER_ID with CHANNEL telegram, "
                         "whatsapp or web")
    return channel, user_id


# ---- what is kept about one person, and erasing it --------------------------------------

@dataclass(frozen=True, slots=True)
class KeptRegistration:
    """A registration as the person's "my data" lists it (cancelled ones are not)."""

    workshop_key: str
    title: dict[str, str]
    starts_at: dt.datetime
    status: RegistrationStatus
    position: int | None


@dataclass(frozen=True, slots=True)
class Kept:
    """What the service keeps about one person."""

    channel: str
    language: str | None
    role: Role
    opted_out: bool
    created_at: dt.datetime
    last_inbound_at: dt.datetime | None
    cooperative: dict[str, str] | None
    registrations: tuple[KeptRegistration, ...]
    saved_stands: tuple[str, ...]
    ratings: int
    comments: int
    pending_messages: int


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure removed, and what it kept without a name."""

    registrations: int
    """Registrations removed (not counting those already cancelled)."""
    seats_freed: int
    """Seats held (confirmed or offered) given back, and offered to the next person waiting."""
    saved_stands: int
    messages: int
    """Messages that were still to be sent to the person, removed."""
    ratings: int
    """Ratings, comments and survey answers kept, naming nobody."""


_PENDING = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# A message already sent (or failed, or skipped) stays in its broadcast's figures naming
# nobody: no recipient, no platform message id (WhatsApp's holds the phone number), no payload
# (a check-in code...), and an idempotency key that no longer holds the contact's id (SQLite
# may give that id to the next new contact).
_NAMING_NOBODY: dict[str, Any] = {
    "contact_id": None, "platform_message_id": None, "payload": {},
    "idempotency_key": literal("erased:") + cast(OutboxMessage.id, String),
}
# Keys of the erasure's Redis clean-up: the throttle windows that can still be alive.
_THROTTLE_WINDOWS = 3


def scrub(text: str | None) -> str | None:
    """A free text kept without its author (a comment): personal data replaced by
    placeholders, the rest as written (storage.questions.redact)."""
    return None if text is None else redact(text)


class PersonalData:
    """What is kept about a person, and their erasure: on their request in the chat, by an
    organizer (`tadamon forget`, the console), or after the retention time (the worker)."""

    def __init__(self, sessions: Sessions, registrations: RegistrationRepository,
                 redis: Redis | None = None) -> None:
        self.sessions = sessions
        self.registrations = registrations
        self.redis = redis

    async def kept(self, contact_id: int) -> Kept | None:
        """Everything kept about the person; None when they are not known (any more)."""
        async with self.sessions() as session:
            contact = await session.get(Contact, contact_id)
            if contact is None:
                return None
            cooperative = (await session.get(Exhibitor, contact.exhibitor_id)
                           if contact.exhibitor_id is not None else None)
            registrations = (await session.execute(
                select(Workshop.key, Workshop.title, Workshop.starts_at, Registration.status,
                       Registration.position)
                .join(Workshop, Workshop.id == Registration.workshop_id)
                .where(Registration.contact_id == contact_id,
                       Registration.status != RegistrationStatus.CANCELLED)
                .order_by(Workshop.starts_at, Workshop.key))).all()
            stands = (await session.scalars(
                select(SavedStand.stand_number).where(SavedStand.contact_id == contact_id)
                .order_by(SavedStand.created_at, SavedStand.id))).all()
            ratings, comments = (await session.execute(
                select(func.count(Feedback.rating),
                       func.count(case((func.trim(func.coalesce(Feedback.comment, "")) != "",
                                       1))))
                .where(Feedback.contact_id == contact_id))).one()
            survey_comments = await session.scalar(
                select(func.count()).select_from(ExhibitorSurvey)
                .where(ExhibitorSurvey.contact_id == contact_id,
                       func.trim(func.coalesce(ExhibitorSurvey.comment, "")) != ""))
            pending = await session.scalar(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.contact_id == contact_id,
                       OutboxMessage.status.in_(_PENDING)))
        return Kept(
            channel=contact.channel, language=contact.language, role=contact.role,
            opted_out=contact.opted_out, created_at=contact.created_at,
            last_inbound_at=contact.last_inbound_at,
            cooperative=dict(cooperative.name) if cooperative is not None else None,
            registrations=tuple(KeptRegistration(key, dict(title), starts_at, status, position)
                                for key, title, starts_at, status, position in registrations),
            saved_stands=tuple(stands), ratings=int(ratings or 0),
            comments=int(comments or 0) + int(survey_comments or 0),
            pending_messages=int(pending or 0))

    async def erase(self, channel: str, user_id: str, now: dt.datetime) -> Erased | None:
        """Erase the person: their contact, registrations (a seat they held is offered to
        the next person waiting), saved stands, messages still to be sent, web chat session
        and push subscriptions; their ratings, comments and survey answers stay, naming nobody,
        as do the messages already sent (counted in their broadcast). Then their Redis keys
        (conversation, pages, throttle). None when nobody has that id."""
        async with self.sessions() as session, session.begin():
            contact = await session.scalar(
                select(Contact).where(Contact.channel == channel, Contact.user_id == user_id))
            if contact is None:
                return None
            erased, forgotten = await self._erase(session, contact, now)
        await self._forget_in_redis(channel, user_id, contact.id, forgotten)
        return erased

    async def sweep(self, now: dt.datetime, retention_days: int, batch: int = 500) -> int:
        """The retention rule, applied: once the fair's last day is `retention_days` past,
        everyone who has not written for `retention_days` is erased (organizers are staff,
        and stay), and the messages sent before then no longer name their recipient. Returns
        how many people were erased."""
        ended = await self._fair_ended()
        if ended is None or now < ended + dt.timedelta(days=retention_days):
            return 0
        cutoff = now - dt.timedelta(days=retention_days)
        erased = 0
        while True:
            async with self.sessions() as session, session.begin():
                contacts = list(await session.scalars(
                    select(Contact)
                    .where(func.coalesce(Contact.last_inbound_at, Contact.created_at) < cutoff,
                           Contact.role != Role.ORGANIZER)
                    .order_by(Contact.id).limit(batch)
                    # another worker's pass takes other people meanwhile (PostgreSQL)
                    .with_for_update(skip_locked=True)))
                done = []
                for contact in contacts:
                    _erased, forgotten = await self._erase(session, contact, now)
                    done.append((contact.channel, contact.user_id, contact.id, forgotten))
            for channel, user_id, contact_id, forgotten in done:
                await self._forget_in_redis(channel, user_id, contact_id, forgotten)
            erased += len(done)
            if len(contacts) < batch:
                break
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.created_at < cutoff,
                       OutboxMessage.status.not_in(_PENDING),
                       OutboxMessage.contact_id.is_not(None))
                .values(**_NAMING_NOBODY))
            # Web chat sessions opened and never used (no contact was made of them).
            used = select(Contact.user_id).where(Contact.channel == "web")
            await session.execute(
                delete(WebSession).where(WebSession.created_at < cutoff,
                                         WebSession.public_id.not_in(used)))
        if erased:
            log.info("retention: %d people inactive for %d days erased", erased, retention_days)
        return erased

    async def _fair_ended(self) -> dt.datetime | None:
        """The end of the served fair's last day, in its time zone."""
        async with self.sessions() as session:
            fair = await session.scalar(
                select(Fair).where(Fair.active.is_(True)).order_by(Fair.id.desc()).limit(1))
        if fair is None:
            return None
        return dt.datetime.combine(fair.closes + dt.timedelta(days=1), dt.time(),
                                   ZoneInfo(fair.timezone))

    async def _erase(self, session: AsyncSession, contact: Contact, now: dt.datetime
                     ) -> tuple[Erased, list[str]]:
        """The erasure inside the caller's transaction; also the web session token hashes
        whose Redis copies are to be deleted."""
        contact_id = contact.id
        rows = list(await session.scalars(
            select(Registration).where(Registration.contact_id == contact_id)
            .order_by(Registration.workshop_id)))  # workshops locked in one order
        held = sum(1 for row in rows if row.status in HOLDING)
        live = [row for row in rows if row.status != RegistrationStatus.CANCELLED]
        for row in live:
            await self.registrations.drop_in(session, row, now)
        if rows:
            await session.execute(delete(Registration).where(
                Registration.contact_id == contact_id))
        stands = await session.execute(delete(SavedStand).where(
            SavedStand.contact_id == contact_id))
        messages = await session.execute(delete(OutboxMessage).where(
            OutboxMessage.contact_id == contact_id, OutboxMessage.status.in_(_PENDING)))
        # A broadcast's messages stay in its figures, naming nobody; the rest were hers alone
        # (reminders, offers, notices: sent, or skipped when her registration went).
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.contact_id == contact_id,
                                        OutboxMessage.broadcast_id.is_not(None))
            .values(**_NAMING_NOBODY))
        await session.execute(delete(OutboxMessage).where(
            OutboxMessage.contact_id == contact_id))
        await session.execute(delete(WebInboxEntry).where(WebInboxEntry.contact_id == contact_id))
        await session.execute(delete(WebPushSubscription).where(
            WebPushSubscription.contact_id == contact_id))
        feedback = list(await session.scalars(
            select(Feedback).where(Feedback.contact_id == contact_id)))
        for item in feedback:
            item.contact_id, item.comment = None, scrub(item.comment)
        surveys = (await session.execute(
            select(ExhibitorSurvey.id, ExhibitorSurvey.comment)
            .where(ExhibitorSurvey.contact_id == contact_id))).all()
        for survey_id, comment in surveys:
            await session.execute(  # answered when it was answered: its time stays
                update(ExhibitorSurvey).where(ExhibitorSurvey.id == survey_id)
                .values(contact_id=None, comment=scrub(comment),
                        updated_at=ExhibitorSurvey.updated_at))
        await session.execute(update(Broadcast).where(Broadcast.created_by == contact_id)
                              .values(created_by=None))
        forgotten: list[str] = []
        if contact.channel == "web":
            forgotten = list(await session.scalars(
                select(WebSession.token_hash).where(WebSession.public_id == contact.user_id)))
            await session.execute(delete(WebSession).where(
                WebSession.public_id == contact.user_id))
        await self._count_erased(session, contact)
        await session.delete(contact)
        await session.flush()
        return Erased(registrations=len(live), seats_freed=held,
                      saved_stands=_count(stands), messages=_count(messages),
                      ratings=len(feedback) + len(surveys)), forgotten

    @staticmethod
    async def _count_erased(session: AsyncSession, contact: Contact) -> None:
        """One more person erased in the report's figures (channel, language, first day)."""
        insert = (postgresql_insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite_insert)
        quarter = int(contact.created_at.timestamp()) // QUARTER_HOUR
        statement = insert(ErasedContacts).values(
            channel=contact.channel, language=contact.language or "", quarter=quarter,
            people=1)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["channel", "language", "quarter"],
            set_={"people": ErasedContacts.people + 1}))

    async def _forget_in_redis(self, channel: str, user_id: str, contact_id: int,
                               web_sessions: list[str]) -> None:
        """The person's keys in Redis: their conversation, its pages, their message counts,
        their wrong link codes, their web chat session's copy. A failure is logged: these
        keys all expire within a day."""
        from storage.transfers import TransferCodes  # which names people with `person`

        if self.redis is None:
            return
        window = int(time.time()) // keys.THROTTLE_WINDOW
        names = [keys.session(channel, user_id), keys.choice_pages(channel, user_id),
                 keys.throttle_notice(channel, user_id),
                 keys.link_code_failures_of_contact(contact_id),
                 *(keys.throttle(channel, user_id, window - back)
                   for back in range(_THROTTLE_WINDOWS)),
                 *(keys.web_session(hashed) for hashed in web_sessions)]
        if channel == "telegram":
            names.append(keys.rate_bucket(keys.telegram_chat_bucket(user_id)))
        try:
            await self.redis.delete(*names)
            await TransferCodes(self.redis).revoke(contact_id)
        except RedisError:
            log.warning("redis unavailable: the conversation of an erased person expires by "
                        "itself within a day")


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
