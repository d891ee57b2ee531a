"""Every free text goes through the understanding step before any search: what people wrote
in the issue's table, in French, Arabic, Darija (both scripts) and English, gets the answer they
meant, and the web chat says what each message was understood as."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from bot.i18n import FSI, PDI
from handlers.context import Context
from handlers.feature import DuplicateHandler, Feature, Router
from handlers.messages import Reply
from handlers.router import router
from handlers.understanding import Intent
from storage.models import Feedback
from tests.conftest import Chat

CASABLANCA = ZoneInfo("Africa/Casablanca")
# Sunday 13 December 2026, 10:00: the fair's first day.
FIRST_DAY = dt.datetime(2026, 12, 13, 10, 0, tzinfo=CASABLANCA)
CARPETS = ("A7", "A14", "A18", "A23", "A26", "A27", "A32", "A34")
HONEY = ("B14", "B20", "B22", "B23", "B25", "B26", "B30", "B32")


async def _french(chat: Chat, person: str) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY
    await chat(person, "bonjour")
    await chat.tap(person, "Français")


async def _arabic(chat: Chat, person: str) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY
    await chat(person, "السلام عليكم")
    await chat.tap(person, "العربية")


async def _all_pages(chat: Chat, person: str) -> str:
    """The text of the last answer and of every "More" page after it."""
    text = chat.last(person).text
    while any(label in ("Suite", "المزيد") for label in chat.last(person).labels):
        more = "Suite" if "Suite" in chat.last(person).labels else "المزيد"
        text += "\n" + (await chat.tap(person, more)).text
    return text


def test_every_intent_has_a_handler() -> None:
    assert set(router.intents) == set(Intent)


async def test_the_programme_asked_in_a_sentence(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "Bonjour, je voudrais voir le programme des ateliers")
    assert answer.body["intent"] == "workshops"
    assert "Choisissez un jour, un thème ou une langue" in answer.text
    assert "D6" not in answer.text and not any("D6" in label for label in answer.labels)


async def test_tomorrows_workshops(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "ateliers demain")
    assert answer.body["intent"] == "workshops"
    assert "Ateliers du lundi 14 décembre" in answer.text
    assert answer.mentions("Financement des projets", "Bonne gouvernance")
    assert "C4" not in answer.text and "Techniques de marketing" not in answer.text


async def test_darija_asks_for_the_workshops(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY
    first = await chat("karim", "salam, bghit nchof les ateliers")
    assert first.body["intent"] == "workshops"
    assert "لم أجد" not in first.text
    register = await chat("karim", "bghit ntsjl f atelier")
    assert register.body["intent"] == "workshops"
    assert "لم أجد" not in register.text and "ورشة" in register.text


async def test_registering_for_a_named_workshop(chat: Chat) -> None:
    await _french(chat, "amina")
    chat.app.engine.clock = lambda: FIRST_DAY - dt.timedelta(days=1)
    answer = await chat("amina", "inscription atelier comptabilité")
    # Given twice: the list of its sessions, each with its register button.
    assert answer.body["intent"] == "workshops"
    assert "Gestion financière d'une coopérative\u202f: toutes les séances" in answer.text
    # The first session is for cooperatives; the second, open to everyone, by its day.
    card = await chat.tap("amina", "Gestion financière d'une coopérative · mar. 15, 10:30")
    assert "S'inscrire" in card.labels


async def test_i_want_to_register_is_not_a_stand_search(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "je veux m'inscrire")
    assert answer.body["intent"] == "workshops"
    assert "aucun stand" not in answer.text and "atelier" in answer.text


async def test_a_practical_question(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "où sont les toilettes ?")
    assert answer.body["intent"] == "info"
    assert "aucun stand" not in answer.text and "Vérifiez l'orthographe" not in answer.text
    assert "Les toilettes sont près de l'entrée principale" in answer.text
    shuttle = await chat("amina", "il y a une navette ?")  # the fair's own topic
    assert shuttle.body["intent"] == "info"
    assert "Une navette gratuite relie la gare routière au salon" in shuttle.text
    hours = await chat("amina", "c'est ouvert jusqu'à quelle heure ?")
    assert hours.body["intent"] == "info"
    assert "de 10:00 à 20:00" in hours.text


@pytest.mark.parametrize(("text", "expected"), [
    ("merci", "Avec plaisir"),
    ("shukran", "Avec plaisir"),
    ("merci bzaf", "Avec plaisir"),
    ("wakha", "Parfait"),
    ("👍", "Parfait"),
    ("au revoir", "Au revoir"),
])
async def test_small_talk_gets_a_short_friendly_answer(chat: Chat, text: str,
                                                       expected: str) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", text)
    assert answer.body["intent"] == "smalltalk"
    assert expected in answer.text
    assert "Vouliez-vous dire" not in answer.text and "Stand" not in answer.text
    assert not answer.labels  # no menu dump


async def test_thanks_in_arabic(chat: Chat) -> None:
    await _arabic(chat, "karim")
    answer = await chat("karim", "شكرا بزاف")
    assert answer.body["intent"] == "smalltalk" and "العفو" in answer.text


@pytest.mark.parametrize(("text", "intent"), [
    ("hello there", "welcome"),
    ("test", "unknown"),
    ("this is a text message", "unknown"),
])
async def test_chatter_is_not_a_stand_search(chat: Chat, text: str, intent: str) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", text)
    assert answer.body["intent"] == intent
    assert not any(label[:1] in "ABCD" and label[1:2].isdigit() for label in answer.labels)


async def test_every_carpet_stand_for_zarbia(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "zarbia")
    assert answer.body["intent"] == "stands"
    assert "8 stands correspondent" in answer.text
    text = await _all_pages(chat, "amina")
    for number in CARPETS:
        assert f"{number} · " in text
    assert "A18 · Coopérative Al Wafae du tapis · tapis" in text


async def test_argan_oil_before_olive_oil(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "huile d'argan")
    lines = answer.text.splitlines()
    assert lines[1] == "B19 · Coopérative Argana · huile d'argan"
    assert "huile d'olive" not in answer.text


async def test_honey_in_darija_and_in_arabic(chat: Chat) -> None:
    await _arabic(chat, "karim")
    answer = await chat("karim", "fin kayn l3sel")
    assert answer.body["intent"] == "stands"
    text = await _all_pages(chat, "karim")
    for number in HONEY:
        assert f"{FSI}{number}{PDI}" in text
    assert "العسل" in text


async def test_cooperatives_of_a_city(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "coopératives de Fès")
    assert answer.body["intent"] == "stands"
    text = await _all_pages(chat, "amina")
    assert "A3 · Coopérative Al Itqane du zellige · Fès" in text
    assert "C10 · Coopérative Al Fassia · Fès" in text


async def test_doubt_asks_one_question_and_the_tap_answers_it(chat: Chat) -> None:
    await _french(chat, "amina")
    question = await chat("amina", "emballage")
    assert "Un stand ou un atelier\u202f?" in question.text
    assert {"Un atelier", "Stands"} <= set(question.labels)
    workshops = await chat.tap("amina", "Un atelier")
    assert workshops.body["intent"] == "workshop"
    assert "Valorisation des produits\u202f: toutes les séances" in workshops.text


async def test_not_understood_says_so_and_offers_the_way_on(chat: Chat) -> None:
    await _french(chat, "amina")
    answer = await chat("amina", "je cherche xkcdqwv")
    assert answer.body["intent"] == "unknown"
    assert "je n'ai pas compris" in answer.text
    assert "Menu principal" in answer.labels or "Ateliers" in answer.labels


async def test_a_star_then_a_request_is_not_a_comment(chat: Chat) -> None:
    await _french(chat, "amina")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★")
    honey = await chat("amina", "miel")
    assert honey.body["intent"] == "stands"
    assert "B14 · " in honey.text
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★★")
    toilets = await chat("amina", "où sont les toilettes ?")
    assert toilets.body["intent"] == "info"
    async with chat.app.sessions() as session:
        comments = list(await session.scalars(select(Feedback.comment)))
    assert comments and set(comments) == {None}


async def test_a_sentence_after_a_star_stays_a_comment(chat: Chat) -> None:
    await _french(chat, "amina")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★")
    sentence = "Très beau salon, le miel de thym était excellent"
    thanks = await chat("amina", sentence)
    assert thanks.body["intent"] == "feedback"
    assert "votre commentaire a été enregistré" in thanks.text
    async with chat.app.sessions() as session:
        assert list(await session.scalars(select(Feedback.comment))) == [sentence]


async def test_a_stand_number_after_a_star_opens_the_card(chat: Chat) -> None:
    await _french(chat, "amina")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★")
    card = await chat("amina", "A12")
    assert card.body["intent"] == "stand" and "Stand A12" in card.text


async def test_the_intent_of_buttons_and_the_metrics(chat: Chat) -> None:
    await _french(chat, "amina")
    assert chat.last("amina").body["intent"] == "language"
    listed = await chat("amina", "zarbia")
    card = await chat.tap("amina", listed.labels[0])
    assert card.body["intent"] == "stand"
    menu = await chat("amina", "menu")
    assert menu.body["intent"] == "menu"
    workshops = await chat.tap("amina", "Ateliers")
    assert workshops.body["intent"] == "workshops"
    await chat("amina", "merci")
    response = await chat.client.get("/metrics")
    metrics = await response.text()
    assert 'tadamon_intents_total{channel="web",intent="smalltalk"} 1.0' in metrics
    assert 'tadamon_intents_total{channel="web",intent="stands"} 1.0' in metrics
    assert 'tadamon_intents_total{channel="web",intent="stand"} 1.0' in metrics


def test_a_second_handler_for_an_intent_is_refused() -> None:
    first, second = Feature("first"), Feature("second")

    async def answer(ctx: Context) -> list[Reply]:
        return []

    first.intent(Intent.STANDS)(answer)
    second.intent(Intent.STANDS)(answer)
    with pytest.raises(DuplicateHandler):
        Router().include(first, second)
    lonely = Router()
    lonely.include(first)
    with pytest.raises(RuntimeError, match="intent workshops"):
        lonely.check([], [], Intent)


async def test_practical_questions_in_arabic_and_darija(chat: Chat) -> None:
    await _arabic(chat, "karim")
    arabic = await chat("karim", "أين المرحاض؟")
    assert arabic.body["intent"] == "info"
    assert "توجد المراحيض قرب المدخل الرئيسي" in arabic.text
    darija = await chat("karim", "fin kayn twalit")
    assert "توجد المراحيض قرب المدخل الرئيسي" in darija.text


async def test_organizers_learn_what_people_ask(chat: Chat) -> None:
    await _french(chat, "amina")
    await chat("amina", "merci")
    await chat("amina", "who won the game 0612345678")
    await chat("amina", "Who won the game 06 98 76 54 32")
    await chat("amina", "zarbia")
    questions = chat.app.engine.reports.questions
    await chat.app.engine.flush_statistics()
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None
    asked = await questions.top_questions(fair.id, limit=None)
    assert [(item.question, item.count) for item in asked] == [
        ("who won the game <number>", 2)]
    counts = {(item.channel, item.language, item.intent): item.messages
              for item in await questions.intent_counts(fair.id)}
    assert counts[("web", "fr", "smalltalk")] == 1
    assert counts[("web", "fr", "unknown")] == 2
    assert counts[("web", "fr", "stands")] == 1


async def test_a_failure_to_count_never_costs_the_answer(chat: Chat) -> None:
    await _french(chat, "amina")
    async with chat.app.sessions() as session, session.begin():
        await session.execute(text("DROP TABLE intent_counts"))
    answer = await chat("amina", "merci")
    assert answer.status == 200 and "Avec plaisir" in answer.text
    await chat.app.engine.flush_statistics()  # the count is lost, and logged


async def test_a_question_in_doubt_is_answered_by_the_next_message_only(chat: Chat) -> None:
    await _french(chat, "amina")
    question = await chat("amina", "emballage")
    await chat("amina", "merci")
    late = await chat.post({"session": chat.session("amina"),
                            "choice": question.choice_id("Un atelier")})
    assert "Ce bouton n'est plus valable" in late.text
