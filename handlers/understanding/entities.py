"""Entities that do not come from the catalogue's names: a day, a language, a stand number and
a practical topic, each with the message positions it takes."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from handlers.understanding.lexicon import Closest, PhraseMatcher, load_lexicon, stem
from storage.catalogue import normalize_stand_number

# Lexicon names of days relative to today.
RELATIVE_DAYS = {"today": 0, "tomorrow": 1, "day_after_tomorrow": 2, "after_tomorrow": 2,
                 "yesterday": -1}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = {
    month: number
    for number, names in enumerate((
        ("janvier", "january", "jan", "يناير", "يناير", "جانفي"),
        ("fevrier", "february", "feb", "فبراير", "فبراير"),
        ("mars", "march", "مارس"),
        ("avril", "april", "أبريل", "ابريل"),
        ("mai", "may", "ماي", "مايو"),
        ("juin", "june", "يونيو", "يونيه"),
        ("juillet", "july", "يوليوز", "يوليو"),
        ("aout", "august", "غشت", "أغسطس", "اغسطس"),
        ("septembre", "september", "sept", "شتنبر", "سبتمبر"),
        ("octobre", "october", "oct", "أكتوبر", "اكتوبر"),
        ("novembre", "november", "nov", "نونبر", "نوفمبر"),
        ("decembre", "december", "dec", "دجنبر", "ديسمبر"),
    ), start=1)
    for month in names
}
# A stand number in a sentence: one to three letters (or an Arabic hall letter) alone as a word,
# then its digits, glued or one space apart.
_STAND_IN_TEXT = re.compile(r"(?<![^\W\d_])([a-z]{1,3}|[ابجد])\s?(\d{1,4})(?!\w)")
_ABJAD = {"ا": "A", "ب": "B", "ج": "C", "د": "D"}
# A time of day: 17h, 17h30, 10am (fold() makes "17:30" two words).
_HOUR = re.compile(r"^(\d{1,2})(?:h(\d{2})?|am|pm)$")
# `stand A12`, `رواق ب ٤`, `STAND%20A12` as WhatsApp links write it (handlers/router.py).
_STAND_WORD = re.compile(r"(?:stand|رواق|الرواق|جناح)\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Span:
    """An entity's value and the token positions it takes in the message."""

    value: str
    positions: frozenset[int]
    score: float = 100.0


_SECTIONS = ("days", "languages", "info_topics", "request_words", "intents", "labels")


@functools.cache
def closest() -> Closest:
    """Near spellings among every word of the lexicon, looked up once for all its sections."""
    lexicon = load_lexicon()
    return Closest(stem(word) for section in _SECTIONS for word in lexicon.words(section))


@functools.cache
def _matchers() -> dict[str, PhraseMatcher]:
    lexicon = load_lexicon()
    return {section: PhraseMatcher(lexicon.section(section), closest())
            for section in _SECTIONS}


def matcher(section: str) -> PhraseMatcher:
    """The phrase matcher of one lexicon section (built once per process)."""
    return _matchers()[section]


def _positions(start: int, end: int) -> frozenset[int]:
    return frozenset(range(start, end))


def find_day(tokens: Sequence[str], today: dt.date,
             fair: tuple[dt.date, dt.date] | None = None
             ) -> tuple[dt.date, frozenset[int]] | None:
    """The day a message names (aujourd'hui, ghda, السبت, 14/12, 14 décembre), as a date seen
    from `today`: a weekday is that day of the fair (from `fair`, its first and last days),
    or else the next one."""
    for index, token in enumerate(tokens[:-1]):
        following = tokens[index + 1]
        # fold() makes "15/12" two words, "15 12"; "15 décembre" is a day and a month.
        month = MONTHS.get(following) or (
            int(following) if following.isdigit() and len(following) <= 2 else None)
        if token.isdigit() and len(token) <= 2 and month:
            date = _date_near(today, month, int(token))
            if date is not None:
                return date, _positions(index, index + 2)
    in_fair = _day_of_month(tokens, fair)
    if in_fair is not None:
        return in_fair
    found = sorted(matcher("days").find(list(tokens)),
                   key=lambda item: (-item.score, " ".join(tokens[item.start:item.end])
                                     in _NOW_WORDS, item.name not in WEEKDAYS))
    # A weekday before a relative day as sure: in "يوم السبت" (on Saturday), يوم is "day",
    # not اليوم (today).
    for item in found:
        if item.name in WEEKDAYS:
            return _weekday(WEEKDAYS.index(item.name), today, fair), _positions(
                item.start, item.end)
        if item.name in RELATIVE_DAYS:
            return today + dt.timedelta(days=RELATIVE_DAYS[item.name]), _positions(
                item.start, item.end)
    return None


