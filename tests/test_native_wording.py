"""What a visitor reads, in French and in Arabic, as native speakers write it: names in «»
after a preposition, a workshop named as the subject, date ranges, "1er", the exhibitor's
town, and the practical information's hours given once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.i18n import FSI, PDI, Renderer, date_range, day_label, load_translations
from handlers.figures import channel_counts
from handlers.messages import When, _, _n
from handlers.messages import date_range as range_params
from storage.models import Workshop
from tests.conftest import Chat

ZONE = ZoneInfo("Africa/Casablanca")
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZONE)
FAIR_DAY = dt.datetime(2026, 12, 13, 11, 0, tzinfo=ZONE)
NNBSP = "\u202f"
FAIR_FR = "Salon provincial de l'économie sociale et solidaire de Khouribga — 2e édition"
FAIR_AR = "المعرض الإقليمي للاقتصاد الاجتماعي والتضامني بخريبكة — الدورة الثانية"


async def _speaks(chat: Chat, user: str, language: str) -> None:
    await chat(user, "bonjour" if language == "fr" else "السلام عليكم")
    await chat.tap(user, f"lang:{language}")


async def _capacity(chat: Chat, key: str, capacity: int) -> None:
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == key)
                              .values(capacity=capacity))
    await chat.app.state.bump_catalogue_version()


@pytest.mark.parametrize(("language", "question", "replaces"), [
    ("fr", f"Quelle note donnez-vous à «{NNBSP}{FAIR_FR}{NNBSP}»{NNBSP}? "
           "5 étoiles, c'est la meilleure note.",
     "Elle remplace la note que vous aviez donnée plus tôt aujourd'hui."),
    ("ar", f"كيف تقيّم «{FAIR_AR}»؟ خمس نجوم أعلى تقييم.",
     "وهو يعوّض تقييمك السابق لهذا اليوم."),
])
async def test_the_fair_is_named_in_quotes_when_rated(chat: Chat, language: str, question: str,
                                                      replaces: str) -> None:
    chat.app.engine.clock = lambda: FAIR_DAY
    await _speaks(chat, "amina", language)
    asked = await chat("amina", "/start feedback")
    assert question in asked.text
    assert "لـ" not in asked.text and " au Salon" not in asked.text
    await chat.tap("amina", "★★★★")
    await chat("amina", "/start feedback")
    again = await chat.tap("amina", "★★")
    assert replaces in again.text


@pytest.mark.parametrize(("language", "registered", "waiting"), [
    ("fr", f"Inscription confirmée{NNBSP}: «{NNBSP}Techniques de marketing{NNBSP}»",
     f"L'atelier «{NNBSP}Techniques de marketing{NNBSP}» est complet. Vous êtes n° 1 "
     f"sur la liste d'attente{NNBSP}:"),
    ("ar", "تم تسجيلك في ورشة «تقنيات التسويق»",
     f"ورشة «تقنيات التسويق» ممتلئة. أنت رقم {FSI}1{PDI} في لائحة الانتظار:"),
])
async def test_a_workshop_is_named_as_a_workshop(chat: Chat, language: str, registered: str,
                                                 waiting: str) -> None:
    chat.app.engine.clock = lambda: NOW
    await _capacity(chat, "marketing-1", 1)
    await _speaks(chat, "amina", language)
    await _speaks(chat, "karim", language)
    register = "S'inscrire" if language == "fr" else "التسجيل"
    await chat("amina", "/start ws_marketing-1")
    assert registered in (await chat.tap("amina", register)).text
    await chat("karim", "/start ws_marketing-1")
    join = "Rejoindre la liste d'attente" if language == "fr" else "الانضمام إلى لائحة الانتظار"
    assert waiting in (await chat.tap("karim", join)).text


@pytest.mark.parametrize(("language", "dates", "hours"), [
    ("fr", f"Dates{NNBSP}: du 13 au 16 décembre 2026", "10:00"),
    ("ar", f"التواريخ: من {FSI}13{PDI} إلى 16 دجنبر 2026", f"{FSI}10:00{PDI}"),
])
async def test_practical_information_says_the_month_and_the_hours_once(
        chat: Chat, language: str, dates: str, hours: str) -> None:
    await _speaks(chat, "amina", language)
    info = await chat("amina", "info" if language == "fr" else "معلومات")
    assert dates in info.text
    assert info.text.count(hours) == 1, info.text
    assert "10h" not in info.text and "العاشرة" not in info.text


async def test_french_writes_the_first_of_the_month_1er(chat: Chat) -> None:
    chat.app.engine.clock = lambda: dt.datetime(2026, 11, 30, 10, 0, tzinfo=ZONE)
    async with chat.app.sessions() as session, session.begin():
        workshop = await session.scalar(select(Workshop).where(Workshop.key == "marketing-1"))
        assert workshop is not None
        length = workshop.ends_at - workshop.starts_at
        first = dt.datetime(2026, 12, 1, 11, 0, tzinfo=ZONE)
        workshop.starts_at, workshop.ends_at = first, first + length
    await chat.app.state.bump_catalogue_version()
    await _speaks(chat, "amina", "fr")
    card = await chat("amina", "/start ws_marketing-1")
    assert "mardi 1er décembre" in card.text and "mardi 1 décembre" not in card.text
    await _speaks(chat, "karim", "ar")
    arabic = await chat("karim", "/start ws_marketing-1")
    assert "الثلاثاء 1 دجنبر" in arabic.text


@pytest.mark.parametrize(("language", "town", "wrong"), [
    ("fr", f"Ville{NNBSP}: Tanger (Tanger-Tétouan-Al Hoceïma)", "De Tanger"),
    ("ar", "المدينة: طنجة (طنجة تطوان الحسيمة)", "من طنجة"),
])
async def test_a_stand_card_names_the_exhibitors_town(chat: Chat, language: str, town: str,
                                                      wrong: str) -> None:
    await _speaks(chat, "amina", language)
    card = await chat("amina", "A12")
    assert town in card.text and wrong not in card.text


async def test_a_stand_is_in_a_hall_not_in_a_stand(chat: Chat) -> None:
    await _speaks(chat, "karim", "ar")
    card = await chat("karim", "A12")
    assert "الجناح أ — الصناعة التقليدية" in card.text and "الرواق أ" not in card.text


# ------------------------------------------------------------ the date helpers, both languages

RENDERER = Renderer(load_translations(), ZONE)


@pytest.mark.parametrize(("first", "last", "french", "arabic"), [
    (dt.date(2026, 12, 13), dt.date(2026, 12, 16), "du 13 au 16 décembre 2026",
     "من 13 إلى 16 دجنبر 2026"),
    (dt.date(2026, 12, 1), dt.date(2026, 12, 4), "du 1er au 4 décembre 2026",
     "من 1 إلى 4 دجنبر 2026"),
    (dt.date(2026, 11, 30), dt.date(2026, 12, 2), "du 30 novembre au 2 décembre 2026",
     "من 30 نونبر إلى 2 دجنبر 2026"),
    (dt.date(2026, 12, 30), dt.date(2027, 1, 2), "du 30 décembre 2026 au 2 janvier 2027",
     "من 30 دجنبر 2026 إلى 2 يناير 2027"),
])
def test_date_ranges_say_the_month_and_year_once(first: dt.date, last: dt.date, french: str,
                                                 arabic: str) -> None:
    assert date_range(first, last, "fr") == french
    assert date_range(first, last, "ar") == arabic
    params = range_params(dt.datetime.combine(first, dt.time(12), ZONE),
                          dt.datetime.combine(last, dt.time(12), ZONE))
    sentence = _("Dates: from {first} to {last}", **params)
    assert RENDERER.message(sentence, "fr") == f"Dates{NNBSP}: {french}"
    assert RENDERER.message(sentence, "ar").replace(FSI, "").replace(PDI, "") == (
        f"التواريخ: {arabic}")


def test_the_first_of_a_month_is_1er_in_every_french_format() -> None:
    first = dt.datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)
    assert RENDERER.when(When(first, "date"), "fr") == "1er décembre 2026"
    assert RENDERER.when(When(first, "day"), "fr") == "mardi 1er décembre"
    assert RENDERER.when(When(first, "day_time"), "fr") == "mardi 1er décembre, 09:30"
    assert day_label(first.date(), "fr") == "mardi 1er décembre"
    assert day_label(dt.date(2026, 12, 11), "fr") == "vendredi 11 décembre"
    assert RENDERER.when(When(first, "date"), "ar") == "1 دجنبر 2026"


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "Telegram 1, Chat web 2"),
    ("ar", f"\u200f\u200f{FSI}Telegram{PDI} {FSI}1{PDI}، \u200fالمحادثة على الموقع {FSI}2{PDI}"),
    ("en", "Telegram 1, Web chat 2"),
])
def test_the_web_chat_is_named_in_the_readers_language(language: str, expected: str) -> None:
    """Organizers' figures named the web chat "Web" in every language ("(Web 39)" in Arabic)."""
    counts = channel_counts({"telegram": 1, "web": 2})
    line = RENDERER.text(_n("{n} contact ({channels})", "{n} contacts ({channels})", 3,
                            channels=counts), language)
    assert f"({expected})" in line, line
    assert "Web 2" not in line
