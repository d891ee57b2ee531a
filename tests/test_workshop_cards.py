"""Workshop cards and lists as people read them on the web chat, in French and Arabic: the
card's wording and speaker in the reader's script, the waiting-list button of a full workshop,
cooperatives-only workshops, sessions of one title told apart, long lists in pages, and the
calendar file's place and caption."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.i18n import FSI, PDI
from handlers.menu import MenuItem
from handlers.messages import _
from handlers.workshops import PAGE, WorkshopCard, WorkshopDay, WorkshopLanguage
from storage.cooperatives import CooperativeRepository
from storage.models import Registration, Workshop
from tests.conftest import Chat
from tests.platforms import WhatsAppFactory

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
NNBSP = "\u202f"
STALE = ("Ce bouton n'est plus valable", "هذا الزر لم يعد صالحًا")


def plain(text: str) -> str:
    """`text` without its isolates and marks: the words as read."""
    return re.sub("[\u200e\u200f\u2066-\u2069]", "", text)


def iso(text: str) -> str:
    """`text` as the Arabic catalog shows a parameter: between isolates."""
    return f"{FSI}{text}{PDI}"


async def workshop_id(chat: Chat, key: str, capacity: int | None = None) -> int:
    """The sample's workshop `key`, with room for `capacity` people when given."""
    async with chat.app.sessions() as session, session.begin():
        if capacity is not None:
            await session.execute(update(Workshop).where(Workshop.key == key)
                                  .values(capacity=capacity))
        found = await session.scalar(select(Workshop.id).where(Workshop.key == key))
    await chat.app.state.bump_catalogue_version()
    assert found is not None
    return found


async def french(chat: Chat, user: str) -> None:
    await chat(user, "bonjour")
    await chat.tap(user, "Français")


async def arabic(chat: Chat, user: str) -> None:
    await chat(user, "السلام عليكم")
    await chat.tap(user, "العربية")


async def registrations(chat: Chat, workshop: int) -> int:
    async with chat.app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Registration).where(
            Registration.workshop_id == workshop)) or 0)


