"""Cooperatives: a member links their chat to their cooperative with its code."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from handlers import stands
from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import menu_choices
from handlers.messages import Content, Isolated, Local, Reply, When, _, _n, reply
from handlers.understanding import Intent
from storage.cooperatives import normalize_code
from storage.models import Role
from storage.notices import CoopDigestNotice, CoopSetupNotice, CoopWorkshopNotice

feature = Feature("cooperatives", Intent.COOPERATIVE)

# Below this confidence, "cooperative" may be the first word of a name being looked for.
SURE = 0.8

# `coop <code>` (the WhatsApp link's text), `coop_<code>`, `تعاونية <code>`: whatever the
# length, so a mistyped code is told it is not valid rather than searched for as a name; not
# "cooperative", which is a search.
COOP_WORD = re.compile(r"(?:(?i:coop)[\s_:-]+|تعاونية[\s_:-]*)([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)")
# The shape of a cooperative code in a deep link (`coop_<code>`).
_LINK_CODE = re.compile(r"[A-Za-z0-9]{1,64}")


def not_valid() -> Reply:
    """The answer to a wrong code, and to a text that cannot be a code."""
    return reply(_("This cooperative code is not valid. Please check it with the organizers."),
                 choices=menu_choices())


async def link(ctx: Context, code: str) -> list[Reply]:
    """`coop_<code>` or `coop <code>`: link this chat to the cooperative, for its reminders.
    Once a person, or their address, has given too many wrong codes, no code is checked until
    the window passes, not even a right one: codes cannot be found by trying."""
    attempt = await ctx.link_attempts.take(ctx.contact.id, ctx.inbound.client)
    if attempt.unavailable:
        return [reply(_("Sorry, the service is briefly unavailable. Please try again in a "
                        "minute."))]
    if not attempt.allowed:
        return [reply(_n("Too many wrong cooperative codes were tried. For security, please "
                         "try again in {n} minute, or ask the organizers for help.",
                         "Too many wrong cooperative codes were tried. For security, please "
                         "try again in {n} minutes, or ask the organizers for help.",
                         attempt.retry_minutes), choices=menu_choices())]
    if normalize_code(code) is None:  # checks nothing: not counted
        await ctx.link_attempts.give_back(attempt)
        return [not_valid()]
    linked = await ctx.cooperatives.link(ctx.contact.id, code)
    if linked is None:
        return [not_valid()]
    await ctx.link_attempts.give_back(attempt)
    if ctx.contact.role != Role.ORGANIZER:
        ctx.contact = replace(ctx.contact, role=Role.COOPERATIVE)
    if linked.stand:
        text = _("You are now linked to {name}, stand {stand}. You will receive the reminders "
                 "for cooperatives.", name=Local(linked.name), stand=Isolated(linked.stand))
    else:
        text = _("You are now linked to {name}. You will receive the reminders for "
                 "cooperatives.", name=Local(linked.name))
    return [reply(text, choices=menu_choices())]


@feature.intent(Intent.COOPERATIVE)
async def how_to_link(ctx: Context) -> list[Reply]:
    """A cooperative asks how to get its reminders: how to link with its code; a linked
    member ("mon stand", "رواقي") sees their stand's day so far. A text the step is unsure
    of that is close to an exhibitor's name ("cooperativetifawin") is a search."""
    understood = ctx.understood
    if understood is not None and understood.confidence < SURE and (
            await ctx.catalogue.did_you_mean(ctx.fair.id, ctx.text) is not None):
        ctx.intent = Intent.STANDS
        return await stands.lookup(ctx, ctx.text) or await stands.zones(ctx)
    await ctx.feedback.flush()  # the views counted a moment ago are in the figures too
    today = await ctx.cooperatives.stand_day(ctx.contact.id, ctx.local_day(ctx.now))
    if today is not None:
        # "mon stand", "رواقي", "stand dyali": a member's own stand, its day so far.
        return [reply(*_digest(today).lines, choices=menu_choices())]
    if await ctx.cooperatives.exhibitor_of(ctx.contact.id) is not None:
        return [reply(_("Your cooperative is linked, but has no stand at this fair: there "
                        "are no stand figures to show. You still receive the reminders for "
                        "cooperatives."), choices=menu_choices())]
    return [reply(_("A cooperative that exhibits links its chat with the code the organizers "
                    "gave it: send the word coop, a space, then the code."),
                  _("Once linked, you receive the reminders and the daily summary of your "
                    "stand."), choices=menu_choices())]


@feature.link("coop")
async def _link(ctx: Context, value: str) -> list[Reply] | None:
    """`coop_<code>`: link this chat to the cooperative."""
    return await link(ctx, value) if _LINK_CODE.fullmatch(value) else None


# Outbox messages to cooperatives: set-up, their workshop, their day at the stand.

@feature.renders(CoopSetupNotice)
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


@feature.renders(CoopWorkshopNotice)
def _coop_workshop(payload: CoopWorkshopNotice) -> Reply:
    return reply(_("Today at {time}: the workshop {title} for cooperatives, {room}. We "
                   "look forward to seeing you.",
                   time=When(payload.starts_at, "time"),
                   title=Local(payload.title), room=Local(payload.room)))


@feature.renders(CoopDigestNotice)
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
