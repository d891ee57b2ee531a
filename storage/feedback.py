"""Feedback: ratings and comments on the fair, its workshops and its stands; how often each
stand's card is seen; the exhibitors' survey at the end of the fair; and the cooperatives'
daily digest and survey invitation, queued in the outbox.

A rating is stored the moment it is given (the comment, if any, comes after), one per person,
target and day in the fair's time zone: a second rating of the same target that day replaces the
first, its comment included.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.batch import GroupWrite
from storage.catalogue import active_fair
from storage.database import DATABASE_ERRORS
from storage.models import (
    Contact,
    Exhibitor,
    ExhibitorSurvey,
    Fair,
    Feedback,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    SavedStand,
    Stand,
    StandCardView,
)
from storage.notices import CoopDigestNotice, CoopSurveyNotice, DigestComment
from storage.outbox import queue_per_contact
from storage.reach import receives_later
from storage.repositories import Sessions

log = logging.getLogger(__name__)

COMMENT_MAX = 1000
"""Characters kept of a comment; a longer one is cut there, and the person is told."""

DIGEST_COMMENTS = 5
"""New comments quoted in a digest, the latest first, each cut to DIGEST_QUOTE characters."""
DIGEST_QUOTE = 280
DIGEST_AFTER_CLOSING = dt.timedelta(minutes=30)
"""A fair day's digest goes this long after the day's closing hour..."""
DIGEST_LATE = dt.timedelta(hours=12)
"""...and is not queued any more this long after that (a worker that was down)."""
SURVEY_AFTER_CLOSING = dt.timedelta(minutes=45)
SURVEY_LATE = dt.timedelta(days=7)

SALES_BANDS = ("lt2k", "2k-10k", "10k-50k", "gt50k", "none")
"""Estimated sales during the fair (MAD): under 2,000; 2,000 to 10,000; 10,000 to 50,000;
over 50,000; rather not say."""


@dataclass(frozen=True, slots=True)
class Rated:
    """A rating just stored: its row, and whether it replaced one given earlier that day."""

    id: int
    replaced: bool


# Seconds the views of a card wait for others before they are written together.
VIEWS_LINGER = 0.5


class FeedbackRepository:
    """Ratings, comments, stand card views and exhibitor survey answers."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._views: GroupWrite[tuple[int, str, dt.date]] = GroupWrite(
            self._write_views, linger=VIEWS_LINGER)

    async def rate(self, fair_id: int, contact_id: int, target_kind: str, target_key: str,
                   rating: int, language: str, day: dt.date) -> Rated:
        """Store a rating; the person's earlier rating of the same target that day (and its
        comment) is replaced."""
        for _attempt in range(2):  # a racing insert of the same person: update it instead
            try:
                async with self.sessions() as session, session.begin():
                    row = await session.scalar(select(Feedback).where(
                        Feedback.fair_id == fair_id, Feedback.contact_id == contact_id,
                        Feedback.target_kind == target_kind, Feedback.target_key == target_key,
                        Feedback.day == day))
                    if row is not None:
                        row.rating, row.comment, row.language = rating, None, language
                        row.created_at = dt.datetime.now(dt.UTC)
                        return Rated(row.id, True)
                    row = Feedback(fair_id=fair_id, contact_id=contact_id,
                                   target_kind=target_kind, target_key=target_key,
                                   rating=rating, language=language, day=day)
                    session.add(row)
                    await session.flush()
                    return Rated(row.id, False)
            except IntegrityError:
                continue
        raise RuntimeError("rating could not be stored")  # pragma: no cover

    async def comment(self, feedback_id: int, contact_id: int, comment: str | None,
                      language: str) -> bool:
        """Attach a comment (None: none) in `language` to the person's own rating; False when
        the rating is not theirs."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Feedback)
                .where(Feedback.id == feedback_id, Feedback.contact_id == contact_id)
                .values(comment=comment, language=language))
            return bool(getattr(result, "rowcount", 0))

    async def for_contact(self, contact_id: int) -> list[dict[str, Any]]:
        """The person's ratings and comments, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Feedback).where(Feedback.contact_id == contact_id).order_by(Feedback.id))
            return [{"target_kind": row.target_kind, "target_key": row.target_key,
                     "rating": row.rating, "comment": row.comment, "language": row.language,
                     "day": row.day}
                    for row in rows]

    async def count_view(self, fair_id: int, number: str, day: dt.date) -> None:
        """One more showing of the stand's card that day. A count is only a statistic, which
        no answer waits for: the views of the next VIEWS_LINGER seconds are written together
        (one statement for all of them; a busy fair shows hundreds of cards a second). When
        the database is down they are lost (logged), and the card is still shown from memory;
        `flush` writes what is counted (at shutdown)."""
        self._views.count((fair_id, number, day))

    async def flush(self) -> None:
        """Write the views counted so far."""
        await self._views.flush()

    async def _write_views(self, views: Counter[tuple[int, str, dt.date]]) -> None:
        try:
            await self._add_views(views)
        except DATABASE_ERRORS:
            log.warning("%d card views not counted: database unavailable", sum(views.values()))

    async def _add_views(self, views: Counter[tuple[int, str, dt.date]]) -> None:
        async with self.sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            make = postgresql_insert if dialect == "postgresql" else sqlite_insert
            statement = make(StandCardView).values([
                {"fair_id": fair_id, "stand_number": number, "day": day, "views": count}
                for (fair_id, number, day), count in sorted(views.items())])
            await session.execute(statement.on_conflict_do_update(
                index_elements=["fair_id", "stand_number", "day"],
                set_={"views": StandCardView.views + statement.excluded.views}))

    async def attended(self, workshop_id: int, contact_id: int) -> bool:
        """Whether the person holds a confirmed seat at the workshop (who may rate it)."""
        async with self.sessions() as session:
            status = await session.scalar(select(Registration.status).where(
                Registration.workshop_id == workshop_id,
                Registration.contact_id == contact_id))
        return status == RegistrationStatus.CONFIRMED

    async def answer_survey(self, fair_id: int, contact_id: int, exhibitor_id: int | None,
                            language: str, **answers: Any) -> None:
        """Store one or more answers of the exhibitor survey (satisfaction, come_again,
        sales_band, comment); answers given before are kept."""
        for _attempt in range(2):
            try:
                async with self.sessions() as session, session.begin():
                    row = await session.scalar(select(ExhibitorSurvey).where(
                        ExhibitorSurvey.fair_id == fair_id,
                        ExhibitorSurvey.contact_id == contact_id))
                    if row is None:
                        row = ExhibitorSurvey(fair_id=fair_id, contact_id=contact_id,
                                              exhibitor_id=exhibitor_id, language=language)
                        session.add(row)
                    for name, value in answers.items():
                        setattr(row, name, value)
                    row.language = language
                    return
            except IntegrityError:
                continue

    async def survey(self, fair_id: int, contact_id: int) -> dict[str, Any] | None:
        """The person's survey answers so far."""
        async with self.sessions() as session:
            row = await session.scalar(select(ExhibitorSurvey).where(
                ExhibitorSurvey.fair_id == fair_id, ExhibitorSurvey.contact_id == contact_id))
        if row is None:
            return None
        return {"satisfaction": row.satisfaction, "come_again": row.come_again,
                "sales_band": row.sales_band, "comment": row.comment, "language": row.language}


