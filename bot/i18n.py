"""Languages: gettext catalogs (Babel), first-message detection, dates and bidi isolation."""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from handlers.messages import (
    Content,
    Isolated,
    Local,
    Msg,
    Rendered,
    RenderedChoice,
    RenderedMedia,
    Reply,
    When,
)

LANGUAGES = ("ar", "fr")
"""Languages a conversation is held in; English only greets."""
CATALOG_LANGUAGES = ("ar", "fr", "en")
DOMAIN = "messages"
BABEL_LOCALES = {"ar": "ar_MA", "fr": "fr_MA", "en": "en"}

FSI = "\u2068"
PDI = "\u2069"

_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9\u00C0-\u024F]")
_WORD = re.compile(r"[a-z0-9\u00e0-\u00ff']+")
_STAND_LIKE = re.compile(r"[a-z]{1,2}\d+")

# Darija written in Latin letters (Arabizi): words and the digit-letters 3, 7, 9 inside words.
_DARIJA = {
    "salam", "slm", "salamo", "salamu", "labas", "lbas", "wach", "wash", "bghit", "bghina",
    "kifach", "kifash", "fin", "fen", "chno", "achno", "ashno", "chnou", "smhli", "smhlia",
    "shukran", "chokran", "choukran", "chukran", "mrhba", "marhba", "wa", "3afak", "afak",
    "safi", "bzaf", "bezaf", "daba", "wakha", "iyeh", "ewa", "hadchi", "had", "dyal", "dial",
    "l3arbia", "3arbia", "3arabiya", "mzyan", "mezyan", "kayn", "kayna", "khoya", "khti",
}
_ENGLISH = {
    "hello", "hi", "hey", "the", "please", "thanks", "thank", "you", "what", "where", "when",
    "english", "how", "is", "are", "my", "good", "morning", "evening", "want", "find", "need",
}
_FRENCH = {
    "bonjour", "bonsoir", "salut", "merci", "je", "le", "la", "les", "des", "du", "ou", "où",
    "est", "atelier", "ateliers", "stand", "stands", "aide", "français", "francais", "voudrais",
    "veux", "cherche", "coopérative", "cooperative", "svp", "oui", "non", "quand", "comment",
}
_ARABIZI_DIGIT = re.compile(r"[a-z][379]|[379][a-z]")


def _arabizi(word: str) -> bool:
    """`n3ref`, `3la`, `sa7a`: a digit-letter inside a word, but not a stand code like `b7`."""
    return (sum(char.isalpha() for char in word) >= 2 and _ARABIZI_DIGIT.search(word) is not None
            and _STAND_LIKE.fullmatch(word) is None)


def detect_language(text: str, default: str = "fr") -> str:
    """First-message guess: Arabic script or Darija in Latin -> ar; English -> en; French
    words -> fr; nothing telling (a stand number, a name) -> `default` (the platform's hint)."""
    # Anyone who types Arabic script reads it; Latin letters beside it are codes and names.
    if _ARABIC.search(text):
        return "ar"
    lowered = text.lower()
    words = _WORD.findall(lowered)
    # Whole words only: a code such as `coop_WA5KFIN` holds "wa" and "fin" but says nothing.
    darija = sum(word in _DARIJA or _arabizi(word) for word in words)
    english = sum(word in _ENGLISH for word in words)
    french = sum(word in _FRENCH for word in words)
    if darija and darija >= english and darija >= french:
        return "ar"
    if english > french:
        return "en"
    if french:
        return "fr"
    return default


def isolate(text: str) -> str:
    """Wrap a Latin or numeric token in Unicode isolates so it stays whole in Arabic text."""
    if not text or _ARABIC.search(text) or not _LATIN_OR_DIGIT.search(text):
        return text
    return f"{FSI}{text}{PDI}"


def _locale_dir() -> Path:
    return Path(str(resources.files("locales")))


