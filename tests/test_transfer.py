"""Continue on WhatsApp / Telegram: a web chat person asks for a link with a one-time code;
sent from the app (`LINK <code>`, `/start link_<code>`), it moves their language, workshops,
waiting-list places and saved stands there, once, within half an hour."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from bot.app import App
from storage.models import (
    Contact,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    SavedStand,
    Workshop,
)
from tests.conftest import Chat, ChatFactory
from tests.platforms import TelegramFactory, WhatsAppFactory
from tests.test_registration_conversation import NOW, small_workshop

WA_ID = "212600000077"
SALMA = 5077


async def web_visitor(chat: Chat, user: str, language: str = "Français") -> None:
    """A web visitor who registered for marketing-1 and saved stand A12."""
    await chat(user, "bonjour")
    await chat.tap(user, language)
    await chat(user, "/start ws_marketing-1")
    await chat.tap(user, "S'inscrire" if language == "Français" else "التسجيل")
    await chat(user, "A12")
    await chat.tap(user, "Ajouter à ma liste" if language == "Français" else "أضف إلى قائمتي")


async def holdings(app: App, channel: str, user_id: str) -> tuple[list[tuple[str, str]],
                                                                  list[str]]:
    """(workshop key, status) of the person's registrations, and their saved stands."""
    async with app.sessions() as session:
        contact = await session.scalar(select(Contact.id).where(
            Contact.channel == channel, Contact.user_id == user_id))
        registrations = (await session.execute(
            select(Workshop.key, Registration.status)
            .join(Workshop, Workshop.id == Registration.workshop_id)
            .where(Registration.contact_id == contact,
                   Registration.status != RegistrationStatus.CANCELLED))).all()
        stands = list(await session.scalars(select(SavedStand.stand_number)
                                            .where(SavedStand.contact_id == contact)))
    return [(key, str(status)) for key, status in registrations], stands


async def taken(app: App, key: str = "marketing-1") -> int:
    async with app.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Registration)
            .join(Workshop, Workshop.id == Registration.workshop_id)
            .where(Workshop.key == key, Registration.status.in_(
                [RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED])))
    return int(count or 0)


def code_in(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found, text
    return found.group(1)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_web_visitor_continues_on_whatsapp_with_their_workshop_and_list(
        make_whatsapp: WhatsAppFactory, make_chat: ChatFactory, database: str) -> None:
    wa = await make_whatsapp(database=database)
    chat = await make_chat(app=wa.app)
    chat.app.engine.clock = lambda: NOW
    await web_visitor(chat, "amina")
    registered = chat.history["amina"][-3]
    assert "Continuer sur WhatsApp" in registered.labels  # offered right after registering
    before = await taken(chat.app)

    menu = await chat("amina", "menu")
    offer = await chat.tap("amina", "Continuer sur WhatsApp")
    code = code_in(offer.text,
                   r"Continuer sur WhatsApp\u202f: https://wa\.me/212500000000\?text=LINK%20"
                   r"([A-Z0-9]{8})\b")
    assert "Continuer sur WhatsApp" in menu.labels
    assert f"LINK {code}" in offer.text
    assert "Le code ne sert qu'une fois, pendant 30 minutes." in offer.text

    answer = await wa.say(WA_ID, f"link {code.lower()}")

    assert "1 atelier et 1 stand enregistré sont maintenant ici." in answer
    assert "Vos rappels et les places proposées vous parviendront désormais ici." in answer
    assert await holdings(chat.app, "whatsapp", WA_ID) == ([("marketing-1", "confirmed")],
                                                           ["A12"])
    assert await holdings(chat.app, "web", chat.user_id("amina")) == ([], [])
    assert await taken(chat.app) == before
    async with chat.app.sessions() as session:
        reminders = await session.scalars(select(OutboxMessage.channel).where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.kind == "workshop_reminder"))
        assert set(reminders) == {"whatsapp"}  # the reminders go to the app now
    contact = await chat.app.engine.contacts.get("whatsapp", WA_ID)
    assert contact is not None and contact.language == "fr"

    again = await wa.say("212600000078", f"LINK {code}")
    assert "Ce code n'est pas valide" in again


