"""The fonts shipped with the package (DejaVu Sans: Latin and Arabic in one face), used by the
floor maps and the posters; never a system font."""

from __future__ import annotations

from pathlib import Path

FONTS = Path(__file__).parent / "data" / "fonts"
REGULAR = FONTS / "DejaVuSans.ttf"
BOLD = FONTS / "DejaVuSans-Bold.ttf"