async def queue_cooperative_messages(sessions: Sessions, now: dt.datetime) -> int:
    """Queue the served fair's digests and survey invitations that are due (see below)."""
    async with sessions() as session, session.begin():
        fair = await active_fair(session)
        return 0 if fair is None else await queue_digests_and_surveys(session, fair, now)


def closing_time(fair: Fair) -> dt.time:
    """The daily closing hour, from the fair's hours ("10:00-20:00"); 20:00 when unreadable."""
    try:
        return dt.time.fromisoformat(fair.hours.partition("-")[2].strip())
    except ValueError:
        return dt.time(20)


async def queue_digests_and_surveys(session: AsyncSession, fair: Fair,
                                    now: dt.datetime) -> int:
    """Each member of a linked cooperative gets, after each fair day, the digest of their
    stand's day (card views, saves, ratings, new comments) and, after the last day, the
    exhibitor survey. Never twice (idempotency keys). Returns the outbox rows added."""
    zone = ZoneInfo(fair.timezone)
    closing = closing_time(fair)
    added = 0
    day = fair.opens
    while day <= fair.closes:
        due = dt.datetime.combine(day, closing, zone) + DIGEST_AFTER_CLOSING
        if due <= now < due + DIGEST_LATE:
            added += await _queue_digests(session, fair, day, now)
        day += dt.timedelta(days=1)
    survey_due = dt.datetime.combine(fair.closes, closing, zone) + SURVEY_AFTER_CLOSING
    if survey_due <= now < survey_due + SURVEY_LATE:
        added += await queue_per_contact(
            session, _members(fair.id), CoopSurveyNotice(fair=fair.name),
            f"coop-survey:{fair.id}:", now, now)
    return added


