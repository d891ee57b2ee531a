"""The floor plan as a picture: every stand at its place on the plan, the zones, the entrance and
the catalogue's places (rooms, toilets, prayer room...) labelled, and one stand or place marked.

Two views. The whole plan, 1000 px wide. And the view for phones: a picture 720 px wide zoomed
around the stand or place asked for, its numbers large enough to read when a phone shows the
picture 390 px wide (ZOOM_NUMBER), with a small overview of the whole plan in a corner that
frames the part shown; portrait when the plan is taller than wide.

Drawn with Pillow from the catalogue's coordinates (x to the right, y downwards, in any unit).
Text goes through libraqm (bundled with Pillow's wheels, with the system's FriBiDi), so Arabic
names are joined and read right to left. The fonts are shipped in `bot/data/fonts` (DejaVu Sans:
Latin and Arabic in one face), never taken from the system.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont, features

from bot.fonts import BOLD, REGULAR

log = logging.getLogger(__name__)

WIDTH = 1000  # pixels of the whole plan; the height follows the plan's proportions
MARGIN = 24
TITLE_BAND = 56
ENTRANCE_BAND = 64
ZONE_LABEL = 22  # room above each zone for its name

ZOOM_WIDTH = 720  # pixels of the phone view
ZOOM_HEIGHT = 760  # the phone view of a plan wider than tall (title band included)
ZOOM_TALL_HEIGHT = 1080  # ... and of a plan taller than wide: portrait
ZOOM_NUMBER = 36  # px: the digits' ink is 26 px high: 14 px on a phone showing it 390 px wide
INSET_WIDTH = 210  # the overview's largest side, in pixels

BACKGROUND = (250, 247, 240)
INK = (40, 40, 40)
MUTED = (120, 114, 104)
NUMBER_INK = (70, 66, 60)
STAND_FILL = (255, 255, 255)
STAND_LINE = (150, 142, 130)
HIGHLIGHT = (200, 40, 40)
HIGHLIGHT_RING = (255, 200, 60)
LABEL_FILL = (255, 255, 255)
ZONE_COLOURS = (
    (222, 235, 247), (229, 245, 224), (254, 230, 206), (239, 229, 247),
    (255, 247, 188), (224, 243, 243), (252, 224, 230), (235, 235, 235),
)
# Each kind of place: its sign (a glyph DejaVu Sans holds) and its colour.
PLACE_SIGNS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "room": ("⌂", (45, 85, 160)),
    "entrance": ("⬆", (40, 40, 40)),
    "toilets": ("WC", (0, 118, 140)),
    "prayer": ("☪", (120, 84, 30)),
    "first_aid": ("✚", (0, 135, 70)),
    "food": ("☕", (205, 105, 20)),
    "info": ("ℹ", (30, 105, 195)),
    "exit": ("⇥", (0, 120, 60)),
}


@dataclass(frozen=True, slots=True)
class PlanStand:
    """A stand on the plan: its number, its zone's name in the reader's language, its place."""

    number: str
    zone: str
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PlanPlace:
    """A room or facility on the plan: its id, kind, name in the reader's language, point."""

    id: str
    kind: str
    name: str
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class _Style:
    """The sizes of one view, in pixels."""

    title_band: int
    title: int
    zone: int
    number: int
    place: int
    marker: int  # a place sign's radius
    entrance: int


WHOLE = _Style(title_band=TITLE_BAND, title=26, zone=16, number=14, place=14, marker=11,
               entrance=18)
ZOOM = _Style(title_band=70, title=32, zone=26, number=ZOOM_NUMBER, place=30, marker=22,
              entrance=28)


@dataclass(frozen=True, slots=True)
class _View:
    """Where plan units land in the picture: px = origin + (unit - left or top) * scale."""

    left: float
    top: float
    scale: float
    origin_x: float
    origin_y: float

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (self.origin_x + (x - self.left) * self.scale,
                self.origin_y + (y - self.top) * self.scale)


@dataclass(frozen=True, slots=True)
class _Bounds:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return max(self.right - self.left, 1.0)

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)


@cache
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    if engine is ImageFont.Layout.BASIC:
        log.warning("Pillow has no libraqm (install libfribidi0): Arabic on the floor maps "
                    "will not be joined")
    return ImageFont.truetype(str(BOLD if bold else REGULAR), size, layout_engine=engine)


def _fit(draw: ImageDraw.ImageDraw, text: str, bold: bool, size: int, width: float,
         language: str) -> ImageFont.FreeTypeFont:
    """The largest font, from `size` down, whose rendering of `text` fits in `width`."""
    while size > 9:
        font = _font(bold, size)
        if draw.textlength(text, font=font, language=language) <= width:
            return font
        size -= 1
    return _font(bold, size)


