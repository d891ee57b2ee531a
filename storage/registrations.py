"""Workshop registrations: seats, the waiting list and time-limited offers, safe under concurrency.

Every change takes the workshop's row lock first (PostgreSQL: SELECT ... FOR UPDATE; SQLite: its
single writer, and our one pooled connection), then counts and writes in the same transaction.
So confirmed (and offered) seats never exceed the capacity, whatever the number of processes,
and waiting-list positions stay 1..N without gaps. The unique (workshop, contact) constraint
makes a repeated tap harmless: a person has one registration row per workshop, reused when they
register again after cancelling.

A freed seat becomes a time-limited offer to the first on the waiting list. The time to answer
shrinks as the start nears (12 h, then 2 h within a day of it, none in the last hour); an offer
made during quiet hours counts from the morning, when its message goes out. An offer declined or
left to expire passes to the next person.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Contact,
    Fair,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    Workshop,
)
from storage.notices import (
    FeedbackPromptNotice,
    Notice,
    OfferExpiredNotice,
    OfferNotice,
    WorkshopReminderNotice,
)
from storage.outbox import DEFAULT_QUIET_HOURS, QuietHours, quiet_until
from storage.reach import can_receive_later
from storage.repositories import Sessions

OFFER_LONG = dt.timedelta(hours=12)
OFFER_SHORT = dt.timedelta(hours=2)
SHORT_WITHIN = dt.timedelta(days=1)
NO_OFFERS_BEFORE = dt.timedelta(hours=1)
"""No offer, and no waiting list, in the last hour before a workshop starts."""

FEEDBACK_AFTER = dt.timedelta(minutes=15)
"""A registered person's feedback prompt comes this long after the end."""

HOLDING = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED)
"""Statuses that hold a seat."""

# The check-in code a confirmed seat carries (its QR code, shown at the door): no 0/O, 1/I/L
# to misread when it is typed; 27 ** 10 is about 2 ** 47, out of reach of guessing at a door.
CHECKIN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ2456"
CHECKIN_CODE_LENGTH = 10


class Outcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    ALREADY = "already"  # registered, waitlisted or offered already: nothing changed
    FULL = "full"  # full, and too close to the start for a waiting list
    STARTED = "started"  # started or past
    COOPERATIVES_ONLY = "cooperatives_only"
    OVERLAP = "overlap"  # overlaps another confirmed workshop: ask before registering
    CANCELLED = "cancelled"  # the workshop was cancelled by the organizers
    UNKNOWN = "unknown"  # no such workshop at this fair


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    NOT_REGISTERED = "not_registered"
    STARTED = "started"


class OfferOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # too late: the seat went on to the next person
    NO_OFFER = "no_offer"  # no offer of this person for this workshop (stale or forged button)


@dataclass(frozen=True, slots=True)
class Registered:
    """What a registration attempt did."""

    outcome: Outcome
    workshop_id: int
    status: RegistrationStatus | None = None
    position: int | None = None
    overlaps: tuple[int, ...] = ()
    checkin_code: str | None = None


@dataclass(frozen=True, slots=True)
class MyRegistration:
    """One of a person's registrations, for "my workshops"."""

    workshop_id: int
    status: RegistrationStatus
    position: int | None
    offered_until: dt.datetime | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    title: dict[str, Any]
    room: dict[str, Any]
    checkin_code: str | None = None


@dataclass(frozen=True, slots=True)
class Reminders:
    """When registered people are reminded: the evening before at `evening` (None: not), and
    `before` the start (zero: not). Settings TADAMON_REMINDER_EVENING / _BEFORE."""

    evening: dt.time | None = dt.time(18)
    before: dt.timedelta = dt.timedelta(hours=1)


