"""The outbox: every message that is not a direct reply (reminders, notices, broadcasts),
queued here, claimed and settled by the workers, with what platforms report once it is sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from storage.catalogue import active_fair
from storage.models import (
    Broadcast,
    Contact,
    Exhibitor,
    Fair,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Reminder,
    Role,
    Stand,
    UTCDateTime,
    Workshop,
    utcnow,
)
from storage.notices import (
    BroadcastNotice,
    CoopSetupNotice,
    CoopWorkshopNotice,
    Notice,
    ReminderNotice,
)
from storage.reach import receives_later
from storage.repositories import Sessions

# Reports can arrive out of order (read before delivered): a later stage never goes back.
DELIVERY_STAGES = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


class OutboxRepository:
    """Outbox rows and their delivery reports."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def record_delivery(self, channel: str, platform_message_id: str, status: str,
                              error: str | None = None) -> bool:
        """Record a platform's report on a sent message; False when no outbox row has that
        platform id (a direct reply, which the outbox does not keep) or the status is unknown."""
        stage = DELIVERY_STAGES.get(status)
        if stage is None:
            return False
        async with self.sessions() as session, session.begin():
            row = (await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.channel == channel,
                    OutboxMessage.platform_message_id == platform_message_id)
                .with_for_update())).first()
            if row is None:
                return False
            if DELIVERY_STAGES.get(row.delivery_status or "", 0) < stage:
                row.delivery_status = status
                row.delivery_updated_at = utcnow()
                if status == "failed":
                    row.status = OutboxStatus.FAILED
                    row.error = error or "failed"
            return True


@dataclass(frozen=True, slots=True)
class QuietHours:
    """When bulk messages wait (TADAMON_QUIET_HOURS): from `start` to `end`, fair time; a span
    whose end comes before its start crosses midnight (22:00-08:00)."""

    start: dt.time = dt.time(22)
    end: dt.time = dt.time(8)

    def until(self, now: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
        """Within the span, the moment it ends; else None."""
        local = now.astimezone(zone)
        time = local.time()
        if self.start < self.end:
            if not self.start <= time < self.end:
                return None
            day = local.date()
        else:
            if self.end <= time < self.start:
                return None
            day = local.date() if time < self.end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, zone).astimezone(dt.UTC)


DEFAULT_QUIET_HOURS = QuietHours()