async def test_the_card_reads_as_written_in_french_and_in_arabic(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await french(chat, "amina")
    card = await chat("amina", "/start ws_marketing-1")
    assert f"Quand{NNBSP}: dimanche 13 décembre, de 11:00 à 12:30" in card.text
    assert f"Animé par{NNBSP}: M. Youssef Bennani" in card.text
    assert f"Langue{NNBSP}: arabe et français" in card.text
    assert f"Places restantes{NNBSP}: 50 sur 50" in card.text
    assert "places restantes" not in card.text  # not "Places : 50 places restantes"
    assert f"Lieu{NNBSP}: Salle 2" in card.text  # not "Salle : Salle 2"

    await arabic(chat, "karim")
    card = await chat("karim", "/start ws_marketing-1")
    assert "الموعد: الأحد 13 دجنبر، من 11:00 إلى 12:30" in plain(card.text)
    assert "المؤطر: ذ. يوسف بناني" in plain(card.text)
    assert "Bennani" not in card.text and "M. " not in card.text
    assert "اللغة: العربية والفرنسية" in card.text
    assert "المكان: القاعة 2" in plain(card.text)  # not "القاعة: القاعة 2"
    assert f"المقاعد المتبقية: {iso('50')} من {iso('50')}" in card.text


async def test_a_full_workshop_offers_its_waiting_list(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await workshop_id(chat, "marketing-1", capacity=1)
    await french(chat, "amina")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")

    await french(chat, "karim")
    card = await chat("karim", "/start ws_marketing-1")
    assert "S'inscrire" not in card.labels and "Rejoindre la liste d'attente" in card.labels
    assert f"Places{NNBSP}: complet" in card.text
    waiting = await chat.tap("karim", "Rejoindre la liste d'attente")
    assert "liste d'attente" in waiting.text and "n° 1" in waiting.text

    await arabic(chat, "salma")
    card = await chat("salma", "/start ws_marketing-1")
    assert "التسجيل" not in card.labels and "الانضمام إلى لائحة الانتظار" in card.labels
    waiting = await chat.tap("salma", "الانضمام إلى لائحة الانتظار")
    assert f"أنت رقم {iso('2')} في لائحة الانتظار" in waiting.text


async def test_a_cooperatives_only_workshop_is_marked_and_not_offered_to_visitors(
        chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    governance = await workshop_id(chat, "governance-1")
    await french(chat, "amina")
    card = await chat("amina", "/start ws_governance-1")
    assert "S'inscrire" not in card.labels and "Rejoindre la liste d'attente" not in card.labels
    assert "liez" in card.text and "code" in card.text  # how a member registers
    # Typed: the two sessions, marked, each with a button; no register button.
    asked = await chat("amina", "je veux m'inscrire à l'atelier bonne gouvernance")
    assert asked.text.count("réservé aux coopératives") == 2, asked
    assert not any(label.startswith("S'inscrire") for label in asked.labels)
    # A register button they were never offered: the usual polite answer, no registration.
    forged = await chat.post({"session": chat.session("amina"), "choice": f"reg:{governance}"})
    assert any(stale in forged.text for stale in STALE), forged
    assert await registrations(chat, governance) == 0

    await arabic(chat, "karim")
    listed = await chat("karim", "/start ws_governance-1")
    assert "التسجيل" not in listed.labels
    day = await chat.tap("karim", WorkshopDay(1).pack())  # Monday 14 December
    assert "خاص بالتعاونيات" in day.text

    # A member of an exhibiting cooperative, linked with its code, may register.
    codes = {code.exhibitor: code
             for code in await CooperativeRepository(chat.app.sessions).codes()}
    await chat("fatima", f"/start coop_{codes['coop-al-wafae-zarbia'].code}")
    card = await chat("fatima", "/start ws_governance-1")
    assert "S'inscrire" in card.labels
    registered = await chat.tap("fatima", "S'inscrire")
    assert f"Inscription confirmée{NNBSP}: «{NNBSP}Bonne gouvernance" in registered.text
    assert await registrations(chat, governance) == 1


async def test_sessions_of_one_title_carry_their_day_and_long_lists_page(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await french(chat, "amina")
    await chat("amina", "ateliers")
    await chat.tap("amina", MenuItem("wsl").pack())
    first = await chat.tap("amina", WorkshopLanguage("ar").pack())
    cards = [label for choice, label in zip(first.choices, first.labels, strict=True)
             if choice["id"].startswith("ws:")]
    more_fr = chat.app.engine.renderer.text(_("More"), "fr")
    assert len(cards) == PAGE and more_fr in first.labels
    assert len(first.text.splitlines()) == PAGE + 1  # the title, then a line a workshop
    more = await chat.tap("amina", more_fr)
    rest = [label for choice, label in zip(more.choices, more.labels, strict=True)
            if choice["id"].startswith("ws:")]
    assert len(rest) == 13 - PAGE and more_fr not in more.labels
    labels = cards + rest
    assert len(set(labels)) == len(labels), labels  # no two buttons read the same
    assert "Bonne gouvernance · lun. 14, 14:30" in labels
    assert "Bonne gouvernance · mer. 16, 15:30" in labels
    assert "Financement des projets · lun. 14, 11:00" in labels
    # A page that does not exist, forged: the usual polite answer.
    forged = await chat.post({"session": chat.session("amina"), "choice": "wsl:ar:7"})
    assert any(stale in forged.text for stale in STALE), forged

    await arabic(chat, "karim")
    await chat("karim", "الورشات")
    await chat.tap("karim", MenuItem("wsl").pack())
    page = await chat.tap("karim", WorkshopLanguage("ar").pack())
    assert "المزيد" in page.labels
    more = await chat.tap("karim", "المزيد")
    assert "الحكامة الجيدة · الأربعاء 16، 15:30" in map(plain, more.labels), more.labels


async def test_the_calendar_file_names_the_venue_and_keeps_its_caption(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await french(chat, "amina")
    await chat("amina", "/start ws_marketing-1")
    registered = await chat.tap("amina", "S'inscrire")
    media = registered.replies[0]["media"][0]
    caption = _("Add it to your calendar.")
    assert media["caption"] == chat.app.engine.renderer.text(caption, "fr") != ""
    body = (await (await chat.client.get(media["url"])).read()).decode()
    unfolded = body.replace("\r\n ", "")
    assert ("LOCATION:Salle 2\\, Espace couvert des expositions\\, à côté de la place "
            "centrale\\, Khouribga") in unfolded

    await arabic(chat, "karim")
    await chat("karim", "/start ws_marketing-1")
    registered = await chat.tap("karim", "التسجيل")
    media = registered.replies[0]["media"][0]
    assert media["caption"] == chat.app.engine.renderer.text(caption, "ar") != ""
    body = (await (await chat.client.get(media["url"])).read()).decode().replace("\r\n ", "")
    assert "LOCATION:القاعة 2، فضاء المعارض المغطى، بجوار الساحة المركزية، خريبكة" in body


async def test_a_workshop_card_button_is_one_of_the_list(chat: Chat) -> None:
    """The day's list opens each card by its button (the pages do not change the ids)."""
    chat.app.engine.clock = lambda: NOW
    governance = await workshop_id(chat, "governance-1")
    await french(chat, "amina")
    await chat("amina", "/start ws_governance-1")
    day = await chat.tap("amina", WorkshopDay(1).pack())
    assert WorkshopCard(governance).pack() in [choice["id"] for choice in day.choices]


async def test_a_speaker_given_as_one_text_is_shown_as_written(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == "marketing-1")
                              .values(speaker="Nadia Chraibi", speaker_names=None))
    await chat.app.state.bump_catalogue_version()
    await arabic(chat, "karim")
    card = await chat("karim", "/start ws_marketing-1")
    assert "المؤطر: Nadia Chraibi" in plain(card.text)
    await french(chat, "amina")
    card = await chat("amina", "/start ws_marketing-1")
    assert f"Animé par{NNBSP}: Nadia Chraibi" in card.text


async def test_a_page_of_workshops_is_one_whatsapp_list_with_rows_told_apart(
        make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    wa.app.engine.clock = lambda: NOW
    person = "212600000777"
    await wa.say(person, "bonjour")
    await wa.tap(person, "Français")
    await wa.say(person, "ateliers")
    await wa.tap(person, MenuItem("wsl").pack())
    await wa.tap(person, WorkshopLanguage("ar").pack())
    last = wa.fake.messages(person, "interactive")[-1]
    rows = last.rows  # the fake refuses more than ten rows, titles over 24, descriptions over 72
    assert [row[0] for row in rows][-3:] == [WorkshopLanguage("ar", 1).pack(),
                                             MenuItem("wsl").pack(), "menu"]
    shown = [(title, description) for key, title, description in rows if key.startswith("ws:")]
    assert len(shown) == PAGE
    # A title cut to 24 characters may be another's: the description, in full, tells them apart.
    assert len({description or title for title, description in shown}) == PAGE
    assert ("Bonne gouvernance…", "Bonne gouvernance · lun. 14, 14:30") in shown


async def test_a_busy_day_pages_too(chat: Chat) -> None:
    """Nine workshops moved to the first day: seven, then "More" with the last two."""
    chat.app.engine.clock = lambda: NOW
    first_day = dt.datetime(2026, 12, 13, 9, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
    async with chat.app.sessions() as session, session.begin():
        keys = list(await session.scalars(select(Workshop.key).order_by(Workshop.starts_at)))
        for hour, key in enumerate(keys[:9]):
            starts = first_day + dt.timedelta(hours=hour)
            await session.execute(update(Workshop).where(Workshop.key == key).values(
                starts_at=starts, ends_at=starts + dt.timedelta(minutes=50)))
    await chat.app.state.bump_catalogue_version()
    await french(chat, "amina")
    await chat("amina", "ateliers")
    day = await chat.tap("amina", WorkshopDay(0).pack())
    cards = [choice for choice in day.choices if choice["id"].startswith("ws:")]
    assert len(cards) == PAGE and WorkshopDay(0, 1).pack() in [c["id"] for c in day.choices]
    rest = await chat.tap("amina", WorkshopDay(0, 1).pack())
    assert len([c for c in rest.choices if c["id"].startswith("ws:")]) == 9 - PAGE
    assert WorkshopDay(0, 2).pack() not in [c["id"] for c in rest.choices]
    assert "dimanche 13 décembre" in rest.text
