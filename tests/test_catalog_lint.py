"""Catalog lint: the Arabic and French msgstrs as native speakers write them (glued prepositions,
French non-breaking spaces, bidi-safe number pairs, untranslated Latin words, glossary words)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "locales" / "GLOSSARY.md"
SAMPLE_FAIR = ROOT / "bot" / "data" / "sample-fair.yaml"

FSI, PDI = "\u2068", "\u2069"
LRI = "\u2066"
OPENERS = "\u2066\u2067\u2068"  # LRI, RLI, FSI: each closed by a PDI
NBSP = "\u00a0\u202f"
ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")
PLACEHOLDER = re.compile(r"\{\w+\}")

# A preposition glued to a placeholder or to the name behind it: "لـ{fair}", "بـ{name}", "ل{x}".
GLUED = re.compile(r"(?<![\w\u0640])[لب]\u0640?\{|(?<![\w\u0640])[لب]\u0640(?!«)")
# Two placeholders with only a slash, a dash, a colon ("{h}:{m}", not a label's ": ") or
# spaces between them.
PAIR = re.compile(r"\{\w+\}[\s\u2066-\u2069]*(?:[/\-–—]|:(?=\S))[\s/\-:–—\u2066-\u2069]*\{\w+\}")
LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F][A-Za-z0-9\u00C0-\u024F'’\-]*")
URL = re.compile(r"https?://\S+")

# Latin words an Arabic sentence may hold: brand names, file formats, commands the user types.
LATIN_ALLOWED = {"WhatsApp", "Telegram", "QR", "CSV", "PDF", "coop", "COOP", "tadamon",
                 "broadcast", "status", "ics"}
# Messages shown in both languages on purpose (asked before the language is known).
BILINGUAL = {"Language", "Which language do you prefer?"}


# ---------------------------------------------------------------- the rules, one per function

def glued_prepositions(text: str) -> list[str]:
    """Arabic: a preposition glued to a placeholder ("لـ{fair}") instead of "لـ«{fair}»"."""
    return [f"glued preposition: {match.group(0)!r}" for match in GLUED.finditer(text)]


def french_spaces(text: str) -> list[str]:
    """French: a non-breaking space before ; : ! ? % and inside « »."""
    problems: list[str] = []
    bare = URL.sub("", text)
    for index, char in enumerate(bare):
        near = bare[max(0, index - 12):index + 12]
        before = bare[index - 1] if index else ""
        after = bare[index + 1] if index + 1 < len(bare) else ""
        if char in ";:!?%":
            if char == ":" and before.isdigit() and after.isdigit():  # a time, 11:00
                continue
            if char in "!?" and before in "!?":  # "?!"
                continue
            if before not in NBSP:
                problems.append(f"no non-breaking space before {char!r}: …{near}…")
        elif char == "«" and after not in NBSP:
            problems.append(f"no non-breaking space after «: …{near}…")
        elif char == "»" and before not in NBSP:
            problems.append(f"no non-breaking space before »: …{near}…")
    problems += [f"two spaces in a row: …{bare[max(0, m.start() - 12):m.end() + 12]}…"
                 for m in re.finditer(r"[ \u00a0\u202f]{2}", bare)]
    return problems


def english_spaces(text: str) -> list[str]:
    """English: no space before : ; ! ? (the French habit)."""
    return [f"space before {m.group(1)!r}" for m in re.finditer(r"[ \u00a0\u202f]([:;!?])", text)]


def _isolated_spans(text: str) -> list[tuple[int, int, str]]:
    """Where each outermost isolate (LRI, RLI or FSI … PDI) starts and ends, and its opener."""
    spans: list[tuple[int, int, str]] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char in OPENERS:
            if depth == 0:
                start = index
            depth += 1
        elif char == PDI and depth:
            depth -= 1
            if depth == 0:
                spans.append((start, index, text[start]))
    return spans


def unisolated_pairs(text: str) -> list[str]:
    """Arabic: "{taken}/{capacity}" shows as "60/1" unless one left-to-right isolate (LRI)
    holds both numbers, or the sentence says "{taken} من {capacity}". An FSI is not enough:
    Chromium gives an FSI holding no letter the paragraph's direction, right to left."""
    spans = [(start, end) for start, end, opener in _isolated_spans(text) if opener == LRI]
    return [f"two placeholders without one LRI…PDI around them: {match.group(0)!r}"
            for match in PAIR.finditer(text)
            if not any(start < match.start() and match.end() <= end for start, end in spans)]


