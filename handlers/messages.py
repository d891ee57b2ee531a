"""The channel-neutral conversation model: what comes in (`Inbound`) and what goes out (`Reply`).

Handlers build replies from catalog messages (`_`, `_n`), catalogue texts (`Local`) and dates
(`When`); the engine renders them in the person's language; channels draw the result.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from handlers.pictures import Picture


class Kind(enum.StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    START = "start"
    LOCATION = "location"
    MEDIA = "media"
    UNSUPPORTED = "unsupported"
    GROUP = "group"  # written in a group chat: the bot only talks in private


# What no text we keep may hold: C0 and C1 controls but tab and newline (PostgreSQL refuses NUL,
# terminals and spreadsheets act on the others), and lone UTF-16 surrogates, which JSON's
# "\ud800" escape lets in and no UTF-8 encoder accepts.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` safe to store and show: line breaks as \\n, controls removed, lone surrogates
    replaced by U+FFFD."""
    if text.isascii() and text.isprintable():
        return text
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _SURROGATES.sub("\ufffd", text)


# Every field of an Inbound that a person or a platform payload can fill with text.
_TEXT_FIELDS = ("channel", "user_id", "text", "choice", "payload", "message_id", "language_hint",
                "user_alt_id", "client")


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person, whatever the platform; every text in it is cleaned here,
    once, whichever channel made it."""

    channel: str
    user_id: str
    kind: Kind
    text: str = ""
    choice: str | None = None
    payload: str | None = None
    message_id: str | None = None
    language_hint: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    user_alt_id: str | None = None  # WhatsApp's business-scoped user id, when sent
    # A keyed hash of the sender's network address (web chat only), for limits per address.
    client: str | None = None

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, clean_text(value))


@dataclass(frozen=True, slots=True)
class Msg:
    """A catalog message id with its parameters, translated when rendered."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None


def _(msgid: str, **params: Any) -> Msg:
    """Mark a user-facing sentence for translation (extracted by Babel)."""
    return Msg(msgid, params)


def _n(singular: str, plural: str, n: int, **params: Any) -> Msg:
    """A sentence whose form depends on a count (Arabic has six forms)."""
    return Msg(singular, {"n": n, **params}, plural, n)


@dataclass(frozen=True, slots=True)
class Local:
    """A text from the catalogue, given in several languages."""

    values: Mapping[str, str]

    def get(self, language: str) -> str:
        """The text in `language`, else the closest we have."""
        for candidate in (language, "fr", "ar", "en"):
            text = self.values.get(candidate)
            if text:
                return text
        return ""


@dataclass(frozen=True, slots=True)
class When:
    """A moment shown in the fair's time zone, formatted for the reader's locale."""

    value: dt.datetime
    # "day_month" and "day_number" begin a range that ends with a "date" (bot/i18n.py);
    # "short": the weekday abbreviated, its date and the time ("dim. 13, 11:00"), for labels.
    style: Literal["day", "time", "day_time", "date", "day_month", "day_number", "short"] = (
        "day_time")


def range_start_style(first: dt.date, last: dt.date) -> Literal["date", "day_month", "day_number"]:
    """How the first date of a range is written, without what the last one says again: "du 13
    au 16 décembre 2026", "du 30 novembre au 2 décembre 2026"."""
    if (first.year, first.month) == (last.year, last.month):
        return "day_number"
    return "day_month" if first.year == last.year else "date"


def date_range(first: dt.datetime, last: dt.datetime) -> dict[str, When]:
    """The `first` and `last` parameters of a "from {first} to {last}" sentence."""
    return {"first": When(first, range_start_style(first.date(), last.date())),
            "last": When(last, "date")}


@dataclass(frozen=True, slots=True)
class Isolated:
    """A Latin or numeric token (stand code, phone number) kept whole inside Arabic text."""

    text: str


@dataclass(frozen=True, slots=True)
class AppLink:
    """A link that opens a chat with the bot on a messaging app with a transfer code
    (`link_<code>` on Telegram, `LINK <code>` on WhatsApp); bot/ makes the address, which
    names the bot or its number."""

    app: Literal["telegram", "whatsapp"]
    code: str


Content = Msg | Local | When | str
"""One line of a reply."""


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: a short id the server validates when it comes back, and a label."""

    id: str
    label: Content


@dataclass(frozen=True, slots=True)
class Media:
    """A picture, a file or a place sent along a reply: its bytes, or the `picture` that
    bot/ draws into them when it renders the reply."""

    kind: Literal["image", "document", "location"]
    data: bytes = b""
    filename: str = ""
    mime: str = ""
    caption: Content | None = None
    latitude: float | None = None
    longitude: float | None = None
    picture: Picture | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to send back: lines of text, buttons and media."""

    lines: tuple[Content, ...]
    choices: tuple[Choice, ...] = ()
    media: tuple[Media, ...] = ()


def reply(*lines: Content, choices: tuple[Choice, ...] | list[Choice] = (),
          media: tuple[Media, ...] | list[Media] = ()) -> Reply:
    """Build a reply from lines, choices and media."""
    return Reply(tuple(lines), tuple(choices), tuple(media))


@dataclass(frozen=True, slots=True)
class RenderedChoice:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class RenderedMedia:
    kind: Literal["image", "document", "location"]
    data: bytes = b""
    filename: str = ""
    mime: str = ""
    caption: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A reply in one language, ready for a channel to draw."""

    text: str
    language: str
    choices: tuple[RenderedChoice, ...] = ()
    media: tuple[RenderedMedia, ...] = ()

    @property
    def direction(self) -> Literal["rtl", "ltr"]:
        return "rtl" if self.language == "ar" else "ltr"
