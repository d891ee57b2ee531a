"""Registering for workshops in conversation: register, waiting list, cancel, the freed seat
offered and accepted, "my workshops" and the calendar file, in French and Arabic."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.i18n import FSI, PDI
from storage.models import OutboxMessage, Registration, RegistrationStatus, Workshop
from tests.conftest import Chat, ChatFactory
from tests.platforms import TelegramFactory

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))


async def small_workshop(chat: Chat, key: str = "marketing-1", capacity: int = 1) -> int:
    """The sample's workshop `key`, with room for `capacity` people."""
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == key)
                              .values(capacity=capacity))
        workshop_id = await session.scalar(select(Workshop.id).where(Workshop.key == key))
    await chat.app.state.bump_catalogue_version()
    assert workshop_id is not None
    return workshop_id


async def test_register_wait_cancel_offer_and_accept(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    workshop_id = await small_workshop(chat)

    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    card = await chat("amina", "/start ws_marketing-1")
    assert "Techniques de marketing" in card.text and "S'inscrire" in card.labels
    registered = await chat.tap("amina", "S'inscrire")
    assert "Inscription confirmée\u202f: «\u202fTechniques de marketing\u202f»" in registered.text
    assert ("Nous vous le rappellerons avant le début\u202f: ici, quand vous reviendrez sur "
            "cette page.") in registered.text
    calendar = registered.replies[0]["media"][0]
    assert calendar["type"] == "document"
    ics = await chat.client.get(calendar["url"])
    body = (await ics.read()).decode()
    assert "BEGIN:VCALENDAR" in body and "SUMMARY:Techniques de marketing" in body
    assert "TZID=Africa/Casablanca" in body
    again = await chat("amina", "/start ws_marketing-1")
    assert "Inscription confirmée." in again.text and "Annuler mon inscription" in again.labels

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start ws_marketing-1")
    waiting = await chat.tap("karim", "الانضمام إلى لائحة الانتظار")  # the workshop is full
    assert f"أنت رقم {FSI}1{PDI} في لائحة الانتظار" in waiting.text

    mine = await chat("amina", "mes ateliers")
    assert "Vos ateliers" in mine.text and "inscription confirmée" in mine.text
    cancelled = await chat.tap("amina", "Annuler\u202f: Techniques de marketing")
    assert ("Votre inscription à l'atelier «\u202fTechniques de marketing\u202f» est annulée"
            in cancelled.text)

    # The freed seat is offered to Karim: queued for his inbox (test_web_inbox.py shows it
    # there), and he sees it in "my workshops" too, with its two buttons.
    async with chat.app.sessions() as session:
        kinds = [row.kind for row in await session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.id))]
        assert kinds[-1] == "offer"
        offered = await session.scalar(select(Registration.status).where(
            Registration.workshop_id == workshop_id,
            Registration.status == RegistrationStatus.OFFERED))
    assert offered == RegistrationStatus.OFFERED
    his = await chat("karim", "ورشاتي")
    assert "مقعد معروض عليك حتى" in his.text
    accepted = await chat.tap("karim", "قبول المقعد")
    assert "المقعد لك: تم تسجيلك في ورشة «تقنيات التسويق»" in accepted.text
    assert accepted.replies[0]["media"][0]["type"] == "document"

    # Amina cannot take it back with a forged button: offers are checked against the person.
    forged = await chat.post({"session": chat.session("amina"),
                              "choice": f"offer:yes:{workshop_id}"})
    assert "Cette proposition n'est plus valable." in forged.text
    late = await chat.tap("amina", "Mes ateliers")
    assert "Vous n'avez encore aucune inscription à un atelier." in late.text