def leading_placeholder(text: str) -> list[str]:
    """Arabic: a line that begins with a placeholder ("{number} · {name}") begins with a
    right-to-left mark, or the web chat (unicode-bidi: plaintext, which looks inside isolates)
    lays out "B19 · تعاونية أركانة" left to right."""
    return [f"line begins with a placeholder without U+200F: {line!r}"
            for line in text.split("\n") if re.match(r"[\u2066-\u2069]*\{", line)]


def latin_words(text: str) -> list[str]:
    """Arabic: no untranslated Latin word outside placeholders, URLs and the allowlist."""
    bare = URL.sub("", PLACEHOLDER.sub("", text))
    return [f"untranslated Latin word {word!r}" for word in LATIN_WORD.findall(bare)
            if word not in LATIN_ALLOWED and not re.fullmatch(r"[A-Z]\d+", word)]


def forbidden_words() -> dict[str, list[str]]:
    """The glossary's "Never" column: the words not to use, by language (by their script)."""
    words: dict[str, list[str]] = {"ar": [], "fr": []}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 5 or cells[0] in ("thing", "---"):
            continue
        for word in re.findall(r"`([^`]+)`", cells[4]):
            words["ar" if ARABIC_LETTER.search(word) else "fr"].append(word)
    return words


def glossary_misuses(text: str, forbidden: list[str]) -> list[str]:
    """A word the glossary forbids ("قائمة الانتظار", "فئة", "الرواق أ" for a hall)."""
    problems: list[str] = []
    for word in forbidden:
        # "الرواق أ" is a hall only when the letter stands alone ("الرواق أو" is fine).
        tail = r"(?!\w)" if len(word.split()[-1]) == 1 else ""
        if re.search(re.escape(word) + tail, text):
            problems.append(f"glossary: {word!r} is not to be used")
    return problems


# ---------------------------------------------------------------- the catalogs

