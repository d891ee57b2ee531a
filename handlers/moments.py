"""When a broadcast goes out, as organizers type it: "demain 9h", "13/12 9h", "ghda 9",
"غدا 9", "2026-12-13 09:00", "14h30", "aujourd'hui 18h", "maintenant", read in the fair's
time zone relative to now."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from zoneinfo import ZoneInfo

from handlers.understanding.entities import MONTHS as UNDERSTOOD_MONTHS

# A time typed during the minute it names is "now", not the past.
SLACK = dt.timedelta(minutes=1)


class Unread(StrEnum):
    """Why a typed time gives no moment to send at."""

    UNREADABLE = "unreadable"
    PAST = "past"


NOW_WORDS = frozenset({
    "maintenant", "tout de suite", "immediatement", "now", "right now", "daba", "db",
    "dba", "daba daba", "دابا", "الان", "حالا", "فورا", "توا",
})
# Words for a day counted from today, folded (accents, hamza and tanwin gone).
DAY_WORDS = {
    0: ("aujourd hui", "aujourdhui", "ce jour", "today", "lyoum", "lyouma", "lyom", "el yom",
        "l yom", "lioum", "اليوم", "ليوم", "اليوما"),
    1: ("demain", "tomorrow", "ghda", "ghedda", "ghadda", "gheda", "ghada", "ghdda", "ghedwa",
        "غدا", "غد", "غدوة", "غدوا"),
    2: ("apres demain", "apres-demain", "day after tomorrow", "ba3d ghda", "baad ghda",
        "bad ghda", "b3d ghda", "بعد غد", "بعد غدا"),
}
# The understanding's month names, and the abbreviations organizers write in a date.
MONTHS = {**UNDERSTOOD_MONTHS, "janv": 1, "fev": 2, "mar": 3, "avr": 4, "apr": 4, "jun": 6,
          "juil": 7, "jul": 7, "aug": 8, "sep": 9}
# Words around a time that say nothing more: "à 9h", "at 9", "على الساعة 9", "f 9".
FILLER = frozenset({
    "a", "at", "le", "on", "vers", "des", "de", "l", "the", "f", "fi", "m3a", "mea", "3la",
    "ala", "على", "علي", "في", "الساعة", "الساعه", "ساعة", "ساعه", "مع", "h", "heure",
    "heures", "o clock", "oclock",
})
EVENING = frozenset({"pm", "soir", "du soir", "de l apres midi", "l apres midi", "apres midi",
                     "f lil", "fl3chiya", "l3chiya", "3chiya", "مساء", "مساءا", "ليلا",
                     "العشية", "عشية", "بالليل", "الليل"})
MORNING = frozenset({"am", "matin", "du matin", "sbah", "f sbah", "صباحا", "صباح", "الصباح",
                     "فالصباح"})

_ISO_DATE = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:t(?=\d))?")
_DAY_MONTH = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?\b")
_TIME = re.compile(r"\b(\d{1,2})\s*(?:h|:|\.)\s*(\d{2})\b|\b(\d{1,2})\s*h\b|\b(\d{1,2})\b")
_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def read_moment(written: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | Unread:
    """The UTC moment `written` names, read in `zone` relative to `now`; `Unread.PAST` for a
    moment gone by (a minute of slack: then it is now), `Unread.UNREADABLE` for anything else."""
    text = re.sub(r"(\d)(am|pm)\b", r"\1 \2", _fold(written))
    if text in NOW_WORDS:
        return now.astimezone(dt.UTC)
    today = now.astimezone(zone).date()
    try:
        day, text = _take_day(text, today)
    except ValueError:  # no such date: 31/02, month 13
        return Unread.UNREADABLE
    clock, text = _take_clock(text)
    if clock is None or any(word not in FILLER for word in text.split()):
        return Unread.UNREADABLE
    moment = dt.datetime.combine(day or today, clock, tzinfo=zone)
    if moment < now - SLACK:
        return Unread.PAST
    return max(moment, now).astimezone(dt.UTC)


def _fold(written: str) -> str:
    """Lower case, Latin digits, no accents, hamza or tanwin, one space between words."""
    text = written.translate(_ARABIC_DIGITS).casefold()
    text = "".join(char for char in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(char) and char != "\u0640")
    text = text.replace("أ", "ا").replace("إ", "ا").replace("آ", "ا").replace("ى", "ي")
    text = re.sub(r"[’'`,;!?،؟]", " ", text)
    return " ".join(text.split()).strip(" .")


def _take_day(text: str, today: dt.date) -> tuple[dt.date | None, str]:
    """The day `text` names and what is left of it, or no day and `text` as it was."""
    found = _ISO_DATE.search(text)
    if found:
        year, month, day = (int(part) for part in found.groups())
        return dt.date(year, month, day), _cut(text, found)
    found = _DAY_MONTH.search(text)
    if found:
        written_year = found.group(3)
        year = today.year if written_year is None else (
            int(written_year) + (2000 if len(written_year) == 2 else 0))
        return dt.date(year, int(found.group(2)), int(found.group(1))), _cut(text, found)
    for month_word, month in MONTHS.items():
        found = re.search(rf"\b(\d{{1,2}})(?:er)?\s+{month_word}\b(?:\s+(\d{{4}}))?", text)
        if found:
            year = int(found.group(2)) if found.group(2) else today.year
            return dt.date(year, month, int(found.group(1))), _cut(text, found)
    # the longest words first: "apres demain" before "demain", "بعد غد" before "غد"
    for offset, words in sorted(DAY_WORDS.items(), reverse=True):
        for word in sorted(words, key=len, reverse=True):
            found = re.search(rf"(?:^|\s){re.escape(word)}(?:\s|$)", text)
            if found:
                return today + dt.timedelta(days=offset), _cut(text, found)
    return None, text


def _take_clock(text: str) -> tuple[dt.time | None, str]:
    """The time of day `text` names ("9h", "9h30", "09:00", "9", "6 pm") and what is left."""
    found = _TIME.search(text)
    if found is None:
        return None, text
    hour_text = found.group(1) or found.group(3) or found.group(4)
    hour, minute = int(hour_text), int(found.group(2) or 0)
    rest = _cut(text, found)
    evening = next((word for word in sorted(EVENING, key=len, reverse=True)
                    if re.search(rf"(?:^|\s){re.escape(word)}(?:\s|$)", rest)), None)
    morning = next((word for word in sorted(MORNING, key=len, reverse=True)
                    if re.search(rf"(?:^|\s){re.escape(word)}(?:\s|$)", rest)), None)
    if evening is not None:
        hour += 12 if hour < 12 else 0
        rest = rest.replace(evening, " ")
    elif morning is not None:
        hour -= 12 if hour == 12 else 0
        rest = rest.replace(morning, " ")
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None, rest
    return dt.time(hour, minute), rest


def _cut(text: str, found: re.Match[str]) -> str:
    return " ".join((text[:found.start()] + " " + text[found.end():]).split())
