"""Practical information: the fair's dates, hours, venue and the organizers' notes."""

from __future__ import annotations

import datetime as dt

from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import MenuItem, back_to_menu
from handlers.messages import Choice, Content, Local, Reply, When, _, reply
from handlers.understanding import Intent

feature = Feature("info", Intent.INFO)


@feature.command("info", menu_item="info", words={
    "fr": ["info", "infos", "information", "informations", "horaires", "pratique"],
    "ar": ["معلومات", "المعلومات"]})
async def info(ctx: Context) -> list[Reply]:
    """Practical information: dates, hours, venue and the organizers' notes."""
    fair = ctx.fair
    opens, _sep, closes = fair.hours.partition("-")
    lines: list[Content] = [
        Local(fair.name),
        _("Dates: from {first} to {last}", first=When(_at(ctx, fair.opens), "date"),
          last=When(_at(ctx, fair.closes), "date")),
        _("Open every day from {opens} to {closes}", opens=opens, closes=closes),
        _("Venue: {venue}, {city}", venue=Local(fair.venue), city=Local(fair.city)),
    ]
    if fair.info:
        lines.append(Local(fair.info))
    return [reply(*lines, choices=[back_to_menu()])]


def _at(ctx: Context, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), ctx.zone)


@feature.intent(Intent.INFO)
async def practical(ctx: Context) -> list[Reply]:
    """A practical question: the catalogue's answer for its topic; the fair's hours, dates or
    venue from its record; else the fair's information, saying no precise answer is known."""
    topic = ctx.understood.entities.info if ctx.understood is not None else None
    if topic is None:
        return await info(ctx)
    fair = ctx.fair
    more = Choice(MenuItem("info").pack(), _("Practical information"))
    for answer in await ctx.catalogue.info_answers(fair.id):
        if answer.id == topic:
            return [reply(Local(answer.answer), choices=[more, back_to_menu()])]
    opens, _sep, closes = fair.hours.partition("-")
    record: dict[str, Content] = {
        "hours": _("Open every day from {opens} to {closes}", opens=opens, closes=closes),
        "dates": _("Dates: from {first} to {last}", first=When(_at(ctx, fair.opens), "date"),
                   last=When(_at(ctx, fair.closes), "date")),
        "place": _("Venue: {venue}, {city}", venue=Local(fair.venue), city=Local(fair.city)),
    }
    if topic in record:
        return [reply(record[topic], choices=[more, back_to_menu()])]
    lines: list[Content] = [
        _("I have no precise answer to that question. The fair's reception desk can help you."),
        Local(fair.name),
        record["place"],
        record["hours"],
    ]
    if fair.info:
        lines.append(Local(fair.info))
    return [reply(*lines, choices=[back_to_menu()])]
