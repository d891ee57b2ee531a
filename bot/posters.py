"""Printable stand posters: one A4 page per stand, with QR codes to its chat deep links.

Pure layout: the caller reads the catalogue and renders the sentences; this module only turns
`PosterPage`s into a PDF (vector text shaped by HarfBuzz, so Arabic is joined and right to
left; QR codes drawn as filled rectangles, sharp at any printing size).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.drawing import PaintedPath
from fpdf.enums import Align, MethodReturnValue, PathPaintRule, XPos, YPos

from bot.fonts import BOLD, REGULAR
from handlers.messages import _

SCAN_INSTRUCTION = _("Scan to open this stand's card")
"""The line under each QR code, rendered in French and in Arabic by the caller."""

WEB_CHAT = {"fr": "Chat web", "ar": "المحادثة على الموقع"}
"""The web chat's name on a poster, where no catalog renders it."""

FONT = "DejaVu"
LANGUAGES = ("fr", "ar")

# A4 portrait, in millimetres.
PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 15.0
TEXT_W = PAGE_W - 2 * MARGIN
PT = 25.4 / 72  # one typographic point in millimetres

QR_SIDE = 62.0  # a whole code with its quiet zone: about 5 cm of modules
QUIET_ZONE = 4  # modules, as ISO/IEC 18004 asks
COLUMN_W = 85.0  # one code and its caption
# Three codes share the width: each a little smaller, still about 4.5 cm of modules.
NARROW_QR_SIDE = 56.0
NARROW_COLUMN_W = 60.0
CAPTION_H = 24.0  # channel name and two instruction lines under a code
TOP, BOTTOM = 12.0, PAGE_H - 12.0

NUMBER_SIZES = (170, 120, 90)  # points; smaller when many names need the room
ZONE_SIZE, ZONE_LINE = 16, 7.5
NAME_SIZES = (34, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 11, 10, 9, 8)
READABLE_NAME = 16  # the smallest name size worth a smaller stand number
GAP = 6.0  # between two exhibitors
GREY = (90, 90, 90)
BLACK = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class PosterPage:
    """What one stand's poster shows; every text is `{fr: ..., ar: ...}`."""

    stand: str
    zone: Mapping[str, str]
    exhibitors: tuple[Mapping[str, str], ...]  # their names
    fair: Mapping[str, str]  # its name
    telegram: str | None  # the stand's deep link; None: no code for this channel
    whatsapp: str | None
    instruction: Mapping[str, str]  # the line under each code, already rendered
    web: str | None = None  # the web chat's link, for a phone without either app
    web_name: Mapping[str, str] = field(default_factory=lambda: dict(WEB_CHAT))
    """The name under the web chat's code, in both languages (Telegram and WhatsApp are
    brand names, the same in both)."""