async def test_the_telegram_link_moves_an_arabic_visitors_list_and_keeps_a_shared_workshop_once(
        make_telegram: TelegramFactory, make_chat: ChatFactory) -> None:
    tg = await make_telegram()
    chat = await make_chat(app=tg.app)
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat, capacity=5)
    # Salma registered on Telegram already; on the web too, then saved a stand.
    await tg.say(SALMA, "السلام عليكم", language_code="ar")
    await tg.tap(SALMA, "العربية")
    await tg.say(SALMA, "/start ws_marketing-1")
    await tg.tap(SALMA, "التسجيل")
    await web_visitor(chat, "salma", "العربية")
    assert await taken(chat.app) == 2

    await chat("salma", "القائمة")
    offer = await chat.tap("salma", "المتابعة على تيليغرام")
    code = code_in(offer.text, r"https://t\.me/tadamon_test_bot\?start=link_([A-Z0-9]{8})")
    answer = await tg.say(SALMA, f"/start link_{code}")

    # Her workshop was hers on Telegram already: only the stand is new there.
    assert answer == "انتقل رواق محفوظ واحد إلى هنا."
    assert "يصلح الرمز لمرة واحدة فقط، خلال \u206830\u2069 دقيقةً." in offer.text
    assert "المتابعة على تيليغرام" in offer.labels
    assert await holdings(chat.app, "telegram", str(SALMA)) == (
        [("marketing-1", "confirmed")], ["A12"])
    assert await holdings(chat.app, "web", chat.user_id("salma")) == ([], [])
    assert await taken(chat.app) == 1  # her second seat is free again


async def test_a_used_an_expired_and_wrong_codes_get_their_answers(
        make_whatsapp: WhatsAppFactory, make_chat: ChatFactory) -> None:
    wa = await make_whatsapp()
    chat = await make_chat(app=wa.app)
    chat.app.engine.clock = lambda: NOW
    await web_visitor(chat, "amina")
    await chat("amina", "menu")
    offer = await chat.tap("amina", "Continuer sur WhatsApp")
    code = code_in(offer.text, r"text=LINK%20([A-Z0-9]{8})")

    chat.app.engine.clock = lambda: NOW + dt.timedelta(minutes=31)
    expired = await wa.say(WA_ID, f"LINK {code}")
    assert ("Ce code n'est pas valide\u202f: il a peut-être déjà servi ou expiré. Demandez-en "
            "un nouveau au chat web.") in expired
    assert await holdings(chat.app, "web", chat.user_id("amina")) == (
        [("marketing-1", "confirmed")], ["A12"])

    for _attempt in range(4):  # five wrong codes in all, the expired one included
        wrong = await wa.say(WA_ID, "LINK ABCDEFGH")
        assert "Ce code n'est pas valide" in wrong
    chat.app.engine.clock = lambda: NOW
    await chat("amina", "menu")
    fresh = code_in((await chat.tap("amina", "Continuer sur WhatsApp")).text,
                    r"text=LINK%20([A-Z0-9]{8})")
    refused = await wa.say(WA_ID, f"LINK {fresh}")
    assert "Trop de codes erronés ont été essayés" in refused
    assert await holdings(chat.app, "web", chat.user_id("amina")) == (
        [("marketing-1", "confirmed")], ["A12"])
    # Someone else, within the limits, can still use it: it was not spent by the refusal.
    other = await wa.say("212600000099", f"LINK {fresh}")
    assert "1 atelier et 1 stand enregistré sont maintenant ici." in other


