"""Languages: every message in Arabic, French and English, detection, plurals, dates and
bidi isolation."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import FSI, PDI, Renderer, isolate, load_translations
from handlers.language import detect_language
from handlers.messages import Isolated, Local, When, _, _n, reply

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "_n": (1, 2)}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
ZONE = ZoneInfo("Africa/Casablanca")


def source_messages() -> set[str]:
    """Every message id the code marks with `_` or `_n` (singular form for plurals), and the
    organizer console's templates with `_` and `ngettext`."""
    found: set[str] = set()
    for folder in ("bot", "handlers"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "bot" / "console" / "templates",
        method_map=[("**.html", "jinja2.ext:babel_extract")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog(language: str):  # type: ignore[no-untyped-def]
    with (ROOT / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_every_message_is_translated(language: str) -> None:
    messages = source_messages()
    assert len(messages) > 50
    translated = {}
    for message in catalog(language):
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if all(forms):
            translated[key] = forms
    missing = sorted(messages - translated.keys())
    assert not missing, f"{language} lacks translations for: {missing}"


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_catalogs_hold_no_stale_messages(language: str) -> None:
    stale = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog(language) if m.id
    } - source_messages()
    assert not stale, f"run `make locales`: {language} has messages the code no longer uses"


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_translations_keep_the_placeholders(language: str) -> None:
    for message in catalog(language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            used = set(PLACEHOLDER.findall(form))
            assert used <= expected | {"n"}, (message.id, form)
            if not isinstance(message.id, tuple):
                assert used == expected, (message.id, form)


def test_arabic_has_six_plural_forms() -> None:
    renderer = Renderer(load_translations(), ZONE)
    seats = {n: renderer.message(_n("{n} seat left", "{n} seats left", n), "ar")
             for n in (0, 1, 2, 3, 11, 100)}
    assert seats[1] == "بقي مقعد واحد"
    assert seats[2] == "بقي مقعدان"
    assert seats[3] == f"بقيت {FSI}3{PDI} مقاعد"
    assert seats[11] == f"بقي {FSI}11{PDI} مقعدًا"
    assert seats[100] == f"بقي {FSI}100{PDI} مقعد"
    assert len(set(seats.values())) == 6
    french = renderer.message(_n("{n} seat left", "{n} seats left", 1), "fr")
    assert french == "1 place restante"
    assert renderer.message(_n("{n} seat left", "{n} seats left", 12), "fr") == (
        "12 places restantes")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("السلام عليكم", "ar"),
        ("فين الرواق A12؟", "ar"),
        ("bonjour", "fr"),
        ("Où est l'atelier de marketing ?", "fr"),
        ("salam, bghit n3ref fin kayn stand dial zarbia", "ar"),
        ("slm labas", "ar"),
        ("wach kayn chi atelier 3la l'marketing", "ar"),
        ("Hello, where is the honey stand please?", "en"),
        ("Workshops tomorrow", "en"),
        ("Can I register today", "en"),
        ("register me for the honey workshop", "en"),
        ("Je cherche les ateliers de demain", "fr"),
        ("argan", "fr"),
        ("A12", "fr"),
        ("stand B7", "fr"),
        ("coop_WA5KFINE", "fr"),
        ("/start coop_HADSAFI2", "fr"),
    ],
)
def test_first_message_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_isolates_wrap_latin_and_numbers_only() -> None:
    assert isolate("A12") == f"{FSI}A12{PDI}"
    assert isolate("+212600001234") == f"{FSI}+212600001234{PDI}"
    assert isolate("10:00") == f"{FSI}10:00{PDI}"
    assert isolate("خريبكة") == "خريبكة"
    assert isolate("") == ""


def test_arabic_text_keeps_codes_times_and_phones_whole() -> None:
    renderer = Renderer(load_translations(), ZONE)
    stand = renderer.render(reply(_("Stand {number} · {zone}", number=Isolated("A12"),
                                    zone=Local({"fr": "Hall A", "ar": "الرواق أ"}))), "ar")
    assert stand.text == f"الرواق {FSI}A12{PDI} · الرواق أ"
    assert stand.direction == "rtl"
    phone = renderer.message(_("Phone: {phone}", phone=Isolated("+212 600 001 234")), "ar")
    assert phone == f"الهاتف: {FSI}+212 600 001 234{PDI}"
    french = renderer.message(_("Phone: {phone}", phone=Isolated("+212 600 001 234")), "fr")
    assert french == "Téléphone\u202f: +212 600 001 234"


def test_dates_in_both_locales_with_latin_digits() -> None:
    renderer = Renderer(load_translations(), ZONE)
    moment = dt.datetime(2026, 12, 13, 9, 30, tzinfo=dt.UTC)  # 10:30 in Casablanca (UTC+1)
    assert renderer.when(When(moment, "day_time"), "fr") == "dimanche 13 décembre, 10:30"
    arabic = renderer.when(When(moment, "day_time"), "ar")
    assert arabic.startswith("الأحد 13 دجنبر")
    assert f"{FSI}10:30{PDI}" in arabic
    assert not re.search("[٠-٩]", arabic)
    assert renderer.when(When(moment, "time"), "ar") == "10:30"


def test_english_welcome_names_the_fair_in_english() -> None:
    renderer = Renderer(load_translations(), ZONE)
    text = renderer.message(_("Welcome to {fair}!", fair=Local({"fr": "Salon", "ar": "معرض",
                                                               "en": "Fair"})), "en")
    assert text == "Welcome to Fair!"


def test_english_has_two_plural_forms() -> None:
    catalog_en = catalog("en")
    assert catalog_en.num_plurals == 2
    for message in catalog_en:
        if message.id and isinstance(message.id, tuple):
            assert len(message.string) == 2 and all(message.string), message.id
    renderer = Renderer(load_translations(), ZONE)
    seats = {n: renderer.message(_n("{n} seat left", "{n} seats left", n), "en")
             for n in (0, 1, 2, 11)}
    assert seats == {0: "0 seats left", 1: "1 seat left", 2: "2 seats left",
                     11: "11 seats left"}
    queued = renderer.message(_n("Broadcast {id} queued for {n} person.",
                                 "Broadcast {id} queued for {n} people.", 1, id=7), "en")
    assert queued == "Announcement 7 queued for 1 person."


def test_english_is_written_for_the_reader_not_the_code() -> None:
    """Where the source sentence is not what a visitor should read, the catalog says better:
    the glossary's words (hall, announcement), titles in quotes, the words to send quoted."""
    renderer = Renderer(load_translations(), ZONE)
    title = Local({"fr": "Bonne gouvernance", "ar": "الحكامة الجيدة"})
    assert renderer.message(_("Other zones"), "en") == "Other halls"
    assert renderer.message(_("You are already registered for {title}.", title=title), "en") == (
        "You are already registered for “Bonne gouvernance”.")
    assert renderer.message(_("{place} is marked in red on the whole plan.",
                              place=Local({"fr": "Toilettes", "en": "Toilets"})), "en") == (
        "Marked in red on the whole plan: Toilets.")
    assert "“stop”" in renderer.message(_(
        "Welcome back: you will receive announcements again. Send stop to turn them off."), "en")


@pytest.mark.parametrize(("values", "expected"), [
    ({"fr": "Salle 1", "ar": "القاعة 1", "en": "Room 1"}, "Room 1"),
    ({"fr": "Salle 1", "ar": "القاعة 1"}, "Salle 1"),
    ({"ar": "القاعة 1"}, "القاعة 1"),
    ({"fr": "", "ar": "القاعة 1", "en": ""}, "القاعة 1"),
])
def test_catalogue_texts_fall_back_for_english_readers(values: dict[str, str],
                                                       expected: str) -> None:
    renderer = Renderer(load_translations(), ZONE)
    assert renderer.text(Local(values), "en") == expected