def load_translations(directory: Path | None = None) -> dict[str, Translations]:
    """Load every catalog: compiled .mo files, or the .po sources when not compiled (yet)."""
    directory = directory or _locale_dir()
    loaded: dict[str, Translations] = {}
    for language in CATALOG_LANGUAGES:
        folder = directory / language / "LC_MESSAGES"
        mo_path, po_path = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
        if mo_path.exists() and (
            not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime
        ):
            with mo_path.open("rb") as handle:
                loaded[language] = Translations(handle, domain=DOMAIN)
        elif po_path.exists():
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            compiled = io.BytesIO()
            write_mo(compiled, catalog)
            compiled.seek(0)
            loaded[language] = Translations(compiled, domain=DOMAIN)
        else:
            raise FileNotFoundError(f"no catalog for {language} in {folder}")
    return loaded


class Renderer:
    """Turns replies into text in one language, in the fair's time zone."""

    def __init__(self, translations: dict[str, Translations], zone: ZoneInfo) -> None:
        self.translations = translations
        self.zone = zone
        # Babel's formatting is slow next to everything else here; the same moments recur.
        self.when = functools.lru_cache(maxsize=4096)(self._format_when)  # type: ignore[method-assign]

    def text(self, content: Content, language: str) -> str:
        """One line in `language`."""
        if isinstance(content, str):
            return content
        if isinstance(content, Local):
            return content.get(language)
        if isinstance(content, When):
            return self.when(content, language)
        return self.message(content, language)

    def message(self, msg: Msg, language: str) -> str:
        translations = self.translations.get(language) or self.translations["fr"]
        if msg.plural is not None and msg.n is not None:
            template = translations.ngettext(msg.msgid, msg.plural, msg.n)
        else:
            template = translations.gettext(msg.msgid)
        if not msg.params:
            return template
        values = {name: self.param(value, language) for name, value in msg.params.items()}
        return template.format(**values)

    def param(self, value: Any, language: str) -> str:
        if isinstance(value, Msg):
            return self.message(value, language)
        if isinstance(value, Local):
            text = value.get(language)
        elif isinstance(value, When):
            text = self.when(value, language)
        elif isinstance(value, Isolated):
            text = value.text
        elif isinstance(value, float):  # an average: one decimal, the reader's separator
            text = format_decimal(value, "0.0", locale=BABEL_LOCALES.get(language, "fr_MA"))
        else:
            text = str(value)
        return isolate(text) if language == "ar" else text

    def when(self, value: When, language: str) -> str:
        """A moment in the reader's locale and the fair's time zone."""
        return self._format_when(value, language)

    def _format_when(self, value: When, language: str) -> str:
        locale = BABEL_LOCALES.get(language, "fr_MA")
        moment = value.value.astimezone(self.zone)
        if value.style == "time":
            return format_time(moment, "HH:mm", locale=locale)
        if value.style == "date":
            return format_date(moment, "d MMMM y", locale=locale)
        day = format_date(moment, "EEEE d MMMM", locale=locale)
        if value.style == "day":
            return day
        time = format_time(moment, "HH:mm", locale=locale)
        if language == "ar":
            time = isolate(time)
        return f"{day}، {time}" if language == "ar" else f"{day}, {time}"

    def render(self, reply: Reply, language: str) -> Rendered:
        """A whole reply in one language."""
        text = "\n".join(self.text(line, language) for line in reply.lines)
        return Rendered(
            text=text,
            language=language,
            choices=tuple(RenderedChoice(choice.id, self.text(choice.label, language))
                          for choice in reply.choices),
            media=tuple(
                RenderedMedia(
                    kind=media.kind, data=media.data, filename=media.filename, mime=media.mime,
                    caption=self.text(media.caption, language) if media.caption else "",
                    latitude=media.latitude, longitude=media.longitude,
                )
                for media in reply.media
            ),
        )

    def render_all(self, replies: Iterable[Reply], language: str) -> list[Rendered]:
        return [self.render(reply, language) for reply in replies]


def day_label(value: dt.date, language: str) -> str:
    """`dimanche 13 décembre` / `الأحد 13 دجنبر`."""
    return format_date(value, "EEEE d MMMM", locale=BABEL_LOCALES.get(language, "fr_MA"))