def _messages(language: str) -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) for every form of every message of a catalog."""
    with (ROOT / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            if form:
                yield msgid, form


def _lint(language: str) -> list[str]:
    forbidden = forbidden_words()
    problems: list[str] = []
    for msgid, text in _messages(language):
        found: list[str] = []
        if language == "ar":
            found += glued_prepositions(text) + unisolated_pairs(text)
            found += leading_placeholder(text)
            found += glossary_misuses(text, forbidden["ar"])
            if msgid not in BILINGUAL:
                found += latin_words(text)
        elif language == "fr":
            found += french_spaces(text) + glossary_misuses(text, forbidden["fr"])
        elif msgid not in BILINGUAL:
            found += english_spaces(text)
        problems += [f"{msgid!r} → {text!r}: {problem}" for problem in found]
    return problems


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_catalog_reads_as_a_native_speaker_writes(language: str) -> None:
    problems = _lint(language)
    assert not problems, "\n".join(problems)


def _texts(node: Any, language: str) -> Iterator[str]:
    """Every text of the catalogue in one language."""
    if isinstance(node, dict):
        if isinstance(node.get(language), str):
            yield node[language]
        for value in node.values():
            yield from _texts(value, language)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item, language)


def test_sample_fair_follows_the_glossary() -> None:
    fair = yaml.safe_load(SAMPLE_FAIR.read_text(encoding="utf-8"))
    forbidden = forbidden_words()["ar"]
    problems = [f"{text!r}: {problem}" for text in set(_texts(fair, "ar"))
                for problem in glossary_misuses(text, forbidden)]
    problems += [f"{text!r}: {problem}" for text in set(_texts(fair, "fr"))
                 for problem in french_spaces(text)]
    assert not problems, "\n".join(problems)
    zones = {stand["zone"]["ar"] for stand in fair["stands"]}
    assert all(zone.startswith("الجناح ") for zone in zones), zones


# ---------------------------------------------------------------- each rule fails on bad input

def test_glued_preposition_is_found() -> None:
    assert glued_prepositions("ما تقييمك لـ{fair}؟")
    assert glued_prepositions("أنت مرتبط بـ{name}.")
    assert glued_prepositions("مبرمج ل{n} أشخاص")
    assert glued_prepositions("ما تقييمك لـالمعرض")
    assert not glued_prepositions("تم ربط هذه المحادثة بـ«{name}»")
    assert not glued_prepositions("كيف تقيّم «{fair}»؟ بين حرف واحد و{limit} حرف")


def test_french_space_before_punctuation_is_required() -> None:
    assert french_spaces("Ateliers du {day} :")          # an ordinary space
    assert french_spaces("Ateliers du {day}:")            # no space at all
    assert french_spaces("({percent}%)")
    assert french_spaces("Vraiment ?")
    assert french_spaces("L'atelier « {title}\u202f» est complet")
    assert french_spaces("L'atelier «\u202f{title} » est complet")
    assert not french_spaces("Ateliers du {day}\u202f: ({percent}\u00a0%) à 11:00, "
                             "«\u202fla\u202f» https://x.ma/a?b")
    assert not french_spaces("L'atelier «\u202f{title}\u202f» est complet\u202f!")
    assert french_spaces("envoyez «\u202f\u202freprendre\u202f\u202f».")


def test_english_space_before_punctuation_is_found() -> None:
    assert english_spaces("Workshops on {day} :")
    assert not english_spaces("Workshops on {day}:")
    assert not english_spaces("")


def test_two_numbers_need_one_isolate() -> None:
    assert unisolated_pairs("{taken}/{capacity} ({percent}%)")
    assert unisolated_pairs("{start}–{end} · {title}")
    assert unisolated_pairs("\u2068{taken}\u2069/\u2068{capacity}\u2069")
    assert unisolated_pairs("\u2068{taken}/{capacity}\u2069 ({percent}%)")
    assert not unisolated_pairs("\u2066{taken}/{capacity}\u2069 ({percent}%)")
    assert not unisolated_pairs("{taken} من {capacity}")
    assert unisolated_pairs("{hours}:{minutes}")
    assert not unisolated_pairs("{number} · {name}")
    assert not unisolated_pairs("{title}: {taken} من {capacity}")


def test_a_line_beginning_with_a_placeholder_needs_a_right_to_left_mark() -> None:
    assert leading_placeholder("{number} · {name}")
    assert leading_placeholder("\u2066{start}–{end}\u2069 · {title}")
    assert leading_placeholder("النتائج:\n{number} · {name}")
    assert not leading_placeholder("\u200f{number} · {name}")
    assert not leading_placeholder("الرواق {number}")


def test_untranslated_latin_word_is_found() -> None:
    assert latin_words("الويب ({channel}) Web 39")
    assert latin_words("المؤطر: M. {speaker}")
    assert not latin_words("اكتب رقم رواق (مثلًا A12) أو أرسل «coop» على واتساب {link} "
                           "https://example.ma/x")


def test_glossary_words_are_read_and_found() -> None:
    forbidden = forbidden_words()
    assert {"قائمة الانتظار", "فئة", "الرواق أ"} <= set(forbidden["ar"])
    assert "au {fair}" in forbidden["fr"]
    assert glossary_misuses("أنت في قائمة الانتظار", forbidden["ar"])
    assert glossary_misuses("ابحث في إحدى الفئات", ["الفئات"])
    assert glossary_misuses("الرواق ب — المنتوجات المجالية", forbidden["ar"])
    assert not glossary_misuses("الجناح ب — المنتوجات المجالية", forbidden["ar"])
    assert not glossary_misuses("الرواق أو الورشة", forbidden["ar"])
    assert glossary_misuses("Je peux vous aider au {fair} :", forbidden["fr"])