# "now" says today only when no other day is named: "now I want tomorrow's workshop".
_NOW_WORDS = frozenset(("maintenant", "now", "daba", "دابا", "right now", "db"))
# Words before a day of the month said alone: "le 15", "on the 15th", "نهار 15".
_DAY_BEFORE = frozenset(("le", "the", "nhar", "nhar", "نهار", "يوم", "lyom", "du", "au"))
_ORDINAL = re.compile(r"^(\d{1,2})(?:th|st|nd|rd|er|eme|e)$")


def _day_of_month(tokens: Sequence[str], fair: tuple[dt.date, dt.date] | None
                  ) -> tuple[dt.date, frozenset[int]] | None:
    """A day of the fair named by its number alone ("le 15", "on the 15th", "نهار 15")."""
    if fair is None:
        return None
    opens, closes = fair
    days = {opens + dt.timedelta(days=offset): None
            for offset in range((closes - opens).days + 1)}
    for index, token in enumerate(tokens):
        ordinal = _ORDINAL.match(token)
        if ordinal is not None:
            number = int(ordinal.group(1))
        elif token.isdigit() and len(token) <= 2 and index and tokens[index - 1] in _DAY_BEFORE:
            number = int(token)
        else:
            continue
        for day in days:
            if day.day == number:
                return day, frozenset((index,))
    return None


def _weekday(weekday: int, today: dt.date, fair: tuple[dt.date, dt.date] | None) -> dt.date:
    """The day of the fair with that weekday, the closest to today when several; otherwise
    the next one from today (today's included)."""
    if fair is not None:
        opens, closes = fair
        days = [opens + dt.timedelta(days=offset)
                for offset in range((closes - opens).days + 1)]
        during = [day for day in days if day.weekday() == weekday]
        if during:
            return min(during, key=lambda day: (abs((day - today).days), day < today))
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7)


def _date_near(today: dt.date, month: int, day: int) -> dt.date | None:
    """That day and month in the year that puts it closest to today."""
    found: list[dt.date] = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            found.append(dt.date(year, month, day))
        except ValueError:
            continue
    return min(found, key=lambda date: abs((date - today).days)) if found else None


def find_language(tokens: Sequence[str]) -> Span | None:
    """The language a message asks for (en arabe, بالفرنسية, b darija, in english)."""
    for item in matcher("languages").find(list(tokens)):
        return Span(item.name, _positions(item.start, item.end), item.score)
    return None


def find_info_topic(tokens: Sequence[str]) -> Span | None:
    """The known practical topic a message names (toilettes, twalit, المرحاض, parking...)."""
    for item in matcher("info_topics").find(list(tokens)):
        return Span(item.name, _positions(item.start, item.end), item.score)
    return None


def bare_stand_number(text: str) -> str | None:
    """The stand number a whole message is (`A12`, `a 12`, `A١٢`, `stand A12`, `رواق ب ٤`)."""
    text = text.strip()
    word = _STAND_WORD.fullmatch(text)
    value = word.group(1) if word else text
    number = normalize_stand_number(value)
    if number is None and word:
        parts = value.split()
        if len(parts) == 2 and parts[0] in _ABJAD:
            number = normalize_stand_number(_ABJAD[parts[0]] + parts[1])
    return number


