"""Organizer reports: read-only aggregate queries over feedback, registrations and contacts.

Every count is a GROUP BY in the database, so a report over 100,000 contacts reads a few
hundred rows. Averages are computed here from SQL sums and counts: exact and the same on
SQLite and PostgreSQL (whose avg() answers a Decimal).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.catalogue import active_fair, stand_order
from storage.models import (
    Contact,
    ErasedContacts,
    Exhibitor,
    ExhibitorSurvey,
    Fair,
    Feedback,
    Registration,
    RegistrationStatus,
    Stand,
    Workshop,
)
from storage.questions import IntentCount, QuestionCount, QuestionLog
from storage.repositories import Sessions

RATINGS = (1, 2, 3, 4, 5)
UNKNOWN_LANGUAGE = "unknown"
"""The language of contacts who never chose one."""

QUARTER_HOUR = 900
"""Seconds. Every UTC offset in use is a whole number of quarter hours, so contacts counted
per UTC quarter hour in SQL fall into the right local day once converted here."""


@dataclass(frozen=True, slots=True)
class RatingCounts:
    """How many ratings of 1, 2, 3, 4 and 5 stars."""

    counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def average(self) -> float | None:
        """None without any rating."""
        total = self.total
        if not total:
            return None
        return sum(stars * count for stars, count in zip(RATINGS, self.counts, strict=True)) / total


@dataclass(frozen=True, slots=True)
class WorkshopRatings:
    """The rating distribution of one workshop (`key`: its catalogue id; `starts_at`: None
    when it is no longer in the catalogue)."""

    key: str
    title: Mapping[str, str]
    starts_at: dt.datetime | None
    ratings: RatingCounts


@dataclass(frozen=True, slots=True)
class StandRating:
    """One stand's ratings; `name` is its first exhibitor's (empty when it has none)."""

    number: str
    name: Mapping[str, str]
    count: int
    total: int  # the sum of its ratings

    @property
    def average(self) -> float:
        return self.total / self.count


@dataclass(frozen=True, slots=True)
class WorkshopFill:
    """Registrations of one workshop by status."""

    key: str
    title: Mapping[str, str]
    starts_at: dt.datetime
    capacity: int
    confirmed: int
    offered: int
    waitlisted: int
    cancelled: int

    @property
    def fill_rate(self) -> float | None:
        """Confirmed seats over capacity (above 1 when the capacity was lowered); None for a
        workshop without seats."""
        return self.confirmed / self.capacity if self.capacity else None


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """New contacts per day in the fair's time zone, one series per group (a channel or a
    language); `days` runs from the first day with a new contact to the last, gaps included."""

    days: tuple[dt.date, ...]
    series: Mapping[str, tuple[int, ...]]  # group -> one count per day

    def rows(self) -> list[tuple[dt.date, str, int]]:
        """(day, group, count) for each non-zero count, by day then group."""
        return [(day, group, counts[index])
                for index, day in enumerate(self.days)
                for group, counts in sorted(self.series.items()) if counts[index]]


@dataclass(frozen=True, slots=True)
class KeyFigures:
    """The few numbers an organizer asks for first."""

    contacts: int
    contacts_by_channel: Mapping[str, int]
    fair_ratings: int
    fair_average: float | None
    confirmed_registrations: int
    comments: int


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One exhibitor member's answers to the survey sent when the fair ends (None: not
    answered)."""

    exhibitor: str
    name: Mapping[str, str]
    stand: str | None
    satisfaction: int | None
    come_again: bool | None
    sales_band: str | None
    comment: str | None
    language: str
    answered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FairReport:
    """Everything `tadamon report` shows about the served fair."""

    fair_key: str
    fair_name: Mapping[str, str]
    timezone: str
    figures: KeyFigures
    fair_ratings: RatingCounts
    workshop_ratings: tuple[WorkshopRatings, ...]
    stands: tuple[StandRating, ...]  # best first
    workshops: tuple[WorkshopFill, ...]
    contacts_by_channel: DailyCounts
    contacts_by_language: DailyCounts
    survey: tuple[SurveyAnswer, ...] = ()
    intents: tuple[IntentCount, ...] = ()
    questions: tuple[QuestionCount, ...] = ()  # not understood, most frequent first