async def test_cooperatives_only_and_overlap(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    coop_only = await small_workshop(chat, "coop-finance-1", capacity=40)
    card = await chat("amina", "/start ws_coop-finance-1")
    assert "S'inscrire" not in card.labels  # only a member of an exhibiting cooperative may
    assert "réservé aux coopératives et associations exposantes" in card.text
    refused = await chat.post({"session": chat.session("amina"), "choice": f"reg:{coop_only}"})
    assert "Vous êtes inscrit" not in refused.text

    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")
    # legal-framework-1, moved to the same morning: asked before registering
    async with chat.app.sessions() as session, session.begin():
        marketing = await session.scalar(select(Workshop).where(Workshop.key == "marketing-1"))
        assert marketing is not None
        await session.execute(update(Workshop).where(Workshop.key == "legal-framework-1")
                              .values(starts_at=marketing.starts_at + dt.timedelta(minutes=30),
                                      ends_at=marketing.ends_at + dt.timedelta(minutes=30)))
    await chat.app.state.bump_catalogue_version()
    await chat("amina", "/start ws_legal-framework-1")
    asked = await chat.tap("amina", "S'inscrire")
    assert "a lieu en même temps que l'un de vos ateliers" in asked.text
    assert "Techniques de marketing" in asked.text
    assert "Vous inscrire quand même\u202f?" in asked.text
    confirmed = await chat.tap("amina", "Oui, m'inscrire")
    assert ("Inscription confirmée\u202f: «\u202fCadre juridique de la coopérative\u202f»"
            in confirmed.text)
    calendar = await chat("amina", "mes ateliers")
    file = await chat.tap("amina", "Fichier agenda")
    body = (await (await chat.client.get(file.replies[0]["media"][0]["url"])).read()).decode()
    assert body.count("BEGIN:VEVENT") == 2 and "Vos ateliers" in calendar.text


async def test_organizers_see_fill_rates_and_the_card_shows_the_waiting_list(
    make_telegram: TelegramFactory, make_chat: ChatFactory,
) -> None:
    telegram = await make_telegram(organizers="telegram:900")
    chat = await make_chat(app=telegram.app)
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat)
    for person, register in (("amina", "S'inscrire"), ("karim", "Rejoindre la liste d'attente")):
        await chat(person, "bonjour")
        await chat.tap(person, "Français")
        await chat(person, "/start ws_marketing-1")
        await chat.tap(person, register)
    card = await chat("amina", "/start ws_marketing-1")
    assert "complet, 1 sur la liste d'attente" in card.text
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★")
    await chat("amina", "Bravo")

    await telegram.say(900, "bonjour")
    await telegram.tap(900, "Français")
    before = len(telegram.fake.calls_of("sendPhoto", 900))
    stats = await telegram.say(900, "/stats")
    assert "3 contacts (Telegram 1, Chat web 2)" in stats
    assert "Note du salon\u202f: 4,0 sur 5 (1 note)" in stats
    assert "1 inscription confirmée" in stats and "1 commentaire" in stats
    [chart] = telegram.fake.calls_of("sendPhoto", 900)[before:]
    assert "Notes du salon" in str(chart.params.get("caption"))
    assert "Ateliers, places prises" in stats
    assert "Techniques de marketing\u202f: 1 sur 1 (100\u202f%), 1 en attente" in stats
    assert "En tout\u202f:" in stats
    # anyone else gets the ordinary answer to an unknown command, never the figures
    refused = await chat("amina", "/stats")
    assert "places prises" not in refused.text
    assert "places prises" not in (await chat("karim", "statistiques")).text


async def test_browse_by_topic_and_by_language(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    programme = await chat("amina", "ateliers")
    assert "Par thème" in programme.labels and "Par langue" in programme.labels
    topics = await chat.tap("amina", "Par thème")
    assert "Techniques de marketing" in topics.labels
    assert len(topics.labels) == len(set(topics.labels))  # each topic once
    sessions = await chat.tap("amina", "Techniques de marketing")
    assert "Techniques de marketing\u202f: toutes les séances" in sessions.text
    # its two sessions, told apart by their day and time
    assert [label for label in sessions.labels if label.startswith("Techniques de marketing")
            ] == ["Techniques de marketing · dim. 13, 11:00",
                  "Techniques de marketing · mar. 15, 10:00"]
    await chat("amina", "ateliers")
    await chat.tap("amina", "Par langue")
    french = await chat.tap("amina", "En français")
    assert "Ateliers en français" in french.text
    assert "Techniques de marketing" in french.text  # given in Arabic and French
    # coop-finance-1 (Sunday 10:00, Salle 1) is given in Arabic only
    assert "10:00 · Gestion financière d'une coopérative · Salle 1" not in french.text
    assert "dimanche 13 décembre" in french.text

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "الورشات")
    arabic_topics = await chat.tap("karim", "حسب الموضوع")
    assert "التدبير المالي للتعاونية" in arabic_topics.labels
