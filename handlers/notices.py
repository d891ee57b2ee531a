"""Messages that are not replies: what a reminder, a broadcast or a notice says to a person."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from handlers.buttons import MenuItem, WorkshopRating
from handlers.feedback import rating_choices, survey_invitation
from handlers.messages import Choice, Content, Isolated, Local, Reply, When, _, _n, reply
from handlers.workshops import offer_choices
from storage.notices import (
    NOTICES,
    BroadcastNotice,
    CoopDigestNotice,
    CoopSetupNotice,
    CoopSurveyNotice,
    CoopWorkshopNotice,
    FeedbackPromptNotice,
    Notice,
    OfferExpiredNotice,
    OfferNotice,
    ReminderNotice,
    WorkshopCancelledNotice,
    WorkshopReminderNotice,
    WrittenNotice,
)

N = TypeVar("N", bound=Notice)

_RENDERERS: dict[type[Notice], Callable[[Any], Reply]] = {}


def _renders(*kinds: type[N]) -> Callable[[Callable[[N], Reply]], Callable[[N], Reply]]:
    """Register the function that words the outbox messages of these kinds."""

    def register(render: Callable[[N], Reply]) -> Callable[[N], Reply]:
        for kind in kinds:
            _RENDERERS[kind] = render
        return render

    return register


def notice(payload: Notice) -> Reply:
    """The reply an outbox row carries."""
    return _RENDERERS[type(payload)](payload)


@_renders(BroadcastNotice, ReminderNotice)
def _written(payload: WrittenNotice) -> Reply:
    return reply(Local(payload.text))


@_renders(CoopSetupNotice)
def _setup(payload: CoopSetupNotice) -> Reply:
    opens = dt.datetime.combine(payload.opens, dt.time(12))
    lines = [_("The fair opens tomorrow, {day}, at {time}.",
               day=When(opens.replace(tzinfo=dt.UTC), "day"),
               time=Isolated(payload.hours.partition("-")[0]))]
    if payload.stand:
        lines.append(_("Your stand: {number}, {zone}.", number=Isolated(payload.stand),
                       zone=Local(payload.zone or {})))
    if payload.setup_hours:
        lines.append(_("Set-up today from {start} to {end}.",
                       start=Isolated(payload.setup_hours.partition("-")[0]),
                       end=Isolated(payload.setup_hours.partition("-")[2])))
    return reply(*lines)


@_renders(CoopWorkshopNotice)
def _coop_workshop(payload: CoopWorkshopNotice) -> Reply:
    return reply(_("Today at {time}: the workshop {title} for cooperatives, {room}. We "
                   "look forward to seeing you.",
                   time=When(payload.starts_at, "time"),
                   title=Local(payload.title), room=Local(payload.room)))


@_renders(WorkshopReminderNotice)
def _workshop_reminder(payload: WorkshopReminderNotice) -> Reply:
    starts = payload.starts_at
    if payload.soon:
        text = _("Reminder: {title} starts soon, at {time}, {room}.",
                 title=Local(payload.title), time=When(starts, "time"),
                 room=Local(payload.room))
    else:
        text = _("Reminder: tomorrow, {when}, the workshop {title}, {room}. If you cannot "
                 "come, cancel in \"My workshops\" so that someone else gets the seat.",
                 when=When(starts, "day_time"), title=Local(payload.title),
                 room=Local(payload.room))
    return reply(text, choices=[Choice(MenuItem("my").pack(), _("My workshops"))])


@_renders(FeedbackPromptNotice)
def _feedback_prompt(payload: FeedbackPromptNotice) -> Reply:
    return reply(_("Thank you for attending {title}. How was it? Your opinion helps the "
                   "organizers.", title=Local(payload.title)),
                 choices=rating_choices(partial(WorkshopRating, payload.workshop_id)))


@_renders(CoopDigestNotice)
def _digest(payload: CoopDigestNotice) -> Reply:
    """A cooperative's day at its stand: card views, saves, ratings and the new comments."""
    day = dt.datetime.combine(payload.day, dt.time(12), dt.UTC)
    lines: list[Content] = [
        _("Your day at stand {number}, {day}:", number=Isolated(payload.stand),
          day=When(day, "day")),
        _n("Your stand's card was seen {n} time ({total} since the opening).",
           "Your stand's card was seen {n} times ({total} since the opening).",
           payload.views, total=payload.views_total),
        _n("{n} visitor saved your stand to their list.",
           "{n} visitors saved your stand to their list.", payload.saves),
    ]
    if payload.ratings:
        lines.append(_n("{n} rating, {average} out of 5 on average.",
                        "{n} ratings, {average} out of 5 on average.", payload.ratings,
                        average=float(payload.average or 0)))
    else:
        lines.append(_("No rating today."))
    if payload.comments:
        lines.append(_("New comments:"))
        lines.extend(_("“{text}”", text=Isolated(comment.text))
                     for comment in payload.comments)
    return reply(*lines)


@_renders(CoopSurveyNotice)
def _survey(payload: CoopSurveyNotice) -> Reply:
    return survey_invitation(payload.fair)


@_renders(OfferExpiredNotice)
def _offer_expired(payload: OfferExpiredNotice) -> Reply:
    return reply(_("The time to accept the seat at {title} is over: it went to the next "
                   "person. You can register again if seats are freed.",
                   title=Local(payload.title)))


@_renders(OfferNotice)
def _offer(payload: OfferNotice) -> Reply:
    return reply(
        _("Good news: a seat is free at {title}, {when}, {room}. It is yours if you accept "
          "it before {until}.", title=Local(payload.title),
          when=When(payload.starts_at, "day_time"), room=Local(payload.room),
          until=When(payload.until, "day_time")),
        choices=offer_choices(payload.workshop_id))


@_renders(WorkshopCancelledNotice)
def _workshop_cancelled(payload: WorkshopCancelledNotice) -> Reply:
    return reply(_("The workshop {title} of {when} is cancelled by the organizers. We are "
                   "sorry for the inconvenience.",
                   title=Local(payload.title), when=When(payload.starts_at, "day_time")))


if _unworded := [cls.kind for cls in NOTICES.values() if cls not in _RENDERERS]:
    raise RuntimeError(f"outbox kinds without a renderer in handlers/notices.py: {_unworded}")


def broadcast_progress(broadcast_id: int, counts: dict[str, int],
                       seconds_left: float | None) -> Reply:
    """What the organizer sees of their broadcast: edited as it goes, then its outcome."""
    total = sum(counts.values())
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    number = Isolated(str(broadcast_id))
    if done >= total:
        return reply(_("Broadcast {id} finished: {sent} sent, {skipped} skipped, {failed} "
                       "failed.", id=number, sent=counts["sent"], skipped=counts["skipped"],
                       failed=counts["failed"]))
    percent = 100 * done // total if total else 100
    if seconds_left is None:
        return reply(_("Broadcast {id}: {done} of {total} sent ({percent}%).", id=number,
                       done=done, total=total, percent=percent))
    return reply(_("Broadcast {id}: {done} of {total} sent ({percent}%), about {minutes} min "
                   "left.", id=number, done=done, total=total, percent=percent,
                   minutes=max(1, round(seconds_left / 60))))