def rank_stands(stands: Iterable[StandRating], *, best_first: bool = True
                ) -> tuple[StandRating, ...]:
    """Stands by average (best or worst first); ties go to the one with more ratings, then
    to the lower stand number (A2 before A10)."""
    sign = -1 if best_first else 1
    return tuple(sorted(stands, key=lambda stand: (sign * stand.average, -stand.count,
                                                   stand_order(stand.number))))


class ReportRepository:
    """Read-only figures of one fair for its organizers."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.questions = QuestionLog(sessions)

    async def report(self, min_ratings: int = 1) -> FairReport | None:
        """Every dataset of the served fair; None when no fair is loaded. Stands need at
        least `min_ratings` ratings to be ranked."""
        async with self.sessions() as session:
            fair = await active_fair(session)
        if fair is None:
            return None
        zone = ZoneInfo(fair.timezone)
        return FairReport(
            fair_key=fair.key, fair_name=fair.name, timezone=fair.timezone,
            figures=await self.key_figures(fair.id),
            fair_ratings=await self.fair_ratings(fair.id),
            workshop_ratings=tuple(await self.workshop_ratings(fair.id)),
            stands=tuple(await self.stand_ratings(fair.id, min_ratings)),
            workshops=tuple(await self.workshop_fill(fair.id)),
            contacts_by_channel=await self.new_contacts(zone, "channel"),
            contacts_by_language=await self.new_contacts(zone, "language"),
            survey=tuple(await self.survey(fair.id)),
            intents=tuple(await self.questions.intent_counts(fair.id)),
            questions=tuple(await self.questions.top_questions(fair.id, limit=None)),
        )

    async def survey(self, fair_id: int) -> list[SurveyAnswer]:
        """The exhibitors' survey answers, by exhibitor."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ExhibitorSurvey, Exhibitor.key, Exhibitor.name, Stand.number)
                .outerjoin(Exhibitor, Exhibitor.id == ExhibitorSurvey.exhibitor_id)
                .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
                .where(ExhibitorSurvey.fair_id == fair_id)
                .order_by(Exhibitor.key, ExhibitorSurvey.id))).all()
        return [SurveyAnswer(key or "", name or {}, number, row.satisfaction, row.come_again,
                             row.sales_band, row.comment, row.language, row.updated_at)
                for row, key, name, number in rows]

    async def fair_ratings(self, fair_id: int) -> RatingCounts:
        """The distribution of the fair's own ratings."""
        async with self.sessions() as session:
            by_target = await _distributions(session, fair_id, "fair")
        return next(iter(by_target.values()), RatingCounts())

    async def workshop_ratings(self, fair_id: int) -> list[WorkshopRatings]:
        """Each workshop of the fair in time order (cancelled ones only when rated), then
        ratings of workshops no longer in the catalogue (titled by their id)."""
        async with self.sessions() as session:
            by_key = await _distributions(session, fair_id, "workshop")
            workshops = (await session.execute(
                select(Workshop.key, Workshop.title, Workshop.starts_at, Workshop.cancelled)
                .where(Workshop.fair_id == fair_id)
                .order_by(Workshop.starts_at, Workshop.key))).all()
        found = [WorkshopRatings(key, title, starts_at, by_key.pop(key, RatingCounts()))
                 for key, title, starts_at, cancelled in workshops
                 if not cancelled or key in by_key]
        return found + [WorkshopRatings(key, {"fr": key, "ar": key}, None, ratings)
                        for key, ratings in sorted(by_key.items())]

    async def stand_ratings(self, fair_id: int, min_ratings: int = 1) -> list[StandRating]:
        """Stands with at least `min_ratings` ratings, best first (see `rank_stands`)."""
        async with self.sessions() as session:
            rated = (await session.execute(
                select(Feedback.target_key, func.count(), func.sum(Feedback.rating))
                .where(_rated(fair_id, "stand"))
                .group_by(Feedback.target_key)
                .having(func.count() >= max(min_ratings, 1)))).all()
            names: dict[str, Mapping[str, str]] = {}
            for number, name in (await session.execute(
                    select(Stand.number, Exhibitor.name)
                    .join(Exhibitor, Exhibitor.stand_id == Stand.id)
                    .where(Stand.fair_id == fair_id)
                    .order_by(Exhibitor.key))).all():
                names.setdefault(number, name)
        return list(rank_stands(StandRating(number, names.get(number, {}), int(count),
                                            int(total or 0))
                                for number, count, total in rated))

    async def workshop_fill(self, fair_id: int) -> list[WorkshopFill]:
        """Each workshop of the fair that is not cancelled, in time order, with its
        registrations by status."""
        async with self.sessions() as session:
            workshops = list(await session.scalars(
                select(Workshop).where(Workshop.fair_id == fair_id, Workshop.cancelled.is_(False))
                .order_by(Workshop.starts_at, Workshop.key)))
            counts: dict[tuple[int, str], int] = {
                (workshop_id, str(status)): int(count)
                for workshop_id, status, count in (await session.execute(
                    select(Registration.workshop_id, Registration.status, func.count())
                    .join(Workshop, Workshop.id == Registration.workshop_id)
                    .where(Workshop.fair_id == fair_id)
                    .group_by(Registration.workshop_id, Registration.status))).all()}
        return [WorkshopFill(row.key, row.title, row.starts_at, row.capacity,
                             *(counts.get((row.id, status.value), 0) for status in (
                                 RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED,
                                 RegistrationStatus.WAITLISTED, RegistrationStatus.CANCELLED)))
                for row in workshops]

    async def new_contacts(self, zone: ZoneInfo, by: Literal["channel", "language"]
                           ) -> DailyCounts:
        """New contacts per day in `zone` (contacts belong to the deployment, not to one
        fair), by channel or by language (none chosen yet: "unknown")."""
        group = Contact.channel if by == "channel" else Contact.language
        async with self.sessions() as session:
            quarter = _quarter_hours(Contact.created_at, session.get_bind().dialect.name)
            # Grouped in an outer query: PostgreSQL would not match the bucket expression's
            # two bound parameters between SELECT and GROUP BY.
            stamped = select(quarter.label("quarter"), group.label("grp")).subquery()
            rows = list((await session.execute(
                select(stamped.c.quarter, stamped.c.grp, func.count())
                .group_by(stamped.c.quarter, stamped.c.grp))).all())
            # The people erased since (on request, or after the retention time) still count.
            erased_group = (ErasedContacts.channel if by == "channel"
                            else func.nullif(ErasedContacts.language, ""))
            rows += (await session.execute(
                select(ErasedContacts.quarter, erased_group, ErasedContacts.people))).all()
        per_day: dict[tuple[dt.date, str], int] = defaultdict(int)
        for quarter_hours, value, count in rows:
            moment = dt.datetime.fromtimestamp(int(quarter_hours) * QUARTER_HOUR, dt.UTC)
            per_day[moment.astimezone(zone).date(), value or UNKNOWN_LANGUAGE] += int(count)
        if not per_day:
            return DailyCounts((), {})
        first = min(day for day, _ in per_day)
        last = max(day for day, _ in per_day)
        days = tuple(first + dt.timedelta(days=offset)
                     for offset in range((last - first).days + 1))
        groups = sorted({value for _, value in per_day})
        return DailyCounts(days, {value: tuple(per_day.get((day, value), 0) for day in days)
                                  for value in groups})

    async def key_figures(self, fair_id: int) -> KeyFigures:
        """Contacts (all, and by channel), the fair's ratings and average, confirmed seats in
        its workshops, and comments on anything of the fair."""
        async with self.sessions() as session:
            by_channel: dict[str, int] = defaultdict(int)
            for channel, count in (await session.execute(
                    select(Contact.channel, func.count()).group_by(Contact.channel)
                    .union_all(select(ErasedContacts.channel, ErasedContacts.people)))).all():
                by_channel[channel] += int(count)
            by_channel = dict(sorted(by_channel.items()))
            ratings, total = (await session.execute(
                select(func.count(), func.sum(Feedback.rating))
                .where(_rated(fair_id, "fair")))).one()
            confirmed = await session.scalar(
                select(func.count()).select_from(Registration)
                .join(Workshop, Workshop.id == Registration.workshop_id)
                .where(Workshop.fair_id == fair_id, Workshop.cancelled.is_(False),
                       Registration.status == RegistrationStatus.CONFIRMED))
            comments = await session.scalar(
                select(func.count()).select_from(Feedback)
                .where(Feedback.fair_id == fair_id, Feedback.comment.is_not(None),
                       func.trim(Feedback.comment) != ""))
        return KeyFigures(
            contacts=sum(by_channel.values()), contacts_by_channel=by_channel,
            fair_ratings=int(ratings), fair_average=int(total or 0) / ratings if ratings else None,
            confirmed_registrations=int(confirmed or 0), comments=int(comments or 0))


