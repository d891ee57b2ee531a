"""English, completely: offered in the language choice, kept in the person's records, and the
whole conversation held in it, on the web chat and on Telegram; broadcasts reach English readers
in French unless an English text is given."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.worker import OutboxWorker
from handlers.messages import Rendered
from storage.models import Contact, utcnow
from storage.outbox import Outbox
from storage.reports import contact_rows
from tests.conftest import Chat
from tests.platforms import TelegramFactory, WhatsAppFactory

CASABLANCA = ZoneInfo("Africa/Casablanca")
# Sunday 13 December 2026, 10:00: the fair's first day.
FIRST_DAY = dt.datetime(2026, 12, 13, 10, 0, tzinfo=CASABLANCA)
LANGUAGE_BUTTONS = ["العربية", "Français", "English"]
# Words only a French answer holds: none may reach an English reader.
FRENCH = ("Bienvenue", "Ateliers du", "places restantes", "Choisissez", "Avec plaisir",
          "Langue choisie", "Vous êtes inscrit")


async def language_of(chat: Chat, user: str) -> tuple[str | None, bool]:
    """The language kept in the person's record, and whether they confirmed it."""
    async with chat.app.sessions() as session:
        contact = (await session.scalars(
            select(Contact).where(Contact.user_id == chat.user_id(user)))).one()
    return contact.language, contact.language_confirmed


def english_only(text: str) -> None:
    assert not any(word in text for word in FRENCH), text


