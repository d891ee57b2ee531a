"""Personal data in the chat: the short notice at first contact and the full one (the fair's own
text when the catalogue gives it), "my data" listing what is kept, and erasure on request,
confirmed with one tap: the seat goes to the waiting list, ratings stay as anonymous figures, and
the next message starts from zero; on the web chat, Telegram and WhatsApp, in French, Arabic,
Darija and English."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from bot.app import App, sample_catalogue
from bot.catalogue import import_catalogue
from storage.models import Contact, OutboxMessage, Registration, RegistrationStatus
from storage.reports import ReportRepository
from tests.conftest import Chat, ChatFactory
from tests.platforms import TelegramFactory, WhatsAppFactory
from tests.test_registration_conversation import small_workshop

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
NBSP = "\u202f"
FRENCH_NOTICE = (f"Vos données{NBSP}: je ne garde que ce qui vous sert ici (votre langue, vos "
                 "inscriptions, vos notes), au plus 180 jours après le salon.")
ARABIC_NOTICE = "بياناتك: لا أحتفظ إلا بما يفيدك هنا (لغتك، وتسجيلاتك، وتقييماتك)"
FRENCH_FAIR = "Salon provincial de l'économie sociale et solidaire de Khouribga"
CONFIRM_FR = f"Effacer toutes vos données{NBSP}? C'est définitif."
CONFIRM_AR = "هل تريد مسح كل بياناتك؟ لا يمكن التراجع عن ذلك."
CONFIRM_EN = "Erase all your data? This cannot be undone."
LANGUAGE_BUTTONS = ["العربية", "Français", "English"]


async def contacts(app: App, channel: str, user_id: str) -> int:
    """How many contact rows name this person."""
    async with app.sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(Contact)
            .where(Contact.channel == channel, Contact.user_id == user_id)) or 0)


async def fair_ratings(app: App) -> tuple[int, ...]:
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    return (await ReportRepository(app.sessions).fair_ratings(fair.id)).counts


async def french(chat: Chat, user: str) -> None:
    await chat(user, "bonjour")
    await chat.tap(user, "Français")


async def arabic(chat: Chat, user: str) -> None:
    await chat(user, "السلام عليكم")
    await chat.tap(user, "العربية")


# ---- the notice at first contact ---------------------------------------------------------

async def test_first_contact_shows_the_notice_before_the_language_question(chat: Chat) -> None:
    first = await chat("amina", "bonjour")

    assert FRENCH_NOTICE in first.text
    assert f"Écrivez «{NBSP}mes données{NBSP}» pour les voir ou les effacer." in first.text
    notice = next(item for item in first.replies if FRENCH_NOTICE in item["text"])
    assert [choice["label"] for choice in notice["choices"]] == ["Sur vos données"]
    assert first.replies[-2] is notice  # just before the language question
    assert [choice["label"] for choice in first.replies[-1]["choices"]] == LANGUAGE_BUTTONS

    full = await chat.tap("amina", "Sur vos données")
    assert full.body["intent"] == "privacy"
    assert f"Ce service est géré par les organisateurs de «{NBSP}{FRENCH_FAIR}" in full.text
    assert "le code de votre session du chat web" in full.text
    assert "rien n'est vendu ni donné à personne" in full.text
    assert "La loi 09-08 vous donne le droit de voir vos données" in full.text
    assert "tout est effacé 180 jours après le salon (à partir du 15 juin 2027)" in full.text
    assert "Mes données" in full.labels


async def test_first_contact_in_arabic_shows_the_notice_in_arabic(chat: Chat) -> None:
    first = await chat("karim", "السلام عليكم")

    assert first.lang == "ar" and ARABIC_NOTICE in first.text
    assert "اكتب «بياناتي» لرؤيتها أو مسحها." in first.text
    full = await chat.tap("karim", "عن بياناتك")
    assert "يُسيِّر هذه الخدمةَ منظمو «المعرض الإقليمي للاقتصاد الاجتماعي" in full.text
    assert "يخوّلك القانون رقم 09.08 الاطلاع على بياناتك ومسحها في أي وقت." in full.text


async def test_the_catalogues_own_notice_is_shown_when_given(chat: Chat, tmp_path: Path) -> None:
    data = yaml.safe_load(sample_catalogue().read_text(encoding="utf-8"))
    data["fair"]["privacy"] = {
        "fr": "Les données sont tenues par l'Association Tadamon Khouribga, 12 rue Atlas.",
        "ar": "تحتفظ بالبيانات جمعية تضامن خريبكة، 12 زنقة الأطلس."}
    path = tmp_path / "fair.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    await import_catalogue(chat.app.sessions, path)
    await chat.app.state.bump_catalogue_version()

    await chat("amina", "bonjour")
    full = await chat.tap("amina", "Sur vos données")
    assert "Les données sont tenues par l'Association Tadamon Khouribga" in full.text
    assert "Ce service est géré par" not in full.text  # not the default text
    assert f"écrivez «{NBSP}supprimer mes données{NBSP}»" in full.text  # the way stays
    await chat("karim", "سلام")
    arabic_full = await chat.tap("karim", "عن بياناتك")
    assert "تحتفظ بالبيانات جمعية تضامن خريبكة" in arabic_full.text


async def test_a_catalogue_without_a_privacy_text_loads_as_before(chat: Chat) -> None:
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None and fair.privacy is None


async def test_retention_days_come_from_the_settings(make_chat: ChatFactory) -> None:
    chat = await make_chat(retention_days=30)
    first = await chat("amina", "bonjour")
    assert "au plus 30 jours après le salon" in first.text
    full = await chat.tap("amina", "Sur vos données")
    assert "(à partir du 16 janvier 2027)" in full.text


# ---- what is kept --------------------------------------------------------------------------

async def test_my_data_names_the_registrations_and_saved_stands(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await french(chat, "amina")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")
    await chat("amina", "A12")
    await chat.tap("amina", "Ajouter à ma liste")

    mine = await chat("amina", "mes données")

    assert mine.body["intent"] == "privacy"
    assert f"Voici ce que je garde à votre sujet{NBSP}:" in mine.text
    assert f"votre langue{NBSP}: français" in mine.text
    assert "1 inscription à un atelier" in mine.text
    assert "Techniques de marketing · inscription confirmée" in mine.text
    assert f"1 stand enregistré{NBSP}: A12" in mine.text
    assert "vous recevez les annonces et les rappels" in mine.text
    assert mine.labels == ["Effacer mes données", "Sur vos données", "Menu principal"]


@pytest.mark.parametrize(("words", "language", "expected"), [
    ("بياناتي", "ar", "هذا ما أحتفظ به عنك:"),
    ("data dyali", "ar", "هذا ما أحتفظ به عنك:"),
    ("mes données", "fr", f"Voici ce que je garde à votre sujet{NBSP}:"),
    ("what data do you keep about me?", "en", "Here is what I keep about you:"),
])
async def test_my_data_in_every_language(chat: Chat, words: str, language: str,
                                         expected: str) -> None:
    await chat("salma", {"ar": "سلام", "fr": "bonjour", "en": "hello"}[language])
    await chat.tap("salma", {"ar": "العربية", "fr": "Français", "en": "English"}[language])

    answer = await chat("salma", words)

    assert answer.body["intent"] == "privacy" and expected in answer.text
    assert len(answer.labels) == 3


# ---- erasure ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("words", "language", "question"), [
    ("supprimer mes données", "fr", CONFIRM_FR),
    ("امسح بياناتي", "ar", CONFIRM_AR),
    ("delete my data", "en", CONFIRM_EN),
    ("bghit nms7 kolchi 3liya", "ar", CONFIRM_AR),
    ("ms7 les données dyali", "ar", CONFIRM_AR),
    ("je veux que vous effaciez mon numéro", "fr", CONFIRM_FR),
])
async def test_erasure_is_asked_for_and_confirmed_first(chat: Chat, words: str, language: str,
                                                       question: str) -> None:
    await chat("salma", {"ar": "سلام", "fr": "bonjour", "en": "hello"}[language])
    await chat.tap("salma", {"ar": "العربية", "fr": "Français", "en": "English"}[language])

    asked = await chat("salma", words)

    assert asked.body["intent"] == "privacy" and question in asked.text
    assert len(asked.labels) == 2
    assert await contacts(chat.app, "web", chat.user_id("salma")) == 1


async def test_no_keeps_everything(chat: Chat) -> None:
    await french(chat, "amina")
    await chat("amina", "A12")
    await chat.tap("amina", "Ajouter à ma liste")
    await chat("amina", "supprimer mes données")

    kept = await chat.tap("amina", "Non, garder")

    assert f"Rien n'a été effacé{NBSP}: vos données sont conservées." in kept.text
    assert await contacts(chat.app, "web", chat.user_id("amina")) == 1
    assert f"1 stand enregistré{NBSP}: A12" in (await chat("amina", "mes données")).text


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_yes_erases_frees_the_seat_keeps_ratings_and_starts_afresh(
        make_chat: ChatFactory, database: str) -> None:
    chat = await make_chat(database=database)
    app = chat.app
    app.engine.clock = lambda: NOW
    workshop_id = await small_workshop(chat, capacity=1)
    await french(chat, "amina")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")
    await chat("amina", "A12")
    await chat.tap("amina", "Ajouter à ma liste")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★")
    await arabic(chat, "karim")
    await chat("karim", "/start ws_marketing-1")
    await chat.tap("karim", "الانضمام إلى لائحة الانتظار")
    ratings = await fair_ratings(app)
    assert sum(ratings) == 1
    amina = chat.user_id("amina")
    old_token = chat.session("amina")

    await chat("amina", "supprimer mes données")
    erased = await chat.tap("amina", "Oui, effacer")

    assert erased.body["intent"] == "privacy"
    assert f"C'est fait{NBSP}: vos données sont effacées." in erased.text
    assert "1 inscription à un atelier annulée" in erased.text
    assert "1 place rendue, proposée à la personne suivante sur la liste d'attente" in erased.text
    assert "1 stand enregistré retiré" in erased.text
    assert "Votre note ou commentaire reste seulement comme un chiffre anonyme" in erased.text
    assert "nous repartons de zéro" in erased.text
    assert erased.labels == []
    assert await contacts(app, "web", amina) == 0
    assert await fair_ratings(app) == ratings  # the figures are unchanged
    # The freed seat is offered to Karim, who was waiting.
    async with app.sessions() as session:
        offered = await session.scalar(select(Registration.status).where(
            Registration.workshop_id == workshop_id))
        kinds = [row.kind for row in await session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.id))]
    assert offered == RegistrationStatus.OFFERED and kinds[-1] == "offer"
    assert "مقعد معروض عليك حتى" in (await chat("karim", "ورشاتي")).text

    # The session went with her: the page is told to get a new one (webchat.js does).
    gone = await chat.post({"session": old_token, "text": "bonjour"})
    assert gone.status == 401
    chat.tokens.pop("amina")
    again = await chat("amina", "bonjour")
    assert "Bienvenue à" in again.text and FRENCH_NOTICE in again.text
    assert [choice["label"] for choice in again.replies[-1]["choices"]] == LANGUAGE_BUTTONS
    assert await contacts(app, "web", chat.user_id("amina")) == 1


async def test_a_forged_or_stale_confirmation_erases_nothing(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await french(chat, "amina")
    minute = int(NOW.timestamp() // 60)
    # Never offered to her: refused.
    forged = await chat.post({"session": chat.session("amina"),
                              "choice": f"pvconfirm:yes:{minute}"})
    assert "Ce bouton n'est plus valable." in forged.text
    assert await contacts(chat.app, "web", chat.user_id("amina")) == 1

    # Offered, but tapped long after: the question is asked again, nothing is erased.
    await chat("amina", "supprimer mes données")
    chat.app.engine.clock = lambda: NOW + dt.timedelta(hours=2)
    late = await chat.tap("amina", "Oui, effacer")
    assert "Cette question est trop ancienne" in late.text and CONFIRM_FR in late.text
    assert await contacts(chat.app, "web", chat.user_id("amina")) == 1

    # Tapped again by someone erased meanwhile, from a new session: refused.
    yes = late.choice_id("Oui, effacer")
    await chat.tap("amina", "Oui, effacer")
    chat.tokens.pop("amina")
    await chat("amina", "bonjour")
    stale = await chat.post({"session": chat.session("amina"), "choice": yes})
    assert "Ce bouton n'est plus valable." in stale.text
    assert await contacts(chat.app, "web", chat.user_id("amina")) == 1


# ---- Telegram and WhatsApp -------------------------------------------------------------------

async def test_on_telegram_the_notice_my_data_and_erasure(make_telegram: TelegramFactory
                                                         ) -> None:
    telegram = await make_telegram()
    first = await telegram.say(501, "bonjour")
    assert FRENCH_NOTICE in first
    # The notice's button, under the language question's (a tap on any earlier message).
    before = len(telegram.fake.calls_of("sendMessage", 501))
    await telegram.fake.tap(501, "pvabout", message_id=telegram.last_keyboard_message(501))
    full = "\n".join(await telegram.settle(501, before))
    assert "votre identifiant Telegram" in full
    assert f"Langue choisie{NBSP}: français." in await telegram.say(501, "français")
    mine = await telegram.say(501, "mes données")
    assert "Voici ce que je garde à votre sujet" in mine
    # Typed as a command too, though Telegram's menu does not list it.
    assert "Voici ce que je garde à votre sujet" in await telegram.say(501, "/privacy")
    assert CONFIRM_FR in await telegram.say(501, "delete my data")
    erased = await telegram.tap(501, "Oui, effacer")
    assert "vos données sont effacées" in erased
    assert await contacts(telegram.app, "telegram", "501") == 0
    assert await telegram.app.state.load_session("telegram", "501") == {}  # nothing written back

    again = await telegram.say(501, "bonjour")
    assert "Bienvenue à" in again and FRENCH_NOTICE in again
    assert await contacts(telegram.app, "telegram", "501") == 1


async def test_on_whatsapp_in_arabic(make_whatsapp: WhatsAppFactory) -> None:
    whatsapp = await make_whatsapp()
    first = await whatsapp.say("212600000301", "السلام عليكم")
    assert ARABIC_NOTICE in first
    await whatsapp.tap("212600000301", "العربية")
    mine = await whatsapp.say("212600000301", "بياناتي")
    assert "هذا ما أحتفظ به عنك:" in mine and "رقمك على WhatsApp" in mine
    asked = await whatsapp.say("212600000301", "بغيت نمسح البيانات ديالي")
    assert CONFIRM_AR in asked
    erased = await whatsapp.tap("212600000301", "نعم، امسح")
    assert "تم: مُسحت بياناتك." in erased and "نبدأ من الصفر" in erased
    assert await contacts(whatsapp.app, "whatsapp", "212600000301") == 0

    again = await whatsapp.say("212600000301", "السلام عليكم")
    assert ARABIC_NOTICE in again
    assert await contacts(whatsapp.app, "whatsapp", "212600000301") == 1