def _rated(fair_id: int, kind: str) -> ColumnElement[bool]:
    """Feedback rows of `kind` at the fair that carry a rating."""
    return ((Feedback.fair_id == fair_id) & (Feedback.target_kind == kind)
            & Feedback.rating.between(RATINGS[0], RATINGS[-1]))


async def _distributions(session: AsyncSession, fair_id: int, kind: str
                         ) -> dict[str, RatingCounts]:
    """The rating distribution of each target of `kind`, by target key."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(RATINGS))
    for key, rating, count in (await session.execute(
            select(Feedback.target_key, Feedback.rating, func.count())
            .where(_rated(fair_id, kind))
            .group_by(Feedback.target_key, Feedback.rating))).all():
        counts[key][RATINGS.index(rating)] = int(count)
    return {key: RatingCounts((values[0], values[1], values[2], values[3], values[4]))
            for key, values in counts.items()}


def _quarter_hours(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole quarter hours since 1970 of a UTC timestamp column (naive UTC on SQLite)."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer) // QUARTER_HOUR
    return cast(func.floor(extract("epoch", column) / QUARTER_HOUR), Integer)


async def feedback_rows(sessions: Sessions) -> list[dict[str, Any]]:
    """Every feedback row with its author and the name of what it rates, for `tadamon export
    feedback` (CONTRACT.md columns, then fair_id and target_name_fr / _ar); `channel` and
    `user_id` are empty for an anonymous rating (its author erased): it still counts."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Feedback, Fair.key, Fair.name, Workshop.title, Contact.channel,
                   Contact.user_id)
            .join(Fair, Fair.id == Feedback.fair_id)
            .outerjoin(Contact, Contact.id == Feedback.contact_id)
            .outerjoin(Workshop, (Feedback.target_kind == "workshop")
                       & (Workshop.fair_id == Feedback.fair_id)
                       & (Workshop.key == Feedback.target_key))
            .order_by(Feedback.created_at, Feedback.id))).all()
        stand_names: dict[tuple[int, str], Mapping[str, str]] = {}
        for fair_id, number, exhibitor in (await session.execute(
                select(Stand.fair_id, Stand.number, Exhibitor.name)
                .join(Exhibitor, Exhibitor.stand_id == Stand.id)
                .order_by(Exhibitor.key))).all():
            stand_names.setdefault((fair_id, number), exhibitor)
    found = []
    for row, fair_key, fair_name, workshop_title, channel, user_id in rows:
        name: Mapping[str, str] = {
            "fair": fair_name, "workshop": workshop_title,
            "stand": stand_names.get((row.fair_id, row.target_key)),
        }.get(row.target_kind) or {}
        found.append({
            "target_kind": row.target_kind, "target_id": row.target_key,
            "rating": "" if row.rating is None else row.rating,
            "comment": row.comment or "", "language": row.language, "channel": channel or "",
            "user_id": user_id or "", "created_at": row.created_at.isoformat(),
            "fair_id": fair_key, "target_name_fr": name.get("fr", ""),
            "target_name_ar": name.get("ar", ""),
        })
    return found


async def contact_rows(sessions: Sessions) -> list[dict[str, Any]]:
    """Every contact, for `tadamon export contacts` (CONTRACT.md columns, then whether the
    platform says they cannot be reached, their last message and their cooperative)."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Contact, Exhibitor.key)
            .outerjoin(Exhibitor, Exhibitor.id == Contact.exhibitor_id)
            .order_by(Contact.id))).all()
    return [{"channel": contact.channel, "user_id": contact.user_id,
             "language": contact.language or "", "role": contact.role.value,
             "opted_out": str(contact.opted_out).lower(),
             "created_at": contact.created_at.isoformat(),
             "unreachable": str(contact.unreachable).lower(),
             "last_inbound_at": (contact.last_inbound_at.isoformat()
                                 if contact.last_inbound_at else ""),
             "exhibitor_id": exhibitor or ""}
            for contact, exhibitor in rows]