def quiet_until(now: dt.datetime, zone: dt.tzinfo,
                quiet: QuietHours | None = DEFAULT_QUIET_HOURS) -> dt.datetime | None:
    """During quiet hours (None: there are none), the moment they end; else None."""
    return None if quiet is None else quiet.until(now, zone)


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row a worker holds (until its lease ends), with what it needs to send it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    broadcast_id: int | None
    contact_id: int
    channel: str
    user_id: str
    language: str | None
    opted_out: bool
    unreachable: bool
    last_inbound_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claimed row ended, to be recorded with the rest of its batch."""

    row_id: int
    status: OutboxStatus
    platform_message_id: str | None = None
    error: str | None = None
    retry_at: dt.datetime | None = None


def audience_filter(audience: str) -> Any:
    """The contacts an audience names (CONTRACT.md): all, visitors, cooperatives, organizers,
    lang:ar, lang:fr, workshop:<id>. Raises ValueError for anything else."""
    if audience == "all":
        return true()
    if audience == "visitors":
        return Contact.role == Role.VISITOR
    if audience == "cooperatives":
        return or_(Contact.role == Role.COOPERATIVE, Contact.exhibitor_id.is_not(None))
    if audience == "organizers":
        return Contact.role == Role.ORGANIZER
    if audience == "lang:ar":
        return Contact.language == "ar"
    if audience == "lang:fr":  # English readers are sent a broadcast's French text
        return Contact.language.in_(("fr", "en"))
    if audience.startswith("workshop:") and audience.removeprefix("workshop:"):
        key = audience.removeprefix("workshop:")
        registered = (select(Registration.contact_id)
                      .join(Workshop, Workshop.id == Registration.workshop_id)
                      .where(Workshop.key == key,
                             Registration.status != RegistrationStatus.CANCELLED))
        return Contact.id.in_(registered)
    raise ValueError(f"unknown audience {audience!r}: all, visitors, cooperatives, organizers, "
                     "lang:ar, lang:fr or workshop:<id>")


@dataclass(slots=True)
class ChannelReach:
    """Who of an audience a broadcast reaches on one channel now: `reachable` are sent it;
    the opted out and the unreachable (who blocked the bot) are left out. On WhatsApp the
    reachable split three ways: inside the 24-hour window (sent as it is), outside it with a
    template for their language (sent as the template) or without (skipped)."""

    reachable: int = 0
    opted_out: int = 0
    unreachable: int = 0
    inside_window: int = 0
    templated: int = 0
    untemplated: int = 0


@dataclass(frozen=True, slots=True)
class BroadcastSummary:
    """A broadcast with how many of its messages are in each status."""

    id: int
    audience: str
    text: dict[str, str]
    created_at: dt.datetime
    scheduled_at: dt.datetime
    urgent: bool
    status: str
    """As stored: queued, sending, done or cancelled."""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["skipped"]

    @property
    def pending(self) -> int:
        return self.counts["pending"] + self.counts["sending"]

    @property
    def finished(self) -> bool:
        """Nothing of it waits or is being sent."""
        return self.pending == 0

    @property
    def ratio(self) -> float:
        """The share settled, 1.0 when it had no recipient."""
        return self.done / self.total if self.total else 1.0


def _no_counts() -> dict[str, int]:
    return {status.value: 0 for status in OutboxStatus}


class Outbox:
    """Queueing, claiming and settling outbox rows: the invariants of sending live here."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def recipients(self, audience: str) -> int:
        """How many contacts an audience reaches now (opted-out ones, and people who can only
        be answered, left out)."""
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Contact)
                .where(audience_filter(audience), Contact.opted_out.is_(False),
                       receives_later()))
        return int(count or 0)

    async def recipients_by_channel(self, audience: str) -> dict[str, int]:
        """`recipients`, channel by channel (those with none left out), in channel order."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Contact.channel, func.count()).select_from(Contact)
                .where(audience_filter(audience), Contact.opted_out.is_(False),
                       receives_later())
                .group_by(Contact.channel).order_by(Contact.channel))).all()
        return {str(channel): int(count) for channel, count in rows if count}

    async def audience_reach(self, audience: str, now: dt.datetime, window: dt.timedelta,
                             templated: Callable[[str | None], bool]) -> dict[str, ChannelReach]:
        """Channel by channel, who of an audience a broadcast reaches (`ChannelReach`): one
        grouped query. A WhatsApp contact is inside the window when their last message is
        younger than `window` at `now`; `templated(language)` says whether a template carries
        it to someone of that language outside it."""
        # Grouped over a subquery: PostgreSQL would not see the same bound expression twice.
        contacts = (select(Contact.channel, Contact.language, Contact.opted_out,
                           Contact.unreachable,
                           case((Contact.last_inbound_at > now - window, 1), else_=0)
                           .label("inside"))
                    .where(audience_filter(audience), receives_later())).subquery()
        columns = (contacts.c.channel, contacts.c.language, contacts.c.opted_out,
                   contacts.c.unreachable, contacts.c.inside)
        async with self.sessions() as session:
            rows = (await session.execute(
                select(*columns, func.count()).group_by(*columns))).all()
        reach: dict[str, ChannelReach] = {}
        for channel, language, opted_out, unreachable, in_window, count in rows:
            counts = reach.setdefault(str(channel), ChannelReach())
            if opted_out:
                counts.opted_out += count
            elif unreachable:
                counts.unreachable += count
            else:
                counts.reachable += count
                if channel == "whatsapp":
                    if in_window:
                        counts.inside_window += count
                    elif templated(language):
                        counts.templated += count
                    else:
                        counts.untemplated += count
        return dict(sorted(reach.items()))

    async def broadcasts(self, limit: int = 200) -> list[BroadcastSummary]:
        """The latest broadcasts, newest first, with their messages' counts."""
        async with self.sessions() as session:
            found = list(await session.scalars(
                select(Broadcast).order_by(Broadcast.created_at.desc(), Broadcast.id.desc())
                .limit(limit)))
            counts = await self._counts(session, [broadcast.id for broadcast in found])
        return [_summary(broadcast, counts.get(broadcast.id)) for broadcast in found]

    async def broadcast(self, broadcast_id: int) -> BroadcastSummary | None:
        """One broadcast with its messages' counts; None when there is no such one."""
        async with self.sessions() as session:
            found = await session.get(Broadcast, broadcast_id)
            if found is None:
                return None
            counts = await self._counts(session, [broadcast_id])
        return _summary(found, counts.get(broadcast_id))

    @staticmethod
    async def _counts(session: Any, ids: list[int]) -> dict[int, dict[str, int]]:
        if not ids:
            return {}
        rows = (await session.execute(
            select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id.in_(ids))
            .group_by(OutboxMessage.broadcast_id, OutboxMessage.status))).all()
        counts: dict[int, dict[str, int]] = {}
        for broadcast_id, status, count in rows:
            counts.setdefault(broadcast_id, _no_counts())[
                str(getattr(status, "value", status))] = int(count)
        return counts

    async def check_audience(self, fair_id: int, audience: str) -> None:
        """ValueError, saying why, when the audience is malformed or names a workshop the fair
        does not have (a broadcast to it would reach no one, silently)."""
        audience_filter(audience)
        key = audience.removeprefix("workshop:")
        if key == audience:
            return
        async with self.sessions() as session:
            found = await session.scalar(select(Workshop.id).where(Workshop.fair_id == fair_id,
                                                                   Workshop.key == key))
        if found is None:
            raise ValueError(f"the fair has no workshop {key!r}")

    async def broadcast_exists(self, broadcast_id: int) -> bool:
        """Whether a broadcast has this id (`tadamon broadcast status` of a mistyped one)."""
        async with self.sessions() as session:
            return await session.get(Broadcast, broadcast_id) is not None

    async def pending(self) -> int:
        """How many rows wait to be sent (the outbox depth)."""
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING))
        return int(count or 0)

    async def queue_broadcast(self, fair_id: int, audience: str, text: dict[str, str],
                              at: dt.datetime, urgent: bool = False,
                              created_by: int | None = None) -> tuple[int, int]:
        """Record a broadcast and one outbox row per recipient in a single statement;
        returns (broadcast id, recipients)."""
        condition = audience_filter(audience)
        async with self.sessions() as session, session.begin():
            broadcast = Broadcast(fair_id=fair_id, audience=audience, text=text,
                                  scheduled_at=at, urgent=urgent, created_by=created_by,
                                  status="queued")
            session.add(broadcast)
            await session.flush()
            payload = BroadcastNotice(text=text, urgent=urgent).dump()
            key = literal(f"broadcast:{broadcast.id}:") + cast(Contact.id, String)
            rows = select(
                Contact.id, Contact.channel, literal(BroadcastNotice.kind),
                literal(payload, JSON), literal(at, UTCDateTime()),
                literal(OutboxStatus.PENDING.value), literal(0), key, literal(broadcast.id),
                literal(utcnow(), UTCDateTime()),
            ).where(condition, Contact.opted_out.is_(False), receives_later())
            result = await session.execute(insert(OutboxMessage).from_select(
                ["contact_id", "channel", "kind", "payload", "due_at", "status", "attempts",
                 "idempotency_key", "broadcast_id", "created_at"], rows))
            return broadcast.id, int(getattr(result, "rowcount", 0) or 0)

    async def claim(self, limit: int, lease: float, now: dt.datetime | None = None
                    ) -> list[Claimed]:
        """Take up to `limit` due rows for `lease` seconds. On PostgreSQL rows another worker
        holds are skipped (FOR UPDATE SKIP LOCKED); a row whose lease ran out (its worker died)
        is due again."""
        now = now or utcnow()
        due = (select(OutboxMessage.id)
               .where(or_(and_(OutboxMessage.status == OutboxStatus.PENDING,
                               OutboxMessage.due_at <= now),
                          and_(OutboxMessage.status == OutboxStatus.SENDING,
                               OutboxMessage.lease_until < now)))
               .order_by(OutboxMessage.due_at, OutboxMessage.id)
               .limit(limit)
               .with_for_update(skip_locked=True))
        async with self.sessions() as session, session.begin():
            ids = list(await session.scalars(due))
            if not ids:
                return []
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                .values(status=OutboxStatus.SENDING,
                        lease_until=now + dt.timedelta(seconds=lease),
                        attempts=OutboxMessage.attempts + 1))
            # Plain columns, not ORM objects: a worker reads thousands of these a second.
            rows = (await session.execute(
                select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload,
                       OutboxMessage.attempts, OutboxMessage.broadcast_id, Contact.id,
                       Contact.channel, Contact.user_id, Contact.language, Contact.opted_out,
                       Contact.unreachable, Contact.last_inbound_at)
                .join(Contact, Contact.id == OutboxMessage.contact_id)
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.due_at, OutboxMessage.id))).all()
        return [Claimed(row_id, kind, payload, attempts, broadcast_id, contact_id, channel,
                        user_id, language, opted_out, unreachable, last_inbound_at)
                for (row_id, kind, payload, attempts, broadcast_id, contact_id, channel,
                     user_id, language, opted_out, unreachable, last_inbound_at) in rows]

    async def settle_many(self, outcomes: list[Outcome], now: dt.datetime | None = None
                          ) -> None:
        """Record many rows' outcomes in one transaction (a worker's batch), sent `now` (the
        worker's clock)."""
        if not outcomes:
            return
        now = now or utcnow()
        changes: list[dict[str, Any]] = []
        for outcome in outcomes:
            change: dict[str, Any] = {"id": outcome.row_id, "lease_until": None,
                                      "error": outcome.error}
            if outcome.retry_at is not None:
                change.update(status=OutboxStatus.PENDING, due_at=outcome.retry_at)
            else:
                change["status"] = outcome.status
                if outcome.status == OutboxStatus.SENT:
                    change.update(sent_at=now, platform_message_id=outcome.platform_message_id,
                                  delivery_status="sent")
            changes.append(change)
        async with self.sessions() as session, session.begin():
            await session.execute(update(OutboxMessage), changes)

    async def progress(self, broadcast_id: int) -> dict[str, int]:
        """How many of a broadcast's rows are in each status."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.broadcast_id == broadcast_id)
                .group_by(OutboxMessage.status))).all()
        counts = _no_counts()
        for status, count in rows:
            counts[str(getattr(status, "value", status))] = int(count)
        return counts

    async def cancel_broadcast(self, broadcast_id: int) -> int | None:
        """Stop a broadcast: its rows not sent yet are skipped; returns how many (None: there
        is no such broadcast)."""
        async with self.sessions() as session, session.begin():
            if await session.get(Broadcast, broadcast_id, with_for_update=True) is None:
                return None
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.broadcast_id == broadcast_id,
                       OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SKIPPED, error="broadcast cancelled"))
            await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id)
                                  .values(status="cancelled"))
            return int(getattr(result, "rowcount", 0) or 0)

    async def deliveries(self) -> list[dict[str, Any]]:
        """Every outbox row with its recipient, for `tadamon export deliveries`; `channel` and
        `user_id` are empty for a row that names nobody (its recipient erased): it still
        counts in its broadcast."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(OutboxMessage, Contact.user_id)
                .outerjoin(Contact, Contact.id == OutboxMessage.contact_id)
                .order_by(OutboxMessage.id))).all()
        return [{"broadcast_id": row.broadcast_id or "",
                 "channel": row.channel if user_id is not None else "",
                 "user_id": user_id or "", "status": row.status.value, "kind": row.kind,
                 "sent_at": row.sent_at.isoformat() if row.sent_at else "",
                 "delivery_status": row.delivery_status or "", "error": row.error or ""}
                for row, user_id in rows]