def write_posters(pages: Sequence[PosterPage], out: Path,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Write one page per item of `pages` to `out` (a PDF); returns the number of pages.

    The file is written next to `out` under a temporary name and renamed at the end, so a
    failure never leaves a half-written poster file. `progress(done, total)` follows the pages.
    """
    if not pages:
        raise ValueError("no poster to write")
    pdf = _new_document(pages[0])
    for done, page in enumerate(pages, start=1):
        _draw_page(pdf, page)
        if progress is not None:
            progress(done, len(pages))
    data = pdf.output()
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return len(pages)


def _new_document(first: PosterPage) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.c_margin = 0
    pdf.add_font(FONT, "", str(REGULAR))
    pdf.add_font(FONT, "B", str(BOLD))
    # HarfBuzz shaping plus fpdf2's bidi: Arabic letters joined, runs ordered right to left.
    pdf.set_text_shaping(True)
    pdf.set_title(" / ".join(filter(None, (first.fair.get("fr"), first.fair.get("ar")))))
    pdf.set_creator("Tadamon")
    return pdf


def _draw_page(pdf: FPDF, page: PosterPage) -> None:
    pdf.add_page()
    y = TOP
    pdf.set_text_color(*GREY)
    pdf.set_font(FONT, "", 10)
    for text in _both(page.fair):
        y = _paragraph(pdf, text, y, line_h=4.8)
    y += 2.5
    pdf.set_draw_color(*GREY)
    pdf.set_line_width(0.3)
    pdf.line(MARGIN, y, PAGE_W - MARGIN, y)

    zone = _both(page.zone)
    names = [_both(exhibitor) for exhibitor in page.exhibitors]
    names_bottom = BOTTOM - CAPTION_H - QR_SIDE - 6
    # The number as large as it fits across, smaller when many names need the room.
    for largest in NUMBER_SIZES:
        number_size = _one_line_size(pdf, page.stand, largest)
        number_h = number_size * PT * 1.05
        pdf.set_font(FONT, "", ZONE_SIZE)
        zone_h = sum(_paragraph_height(pdf, text, ZONE_LINE) for text in zone)
        names_top = y + 4 + number_h + 4 + zone_h + 8
        name_size, names_h = _names_size(pdf, names, names_bottom - names_top)
        if name_size >= READABLE_NAME:
            break

    pdf.set_text_color(*BLACK)
    pdf.set_font(FONT, "B", number_size)
    pdf.set_xy(MARGIN, y + 4)
    pdf.cell(TEXT_W, number_h, page.stand, align=Align.C)
    # Below the digits' descent: text extraction then keeps the number apart from the zone.
    y += 4 + number_h + 4

    pdf.set_text_color(*GREY)
    pdf.set_font(FONT, "", ZONE_SIZE)
    for text in zone:
        y = _paragraph(pdf, text, y, ZONE_LINE)

    pdf.set_text_color(*BLACK)
    pdf.set_font(FONT, "B", name_size)
    y = names_top + max(0.0, (names_bottom - names_top - names_h) / 2)
    for index, block in enumerate(names):
        y += GAP if index else 0.0
        for text in block:
            y = _paragraph(pdf, text, y, _name_line(name_size))
    _draw_codes(pdf, page, BOTTOM - CAPTION_H)


def _both(texts: Mapping[str, str]) -> list[str]:
    """The French then the Arabic text, each once (an untranslated text is the same in both)."""
    found: list[str] = []
    for language in LANGUAGES:
        text = (texts.get(language) or "").strip()
        if text and text not in found:
            found.append(text)
    return found


def _paragraph(pdf: FPDF, text: str, y: float, line_h: float, x: float = MARGIN,
               width: float = TEXT_W) -> float:
    """Centred text from `y`, wrapped when longer than `width`; returns the y below it."""
    pdf.set_xy(x, y)
    if pdf.get_string_width(text) <= width:  # one line: a cell is much cheaper to lay out
        pdf.cell(width, line_h, text, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    else:
        pdf.multi_cell(width, line_h, text, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def _paragraph_height(pdf: FPDF, text: str, line_h: float, width: float = TEXT_W) -> float:
    """What `_paragraph` would take, in the current font."""
    if pdf.get_string_width(text) <= width:
        return line_h
    height = pdf.multi_cell(width, line_h, text, align=Align.C, dry_run=True,
                            output=MethodReturnValue.HEIGHT)
    return float(height)  # type: ignore[arg-type]


def _one_line_size(pdf: FPDF, text: str, start: int) -> int:
    """The largest bold size, from `start` down, at which `text` fits across the page."""
    size = start
    while size > 40:
        pdf.set_font(FONT, "B", size)
        if pdf.get_string_width(text) <= TEXT_W:
            break
        size -= 10
    return size


def _name_line(size: int) -> float:
    return size * PT * 1.3


def _names_size(pdf: FPDF, names: Sequence[Sequence[str]], room: float) -> tuple[int, float]:
    """The largest bold size at which every name fits in `room` mm, and their height then."""
    texts = [text for block in names for text in block]
    room -= GAP * (len(names) - 1)
    for size in NAME_SIZES:
        pdf.set_font(FONT, "B", size)
        # Each text takes at least its width over the line's, rounded up: sizes that cannot
        # fit are skipped before any line is laid out.
        least = sum(math.ceil(pdf.get_string_width(text) / TEXT_W) for text in texts)
        if least * _name_line(size) > room:
            continue
        height = sum(_paragraph_height(pdf, text, _name_line(size)) for text in texts)
        if height <= room:
            break
    else:  # too many names even at the smallest size: they run down towards the codes
        height = sum(_paragraph_height(pdf, text, _name_line(size)) for text in texts)
    return size, height + GAP * (len(names) - 1)


def _draw_codes(pdf: FPDF, page: PosterPage, bottom: float) -> None:
    """The configured channels' codes side by side, their captions from `bottom` (one code
    alone is centred)."""
    codes = [(names, link) for names, link in ((["Telegram"], page.telegram),
                                               (["WhatsApp"], page.whatsapp),
                                               (_both(page.web_name), page.web)) if link]
    side, column = (QR_SIDE, COLUMN_W) if len(codes) < 3 else (NARROW_QR_SIDE, NARROW_COLUMN_W)
    step = 95.0 if len(codes) < 3 else NARROW_COLUMN_W
    centres = [PAGE_W / 2 + (index - (len(codes) - 1) / 2) * step for index in range(len(codes))]
    top = bottom - side
    for (names, link), centre in zip(codes, centres, strict=True):
        _draw_qr(pdf, link, centre - side / 2, top, side)
        left = centre - column / 2
        y = top + side
        pdf.set_text_color(*BLACK)
        pdf.set_font(FONT, "B", 16)
        for name in names:
            y = _paragraph(pdf, name, y, line_h=7.5, x=left, width=column)
        pdf.set_text_color(*GREY)
        pdf.set_font(FONT, "", 10)
        for text in _both(page.instruction):
            y = _paragraph(pdf, text, y, line_h=4.8, x=left, width=column)


def _draw_qr(pdf: FPDF, data: str, x: float, y: float, side: float) -> None:
    """A QR code (level M, or higher when the same size allows) of `side` mm, quiet zone
    included, as one filled vector path."""
    code = segno.make_qr(data, error="m")
    modules = code.symbol_size(scale=1, border=QUIET_ZONE)[0]
    unit = side / modules
    path = PaintedPath()
    path.style.fill_color = "#000000"
    path.style.stroke_color = None
    path.style.paint_rule = PathPaintRule.FILL_NONZERO
    for row_index, row in enumerate(code.matrix):
        top = y + (row_index + QUIET_ZONE) * unit
        column = 0
        while column < len(row):
            if not row[column]:
                column += 1
                continue
            start = column
            while column < len(row) and row[column]:
                column += 1
            # One rectangle per run of dark modules; one path, so no hairline seams appear
            # between touching rectangles when it is rasterised.
            path.rectangle(x + (start + QUIET_ZONE) * unit, top, (column - start) * unit, unit)
    with pdf.drawing_context() as context:
        context.add_item(path, clone=False)  # a copy of thousands of rectangles costs more