async def test_a_visitor_who_writes_english_is_answered_in_english(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY

    hello = await chat("john", "hi")
    assert (hello.lang, hello.body["dir"]) == ("en", "ltr")
    assert hello.mentions("Welcome to", "from 13 to 16 December 2026",
                          "every day from 10:00 to 20:00")
    assert hello.labels[-3:] == LANGUAGE_BUTTONS
    assert await language_of(chat, "john") == ("en", False)

    tomorrow = await chat("john", "what workshops are there tomorrow?")
    assert (tomorrow.lang, tomorrow.body["intent"]) == ("en", "workshops")
    assert tomorrow.mentions("Workshops on Monday 14 December:", "seats left")

    toilets = await chat("john", "where is the bathroom?")
    assert (toilets.lang, toilets.body["intent"]) == ("en", "info")
    assert "toilets" in toilets.text.lower()
    # The catalog's sentence, not the source's ("Toilets is marked in red").
    assert "Marked in red" in toilets.text and "is marked in red" not in toilets.text

    honey = await chat("john", "register me for the honey workshop")
    assert (honey.lang, honey.body["intent"]) == ("en", "workshops")
    assert "Choose a day, a topic or a language:" in honey.text

    thanks = await chat("john", "thanks")
    assert (thanks.lang, thanks.body["intent"]) == ("en", "smalltalk")
    assert "You're welcome! Enjoy the fair." in thanks.text

    for answer in (hello, tomorrow, toilets, honey, thanks):
        english_only(answer.text)
    assert await language_of(chat, "john") == ("en", False)


async def test_english_is_chosen_with_its_button_and_kept(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY
    first = await chat("amina", "bonjour")
    assert first.lang == "fr"
    assert first.labels[-3:] == LANGUAGE_BUTTONS

    chosen = await chat.tap("amina", "English")
    assert chosen.lang == "en"
    assert "Language set: English." in chosen.text
    assert "Workshops" in chosen.labels
    assert await language_of(chat, "amina") == ("en", True)

    # A French word from someone who chose English does not switch them.
    again = await chat("amina", "bonjour")
    assert again.lang == "en"
    assert "What would you like to do?" in again.text

    # A whole registration in English, with the catalog's wording (the title in quotes).
    day = await chat.tap("amina", "Workshops")
    day = await chat.tap("amina", "Monday 14 December")
    assert "Workshops on Monday 14 December:" in day.text
    card = await chat.tap("amina", next(label for label in day.labels
                                        if label.startswith("Financement des projets")))
    assert card.lang == "en"
    assert "Led by: M. Karim Ouazzani" in card.text
    registered = await chat.tap("amina", "Register")
    assert "You are registered for “Financement des projets”" in registered.text
    for answer in (chosen, again, day, card, registered):
        english_only(answer.text)


async def test_an_english_sentence_keeps_the_language_chosen(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FIRST_DAY
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    info = await chat("amina", "where is the bathroom?")
    assert info.lang == "fr"
    assert await language_of(chat, "amina") == ("fr", True)


async def test_english_is_asked_for_in_words(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    prompt = await chat("amina", "langue")
    assert prompt.labels == LANGUAGE_BUTTONS
    switched = await chat("amina", "english")
    assert switched.lang == "en"
    assert "Language set: English." in switched.text
    assert (await chat("amina", "français")).lang == "fr"
    sentence = await chat("amina", "can you answer in English please?")
    assert (sentence.lang, sentence.body["intent"]) == ("en", "language")
    assert "Language set: English." in sentence.text
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    asked = await chat("karim", "الإنجليزية")
    assert asked.lang == "en"
    assert await language_of(chat, "karim") == ("en", True)


async def test_an_english_browser_gets_english_first(chat: Chat) -> None:
    answer = await chat("john", "A12", lang="en-GB")
    assert answer.lang == "en"
    assert answer.mentions("Welcome to", "Stand A12")
    assert answer.labels[-3:] == LANGUAGE_BUTTONS
    assert await language_of(chat, "john") == ("en", False)


async def test_english_is_chosen_on_telegram(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    welcome = await tg.say(1001, "/start")
    assert tg.labels(1001) == LANGUAGE_BUTTONS
    assert "Bienvenue" in welcome
    menu = await tg.tap(1001, "English")
    assert "Language set: English." in menu
    assert "Workshops" in tg.labels(1001)
    card = await tg.say(1001, "a 12")
    assert "Stand A12" in card and "Rate this stand" in tg.labels(1001)
    async with tg.app.sessions() as session:
        contact = (await session.scalars(select(Contact).where(Contact.user_id == "1001"))).one()
    assert (contact.language, contact.language_confirmed) == ("en", True)


async def test_english_readers_get_the_french_text_unless_an_english_one_is_given(
        chat: Chat) -> None:
    await chat("john", "hi")
    await chat.tap("john", "English")
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(chat.app.sessions)
    # A broadcast is written in French and Arabic: its French text's readers include English ones.
    assert await outbox.recipients("lang:fr") == 2
    assert await outbox.recipients("lang:ar") == 1
    now = dt.datetime(2026, 12, 13, 12, 0, tzinfo=CASABLANCA)
    french_arabic = {"fr": "Le salon ferme à 20:00.", "ar": "يغلق المعرض على الساعة 20:00."}
    await outbox.queue_broadcast(fair.id, "lang:fr", french_arabic, now)
    await outbox.queue_broadcast(fair.id, "all", {**french_arabic, "en": "The fair closes at 8pm."},
                                 now + dt.timedelta(minutes=1))
    await OutboxWorker(chat.app, clock=lambda: (now + dt.timedelta(minutes=5)).astimezone(
        dt.UTC)).drain()
    response = await chat.client.get("/chat/api/inbox", params={"session": chat.session("john")})
    body = await response.json()
    assert [item["text"] for item in body["replies"]] == [
        "Le salon ferme à 20:00.", "The fair closes at 8pm."]


async def test_whatsapp_english_readers_get_an_english_template_or_the_french_one(
        make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp(whatsapp_templates="broadcast:fr=salon_annonce")
    now = utcnow()
    long_ago = now - dt.timedelta(days=2)
    closing = Rendered(text="Le salon ferme à 20:00.", language="en")
    sent = await wa.channel.send_bulk("212600000301", "en", long_ago, "broadcast", closing, now)
    assert sent.status == "sent"
    template = wa.fake.messages("212600000301", "template")[-1].body["template"]
    assert (template["name"], template["language"]) == ("salon_annonce", {"code": "fr"})
    skipped = await wa.channel.send_bulk("212600000301", "en", long_ago, "reminder", closing,
                                         now)
    assert skipped.status == "skipped"
    assert "no template for reminder:en" in (skipped.reason or "")
    english = await make_whatsapp(whatsapp_templates="broadcast:fr=salon_annonce,"
                                                     "broadcast:en=fair_announcement")
    await english.channel.send_bulk("212600000302", "en", long_ago, "broadcast", closing, now)
    template = english.fake.messages("212600000302", "template")[-1].body["template"]
    assert (template["name"], template["language"]) == ("fair_announcement", {"code": "en"})


async def test_the_contacts_export_says_english(chat: Chat) -> None:
    await chat("john", "Hello, where is the honey stand please?")
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    languages = {row["user_id"]: row["language"] for row in await contact_rows(chat.app.sessions)}
    assert languages[chat.user_id("john")] == "en"
    assert languages[chat.user_id("amina")] == "fr"