def _summary(broadcast: Broadcast, counts: dict[str, int] | None) -> BroadcastSummary:
    return BroadcastSummary(broadcast.id, broadcast.audience, dict(broadcast.text),
                            broadcast.created_at, broadcast.scheduled_at, broadcast.urgent,
                            broadcast.status, counts or _no_counts())


def reminder_key_prefix(reminder_id: int) -> str:
    """Outbox rows of one catalogue reminder: `reminder:<id>:<contact id>`."""
    return f"reminder:{reminder_id}:"


async def queue_reminders(sessions: Sessions, now: dt.datetime) -> int:
    """Turn the served fair's catalogue reminders into outbox rows: one per reminder and person
    of its audience, never twice (the idempotency key), so calling it again only adds the
    people who arrived since; rows not sent yet follow edits of the reminder's text and time.
    Reminders more than an hour in the past are not sent late. Returns the rows added."""
    added = 0
    async with sessions() as session, session.begin():
        fair = await active_fair(session)
        if fair is None:
            return 0
        reminders = list(await session.scalars(
            select(Reminder).where(Reminder.fair_id == fair.id,
                                   Reminder.at >= now - dt.timedelta(hours=1))))
        for reminder in reminders:
            prefix = reminder_key_prefix(reminder.id)
            notice = ReminderNotice(text=reminder.text, urgent=False)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.idempotency_key.startswith(prefix),
                       OutboxMessage.status == OutboxStatus.PENDING)
                .values(payload=notice.dump(), due_at=reminder.at))
            try:
                condition = audience_filter(reminder.audience)
            except ValueError:
                continue  # validated at import; an old row may predate a rule
            added += await queue_per_contact(session, select(Contact.id).where(condition),
                                              notice, prefix, reminder.at, now)
        added += await _queue_cooperative_reminders(session, fair, now)
    return added


