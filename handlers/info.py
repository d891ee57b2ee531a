"""Practical information: the fair's dates, hours, venue and the organizers' notes."""

from __future__ import annotations

import datetime as dt

from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import back_to_menu
from handlers.messages import Content, Local, Reply, When, _, reply

feature = Feature("info")


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

