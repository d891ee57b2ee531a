"""The floor plan as a picture: every stand at its place on the plan, the zones and the entrance
labelled, and one stand highlighted.

Drawn with Pillow from the catalogue's stand coordinates (x to the right, y downwards, in any
unit). Text goes through libraqm (bundled with Pillow's wheels, with the system's FriBiDi), so
Arabic zone names are joined and read right to left. The fonts are shipped in `bot/data/fonts`
(DejaVu Sans: Latin and Arabic in one face), never taken from the system.
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

WIDTH = 1000  # pixels; the height follows the plan's proportions
MARGIN = 24
TITLE_BAND = 56
ENTRANCE_BAND = 64
ZONE_LABEL = 22  # room above each zone for its name

BACKGROUND = (250, 247, 240)
INK = (40, 40, 40)
MUTED = (120, 114, 104)
STAND_FILL = (255, 255, 255)
STAND_LINE = (150, 142, 130)
HIGHLIGHT = (200, 40, 40)
HIGHLIGHT_RING = (255, 200, 60)
ZONE_COLOURS = (
    (222, 235, 247), (229, 245, 224), (254, 230, 206), (239, 229, 247),
    (255, 247, 188), (224, 243, 243), (252, 224, 230), (235, 235, 235),
)


@dataclass(frozen=True, slots=True)
class PlanStand:
    """A stand on the plan: its number, its zone's name in the reader's language, its place."""

    number: str
    zone: str
    x: int
    y: int


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


def draw_floor_map(stands: Sequence[PlanStand], *, highlight: str | None, title: str,
                   entrance: str, language: str) -> bytes:
    """A PNG of the floor plan with `highlight` (a stand number) marked, `title` at the top and
    the entrance, labelled `entrance`, at the bottom centre of the plan."""
    if not stands:
        raise ValueError("no stand to draw")
    side = stand_size(stands)
    left = min(stand.x for stand in stands) - side / 2
    right = max(stand.x for stand in stands) + side / 2
    top = min(stand.y for stand in stands) - side / 2
    bottom = max(stand.y for stand in stands) + side / 2
    scale = (WIDTH - 2 * MARGIN) / max(right - left, 1.0)
    plan_height = (bottom - top) * scale
    # Keep very tall plans readable in a chat (and within the platforms' picture limits).
    if plan_height > 1.6 * WIDTH:
        scale *= 1.6 * WIDTH / plan_height
        plan_height = (bottom - top) * scale
    height = int(TITLE_BAND + ZONE_LABEL + plan_height + ENTRANCE_BAND + MARGIN)
    origin_x = (WIDTH - (right - left) * scale) / 2
    origin_y = TITLE_BAND + ZONE_LABEL

    def at(x: float, y: float) -> tuple[float, float]:
        return origin_x + (x - left) * scale, origin_y + (y - top) * scale

    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    half = side * scale / 2

    # Zones: a tinted box around their stands, the name above it.
    zones: dict[str, list[PlanStand]] = {}
    for stand in stands:
        zones.setdefault(stand.zone, []).append(stand)
    for index, (name, members) in enumerate(zones.items()):
        x0, y0 = at(min(s.x for s in members), min(s.y for s in members))
        x1, y1 = at(max(s.x for s in members), max(s.y for s in members))
        box = (x0 - half - 6, y0 - half - 6, x1 + half + 6, y1 + half + 6)
        draw.rounded_rectangle(box, radius=8, fill=ZONE_COLOURS[index % len(ZONE_COLOURS)],
                               outline=STAND_LINE)
        if name:
            font = _fit(draw, name, True, 16, box[2] - box[0] - 8, language)
            draw.text(((box[0] + box[2]) / 2, box[1] - 4), name, font=font, fill=INK,
                      anchor="md", language=language)

    # Stands, their numbers when there is room for them.
    number_font = _font(False, max(9, min(14, int(half * 0.75))))
    show_numbers = half >= 11
    chosen = None
    for stand in stands:
        cx, cy = at(stand.x, stand.y)
        if stand.number == highlight:
            chosen = (cx, cy)
            continue
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=STAND_FILL,
                       outline=STAND_LINE)
        if show_numbers:
            draw.text((cx, cy), stand.number, font=number_font, fill=MUTED, anchor="mm")

    # The entrance: a marker at the bottom centre of the plan, its name under it.
    ex, ey = at((left + right) / 2, bottom)
    ey += 14
    draw.polygon(((ex, ey), (ex - 14, ey + 18), (ex + 14, ey + 18)), fill=INK)
    draw.text((ex, ey + 22), entrance, font=_font(True, 18), fill=INK, anchor="ma",
              language=language)

    # The stand asked for, drawn last so nothing covers it.
    if chosen is not None:
        cx, cy = chosen
        halo = half + 5
        draw.rectangle((cx - halo, cy - halo, cx + halo, cy + halo), outline=HIGHLIGHT_RING,
                       width=4)
        draw.rectangle((cx - half - 1, cy - half - 1, cx + half + 1, cy + half + 1),
                       fill=HIGHLIGHT, outline=INK, width=2)
        label = _fit(draw, highlight or "", True, 18, 2 * half, "en")
        draw.text((cx, cy), highlight or "", font=label, fill=(255, 255, 255), anchor="mm")

    # The title band.
    title_font = _fit(draw, title, True, 26, WIDTH - 2 * MARGIN, language)
    draw.text((WIDTH / 2, TITLE_BAND / 2 + 4), title, font=title_font, fill=INK, anchor="mm",
              language=language)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