def find_stand(tokens: Sequence[str], stands: frozenset[str]) -> Span | None:
    """A stand number within a sentence; only one the fair has when the fair's stands are known
    (so "le 14" or "à 10" is not a stand)."""
    text = " ".join(tokens)
    for match in _STAND_IN_TEXT.finditer(text):
        letters, digits = match.groups()
        number = normalize_stand_number(_ABJAD.get(letters, letters) + digits)
        if number is None or (stands and number not in stands):
            continue
        if not stands and match.group(0).count(" "):
            continue
        start = text[:match.start()].count(" ")
        end = start + match.group(0).count(" ") + 1
        return Span(number, _positions(start, end))
    return None


# Words that put an hour after them: "à 11", "m3a 5", "الساعة 11", "at 3", "ورشة الحداش".
_HOUR_BEFORE = frozenset((
    "a", "at", "vers", "de", "dyal", "dial", "m3a", "f", "fi", "l", "sa3a", "saa", "sa", "ssa3a",
    "الساعه", "ساعه", "على", "مع", "ديال", "فالساعه", "around", "atelier", "workshop", "session",
    "worcha", "lworcha", "ورشه", "الورشه", "formation",
))
# ... but not a number after these ("coopératives de 2 régions"), only a word ("de dix").
_HOUR_WORDS_ONLY = frozenset(("de", "l", "around"))
# Hours said in words, as Darija and Arabic say them (the fair's afternoon for 1 to 7).
_HOUR_WORDS = {
    word: hour
    for hour, words in {
        1: ("الواحده", "lwe7da", "lwahda", "wahda"), 2: ("الجوج", "الثانيه", "jouj", "jouj"),
        3: ("التلاته", "الثالثه", "tlata", "ttlata"), 4: ("الربعه", "الرابعه", "rb3a", "rab3a"),
        5: ("الخمسه", "الخامسه", "lkhamsa", "khamsa"), 6: ("السته", "السادسه", "setta", "sitta"),
        7: ("السبعه", "السابعه", "sb3a", "sab3a"), 8: ("التمنيه", "الثامنه", "tmnya"),
        9: ("التسعود", "التاسعه", "tes3ud", "ttes3oud"),
        10: ("العشره", "العاشره", "l3achra", "3achra", "dix"),
        11: ("الحداش", "الحاديه", "l7dach", "7dach", "onze"),
        12: ("الطناش", "tnach", "ttnach", "midi", "noon"),
    }.items()
    for word in words
}


def find_hour(tokens: Sequence[str]) -> tuple[int, frozenset[int]] | None:
    """An hour of the day a message names (17h, 10h30, 10am, 5pm, "10 am", 17:00, "à 11",
    "m3a 5", "الساعة الحداش"); 1 to 7 alone are the afternoon's."""
    for index, token in enumerate(tokens):
        match = _HOUR.match(token)
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        before = tokens[index - 1] if index else ""
        if match is None and token.isdigit() and following in ("h", "am", "pm", "o", "oclock",
                                                                  "heures", "heure"):
            match = _HOUR.match(token + ("h" if following[:1] in "oh" else following))
        if match is not None:
            hour = int(match.group(1))
            if (token.endswith("pm") or following == "pm") and hour < 12:
                hour += 12
            if hour < 24:
                return hour, frozenset((index,))
            continue
        said = _said_hour(token, before, following)
        if said is not None:
            return said, frozenset((index,))
    return None


def _said_hour(token: str, before: str, following: str) -> int | None:
    """An hour written as a bare number or a word, when the words around it say it is one:
    "17 00", "à 11", "الساعة الحداش", "l3achra".)"""
    if token.isdigit() and len(token) <= 2:
        hour = int(token)
        introduced = before in _HOUR_BEFORE and before not in _HOUR_WORDS_ONLY
        if not 0 < hour < 24 or not (introduced or following in ("00", "30", "15", "45")):
            return None
    elif token in _HOUR_WORDS and (before in _HOUR_BEFORE or token.startswith(("ال", "l"))):
        hour = _HOUR_WORDS[token]
    else:
        return None
    return hour + 12 if hour < 8 else hour