def stand_size(stands: Sequence[PlanStand]) -> float:
    """The side of a stand's square, in plan units: most of the distance between the two
    closest stands, so neighbours never touch (measured on a sample for huge plans)."""
    sample = stands[:: max(1, len(stands) // 200)]
    gaps = [math.hypot(stand.x - other.x, stand.y - other.y)
            for stand in sample for other in stands if other is not stand]
    closest = min((gap for gap in gaps if gap > 0), default=50.0)
    return 0.8 * closest


def _bounds(stands: Sequence[PlanStand], places: Sequence[PlanPlace], side: float) -> _Bounds:
    xs = [stand.x for stand in stands] + [place.x for place in places]
    ys = [stand.y for stand in stands] + [place.y for place in places]
    return _Bounds(min(xs) - side / 2, min(ys) - side / 2, max(xs) + side / 2,
                   max(ys) + side / 2)


def draw_floor_map(stands: Sequence[PlanStand], *, highlight: str | None, title: str,
                   entrance: str, language: str, places: Sequence[PlanPlace] = (),
                   place: str | None = None, zoom: bool = False) -> bytes:
    """A PNG of the floor plan with `highlight` (a stand number) or `place` (a place id)
    marked, `title` at the top, the places and the entrance: the catalogue's entrance places,
    else one labelled `entrance` at the bottom centre. `zoom`: the phone view around what is
    marked, with an overview in a corner; else the whole plan."""
    if not stands:
        raise ValueError("no stand to draw")
    focus = _focus(stands, places, highlight, place)
    if zoom and focus is not None:
        image = _zoomed(stands, places, highlight, place, focus, title, entrance, language)
    else:
        image = _whole(stands, places, highlight, place, title, entrance, language)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _focus(stands: Sequence[PlanStand], places: Sequence[PlanPlace], highlight: str | None,
           place: str | None) -> tuple[float, float] | None:
    for stand in stands:
        if stand.number == highlight:
            return float(stand.x), float(stand.y)
    for item in places:
        if item.id == place:
            return float(item.x), float(item.y)
    return None


def _whole(stands: Sequence[PlanStand], places: Sequence[PlanPlace], highlight: str | None,
           place: str | None, title: str, entrance: str, language: str) -> Image.Image:
    """The whole plan, 1000 px wide."""
    side = stand_size(stands)
    bounds = _bounds(stands, places, side)
    scale = (WIDTH - 2 * MARGIN) / bounds.width
    plan_height = bounds.height * scale
    # Keep very tall plans readable in a chat (and within the platforms' picture limits).
    if plan_height > 1.6 * WIDTH:
        scale *= 1.6 * WIDTH / plan_height
        plan_height = bounds.height * scale
    height = int(TITLE_BAND + ZONE_LABEL + plan_height + ENTRANCE_BAND + MARGIN)
    view = _View(bounds.left, bounds.top, scale, (WIDTH - bounds.width * scale) / 2,
                 TITLE_BAND + ZONE_LABEL)
    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _draw_plan(draw, view, WHOLE, stands, places, side, highlight, place, entrance, bounds,
               language)
    _draw_title(draw, WHOLE, WIDTH, title, language)
    return image


def _zoomed(stands: Sequence[PlanStand], places: Sequence[PlanPlace], highlight: str | None,
            place: str | None, focus: tuple[float, float], title: str, entrance: str,
            language: str) -> Image.Image:
    """The phone view: zoomed so that stand numbers are ZOOM_NUMBER px, centred on `focus`."""
    side = stand_size(stands)
    bounds = _bounds(stands, places, side)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widest = max(probe.textlength(stand.number, font=_font(True, ZOOM.number))
                 for stand in stands)
    scale = (widest + 14) / side
    height = ZOOM_TALL_HEIGHT if bounds.height > bounds.width else ZOOM_HEIGHT
    band = ZOOM.title_band
    area_w, area_h = ZOOM_WIDTH - 2 * MARGIN, height - band - MARGIN
    whole_scale = min(area_w / bounds.width, area_h / bounds.height)
    image_height = height
    if whole_scale >= scale:
        # The whole plan fits at that size: shown whole, as large as it fits, no overview.
        scale = whole_scale
        image_height = int(band + bounds.height * scale + MARGIN + ZOOM.place)
        view = _View(bounds.left, bounds.top, scale,
                     (ZOOM_WIDTH - bounds.width * scale) / 2, band + ZOOM.place / 2)
        window = None
    else:
        span_x, span_y = ZOOM_WIDTH / scale, (height - band) / scale
        left = _clamp(focus[0] - span_x / 2, bounds.left - MARGIN / scale,
                      bounds.right + MARGIN / scale - span_x)
        top = _clamp(focus[1] - span_y / 2, bounds.top - (ZOOM.zone + 12) / scale,
                     bounds.bottom + (ZOOM.entrance + 40) / scale - span_y)
        view = _View(left, top, scale, 0.0, band)
        window = _Bounds(left, top, left + span_x, top + span_y)
    image = Image.new("RGB", (ZOOM_WIDTH, image_height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _draw_plan(draw, view, ZOOM, stands, places, side, highlight, place, entrance, bounds,
               language)
    if window is not None:
        _draw_overview(image, stands, places, side, bounds, window, focus, view)
    _draw_title(draw, ZOOM, ZOOM_WIDTH, title, language)
    return image


def _clamp(value: float, low: float, high: float) -> float:
    return low if high < low else min(max(value, low), high)


def _draw_title(draw: ImageDraw.ImageDraw, style: _Style, width: int, title: str,
                language: str) -> None:
    if style is ZOOM:  # the zoomed plan runs under the title: the band covers it
        draw.rectangle((0, 0, width, style.title_band), fill=BACKGROUND)
        draw.line((0, style.title_band, width, style.title_band), fill=STAND_LINE, width=1)
    font = _fit(draw, title, True, style.title, width - 2 * MARGIN, language)
    draw.text((width / 2, style.title_band / 2 + 2), title, font=font, fill=INK, anchor="mm",
              language=language)


def _draw_plan(draw: ImageDraw.ImageDraw, view: _View, style: _Style,
               stands: Sequence[PlanStand], places: Sequence[PlanPlace], side: float,
               highlight: str | None, place: str | None, entrance: str, bounds: _Bounds,
               language: str) -> None:
    """Zones, stands, places and the entrance through `view` (what falls outside the picture
    is cut off by it)."""
    half = side * view.scale / 2
    # Zones: a tinted box around their stands, the name above it.
    zones: dict[str, list[PlanStand]] = {}
    for stand in stands:
        zones.setdefault(stand.zone, []).append(stand)
    for index, (name, members) in enumerate(zones.items()):
        x0, y0 = view.at(min(s.x for s in members), min(s.y for s in members))
        x1, y1 = view.at(max(s.x for s in members), max(s.y for s in members))
        box = (x0 - half - 6, y0 - half - 6, x1 + half + 6, y1 + half + 6)
        draw.rounded_rectangle(box, radius=8, fill=ZONE_COLOURS[index % len(ZONE_COLOURS)],
                               outline=STAND_LINE)
        if name:
            font = _fit(draw, name, True, style.zone, box[2] - box[0] - 8, language)
            draw.text(((box[0] + box[2]) / 2, box[1] - 4), name, font=font, fill=INK,
                      anchor="md", language=language)

    # Stands, their numbers when there is room for them.
    bold = style is ZOOM
    number_font = _font(bold, style.number if bold else max(9, min(14, int(half * 0.75))))
    show_numbers = half >= 11
    chosen = None
    for stand in stands:
        cx, cy = view.at(stand.x, stand.y)
        if stand.number == highlight:
            chosen = (cx, cy)
            continue
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=STAND_FILL,
                       outline=STAND_LINE)
        if show_numbers:
            font = number_font if not bold else _fit(draw, stand.number, True, style.number,
                                                     2 * half - 6, "en")
            draw.text((cx, cy), stand.number, font=font, fill=NUMBER_INK if bold else MUTED,
                      anchor="mm")

    # The entrance: the catalogue's, else a marker at the bottom centre of the plan.
    if not any(item.kind == "entrance" for item in places):
        ex, ey = view.at((bounds.left + bounds.right) / 2, bounds.bottom)
        ey += 14
        size = style.entrance
        draw.polygon(((ex, ey), (ex - size * 0.8, ey + size), (ex + size * 0.8, ey + size)),
                     fill=INK)
        draw.text((ex, ey + size + 4), entrance, font=_font(True, size), fill=INK, anchor="ma",
                  language=language)

    for item in places:
        if item.id != place:
            _draw_place(draw, view, style, item, False, language)

    # The stand or place asked for, drawn last so nothing covers it.
    if chosen is not None:
        cx, cy = chosen
        halo = half + 5
        draw.rectangle((cx - halo, cy - halo, cx + halo, cy + halo), outline=HIGHLIGHT_RING,
                       width=4)
        draw.rectangle((cx - half - 1, cy - half - 1, cx + half + 1, cy + half + 1),
                       fill=HIGHLIGHT, outline=INK, width=2)
        size = style.number + 4 if bold else 18
        label = _fit(draw, highlight or "", True, size, 2 * half, "en")
        draw.text((cx, cy), highlight or "", font=label, fill=(255, 255, 255), anchor="mm")
    for item in places:
        if item.id == place:
            _draw_place(draw, view, style, item, True, language)


def _draw_place(draw: ImageDraw.ImageDraw, view: _View, style: _Style, item: PlanPlace,
                marked: bool, language: str) -> None:
    """A place's sign in a disc at its point, its name beside it on a white label: after it
    in the reading direction, unless the picture ends there."""
    sign, colour = PLACE_SIGNS.get(item.kind, ("●", INK))
    cx, cy = view.at(item.x, item.y)
    radius = style.marker + (6 if marked else 0)
    if marked:
        draw.ellipse((cx - radius - 5, cy - radius - 5, cx + radius + 5, cy + radius + 5),
                     fill=HIGHLIGHT_RING)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                 fill=HIGHLIGHT if marked else colour, outline=(255, 255, 255), width=2)
    glyph = _fit(draw, sign, True, int(radius * (1.0 if len(sign) > 1 else 1.25)),
                 radius * 1.7, "en")
    draw.text((cx, cy), sign, font=glyph, fill=(255, 255, 255), anchor="mm")
    font = _font(True, style.place + (2 if marked else 0))
    width = draw.textlength(item.name, font=font, language=language)
    after, before = cx + radius + 6, cx - radius - 6 - width - 8
    fits_after, fits_before = after + width + 8 <= draw.im.size[0], before >= 0
    if language == "ar":
        x0 = before if fits_before or not fits_after else after
    else:
        x0 = after if fits_after or not fits_before else before
    ascent, descent = font.getmetrics()
    box = (x0, cy - (ascent + descent) / 2 - 3, x0 + width + 8, cy + (ascent + descent) / 2 + 3)
    draw.rounded_rectangle(box, radius=6, fill=LABEL_FILL,
                           outline=HIGHLIGHT if marked else colour, width=2 if marked else 1)
    draw.text((x0 + 4 + width / 2, cy), item.name, font=font,
              fill=HIGHLIGHT if marked else INK, anchor="mm", language=language)


def _draw_overview(image: Image.Image, stands: Sequence[PlanStand],
                   places: Sequence[PlanPlace], side: float, bounds: _Bounds,
                   window: _Bounds, focus: tuple[float, float], view: _View) -> None:
    """The whole plan, small, in the corner of the picture farthest from what is marked, the
    part shown framed in red."""
    scale = INSET_WIDTH / max(bounds.width, bounds.height)
    width, height = bounds.width * scale + 12, bounds.height * scale + 12
    fx, fy = view.at(*focus)
    top_band = ZOOM.title_band + 10
    corners = [(10.0, float(top_band)), (image.width - width - 10, float(top_band)),
               (10.0, image.height - height - 10),
               (image.width - width - 10, image.height - height - 10)]
    x0, y0 = max(corners, key=lambda corner: math.hypot(corner[0] + width / 2 - fx,
                                                         corner[1] + height / 2 - fy))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((x0 - 2, y0 - 2, x0 + width + 2, y0 + height + 2), radius=8,
                           fill=(255, 255, 255), outline=INK, width=2)
    inset = _View(bounds.left, bounds.top, scale, x0 + 6, y0 + 6)
    zones: dict[str, list[PlanStand]] = {}
    for stand in stands:
        zones.setdefault(stand.zone, []).append(stand)
    half = max(1.0, side * scale / 2)
    for index, members in enumerate(zones.values()):
        a = inset.at(min(s.x for s in members), min(s.y for s in members))
        b = inset.at(max(s.x for s in members), max(s.y for s in members))
        draw.rectangle((a[0] - half, a[1] - half, b[0] + half, b[1] + half),
                       fill=ZONE_COLOURS[index % len(ZONE_COLOURS)], outline=STAND_LINE)
    for item in places:
        px, py = inset.at(item.x, item.y)
        colour = PLACE_SIGNS.get(item.kind, ("", INK))[1]
        draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
    a = inset.at(max(window.left, bounds.left), max(window.top, bounds.top))
    b = inset.at(min(window.right, bounds.right), min(window.bottom, bounds.bottom))
    draw.rectangle((a[0], a[1], b[0], b[1]), outline=HIGHLIGHT, width=3)
    cx, cy = inset.at(*focus)
    draw.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=HIGHLIGHT, outline=(255, 255, 255))