async def test_a_waiting_list_place_moves_with_its_position_and_the_language_with_it(
        make_telegram: TelegramFactory, make_chat: ChatFactory) -> None:
    tg = await make_telegram()
    chat = await make_chat(app=tg.app)
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat, capacity=1)
    for user in ("karim", "amina", "yassine"):  # one seat, then places 1 and 2 in the queue
        await chat(user, "السلام عليكم")
        await chat.tap(user, "العربية")
        card = await chat(user, "/start ws_marketing-1")
        await chat.tap(user, card.choices[0]["id"])  # register, or join the waiting list
    help_ = await chat("amina", "مساعدة")
    assert ("• المتابعة على واتساب أو تيليغرام: تنتقل معك ورشاتك وقائمتك، وتصلك التذكيرات "
            "هناك") in help_.text
    offer = await chat.tap("amina", "المتابعة على تيليغرام")
    code = code_in(offer.text, r"start=link_([A-Z0-9]{8})")

    # Her phone's Telegram is in French; she had chosen Arabic: Arabic comes with her.
    answer = await tg.say(SALMA, f"/start link_{code}", language_code="fr")

    assert answer == ("انتقلت ورشة واحدة إلى هنا.\n"
                      "ستصلك من الآن فصاعدًا تذكيراتك والمقاعد المقترحة عليك هنا.")
    async with chat.app.sessions() as session:
        queue = (await session.execute(
            select(Contact.channel, Registration.position)
            .join(Contact, Contact.id == Registration.contact_id)
            .where(Registration.status == RegistrationStatus.WAITLISTED)
            .order_by(Registration.position))).all()
    assert [tuple(row) for row in queue] == [("telegram", 1), ("web", 2)]
    contact = await chat.app.engine.contacts.get("telegram", str(SALMA))
    assert contact is not None and contact.language == "ar"
    menu = await tg.say(SALMA, "القائمة")
    assert "ماذا تريد أن تفعل؟" in menu


async def test_a_seat_on_the_web_wins_over_a_place_in_the_apps_waiting_list(
        make_telegram: TelegramFactory, make_chat: ChatFactory) -> None:
    tg = await make_telegram()
    chat = await make_chat(app=tg.app)
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat, capacity=1)
    await chat("salma", "bonjour")
    await chat.tap("salma", "Français")
    await chat("salma", "/start ws_marketing-1")
    await chat.tap("salma", "S'inscrire")
    await tg.say(SALMA, "bonjour", language_code="fr")
    await tg.tap(SALMA, "Français")
    await tg.say(SALMA, "/start ws_marketing-1")
    waiting = await tg.tap(SALMA, "Rejoindre la liste d'attente")
    assert "liste d'attente" in waiting
    await chat("salma", "menu")
    code = code_in((await chat.tap("salma", "Continuer sur Telegram")).text,
                   r"start=link_([A-Z0-9]{8})")

    answer = await tg.say(SALMA, f"/start link_{code}")

    assert "1 atelier est maintenant ici." in answer
    assert await holdings(chat.app, "telegram", str(SALMA)) == (
        [("marketing-1", "confirmed")], [])
    assert await holdings(chat.app, "web", chat.user_id("salma")) == ([], [])
    assert await taken(chat.app) == 1


async def test_a_code_opened_in_another_web_chat_moves_nothing(
        make_whatsapp: WhatsAppFactory, make_chat: ChatFactory) -> None:
    wa = await make_whatsapp()
    chat = await make_chat(app=wa.app)
    chat.app.engine.clock = lambda: NOW
    await web_visitor(chat, "amina")
    await chat("amina", "menu")
    code = code_in((await chat.tap("amina", "Continuer sur WhatsApp")).text,
                   r"text=LINK%20([A-Z0-9]{8})")
    await chat("karim", "bonjour")
    await chat.tap("karim", "Français")

    answer = await chat.post({"session": chat.session("karim"), "start": f"link_{code}"})

    assert "Ce code n'est pas valide" in answer.text
    assert await holdings(chat.app, "web", chat.user_id("amina")) == (
        [("marketing-1", "confirmed")], ["A12"])
    assert "1 atelier et 1 stand enregistré" in await wa.say(WA_ID, f"LINK {code}")
