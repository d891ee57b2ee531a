"""The one text fold: how names, words and queries are compared everywhere (the router's word
tables, the stand finder's index and queries, the catalogue's facets)."""

from __future__ import annotations

import re
import unicodedata

# Arabic-Indic and Eastern Arabic-Indic (Persian, Urdu) digits.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
# Letters NFKD leaves alone: alef wasla, alef maksura, ta marbuta, Persian/Urdu yeh, kaf and heh
# (keyboards and copy-paste bring them in), the standalone hamza (its seat is what people type).
_LETTERS = str.maketrans({
    "ٱ": "ا", "ى": "ي", "ة": "ه", "ی": "ي", "ې": "ي", "ک": "ك", "ڪ": "ك", "ھ": "ه", "ہ": "ه",
    "ۀ": "ه", "ء": None, "ـ": None,
})
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# Every combining mark (accents, harakat, shadda, hamza above and below, madda), as one table:
# str.translate is much faster than testing each character when building a large index.
_MARKS: dict[int, None] = {
    code: None for code in range(0x0300, 0x10000) if unicodedata.combining(chr(code))}
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """The form index and query are compared in: no accents, Arabic diacritics or hamza marks,
    one spelling of alef, yeh and teh marbuta, ASCII digits, lower case, words separated by
    single spaces."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKD", text)).translate(_MARKS)
    text = text.translate(_LETTERS).translate(_DIGITS).casefold()
    # Letters and digits stay (digits are letters in Arabizi); anything else separates words.
    return " ".join(_SEPARATORS.sub(" ", text).split())
