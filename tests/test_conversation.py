"""Conversations through the web chat API, in French and in Arabic."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.i18n import FSI, PDI
from tests.conftest import Chat, ChatFactory
from tests.platforms import TelegramFactory


async def test_french_conversation(chat: Chat) -> None:
    first = await chat("amina", "bonjour")
    assert first.status == 200
    assert first.lang == "fr"
    assert first.mentions("Bienvenue", "Khouribga", "du 13 au 16 décembre 2026", "10:00")
    assert first.labels[-3:] == ["العربية", "Français", "English"]

    menu = await chat.tap("amina", "lang:fr")
    assert "Langue choisie\u202f: français." in menu.text
    assert "Ateliers" in menu.labels

    days = await chat.tap("amina", "Ateliers")
    assert "16 ateliers" in days.text
    assert any("dimanche 13 décembre" in label for label in days.labels)

    day = await chat.tap("amina", "dimanche 13 décembre")
    assert "Ateliers du dimanche 13 décembre" in day.text
    assert "places restantes" in day.text

    card = await chat("amina", "A12")
    assert card.mentions("Stand A12")
    assert "Noter ce stand" in card.labels


async def test_arabic_conversation(chat: Chat) -> None:
    first = await chat("karim", "السلام عليكم")
    assert first.lang == "ar"
    assert first.body["dir"] == "rtl"
    assert "مرحبًا بك" in first.text

    menu = await chat.tap("karim", "lang:ar")
    assert "الورشات" in menu.labels

    card = await chat("karim", "a 12")
    assert f"الرواق {FSI}A12{PDI}" in card.text
    assert card.body["dir"] == "rtl"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_conversation_on_both_databases(make_chat: ChatFactory, database: str) -> None:
    chat = await make_chat(database=database)
    await chat("sara", "bonjour")
    card = await chat("sara", "STAND B3")
    assert card.mentions("Stand B3")


async def test_language_can_be_switched_at_any_time(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    prompt = await chat("amina", "langue")
    assert prompt.labels == ["العربية", "Français", "English"]
    switched = await chat.tap("amina", "العربية")
    assert switched.lang == "ar"
    assert "تم اختيار اللغة" in switched.text
    info = await chat("amina", "معلومات")
    assert info.lang == "ar"
    assert "مفتوح كل يوم" in info.text
    back = await chat("amina", "français")
    assert back.lang == "fr"


async def test_deep_link_opens_the_stand_card_for_a_newcomer(chat: Chat) -> None:
    answer = await chat("visitor", "/start stand_C5")
    assert answer.mentions("Bienvenue", "Stand C5")
    # the language question comes last, so its buttons are at hand
    assert answer.replies[-1]["choices"][0]["id"] == "lang:ar"


async def test_workshop_card_through_a_deep_link(chat: Chat) -> None:
    await chat("amina", "bonjour")
    card = await chat("amina", "/start ws_marketing-1")
    assert "Techniques de marketing" in card.text
    assert card.mentions("Salle", "Places restantes")


async def test_unknown_stand_and_text_get_helpful_answers(chat: Chat) -> None:
    await chat("amina", "bonjour")
    missing = await chat("amina", "Z99")
    assert "Il n'y a pas de stand Z99" in missing.text
    lost = await chat("amina", "qwertyuiop")  # not understood: said so, and the ways on
    assert "je n'ai pas compris" in lost.text
    assert "Menu principal" in lost.labels or "Ateliers" in lost.labels
    nothing = await chat("amina", "?!")  # nothing to search for
    assert "je n'ai pas compris" in nothing.text
    assert "Ateliers" in nothing.labels
    command = await chat("amina", "/nonsense")
    assert "je n'ai pas compris" in command.text


async def test_name_lookup_finds_an_exhibitor(chat: Chat) -> None:
    await chat("amina", "bonjour")
    found = await chat("amina", "Al Wafae du tapis")
    assert found.mentions("Stand A18", "Coopérative Al Wafae du tapis")
    arabic = await chat("amina", "الوفاء")
    assert "A18" in arabic.text or any("A18" in label for label in arabic.labels)


async def test_forged_or_stale_button_gets_a_polite_answer(chat: Chat) -> None:
    await chat("amina", "bonjour")
    forged = await chat.post({"session": chat.session("amina"), "choice": "st:A1"})
    assert forged.status == 200
    assert "Ce bouton n'est plus valable" in forged.text
    assert "Stand A1 " not in forged.text


async def test_feedback_is_stored_with_its_comment(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    await chat("amina", "avis")
    thanks = await chat.tap("amina", "★★★★")
    assert "Merci pour votre note" in thanks.text
    await chat("amina", "Très bien organisé, merci !")
    stored = await chat.app.engine.feedback.for_contact(
        (await chat.app.engine.contacts.get("web", chat.user_id("amina"))).id  # type: ignore[union-attr]
    )
    assert [{key: item[key] for key in ("target_kind", "target_key", "rating", "comment",
                                         "language")} for item in stored] == [
        {"target_kind": "fair", "target_key": "khouribga-ess-2026", "rating": 4,
         "comment": "Très bien organisé, merci !", "language": "fr"}]


async def test_one_persons_flow_never_captures_anothers_text(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★★")
    await chat("karim", "bonjour")
    await chat("karim", "A12")
    karim = await chat.app.engine.contacts.get("web", chat.user_id("karim"))
    assert karim is not None
    assert await chat.app.engine.feedback.for_contact(karim.id) == []
    amina = await chat.app.engine.contacts.get("web", chat.user_id("amina"))
    assert amina is not None
    assert (await chat.app.engine.feedback.for_contact(amina.id))[0]["comment"] is None


async def test_a_replayed_message_has_no_second_effect(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat("amina", "avis")
    first = await chat.post({"session": chat.session("amina"), "choice": "rate:5", "id": "m-1"})
    again = await chat.post({"session": chat.session("amina"), "choice": "rate:5", "id": "m-1"})
    assert "Merci pour votre note" in first.text
    assert again.status == 200 and again.replies == []
    amina = await chat.app.engine.contacts.get("web", chat.user_id("amina"))
    assert amina is not None
    assert len(await chat.app.engine.feedback.for_contact(amina.id)) == 1


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"not json", 400),
        (b'{"text": "bonjour"}', 400),
        (b'{"session": 42, "text": "x"}', 400),
        (b'{"session": "SESSION", "choice": "' + b"x" * 100 + b'"}', 400),
        (b'{"session": "SESSION"}', 400),
        (b'{"session": "SESSION", "id": "no spaces please", "text": "x"}', 400),
        (b'["session"]', 400),
        (b"[" * 8000 + b"]" * 8000, 400),
        (b'{"session": "SESSION", "text": "' + b"x" * 20_000 + b'"}', 413),
    ],
)
async def test_malformed_requests_get_a_clear_error(chat: Chat, raw: bytes, status: int) -> None:
    await chat("amina", "bonjour")
    answer = await chat.post(None, raw=raw.replace(b"SESSION", chat.session("amina").encode()))
    assert answer.status == status
    assert answer.body["error"]


async def test_huge_and_empty_messages_get_polite_answers(chat: Chat) -> None:
    await chat("amina", "bonjour")
    long = await chat("amina", "a" * 5000)
    assert "trop long" in long.text
    empty = await chat("amina", "   ")
    assert "Voici ce que je peux faire pour vous" in empty.text


async def test_health_and_metrics(chat: Chat) -> None:
    health = await chat.client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    await chat("amina", "bonjour")
    metrics = await (await chat.client.get("/metrics")).text()
    assert 'tadamon_updates_in_total{channel="web"} 1.0' in metrics
    assert "tadamon_outbox_depth 0.0" in metrics
    page = await chat.client.get("/")
    assert page.status == 200
    assert "Tadamon" in await page.text()


async def test_redis_outage_degrades_without_losing_the_answer(
    make_chat: ChatFactory, redis_url: str
) -> None:
    from tests.servers import free_port

    chat = await make_chat(redis="fake", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = await chat("amina", "bonjour")
    assert answer.status == 200
    assert "Bienvenue" in answer.text
    card = await chat("amina", "A12")
    assert "Stand A12" in card.text
    health = await chat.client.get("/healthz")
    assert health.status == 503
    assert (await health.json())["redis"] == "down"


@pytest.mark.postgres
async def test_database_outage_gets_an_apology_in_the_persons_language(
    make_chat: ChatFactory, postgres_server: object
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    chat = await make_chat(database="postgres")
    await chat("karim", "السلام عليكم")
    name = chat.app.settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(chat.app.settings.database_url.replace("+asyncpg", "")
                                  .rsplit("/", 1)[0] + "/tadamon")
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            f"WHERE datname = '{name}'")
        # the catalogue is served from memory: finding a stand still works
        card = await chat("karim", "A12")
        assert f"الرواق {FSI}A12{PDI}" in card.text
        # a rating must be stored: the person is told it could not be, nothing pretends
        await chat("karim", "تقييم")
        answer = await chat.tap("karim", "rate:4")
        assert answer.status == 200
        assert "الخدمة غير متاحة مؤقتًا" in answer.text
        health = await chat.client.get("/healthz")
        assert health.status == 503
    finally:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await admin.close()
    recovered = await chat.post({"session": chat.session("karim"), "choice": "rate:4"})
    assert "شكرًا على تقييمك" in recovered.text
    karim = await chat.app.engine.contacts.get("web", chat.user_id("karim"))
    assert karim is not None
    assert [row["rating"] for row in await chat.app.engine.feedback.for_contact(karim.id)] == [4]


async def test_the_readme_curl_answers_in_french(chat: Chat) -> None:
    issued = await chat.client.post("/chat/api/sessions",
                                    headers={"Content-Type": "application/json"})
    assert issued.status == 201
    session = (await issued.json())["session"]
    answer = await chat.post(None, raw=f'{{"session":"{session}","text":"bonjour"}}'.encode())
    assert answer.status == 200
    assert answer.lang == "fr"
    assert "Bienvenue" in answer.text


async def test_a_flood_gets_one_notice_then_silence(chat: Chat) -> None:
    import time

    from storage import keys

    await chat("karim", "bonjour")
    for _attempt in range(5):
        user = f"flood{_attempt}"
        window = int(time.time()) // keys.THROTTLE_WINDOW
        answers = [await chat(user, "A12") for _ in range(keys.THROTTLE_LIMIT + 3)]
        if int(time.time()) // keys.THROTTLE_WINDOW == window:
            break  # all in one throttle window: the outcome is exact
    notices = [index for index, a in enumerate(answers) if "très vite" in a.text]
    assert notices == [keys.THROTTLE_LIMIT]
    assert all(a.replies == [] for a in answers[keys.THROTTLE_LIMIT + 1:])
    assert all(a.replies for a in answers[:keys.THROTTLE_LIMIT])
    other = await chat("karim", "A12")
    assert "Stand A12" in other.text


async def test_a_cooperative_member_links_their_chat_with_the_code(chat: Chat) -> None:
    from storage.cooperatives import CooperativeRepository

    codes = {code.exhibitor: code
             for code in await CooperativeRepository(chat.app.sessions).codes()}
    carpets = codes["coop-al-wafae-zarbia"]
    assert len({code.code for code in codes.values()}) == len(codes)
    first = await chat("fatima", f"/start coop_{carpets.code}")
    assert "Vous êtes maintenant lié à Coopérative Al Wafae du tapis, stand A18" in first.text
    contact = await chat.app.engine.contacts.get("web", chat.user_id("fatima"))
    assert contact is not None and contact.role == "cooperative"
    # a second member links with the code typed as text, in Arabic
    second = await chat("khadija", f"تعاونية {carpets.code.lower()}")
    assert f"الرواق {FSI}A18{PDI}" in second.text
    wrong = await chat("fatima", "COOP ZZZZZZZZ")
    assert "n'est pas valable" in wrong.text
    # a revoked code no longer works
    renewed = {code.exhibitor: code for code in
               await CooperativeRepository(chat.app.sessions).codes("coop-al-wafae-zarbia")}
    assert renewed["coop-al-wafae-zarbia"].code != carpets.code
    late = await chat("amina", f"coop_{carpets.code}")
    assert "n'est pas valable" in late.text
    assert await chat.app.engine.contacts.get("web", chat.user_id("khadija")) is not None
    from storage.models import Contact, Role

    async with chat.app.sessions() as session:
        linked = list(await session.scalars(
            select(Contact.user_id).where(Contact.role == Role.COOPERATIVE)))
    assert sorted(linked) == sorted(chat.user_id(person) for person in ("fatima", "khadija"))


async def test_an_organizer_composes_a_broadcast_in_chat(
    make_telegram: TelegramFactory, make_chat: ChatFactory,
) -> None:
    telegram = await make_telegram(organizers="telegram:900")
    chat = await make_chat(app=telegram.app)
    for person in ("amina", "karim"):
        await chat(person, "bonjour")
    await telegram.say(901, "bonjour")  # a visitor on Telegram
    # a visitor never reaches the broadcast conversation
    refused = await chat("amina", "/broadcast")
    assert "je n'ai pas compris" in refused.text
    forged = await chat.post({"session": chat.session("amina"), "choice": "bc:confirm"})
    assert "Ce bouton n'est plus valable" in forged.text

    await telegram.say(900, "bonjour")
    await telegram.tap(900, "Français")
    assert "Écrivez le texte en français" in await telegram.say(900, "/broadcast")
    assert "texte en arabe" in await telegram.say(900, "Le salon ferme à 20:00.")
    await telegram.say(900, "يغلق المعرض على الساعة 20:00.")
    assert "Tout le monde" in telegram.labels(900)
    await telegram.tap(900, "Tout le monde")
    preview = await telegram.tap(900, "Maintenant")
    # Each channel's people are counted; the web chat's find it on their page.
    assert "Aperçu" in preview and "Tout le monde\u202f: 4 personnes" in preview
    assert "• Telegram\u202f: 2 personnes\n• Chat web\u202f: 2 personnes" in preview
    assert "Les visiteurs du chat web le trouveront sur la page à leur retour" in preview
    assert "FR: Le salon ferme" in preview
    done = await telegram.tap(900, "Envoyer")
    assert "programmée pour 4 personnes" in done
    from storage.models import OutboxMessage

    async with chat.app.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert sorted((row.kind, row.channel) for row in rows) == (
        [("broadcast", "telegram")] * 2 + [("broadcast", "web")] * 2)


async def test_menu_words_fold_like_the_search_does(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "lang:ar")
    menu = await chat("karim", "القائمة")
    assert "الورشات" in menu.labels
    # ta marbuta typed as heh, Arabic-Indic and Eastern Arabic-Indic zero: the same menu.
    for text in ("القائمه", "٠", "۰", "0", "القائمة؟", "ٱلقائمة"):
        again = await chat("karim", text)
        assert (again.text, again.labels) == (menu.text, menu.labels), text
    # A word of signs only still means what it meant.
    help_ = await chat("karim", "?")
    assert (help_.text, help_.labels) == ((await chat("karim", "مساعدة")).text, help_.labels)
    assert help_.text != menu.text