async def queue_per_contact(session: Any, contacts: Any, notice: Notice, key_prefix: str,
                             due: dt.datetime, now: dt.datetime) -> int:
    """One row per contact of the `contacts` select (ids) who can receive it, never twice for
    the same key."""
    key = literal(key_prefix) + cast(Contact.id, String)
    already = select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    rows = select(
        Contact.id, Contact.channel, literal(notice.kind), literal(notice.dump(), JSON),
        literal(due, UTCDateTime()), literal(OutboxStatus.PENDING.value), literal(0), key,
        literal(now, UTCDateTime()),
    ).where(Contact.id.in_(contacts), Contact.opted_out.is_(False), receives_later(),
            ~already.exists())
    result = await session.execute(insert(OutboxMessage).from_select(
        ["contact_id", "channel", "kind", "payload", "due_at", "status", "attempts",
         "idempotency_key", "created_at"], rows))
    return int(getattr(result, "rowcount", 0) or 0)


async def _queue_cooperative_reminders(session: Any, fair: Fair, now: dt.datetime) -> int:
    """Linked cooperatives hear the day before the fair where and when to set up, and on the
    morning of each workshop meant for cooperatives, that it is today."""
    zone = ZoneInfo(fair.timezone)
    added = 0
    eve = dt.datetime.combine(fair.opens - dt.timedelta(days=1), dt.time(18), zone)
    if eve >= now - dt.timedelta(hours=1):
        rows = (await session.execute(
            select(Contact.exhibitor_id, Stand.number, Stand.zone)
            .join(Exhibitor, Exhibitor.id == Contact.exhibitor_id)
            .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
            .where(Exhibitor.fair_id == fair.id))).all()
        # One pass per cooperative (JSON columns cannot be DISTINCT on PostgreSQL).
        cooperatives = {exhibitor_id: (number, stand_zone)
                        for exhibitor_id, number, stand_zone in rows}
        for exhibitor_id, (number, stand_zone) in cooperatives.items():
            members = select(Contact.id).where(Contact.exhibitor_id == exhibitor_id)
            setup = CoopSetupNotice(stand=number, zone=stand_zone, setup_hours=fair.setup_hours,
                                    opens=fair.opens, hours=fair.hours)
            added += await queue_per_contact(session, members, setup,
                                              f"coop-setup:{fair.id}:", eve, now)
    workshops = list(await session.scalars(
        select(Workshop).where(Workshop.fair_id == fair.id, Workshop.audience == "cooperatives",
                               Workshop.cancelled.is_(False), Workshop.starts_at >= now)))
    linked = select(Contact.id).where(or_(Contact.role == Role.COOPERATIVE,
                                          Contact.exhibitor_id.is_not(None)))
    for workshop in workshops:
        morning = dt.datetime.combine(workshop.starts_at.astimezone(zone).date(), dt.time(8),
                                      zone)
        today = CoopWorkshopNotice(title=workshop.title, room=workshop.room,
                                   starts_at=workshop.starts_at)
        added += await queue_per_contact(session, linked, today,
                                          f"coop-workshop:{workshop.id}:",
                                          max(morning.astimezone(dt.UTC), now), now)
    return added


