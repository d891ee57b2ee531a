"""Messages that are not replies: what a reminder, a broadcast or a notice says to a person."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from bot.messages import Choice, Content, Isolated, Local, Reply, When, _, _n, reply
from handlers.buttons import WorkshopRating
from handlers.feedback import rating_choices, survey_invitation
from handlers.workshops import offer_choices


def notice(kind: str, payload: dict[str, Any]) -> Reply | None:
    """The reply an outbox row of `kind` carries; None for a kind this version does not know."""
    if kind in ("broadcast", "reminder"):
        return reply(Local(payload["text"]))
    if kind == "coop_setup":
        return _setup(payload)
    if kind == "coop_workshop":
        return reply(_("Today at {time}: the workshop {title} for cooperatives, {room}. We "
                       "look forward to seeing you.",
                       time=When(dt.datetime.fromisoformat(payload["starts_at"]), "time"),
                       title=Local(payload["title"]), room=Local(payload["room"])))
    if kind == "workshop_reminder":
        starts = dt.datetime.fromisoformat(payload["starts_at"])
        if payload.get("soon"):
            text = _("Reminder: {title} starts soon, at {time}, {room}.",
                     title=Local(payload["title"]), time=When(starts, "time"),
                     room=Local(payload["room"]))
        else:
            text = _("Reminder: tomorrow, {when}, the workshop {title}, {room}. If you cannot "
                     "come, cancel in \"My workshops\" so that someone else gets the seat.",
                     when=When(starts, "day_time"), title=Local(payload["title"]),
                     room=Local(payload["room"]))
        return reply(text, choices=[Choice("m:my", _("My workshops"))])
    if kind == "feedback_prompt":
        return reply(_("Thank you for attending {title}. How was it? Your opinion helps the "
                       "organizers.", title=Local(payload["title"])),
                     choices=rating_choices(partial(WorkshopRating,
                                                    int(payload["workshop_id"]))))
    if kind == "coop_digest":
        return _digest(payload)
    if kind == "coop_survey":
        return survey_invitation(payload["fair"])
    if kind == "offer_expired":
        return reply(_("The time to accept the seat at {title} is over: it went to the next "
                       "person. You can register again if seats are freed.",
                       title=Local(payload["title"])))
    if kind == "offer":
        return reply(
            _("Good news: a seat is free at {title}, {when}, {room}. It is yours if you accept "
              "it before {until}.", title=Local(payload["title"]),
              when=When(dt.datetime.fromisoformat(payload["starts_at"]), "day_time"),
              room=Local(payload["room"]),
              until=When(dt.datetime.fromisoformat(payload["until"]), "day_time")),
            choices=offer_choices(int(payload["workshop_id"])))
    if kind == "workshop_cancelled":
        return reply(_("The workshop {title} of {when} is cancelled by the organizers. We are "
                       "sorry for the inconvenience.",
                       title=Local(payload["title"]),
                       when=When(dt.datetime.fromisoformat(payload["starts_at"]), "day_time")))
    return None


def _setup(payload: dict[str, Any]) -> Reply:
    opens = dt.datetime.combine(dt.date.fromisoformat(payload["opens"]), dt.time(12))
    lines = [_("The fair opens tomorrow, {day}, at {time}.",
               day=When(opens.replace(tzinfo=dt.UTC), "day"),
               time=Isolated(str(payload["hours"]).partition("-")[0]))]
    if payload.get("stand"):
        lines.append(_("Your stand: {number}, {zone}.", number=Isolated(payload["stand"]),
                       zone=Local(payload.get("zone") or {})))
    if payload.get("setup_hours"):
        lines.append(_("Set-up today from {start} to {end}.",
                       start=Isolated(str(payload["setup_hours"]).partition("-")[0]),
                       end=Isolated(str(payload["setup_hours"]).partition("-")[2])))
    return reply(*lines)


def _digest(payload: dict[str, Any]) -> Reply:
    """A cooperative's day at its stand: card views, saves, ratings and the new comments."""
    day = dt.datetime.combine(dt.date.fromisoformat(payload["day"]), dt.time(12), dt.UTC)
    lines: list[Content] = [
        _("Your day at stand {number}, {day}:", number=Isolated(payload["stand"]),
          day=When(day, "day")),
        _n("Your stand's card was seen {n} time ({total} since the opening).",
           "Your stand's card was seen {n} times ({total} since the opening).",
           int(payload["views"]), total=int(payload["views_total"])),
        _n("{n} visitor saved your stand to their list.",
           "{n} visitors saved your stand to their list.", int(payload["saves"])),
    ]
    ratings = int(payload["ratings"])
    if ratings:
        lines.append(_n("{n} rating, {average} out of 5 on average.",
                        "{n} ratings, {average} out of 5 on average.", ratings,
                        average=float(payload["average"])))
    else:
        lines.append(_("No rating today."))
    if payload["comments"]:
        lines.append(_("New comments:"))
        lines.extend(_("“{text}”", text=Isolated(comment["text"]))
                     for comment in payload["comments"])
    return reply(*lines)


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
