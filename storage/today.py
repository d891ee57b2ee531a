"""The organizer console's Today page: the figures of the fair's current day, read in a few
grouped queries (contacts per channel and language, messages per minute, workshops' seats)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, case, func, select

from storage.catalogue import active_fair
from storage.models import (
    Contact,
    Fair,
    Registration,
    RegistrationStatus,
    TrafficMinute,
    Workshop,
)
from storage.reports import UNKNOWN_LANGUAGE
from storage.repositories import Sessions


@dataclass(frozen=True, slots=True)
class ContactGroup:
    """Contacts of one channel or language: all of them, and those new today."""

    name: str
    total: int
    new: int


@dataclass(frozen=True, slots=True)
class ContactFigures:
    """Contacts by channel and by language (largest first), and overall."""

    by_channel: tuple[ContactGroup, ...]
    by_language: tuple[ContactGroup, ...]

    @property
    def total(self) -> int:
        """Every contact."""
        return sum(group.total for group in self.by_channel)

    @property
    def new(self) -> int:
        """The contacts new today."""
        return sum(group.new for group in self.by_channel)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Messages per minute and channel over a span of whole minutes (UTC), oldest first."""

    minutes: tuple[dt.datetime, ...]
    series: Mapping[str, tuple[int, ...]]  # channel -> one count per minute

    @property
    def per_minute(self) -> tuple[int, ...]:
        """All channels together, one count per minute."""
        return tuple(sum(counts[index] for counts in self.series.values())
                     for index in range(len(self.minutes)))

    @property
    def last_minute(self) -> int:
        """The messages of the latest minute of the span (the one under way)."""
        return self.per_minute[-1] if self.minutes else 0

    @property
    def total(self) -> int:
        """The messages of the whole span."""
        return sum(sum(counts) for counts in self.series.values())


@dataclass(frozen=True, slots=True)
class WorkshopSeats:
    """One workshop's seats: confirmed of capacity, seats offered, the waiting list."""

    key: str
    title: Mapping[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    confirmed: int
    offered: int
    waitlisted: int
    cancelled: bool

    @property
    def fill_rate(self) -> float | None:
        """Confirmed seats over capacity; None for a workshop without seats."""
        return self.confirmed / self.capacity if self.capacity else None


def day_start(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """Midnight of `day` in `zone`, in UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


class TodayRepository:
    """Read-only figures of the fair's current day for the console."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def fair(self) -> Fair | None:
        """The fair this deployment serves (storage.catalogue.active_fair)."""
        async with self.sessions() as session:
            return await active_fair(session)

    async def contacts(self, since: dt.datetime) -> ContactFigures:
        """Contacts of the deployment per channel and per language, with those created from
        `since` (the start of the fair's day)."""
        new = func.sum(case((Contact.created_at >= since, 1), else_=0))
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Contact.channel, Contact.language, func.count(), new)
                .group_by(Contact.channel, Contact.language))).all()
        channels: dict[str, list[int]] = {}
        languages: dict[str, list[int]] = {}
        for channel, language, total, fresh in rows:
            for groups, name in ((channels, channel), (languages, language or UNKNOWN_LANGUAGE)):
                counts = groups.setdefault(name, [0, 0])
                counts[0] += int(total)
                counts[1] += int(fresh or 0)
        return ContactFigures(_groups(channels), _groups(languages))

    async def traffic(self, fair_id: int, now: dt.datetime, minutes: int = 60) -> Traffic:
        """Messages per minute and channel over the `minutes` whole minutes up to `now`'s."""
        last = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        span = tuple(last - dt.timedelta(minutes=back) for back in range(minutes - 1, -1, -1))
        async with self.sessions() as session:
            rows = (await session.execute(
                select(TrafficMinute.minute, TrafficMinute.channel,
                       func.sum(TrafficMinute.messages))
                .where(TrafficMinute.fair_id == fair_id, TrafficMinute.minute >= span[0],
                       TrafficMinute.minute <= last)
                .group_by(TrafficMinute.minute, TrafficMinute.channel))).all()
        index = {minute: position for position, minute in enumerate(span)}
        series: dict[str, list[int]] = {}
        for minute, channel, messages in rows:
            position = index.get(minute)
            if position is not None:
                series.setdefault(channel, [0] * len(span))[position] += int(messages or 0)
        return Traffic(span, {channel: tuple(counts)
                              for channel, counts in sorted(series.items())})

    async def traffic_rows(self, fair_id: int) -> list[tuple[dt.datetime, str, str, int]]:
        """Every stored count of the fair: (minute, channel, language, messages), in order."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(TrafficMinute.minute, TrafficMinute.channel, TrafficMinute.language,
                       TrafficMinute.messages)
                .where(TrafficMinute.fair_id == fair_id)
                .order_by(TrafficMinute.minute, TrafficMinute.channel,
                          TrafficMinute.language))).all()
        return [(minute, channel, language, int(messages))
                for minute, channel, language, messages in rows]

    async def workshop_seats(self, fair_id: int, now: dt.datetime) -> list[WorkshopSeats]:
        """Every workshop of the fair, cancelled ones included: those not over yet first, the
        soonest to start first, then those over, the latest first."""
        def status(value: RegistrationStatus) -> Any:
            return func.sum(case((Registration.status == value, 1), else_=0)).cast(Integer)

        async with self.sessions() as session:
            workshops = list(await session.scalars(
                select(Workshop).where(Workshop.fair_id == fair_id)
                .order_by(Workshop.starts_at, Workshop.key)))
            counts = {workshop_id: (int(confirmed or 0), int(offered or 0), int(waiting or 0))
                      for workshop_id, confirmed, offered, waiting in (await session.execute(
                          select(Registration.workshop_id,
                                 status(RegistrationStatus.CONFIRMED),
                                 status(RegistrationStatus.OFFERED),
                                 status(RegistrationStatus.WAITLISTED))
                          .join(Workshop, Workshop.id == Registration.workshop_id)
                          .where(Workshop.fair_id == fair_id)
                          .group_by(Registration.workshop_id))).all()}
        seats = [WorkshopSeats(row.key, row.title, row.starts_at, row.ends_at, row.capacity,
                               *counts.get(row.id, (0, 0, 0)), row.cancelled)
                 for row in workshops]
        coming = [seat for seat in seats if seat.ends_at > now]
        over = [seat for seat in seats if seat.ends_at <= now]
        return coming + over[::-1]


def _groups(counts: dict[str, list[int]]) -> tuple[ContactGroup, ...]:
    """Groups largest first, then by name."""
    return tuple(ContactGroup(name, total, new) for name, (total, new) in
                 sorted(counts.items(), key=lambda item: (-item[1][0], item[0])))
