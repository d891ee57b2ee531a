"""Languages: gettext catalogs (Babel), dates, bidi isolation, and the rendering of replies."""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from bot import links
from handlers.language import ARABIC
from handlers.messages import (
    AppLink,
    Content,
    Isolated,
    Local,
    Msg,
    Rendered,
    RenderedChoice,
    RenderedMedia,
    Reply,
    When,
    range_start_style,
)

if TYPE_CHECKING:
    from handlers.pictures import Picture

LANGUAGES = ("ar", "fr", "en")
"""Languages a conversation is held in (and a contact's language may be)."""
CATALOG_LANGUAGES = ("ar", "fr", "en")
DOMAIN = "messages"
BABEL_LOCALES = {"ar": "ar_MA", "fr": "fr_MA", "en": "en"}

FSI = "\u2068"
PDI = "\u2069"

_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9\u00C0-\u024F]")


def isolate(text: str) -> str:
    """Wrap a Latin or numeric token in Unicode isolates so it stays whole in Arabic text."""
    if not text or ARABIC.search(text) or not _LATIN_OR_DIGIT.search(text):
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

    def __init__(self, translations: dict[str, Translations], zone: ZoneInfo,
                 apps: dict[str, str] | None = None, public_url: str | None = None) -> None:
        self.translations = translations
        self.zone = zone
        # The service's public address (TADAMON_PUBLIC_URL), for the addresses pictures carry.
        self.public_url = public_url
        # What app links name, by channel: the Telegram bot's username, the WhatsApp number;
        # filled once the channels have asked their platforms (App.start_channels).
        self.apps: dict[str, str] = {} if apps is None else apps
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
        elif isinstance(value, AppLink):
            text = self.app_link(value)
        elif isinstance(value, float):  # an average: one decimal, the reader's separator
            text = format_decimal(value, "0.0", locale=BABEL_LOCALES.get(language, "fr_MA"))
        else:
            text = str(value)
        return isolate(text) if language == "ar" else text

    def app_link(self, link: AppLink) -> str:
        """The address of a transfer link on its app; empty when the app's name is unknown."""
        target = self.apps.get(link.app)
        if not target:
            return ""
        if link.app == "telegram":
            return links.telegram(target, links.transfer(link.code))
        return links.whatsapp(target, links.transfer(link.code))

    def when(self, value: When, language: str) -> str:
        """A moment in the reader's locale and the fair's time zone."""
        return self._format_when(value, language)

    def _format_when(self, value: When, language: str) -> str:
        locale = BABEL_LOCALES.get(language, "fr_MA")
        moment = value.value.astimezone(self.zone)
        if value.style == "time":
            return format_time(moment, "HH:mm", locale=locale)
        if value.style in DATE_PATTERNS:
            return format_day(moment.date(), DATE_PATTERNS[value.style], language)
        day = format_day(moment.date(), "EEE d" if value.style == "short" else "EEEE d MMMM",
                         language)
        if value.style == "day":
            return day
        time = format_time(moment, "HH:mm", locale=locale)
        if language == "ar":
            time = isolate(time)
        return f"{day}، {time}" if language == "ar" else f"{day}, {time}"

    def render(self, reply: Reply, language: str) -> Rendered:
        """A whole reply in one language, its pictures drawn now."""
        text = "\n".join(self.text(line, language) for line in reply.lines)
        return Rendered(
            text=text,
            language=language,
            choices=tuple(RenderedChoice(choice.id, self.text(choice.label, language))
                          for choice in reply.choices),
            media=tuple(
                RenderedMedia(
                    kind=media.kind, filename=media.filename, mime=media.mime,
                    data=media.data if media.picture is None
                    else self._drawn(media.picture, language),
                    caption=self.text(media.caption, language) if media.caption else "",
                    latitude=media.latitude, longitude=media.longitude,
                )
                for media in reply.media
            ),
        )

    def _drawn(self, picture: Picture, language: str) -> bytes:
        """A picture drawn for `language`."""
        # Imported by the first reply with a picture, not by every reply: bot.pictures brings
        # Pillow, icalendar and bot.report (which imports this module), some 8 MB of memory.
        from bot import pictures

        return pictures.drawn(picture, language, self)

    def render_all(self, replies: Iterable[Reply], language: str) -> list[Rendered]:
        return [self.render(reply, language) for reply in replies]

    async def draw_pictures(self, replies: Iterable[Reply], language: str) -> list[Reply]:
        """The replies with the pictures they describe drawn into bytes for `language`, in a
        thread when that takes long (a map, a chart): off the event loop."""
        drawn: list[Reply] = []
        for reply in replies:
            if all(media.picture is None for media in reply.media):
                drawn.append(reply)
                continue
            from bot import pictures  # see _drawn
            drawn.append(replace(reply, media=tuple([
                media if media.picture is None else replace(
                    media, picture=None,
                    data=await pictures.drawn_async(media.picture, language, self))
                for media in reply.media])))
        return drawn


def day_label(value: dt.date, language: str) -> str:
    """`dimanche 13 décembre` / `الأحد 13 دجنبر`."""
    return format_day(value, "EEEE d MMMM", language)


DATE_PATTERNS = {"date": "d MMMM y", "day_month": "d MMMM", "day_number": "d"}
"""How the date styles of `When` are written; "day_month" and "day_number" begin a range
whose end gives the year (and the month)."""

_DAY_FIELD = re.compile(r"(?<![A-Za-z'])d(?![A-Za-z])")


def format_day(value: dt.date, pattern: str, language: str) -> str:
    """A date by a Babel pattern, French writing the first of a month "1er"."""
    if language == "fr" and value.day == 1:
        pattern = _DAY_FIELD.sub("'1er'", pattern)
    return format_date(value, pattern, locale=BABEL_LOCALES.get(language, "fr_MA"))


def date_range(first: dt.date, last: dt.date, language: str) -> str:
    """Two dates as a range, the month and the year said once when they share them:
    "du 13 au 16 décembre 2026", "من 13 إلى 16 دجنبر 2026", "from 13 to 16 December 2026"."""
    words = {"fr": ("du {first} au {last}", "le {last}"), "ar": ("من {first} إلى {last}", "{last}"),
             "en": ("from {first} to {last}", "{last}")}
    both, single = words.get(language, words["fr"])
    end = format_day(last, DATE_PATTERNS["date"], language)
    if first == last:
        return single.format(last=end)
    start = format_day(first, DATE_PATTERNS[range_start_style(first, last)], language)
    return both.format(first=start, last=end)