def _members(fair_id: int) -> Any:
    """The ids of contacts linked to one of the fair's exhibitors."""
    return (select(Contact.id).join(Exhibitor, Exhibitor.id == Contact.exhibitor_id)
            .where(Exhibitor.fair_id == fair_id))


async def _queue_digests(session: AsyncSession, fair: Fair, day: dt.date,
                         now: dt.datetime) -> int:
    prefix = f"coop-digest:{fair.id}:{day.isoformat()}:"
    # Called every minute for hours: once every member has that day's digest, stop there.
    queued = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith(prefix)))
    reachable = await session.scalar(select(func.count()).select_from(
        _members(fair.id).where(Contact.opted_out.is_(False), receives_later()).subquery()))
    if (queued or 0) >= (reachable or 0):
        return 0
    linked = (await session.execute(
        select(Exhibitor.id, Stand.number)
        .join(Contact, Contact.exhibitor_id == Exhibitor.id)
        .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
        .where(Exhibitor.fair_id == fair.id).distinct())).all()
    stands = {number for _exhibitor, number in linked if number}
    if not stands:
        return 0
    figures = await digest_figures(session, fair, day, stands)
    added = 0
    for exhibitor_id, number in linked:
        if not number:
            continue
        members = select(Contact.id).where(Contact.exhibitor_id == exhibitor_id)
        added += await queue_per_contact(session, members,
                                          _digest(number, day, figures[number]), prefix,
                                          now, now)
    return added


def _digest(stand: str, day: dt.date, figures: dict[str, Any]) -> CoopDigestNotice:
    return CoopDigestNotice(
        stand=stand, day=day, views=figures["views"], views_total=figures["views_total"],
        saves=figures["saves"], ratings=figures["ratings"], average=figures["average"],
        comments=tuple(DigestComment(text=comment["text"], language=comment["language"])
                       for comment in figures["comments"]))


async def digest_figures(session: AsyncSession, fair: Fair, day: dt.date,
                         stands: set[str]) -> dict[str, dict[str, Any]]:
    """For each stand, its day: card views, saves, ratings (count and average), the new
    comments (the latest first), and its card views since the fair opened."""
    zone = ZoneInfo(fair.timezone)
    start = dt.datetime.combine(day, dt.time(0), zone)
    end = start + dt.timedelta(days=1)
    figures: dict[str, dict[str, Any]] = {
        number: {"views": 0, "views_total": 0, "saves": 0, "ratings": 0, "average": None,
                 "comments": []} for number in stands}
    views = await session.execute(
        select(StandCardView.stand_number, StandCardView.day, StandCardView.views)
        .where(StandCardView.fair_id == fair.id, StandCardView.stand_number.in_(stands),
               StandCardView.day <= day))
    for number, seen_on, count in views:
        figures[number]["views_total"] += count
        if seen_on == day:
            figures[number]["views"] = count
    saves = await session.execute(
        select(SavedStand.stand_number, func.count())
        .where(SavedStand.fair_id == fair.id, SavedStand.stand_number.in_(stands),
               SavedStand.created_at >= start, SavedStand.created_at < end)
        .group_by(SavedStand.stand_number))
    for number, count in saves:
        figures[number]["saves"] = count
    ratings = await session.execute(
        select(Feedback.target_key, func.count(Feedback.rating), func.avg(Feedback.rating))
        .where(Feedback.fair_id == fair.id, Feedback.target_kind == "stand",
               Feedback.target_key.in_(stands), Feedback.day == day,
               Feedback.rating.is_not(None))
        .group_by(Feedback.target_key))
    for number, count, average in ratings:
        figures[number]["ratings"] = count
        figures[number]["average"] = round(float(average), 1) if average is not None else None
    comments = await session.execute(
        select(Feedback.target_key, Feedback.comment, Feedback.language)
        .where(Feedback.fair_id == fair.id, Feedback.target_kind == "stand",
               Feedback.target_key.in_(stands), Feedback.day == day,
               Feedback.comment.is_not(None))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc()))
    for number, comment, language in comments:
        quoted = figures[number]["comments"]
        if comment and len(quoted) < DIGEST_COMMENTS:
            quoted.append({"text": _quote(comment), "language": language})
    return figures


def _quote(comment: str) -> str:
    return comment if len(comment) <= DIGEST_QUOTE else comment[:DIGEST_QUOTE - 1] + "…"