def offer_deadline(now: dt.datetime, starts_at: dt.datetime, zone: dt.tzinfo,
                   quiet: QuietHours | None = DEFAULT_QUIET_HOURS) -> dt.datetime | None:
    """Until when an offer made now can be accepted; None when it is too late to offer."""
    begins = quiet_until(now, zone, quiet) or now
    last = starts_at - NO_OFFERS_BEFORE
    if begins >= last:
        return None
    window = OFFER_LONG if starts_at - begins > SHORT_WITHIN else OFFER_SHORT
    return min(begins + window, last)


class RegistrationRepository:
    """Registrations of one fair's workshops."""

    def __init__(self, sessions: Sessions, zone: dt.tzinfo | str,
                 reminders: Reminders | None = None,
                 quiet: QuietHours | None = DEFAULT_QUIET_HOURS) -> None:
        self.sessions = sessions
        # Only for a fair whose record names no time zone: each fair's times are its own.
        self.zone = ZoneInfo(zone) if isinstance(zone, str) else zone
        self.reminders = reminders or Reminders()
        self.quiet = quiet

    # ---- a person ------------------------------------------------------------------------

    async def register(self, fair_id: int, contact_id: int, workshop_id: int,
                       now: dt.datetime, *, allow_overlap: bool = False) -> Registered:
        """Confirm a seat, or a place on the waiting list, or say why not."""
        try:
            async with self.sessions() as session, session.begin():
                return await self._register(session, fair_id, contact_id, workshop_id, now,
                                            allow_overlap)
        except IntegrityError:
            # The same person's two taps raced past the check: the first one won.
            async with self.sessions() as session:
                row = await self._registration(session, workshop_id, contact_id)
            return Registered(Outcome.ALREADY, workshop_id, row.status if row else None,
                              row.position if row else None)

    async def _register(self, session: AsyncSession, fair_id: int, contact_id: int,
                        workshop_id: int, now: dt.datetime, allow_overlap: bool) -> Registered:
        # What concerns the person alone is read before the workshop's lock, so that the lock
        # is held only to count the seats and write (a popular workshop's taps queue on it).
        # A race of the same person's two taps ends at the unique (workshop, contact).
        workshop = await session.get(Workshop, workshop_id)
        if workshop is None or workshop.fair_id != fair_id:
            return Registered(Outcome.UNKNOWN, workshop_id)
        if workshop.audience == "cooperatives":
            contact = await session.get_one(Contact, contact_id)
            if contact.role not in (Role.COOPERATIVE, Role.ORGANIZER):
                return Registered(Outcome.COOPERATIVES_ONLY, workshop_id)
        row = await self._registration(session, workshop_id, contact_id)
        if row is not None and row.status != RegistrationStatus.CANCELLED:
            return Registered(Outcome.ALREADY, workshop_id, row.status, row.position)
        if not allow_overlap and not workshop.cancelled:
            overlaps = tuple(await session.scalars(
                select(Workshop.id).join(Registration, Registration.workshop_id == Workshop.id)
                .where(Registration.contact_id == contact_id,
                       Registration.status == RegistrationStatus.CONFIRMED,
                       Workshop.id != workshop.id, Workshop.cancelled.is_(False),
                       Workshop.starts_at < workshop.ends_at,
                       Workshop.ends_at > workshop.starts_at)
                .order_by(Workshop.starts_at)))
            if overlaps:
                return Registered(Outcome.OVERLAP, workshop_id, overlaps=overlaps)
        await session.get_one(Contact, contact_id)  # for the reminders, read outside the lock
        locked = await _locked(session, workshop_id)
        assert locked is workshop  # the same row, refreshed under the lock
        if workshop.cancelled:
            return Registered(Outcome.CANCELLED, workshop_id)
        if workshop.starts_at <= now:
            return Registered(Outcome.STARTED, workshop_id)
        holding, waiting = await _counts(session, workshop.id)
        if holding < workshop.capacity:
            status, position = RegistrationStatus.CONFIRMED, None
        elif workshop.starts_at - now <= NO_OFFERS_BEFORE:
            return Registered(Outcome.FULL, workshop_id)
        else:
            status, position = RegistrationStatus.WAITLISTED, waiting + 1
        if row is None:
            row = Registration(workshop_id=workshop.id, contact_id=contact_id)
            session.add(row)
        row.status, row.position, row.offered_until = status, position, None
        row.created_at = now
        if status == RegistrationStatus.CONFIRMED:
            give_checkin_code(row)
        await session.flush()
        if status == RegistrationStatus.CONFIRMED:
            await self._queue_reminders(session, workshop, row, now)
        return Registered(Outcome.CONFIRMED if status == RegistrationStatus.CONFIRMED
                          else Outcome.WAITLISTED, workshop_id, status, position,
                          checkin_code=row.checkin_code)

    async def cancel(self, contact_id: int, workshop_id: int, now: dt.datetime
                     ) -> CancelOutcome:
        """Give up a seat, an offer or a place on the waiting list, until the start. A freed
        seat is offered to the next person waiting."""
        async with self.sessions() as session, session.begin():
            workshop = await _locked(session, workshop_id)
            row = await self._registration(session, workshop_id, contact_id)
            if workshop is None or row is None or row.status == RegistrationStatus.CANCELLED:
                return CancelOutcome.NOT_REGISTERED
            if workshop.starts_at <= now:
                return CancelOutcome.STARTED
            await self._drop(session, workshop, row, now)
            return CancelOutcome.CANCELLED

    async def answer_offer(self, contact_id: int, workshop_id: int, accept: bool,
                           now: dt.datetime, *, tell_if_expired: bool = False) -> OfferOutcome:
        """Accept or decline the seat offered to this person (an offer whose time is over
        passes on; with `tell_if_expired`, the person gets a message saying so)."""
        async with self.sessions() as session, session.begin():
            workshop = await _locked(session, workshop_id)
            row = await self._registration(session, workshop_id, contact_id)
            if workshop is None or row is None:
                return OfferOutcome.NO_OFFER
            if row.status != RegistrationStatus.OFFERED or row.offered_until is None:
                if row.status == RegistrationStatus.CANCELLED and not accept:
                    return OfferOutcome.DECLINED  # a second tap on "decline"
                return (OfferOutcome.ACCEPTED if row.status == RegistrationStatus.CONFIRMED
                        and accept else OfferOutcome.NO_OFFER)
            if now > row.offered_until or workshop.starts_at <= now:
                await self._drop(session, workshop, row, now)
                if tell_if_expired:
                    contact = await session.get_one(Contact, contact_id)
                    if can_receive_later(contact.channel):
                        notice = OfferExpiredNotice(workshop_id=workshop.id,
                                                    title=workshop.title)
                        session.add(OutboxMessage(
                            contact_id=contact_id, channel=contact.channel, kind=notice.kind,
                            payload=notice.dump(),
                            due_at=now, idempotency_key=f"offer-expired:{row.id}:"
                                                        f"{int(now.timestamp())}"))
                return OfferOutcome.EXPIRED
            if not accept:
                await self._drop(session, workshop, row, now)
                return OfferOutcome.DECLINED
            row.status, row.offered_until = RegistrationStatus.CONFIRMED, None
            give_checkin_code(row)
            await session.flush()
            await self._queue_reminders(session, workshop, row, now)
            return OfferOutcome.ACCEPTED

    async def mine(self, fair_id: int, contact_id: int) -> list[MyRegistration]:
        """A person's registrations that are not cancelled, in time order."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Registration, Workshop)
                .join(Workshop, Workshop.id == Registration.workshop_id)
                .where(Registration.contact_id == contact_id, Workshop.fair_id == fair_id,
                       Registration.status != RegistrationStatus.CANCELLED,
                       Workshop.cancelled.is_(False))
                .order_by(Workshop.starts_at, Workshop.id))).all()
        return [MyRegistration(workshop.id, row.status, row.position, row.offered_until,
                               workshop.starts_at, workshop.ends_at, workshop.title,
                               workshop.room,
                               row.checkin_code if row.status == RegistrationStatus.CONFIRMED
                               else None)
                for row, workshop in rows]

    async def checkin_code(self, contact_id: int, workshop_id: int) -> str | None:
        """The check-in code of this person's confirmed seat (made now if it has none);
        None when they hold no confirmed seat there."""
        async with self.sessions() as session, session.begin():
            row = await self._registration(session, workshop_id, contact_id)
            if row is None or row.status != RegistrationStatus.CONFIRMED:
                return None
            if row.checkin_code is None:
                give_checkin_code(row)
            return row.checkin_code

    # ---- the workers and the catalogue ---------------------------------------------------

    async def expire_offers(self, now: dt.datetime) -> int:
        """Offers nobody answered in time pass to the next person; how many expired."""
        async with self.sessions() as session:
            due = list((await session.execute(
                select(Registration.workshop_id, Registration.contact_id)
                .where(Registration.status == RegistrationStatus.OFFERED,
                       Registration.offered_until < now))).all())
        expired = 0
        for workshop_id, contact_id in due:
            outcome = await self.answer_offer(contact_id, workshop_id, False, now,
                                              tell_if_expired=True)
            expired += outcome == OfferOutcome.EXPIRED
        return expired

    async def offer_free_seats(self, now: dt.datetime) -> int:
        """Offer the free seats of every upcoming workshop that has people waiting (a capacity
        raised by a re-import, a seat freed when no offer could be made); how many offers."""
        async with self.sessions() as session:
            waiting = list(await session.scalars(
                select(Registration.workshop_id).distinct()
                .join(Workshop, Workshop.id == Registration.workshop_id)
                .where(Registration.status == RegistrationStatus.WAITLISTED,
                       Workshop.starts_at > now, Workshop.cancelled.is_(False))))
        return sum([await self.fill(workshop_id, now) for workshop_id in waiting])

    async def fill(self, workshop_id: int, now: dt.datetime) -> int:
        """Offer the free seats of a workshop (capacity raised, seat freed) to the people
        waiting; how many offers were made."""
        async with self.sessions() as session, session.begin():
            workshop = await _locked(session, workshop_id)
            if workshop is None:
                return 0
            return await self._offer_free_seats(session, workshop, now)

    async def drop_in(self, session: AsyncSession, row: Registration, now: dt.datetime
                      ) -> None:
        """Cancel a registration inside the caller's transaction (a person moving to another
        channel who holds the same workshop there): its workshop locked, its seat offered."""
        workshop = await _locked(session, row.workshop_id)
        if workshop is not None:
            await self._drop(session, workshop, row, now)

    # ---- inside a transaction that holds the workshop's lock -----------------------------

    async def _zone(self, session: AsyncSession, workshop: Workshop) -> dt.tzinfo:
        """The time zone of the workshop's fair, from its record."""
        fair = await session.get(Fair, workshop.fair_id)
        return ZoneInfo(fair.timezone) if fair is not None and fair.timezone else self.zone

    async def _drop(self, session: AsyncSession, workshop: Workshop, row: Registration,
                    now: dt.datetime) -> None:
        """Cancel a registration; close the gap it leaves in the waiting list, or offer the
        seat it frees."""
        was, position = row.status, row.position
        row.status, row.position, row.offered_until = RegistrationStatus.CANCELLED, None, None
        await session.flush()
        # What was queued for this registration (reminders, an offer) must not go out now.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key.startswith(registration_key(row.id)),
                   OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SKIPPED, error="registration cancelled"))
        if was == RegistrationStatus.WAITLISTED and position is not None:
            await _close_gap(session, workshop.id, position)
        elif was in HOLDING:
            await self._offer_free_seats(session, workshop, now)

    async def _offer_free_seats(self, session: AsyncSession, workshop: Workshop,
                                now: dt.datetime) -> int:
        if workshop.cancelled or workshop.starts_at <= now:
            return 0
        free = workshop.capacity - (await _counts(session, workshop.id))[0]
        offered = 0
        zone = await self._zone(session, workshop) if free > 0 else self.zone
        while free > 0:
            deadline = offer_deadline(now, workshop.starts_at, zone, self.quiet)
            if deadline is None:
                break
            first = await session.scalar(
                select(Registration).where(Registration.workshop_id == workshop.id,
                                           Registration.status == RegistrationStatus.WAITLISTED)
                .order_by(Registration.position).limit(1))
            if first is None:
                break
            first.status, first.offered_until = RegistrationStatus.OFFERED, deadline
            first.position = None
            await session.flush()
            await _close_gap(session, workshop.id, 1)
            contact = await session.get_one(Contact, first.contact_id)
            if can_receive_later(contact.channel):
                notice = OfferNotice(workshop_id=workshop.id, title=workshop.title,
                                     room=workshop.room, starts_at=workshop.starts_at,
                                     until=deadline)
                session.add(OutboxMessage(
                    contact_id=contact.id, channel=contact.channel, kind=notice.kind,
                    payload=notice.dump(),
                    due_at=now,
                    idempotency_key=f"{registration_key(first.id)}offer:{deadline.isoformat()}"))
            free -= 1
            offered += 1
        return offered

    async def _queue_reminders(self, session: AsyncSession, workshop: Workshop,
                               row: Registration, now: dt.datetime) -> None:
        """The evening before and shortly before the start (see Reminders), and a feedback
        prompt after the end, through the outbox; skipped if the registration is cancelled."""
        contact = await session.get_one(Contact, row.contact_id)
        if not can_receive_later(contact.channel):
            return
        # One set per registering: someone who cancels and registers again gets new ones.
        prefix = f"{registration_key(row.id)}{int(row.created_at.timestamp())}:"
        reminder = WorkshopReminderNotice(workshop_id=workshop.id, title=workshop.title,
                                          room=workshop.room, starts_at=workshop.starts_at)
        planned: list[tuple[str, Notice, dt.datetime]] = []
        if self.reminders.evening is not None:
            zone = await self._zone(session, workshop)
            day_before = workshop.starts_at.astimezone(zone).date() - dt.timedelta(days=1)
            planned.append(("evening", reminder,
                            dt.datetime.combine(day_before, self.reminders.evening, zone)))
        if self.reminders.before > dt.timedelta(0):
            planned.append(("hour", replace(reminder, soon=True),
                            workshop.starts_at - self.reminders.before))
        # After the end, a feedback prompt (the feedback flow takes it from there).
        planned.append(("feedback", FeedbackPromptNotice(
            workshop_id=workshop.id, title=workshop.title, room=workshop.room,
            starts_at=workshop.starts_at), workshop.ends_at + FEEDBACK_AFTER))
        for name, notice, due in planned:
            if due <= now:
                continue
            session.add(OutboxMessage(
                contact_id=contact.id, channel=contact.channel, kind=notice.kind,
                payload=notice.dump(), due_at=due,
                idempotency_key=f"{prefix}{name}:{int(now.timestamp())}"))

    @staticmethod
    async def _registration(session: AsyncSession, workshop_id: int, contact_id: int
                            ) -> Registration | None:
        return await session.scalar(select(Registration).where(
            Registration.workshop_id == workshop_id, Registration.contact_id == contact_id))


