"""Practical information: the fair's dates, hours, venue and the organizers' notes; where the
catalogue's places (rooms, toilets, prayer room...) are, on the map."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from handlers import places
from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import MenuItem, back_to_menu
from handlers.messages import Choice, Content, Local, Media, Reply, _, date_range, reply
from handlers.pictures import FloorPlan
from handlers.understanding import Intent

feature = Feature("info", Intent.INFO)


class PlaceMap(Button, prefix="pl"):
    """The phone map around one place."""

    place: str


class WholePlaceMap(Button, prefix="plw"):
    """The whole plan with one place marked."""

    place: str


@feature.command("info", menu_item="info", words={
    "fr": ["info", "infos", "information", "informations", "horaires", "pratique"],
    "ar": ["معلومات", "المعلومات"]})
async def info(ctx: Context) -> list[Reply]:
    """Practical information: dates, hours, venue and the organizers' notes."""
    fair = ctx.fair
    opens, _sep, closes = fair.hours.partition("-")
    lines: list[Content] = [
        Local(fair.name),
        _("Dates: from {first} to {last}",
          **date_range(_at(ctx, fair.opens), _at(ctx, fair.closes))),
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
    """A practical question: the map of the place it names ("où est la salle 2 ?"); the
    catalogue's answer for its topic, with the map of the place of that kind (the toilets)
    when the catalogue has one; the fair's hours, dates or venue from its record; else the
    fair's information, saying no precise answer is known."""
    entities = ctx.understood.entities if ctx.understood is not None else None
    topic = entities.info if entities is not None else None
    if topic is None:
        # A place named ("où est la salle 2 ?"): its map.
        for place in entities.places if entities is not None else ():
            shown = await place_map(ctx, place)
            if shown is not None:
                return shown
        return await info(ctx)
    fair = ctx.fair
    more = Choice(MenuItem("info").pack(), _("Practical information"))
    for answer in await ctx.catalogue.info_answers(fair.id):
        if answer.id == topic:
            return await _with_map(ctx, topic, Local(answer.answer),
                                   [reply(Local(answer.answer), choices=[more, back_to_menu()])])
    located = await _with_map(ctx, topic, None, [])
    if located:
        return located
    opens, _sep, closes = fair.hours.partition("-")
    record: dict[str, Content] = {
        "hours": _("Open every day from {opens} to {closes}", opens=opens, closes=closes),
        "dates": _("Dates: from {first} to {last}",
                   **date_range(_at(ctx, fair.opens), _at(ctx, fair.closes))),
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


async def _with_map(ctx: Context, topic: str, answer: Content | None, otherwise: list[Reply]
                    ) -> list[Reply]:
    """The answer to a practical topic with the map of the place it is about (the toilets),
    when the catalogue places one; else `otherwise`."""
    snapshot = await ctx.catalogue.current(ctx.fair.id)
    place = places.of_kind(snapshot.places, topic) if snapshot is not None else None
    if place is None:
        return otherwise
    shown = await place_map(ctx, place.id, [answer] if answer is not None else [])
    return shown if shown is not None else otherwise


async def place_map(ctx: Context, place_id: str, lead: Sequence[Content] = (),
                    whole: bool = False) -> list[Reply] | None:
    """The map with the place marked (the phone view, or the whole plan), after `lead`; None
    when the served catalogue has no such place or no stand to draw."""
    snapshot = await ctx.catalogue.current(ctx.fair.id)
    if snapshot is None or not snapshot.stands:
        return None
    place = next((item for item in snapshot.places if item.id == place_id), None)
    if place is None:
        return None
    title = Local(place.name)
    plan = FloorPlan(tuple(snapshot.stands.values()), "", title, _("Entrance"),
                     drawn=snapshot.pictures, places=snapshot.places, place=place.id,
                     whole=whole)
    text: Content = (_("{place} is marked in red on the whole plan.", place=title) if whole
                     else _("{place} is marked in red. The small plan in the corner shows "
                            "where it is in the fair.", place=title))
    other = (Choice(PlaceMap(place.id).pack(), _("Zoom in")) if whole
             else Choice(WholePlaceMap(place.id).pack(), _("Whole plan")))
    return [reply(*lead, text,
                  media=[Media("image", filename=f"map-{place.id}.png", mime="image/png",
                               caption=title, picture=plan)],
                  choices=[other, Choice(MenuItem("info").pack(), _("Practical information")),
                           back_to_menu()])]


@feature.button(PlaceMap)
async def _place_map(ctx: Context, button: PlaceMap) -> list[Reply]:
    return await place_map(ctx, button.place) or await info(ctx)


@feature.button(WholePlaceMap)
async def _whole_place_map(ctx: Context, button: WholePlaceMap) -> list[Reply]:
    return await place_map(ctx, button.place, whole=True) or await info(ctx)