@dataclass(frozen=True, slots=True)
class BroadcastReport:
    """A broadcast composed in chat, with what its organizer should be shown."""

    id: int
    channel: str
    user_id: str
    language: str | None
    last_inbound_at: dt.datetime | None
    progress_message_id: str | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["skipped"]


async def broadcasts_to_report(sessions: Sessions) -> list[BroadcastReport]:
    """Broadcasts composed in chat whose organizer has not yet seen them finish."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Broadcast, Contact)
            .join(Contact, Contact.id == Broadcast.created_by)
            .where(Broadcast.status.in_(("queued", "sending"))))).all()
    outbox = Outbox(sessions)
    return [BroadcastReport(broadcast.id, contact.channel, contact.user_id, contact.language,
                            contact.last_inbound_at, broadcast.progress_message_id,
                            await outbox.progress(broadcast.id))
            for broadcast, contact in rows]


async def record_progress(sessions: Sessions, broadcast_id: int, *,
                          message_id: str | None = None, finished: bool = False) -> None:
    """Remember the organizer's progress message, and when the broadcast is over."""
    values: dict[str, Any] = {"status": "done" if finished else "sending"}
    if message_id is not None:
        values["progress_message_id"] = message_id
    async with sessions() as session, session.begin():
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id)
                              .values(**values))