def new_checkin_code() -> str:
    """A fresh random check-in code."""
    return "".join(secrets.choice(CHECKIN_ALPHABET) for _ in range(CHECKIN_CODE_LENGTH))


def give_checkin_code(row: Registration) -> None:
    """A confirmed registration keeps the code it has (its QR code may already be on a phone),
    else gets a new one."""
    if row.checkin_code is None:
        row.checkin_code = new_checkin_code()


def normalize_checkin_code(text: str) -> str | None:
    """A check-in code as issued: upper case, without the spaces and dashes people add; None
    when it cannot be one."""
    code = text.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != CHECKIN_CODE_LENGTH or not set(code) <= set(CHECKIN_ALPHABET):
        return None
    return code


def registration_key(registration_id: int) -> str:
    """Outbox rows of one registration (reminders, offers): `registration:<id>:...`."""
    return f"registration:{registration_id}:"


async def _locked(session: AsyncSession, workshop_id: int) -> Workshop | None:
    """The workshop's row, locked until the transaction ends (PostgreSQL; SQLite has one
    writer at a time), and read afresh."""
    return await session.scalar(
        select(Workshop).where(Workshop.id == workshop_id).with_for_update()
        .execution_options(populate_existing=True))


async def _counts(session: AsyncSession, workshop_id: int) -> tuple[int, int]:
    """Seats held (confirmed and offered) and people waiting, in one query."""
    rows = (await session.execute(
        select(Registration.status, func.count())
        .where(Registration.workshop_id == workshop_id,
               Registration.status != RegistrationStatus.CANCELLED)
        .group_by(Registration.status))).all()
    counts = {str(status): int(count) for status, count in rows}
    return (counts.get("confirmed", 0) + counts.get("offered", 0),
            counts.get("waitlisted", 0))


