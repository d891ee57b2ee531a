"""Drawing the pictures and files handlers describe (handlers/pictures.py): the floor plan with
Pillow, the calendar file with icalendar, the organizers' chart with matplotlib, the check-in
QR code with segno."""

from __future__ import annotations

import asyncio
import io
from urllib.parse import quote

from bot.calendar import CalendarEvent, ics
from bot.floormap import PlanPlace, PlanStand, draw_floor_map
from bot.i18n import Renderer
from bot.report import summary_chart
from handlers.messages import Local
from handlers.pictures import Calendar, CheckinPass, FloorPlan, Picture

QR_SCALE = 12  # pixels per module: sharp on a phone held up at a door, small to send


def draw(picture: Picture, language: str, renderer: Renderer) -> bytes:
    """The bytes of `picture` for a reader of `language`, drawn now."""
    if isinstance(picture, FloorPlan):
        plan = [PlanStand(stand.number, Local(stand.zone).get(language), stand.x, stand.y)
                for stand in picture.stands]
        places = [PlanPlace(place.id, place.kind, Local(place.name).get(language), place.x,
                            place.y) for place in picture.places]
        return draw_floor_map(plan, highlight=picture.highlight or None,
                              title=renderer.text(picture.title, language),
                              entrance=renderer.text(picture.entrance, language),
                              language=language, places=places, place=picture.place or None,
                              zoom=not picture.whole)
    if isinstance(picture, Calendar):
        events = [CalendarEvent(uid=event.uid, title=event.title.get(language),
                                location=event.location.get(language),
                                starts_at=event.starts_at, ends_at=event.ends_at)
                  for event in picture.events]
        return ics(events, picture.zone, picture.fair_name.get(language))
    if isinstance(picture, CheckinPass):
        return checkin_qr(picture.code, renderer.public_url)
    return summary_chart(picture.ratings, picture.workshops, renderer)


def checkin_url(public_url: str, code: str) -> str:
    """The console's check-in page for this code, at the service's public address."""
    return f"{public_url.rstrip('/')}/admin/checkin?code={quote(code, safe='')}"


def checkin_qr(code: str, public_url: str | None = None) -> bytes:
    """A PNG QR code of a check-in code (or of its console address, when the service has a
    public one)."""
    import segno  # only the replies that confirm a seat need it

    data = checkin_url(public_url, code) if public_url else code
    out = io.BytesIO()
    segno.make_qr(data, error="m").save(out, kind="png", scale=QR_SCALE, border=4)
    return out.getvalue()


def drawn(picture: Picture, language: str, renderer: Renderer) -> bytes:
    """The bytes of `picture`: a floor plan drawn once per stand or place, view, language and
    catalogue version, anything else drawn now."""
    kept = _kept(picture, language)
    return kept if kept is not None else _keep(picture, language,
                                               draw(picture, language, renderer))


async def drawn_async(picture: Picture, language: str, renderer: Renderer) -> bytes:
    """As `drawn`, with pictures (Pillow, matplotlib) drawn in a thread, off the event loop."""
    kept = _kept(picture, language)
    if kept is not None:
        return kept
    if isinstance(picture, Calendar | CheckinPass):  # quick to make: not worth a thread
        return draw(picture, language, renderer)
    return _keep(picture, language, await asyncio.to_thread(draw, picture, language, renderer))


def _kept(picture: Picture, language: str) -> bytes | None:
    if isinstance(picture, FloorPlan) and picture.drawn is not None:
        return picture.drawn.get(_key(picture, language))
    return None


def _keep(picture: Picture, language: str, data: bytes) -> bytes:
    if isinstance(picture, FloorPlan) and picture.drawn is not None:
        picture.drawn[_key(picture, language)] = data
    return data


def _key(plan: FloorPlan, language: str) -> tuple[str, ...]:
    return ("map", plan.highlight, plan.place, "whole" if plan.whole else "zoom", language)