async def _close_gap(session: AsyncSession, workshop_id: int, position: int) -> None:
    """Everyone waiting behind `position` moves up one place."""
    await session.execute(
        update(Registration)
        .where(Registration.workshop_id == workshop_id,
               Registration.status == RegistrationStatus.WAITLISTED,
               Registration.position > position)
        .values(position=Registration.position - 1))


async def export_rows(sessions: Sessions) -> list[dict[str, Any]]:
    """Every registration, for `tadamon export registrations` (CONTRACT.md columns); `channel`
    and `user_id` are empty for a row that names nobody (its person erased)."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Workshop.key, Contact.channel, Contact.user_id, Registration.status,
                   Registration.created_at)
            .join(Workshop, Workshop.id == Registration.workshop_id)
            .outerjoin(Contact, Contact.id == Registration.contact_id)
            .order_by(Workshop.starts_at, Workshop.key, Registration.id))).all()
    return [{"workshop_id": key, "channel": channel or "", "user_id": user_id or "",
             "status": str(status), "created_at": created_at.isoformat()}
            for key, channel, user_id, status, created_at in rows]



# ---- the door: registrants and check-in (the organizer console) -------------------------

@dataclass(frozen=True, slots=True)
class Registrant:
    """One registration of a workshop as the console shows it."""

    registration_id: int
    workshop_id: int
    workshop_key: str
    title: dict[str, Any]
    channel: str
    user_id: str
    status: RegistrationStatus
    position: int | None
    created_at: dt.datetime
    checkin_code: str | None
    checked_in_at: dt.datetime | None


class CheckInOutcome(enum.StrEnum):
    CHECKED_IN = "checked_in"
    ALREADY = "already"  # checked in before, at registrant.checked_in_at
    NOT_CONFIRMED = "not_confirmed"  # offered, waitlisted or cancelled: no seat to come to
    WORKSHOP_CANCELLED = "workshop_cancelled"
    OTHER_WORKSHOP = "other_workshop"  # a seat at another workshop than the one at this door
    UNKNOWN = "unknown"  # no such code (or registration) at this fair
    UNDONE = "undone"
    NOT_CHECKED_IN = "not_checked_in"  # nothing to undo


@dataclass(frozen=True, slots=True)
class CheckIn:
    """What a check-in (or its undoing) did, and whose registration it was."""

    outcome: CheckInOutcome
    registrant: Registrant | None = None
    workshop_cancelled: bool = False


def _registrant_query() -> Any:
    return (select(Registration, Workshop, Contact)
            .join(Workshop, Workshop.id == Registration.workshop_id)
            .join(Contact, Contact.id == Registration.contact_id))


def _registrant(row: Registration, workshop: Workshop, contact: Contact) -> Registrant:
    return Registrant(row.id, workshop.id, workshop.key, workshop.title, contact.channel,
                      contact.user_id, row.status, row.position, row.created_at,
                      row.checkin_code, row.checked_in_at)


async def registrants(sessions: Sessions, workshop_id: int) -> list[Registrant]:
    """A workshop's live registrations: seats (confirmed and offered) in order of registration,
    then the waiting list in its order. A confirmed seat without a check-in code gets one."""
    async with sessions() as session, session.begin():
        rows = (await session.execute(
            _registrant_query()
            .where(Registration.workshop_id == workshop_id,
                   Registration.status != RegistrationStatus.CANCELLED)
            .order_by(Registration.status == RegistrationStatus.WAITLISTED,
                      Registration.position, Registration.created_at,
                      Registration.id))).all()
        for row, _workshop, _contact in rows:
            if row.status == RegistrationStatus.CONFIRMED:
                give_checkin_code(row)
        await session.flush()
        return [_registrant(row, workshop, contact) for row, workshop, contact in rows]


async def find_registrant(sessions: Sessions, fair_id: int, *, code: str | None = None,
                          registration_id: int | None = None) -> Registrant | None:
    """The registration of this fair with this check-in code (or id), whatever its status."""
    async with sessions() as session:
        found = await _find(session, fair_id, code, registration_id)
    return None if found is None else _registrant(*found)


async def _find(session: AsyncSession, fair_id: int, code: str | None,
                registration_id: int | None
                ) -> tuple[Registration, Workshop, Contact] | None:
    if code is not None:
        where = Registration.checkin_code == code
    elif registration_id is not None:
        where = Registration.id == registration_id
    else:
        return None
    row = (await session.execute(
        _registrant_query().where(where, Workshop.fair_id == fair_id))).first()
    return None if row is None else (row[0], row[1], row[2])


async def check_in(sessions: Sessions, fair_id: int, now: dt.datetime, *,
                   code: str | None = None, registration_id: int | None = None,
                   workshop_id: int | None = None) -> CheckIn:
    """Mark present the person holding this check-in code (or registration): only a confirmed
    seat of a workshop that is not cancelled, of `workshop_id` when the door names one; twice
    is harmless (ALREADY, with the first time)."""
    async with sessions() as session, session.begin():
        found = await _find(session, fair_id, code, registration_id)
        if found is None:
            return CheckIn(CheckInOutcome.UNKNOWN)
        row, workshop, contact = found
        if workshop_id is not None and workshop.id != workshop_id:
            return CheckIn(CheckInOutcome.OTHER_WORKSHOP, _registrant(row, workshop, contact))
        if workshop.cancelled:
            return CheckIn(CheckInOutcome.WORKSHOP_CANCELLED, _registrant(row, workshop, contact),
                           workshop_cancelled=True)
        if row.status != RegistrationStatus.CONFIRMED:
            return CheckIn(CheckInOutcome.NOT_CONFIRMED, _registrant(row, workshop, contact))
        # Two doors scanning the same code at once: one UPDATE wins, the other reads its time.
        done = await session.execute(
            update(Registration)
            .where(Registration.id == row.id, Registration.checked_in_at.is_(None),
                   Registration.status == RegistrationStatus.CONFIRMED)
            .values(checked_in_at=now))
        await session.refresh(row)
        outcome = (CheckInOutcome.CHECKED_IN if getattr(done, "rowcount", 0) == 1
                   else CheckInOutcome.ALREADY)
        return CheckIn(outcome, _registrant(row, workshop, contact))


async def undo_check_in(sessions: Sessions, fair_id: int, registration_id: int,
                        workshop_id: int | None = None) -> CheckIn:
    """Take back a mistaken check-in."""
    async with sessions() as session, session.begin():
        found = await _find(session, fair_id, None, registration_id)
        if found is None or (workshop_id is not None and found[1].id != workshop_id):
            return CheckIn(CheckInOutcome.UNKNOWN)
        row, workshop, contact = found
        if row.checked_in_at is None:
            return CheckIn(CheckInOutcome.NOT_CHECKED_IN, _registrant(row, workshop, contact))
        row.checked_in_at = None
        await session.flush()
        return CheckIn(CheckInOutcome.UNDONE, _registrant(row, workshop, contact))
