"""The Telegram channel against a fake Bot API server, in polling and in webhook mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import update

from bot.channels.telegram import split_text, telegram_length
from bot.i18n import FSI, PDI
from bot.worker import OutboxWorker
from handlers.messages import Rendered, RenderedChoice, RenderedMedia
from storage import keys
from storage.models import Contact, Workshop, utcnow
from storage.outbox import Outbox
from tests.conftest import TADAMON, cli_env
from tests.fakes.telegram import FakeTelegram
from tests.platforms import TelegramFactory
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
AMINA, KARIM = 1001, 1002


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_french_conversation(make_telegram: TelegramFactory, mode: str) -> None:
    tg = await make_telegram(mode)
    welcome = await tg.say(AMINA, "/start")
    assert "Bienvenue à «\u202fSalon provincial" in welcome
    assert tg.labels(AMINA) == ["العربية", "Français", "English"]

    menu = await tg.tap(AMINA, "Français")
    assert "Langue choisie\u202f: français." in menu
    assert "Ateliers" in tg.labels(AMINA)

    days = await tg.tap(AMINA, "Ateliers")
    assert "16 ateliers" in days

    card = await tg.say(AMINA, "/start stand_A18")
    assert "Stand A18" in card
    assert "Coopérative Al Wafae du tapis" in card

    typed = await tg.say(AMINA, "b 7")
    assert "Stand B7" in typed
    # every tap was answered, so no button keeps spinning
    assert len(tg.fake.calls_of("answerCallbackQuery")) == 2


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_arabic_conversation(make_telegram: TelegramFactory, mode: str) -> None:
    tg = await make_telegram(mode, database="postgres" if mode == "webhook" else "sqlite")
    welcome = await tg.say(KARIM, "/start", language_code="ar")
    assert "مرحبًا بك في" in welcome  # the Telegram language is the first guess
    menu = await tg.tap(KARIM, "العربية")
    assert "تم اختيار اللغة: العربية." in menu
    assert "الورشات" in tg.labels(KARIM)
    card = await tg.say(KARIM, "a 12")
    assert f"الرواق {FSI}A12{PDI}" in card
    info = await tg.say(KARIM, "معلومات")
    assert "مفتوح كل يوم" in info


async def test_commands_are_published_in_every_language(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    by_language = {call.params.get("language_code"): call.params["commands"]
                   for call in tg.fake.calls_of("setMyCommands")}
    assert set(by_language) == {"fr", "ar", "en", None}
    french = {item["command"]: item["description"] for item in by_language["fr"]}
    arabic = {item["command"]: item["description"] for item in by_language["ar"]}
    english = {item["command"]: item["description"] for item in by_language["en"]}
    assert french["workshops"] == "Ateliers"
    assert arabic["workshops"] == "الورشات"
    assert english["workshops"] == "Workshops"
    assert english["lang"] == "Change language"
    assert {"menu", "lang", "workshops", "stands", "my", "feedback", "stop", "help"} <= set(
        french)


async def test_forged_callback_data_gets_a_polite_answer(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(AMINA, "bonjour")
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.tap(AMINA, "st:Z9")
    texts = await tg.settle(AMINA, before)
    assert any("Ce bouton n'est plus valable" in text for text in texts)
    assert tg.fake.calls_of("answerCallbackQuery")


async def test_webhook_refuses_a_wrong_secret_and_malformed_updates(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram("webhook")
    update = tg.fake.message(AMINA, "bonjour")
    async with aiohttp.ClientSession() as client:
        url = f"{tg.base_url}/telegram/webhook"
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with client.post(url, json=update, headers=headers) as response:
                assert response.status == 401
        secret = tg.app.settings.telegram_webhook_secret.get_secret_value()
        good = {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with client.post(url, data=b"{not json", headers=good) as response:
            assert response.status == 400
        async with client.post(url, json={"update_id": "x"}, headers=good) as response:
            assert response.status == 400
    await tg.channel.idle()
    assert tg.fake.calls_of("sendMessage", AMINA) == []
    assert tg.fake.calls_of("setWebhook")[0].params["secret_token"] == secret


async def test_a_replayed_update_has_one_effect(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram("webhook")
    await tg.say(AMINA, "bonjour")
    await tg.tap(AMINA, "Français")
    await tg.say(AMINA, "avis")
    rating = tg.fake.callback(AMINA, tg.button(AMINA, "★★★★★"))
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    assert await tg.fake.push(rating) == 200
    await tg.settle(AMINA, before)
    assert await tg.fake.push(rating) == 200  # Telegram delivers again: at least once
    await tg.channel.idle()
    assert len(tg.fake.calls_of("sendMessage", AMINA)) == before + 1
    contact = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert contact is not None
    assert len(await tg.app.engine.feedback.for_contact(contact.id)) == 1


async def test_too_many_requests_pauses_then_succeeds(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(AMINA, "bonjour")
    tg.fake.fail("sendMessage", status=429, retry_after=1, chat_id=AMINA)
    card = await tg.say(AMINA, "A12")
    assert "Stand A12" in card
    statuses = [call.status for call in tg.fake.calls_of("sendMessage", AMINA)]
    assert statuses[-2:] == [429, 200]
    refused, sent = tg.fake.calls_of("sendMessage", AMINA)[-2:]
    assert refused.params["text"] == sent.params["text"]
    assert sent.at - refused.at >= 0.9  # the retry waited for retry_after


async def test_blocked_user_is_marked_unreachable(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(AMINA, "bonjour")
    sent = len(tg.fake.calls_of("sendMessage", AMINA))
    tg.fake.fail("sendMessage", status=403, chat_id=AMINA)
    await tg.fake.send_text(AMINA, "A12")
    await tg.fake.wait_for("sendMessage", AMINA, count=sent + 1)
    await tg.channel.idle()
    # the first refusal stops the rest of that answer
    assert len(tg.fake.calls_of("sendMessage", AMINA)) == sent + 1
    contact = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert contact is not None and contact.unreachable
    # unblocking and writing again makes them reachable
    await tg.say(AMINA, "A12")
    contact = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert contact is not None and not contact.unreachable


async def test_server_errors_are_retried(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    tg.fake.fail("getUpdates", status=500, times=2)
    tg.fake.fail("sendMessage", status=500, times=2, chat_id=AMINA)
    welcome = await tg.say(AMINA, "bonjour")
    assert "Bienvenue" in welcome
    assert [call.status for call in tg.fake.calls_of("sendMessage", AMINA)][:3] == [
        500, 500, 200]


async def test_group_chat_is_told_once_then_quiet(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    group = -5005
    await tg.fake.send_text(AMINA, "bonjour tout le monde", chat_type="group", chat_id=group)
    notice = await tg.fake.wait_for("sendMessage", group)
    assert "Je réponds uniquement en conversation privée" in (notice[0].text or "")
    assert "t.me/tadamon_test_bot" in (notice[0].text or "")
    await tg.fake.send_text(KARIM, "A12", chat_type="group", chat_id=group)
    await tg.fake.send_text(KARIM, "/menu", chat_type="group", chat_id=group)
    await tg.say(KARIM, "bonjour")  # a private message, to know the group ones were handled
    assert len(tg.fake.calls_of("sendMessage", group)) == 1
    assert await tg.app.engine.contacts.get("telegram", str(AMINA)) is None


async def test_stickers_voice_and_edits(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(AMINA, "bonjour")
    await tg.tap(AMINA, "Français")
    sticker = {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False}
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.push(tg.fake.message(AMINA, None, sticker=sticker))
    texts = await tg.settle(AMINA, before)
    assert "Je ne sais lire que les messages écrits" in texts[0]
    voice = {"file_id": "v1", "file_unique_id": "u2", "duration": 3}
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.push(tg.fake.message(AMINA, None, voice=voice))
    assert "Je ne sais lire" in (await tg.settle(AMINA, before))[0]
    location = tg.fake.message(AMINA, None, location={"latitude": 32.88, "longitude": -6.9})
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.push(location)
    assert "Ouvert tous les jours" in "\n".join(await tg.settle(AMINA, before))
    edited = tg.fake.message(AMINA, "A12")
    edited["edited_message"] = edited.pop("message")
    edited["edited_message"]["edit_date"] = edited["edited_message"]["date"]
    await tg.fake.push(edited)
    await tg.fake.push({"update_id": tg.fake.next_update_id(),
                        "poll": {"id": "p", "question": "?", "options": [],
                                 "total_voter_count": 0, "is_closed": False,
                                 "is_anonymous": True, "type": "regular",
                                 "allows_multiple_answers": False}})
    card = await tg.say(AMINA, "A12")  # still alive, and the edit had no answer
    assert card.count("Stand A12") == 1


async def test_replies_render_html_media_and_long_texts(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    long = " ".join(f"mot{index}" for index in range(1500)) + " <b>&</b>"
    rendered = Rendered(
        text=long, language="fr",
        choices=(RenderedChoice("menu", "Menu"), RenderedChoice("m:ws", "Ateliers")),
        media=(
            RenderedMedia(kind="image", data=b"\x89PNG\r\n\x1a\nfake", filename="map.png",
                          mime="image/png", caption="Plan <A18>"),
            RenderedMedia(kind="document", data=b"BEGIN:VCALENDAR", filename="atelier.ics",
                          mime="text/calendar"),
            RenderedMedia(kind="location", latitude=32.88, longitude=-6.91),
        ),
    )
    await tg.channel.deliver(AMINA, [rendered])
    photo = tg.fake.calls_of("sendPhoto", AMINA)[0]
    assert photo.files["photo"][1] == b"\x89PNG\r\n\x1a\nfake"
    assert photo.result["caption"] == "Plan <A18>"
    assert tg.fake.calls_of("sendDocument", AMINA)[0].files["document"][0] == "atelier.ics"
    assert tg.fake.calls_of("sendLocation", AMINA)[0].params["latitude"] == 32.88
    messages = tg.fake.calls_of("sendMessage", AMINA)
    assert len(messages) >= 3
    assert all(call.status == 200 for call in messages)
    shown = " ".join(call.result["text"] for call in messages)
    assert shown.split() == long.split()  # no word cut, the markup shown as text
    assert messages[-1].params.get("reply_markup") is not None
    assert all(call.params.get("reply_markup") is None for call in messages[:-1])


async def test_requests_without_files_go_as_json_and_files_as_multipart(
        make_telegram: TelegramFactory) -> None:
    """JsonSession sends a message as a JSON body, the bot's defaults filled in, and leaves a
    picture to aiogram's multipart form; the second send of the same picture is its file_id,
    JSON again. An aiogram release that changes what JsonSession relies on fails here."""
    tg = await make_telegram()
    picture = RenderedMedia(kind="image", data=b"\x89PNG\r\n\x1a\nplan", filename="plan.png",
                            mime="image/png", caption="Plan de la zone A")
    rendered = Rendered(text="Que souhaitez-vous faire\u202f?", language="fr", media=(picture,),
                        choices=(RenderedChoice("m:ws", "Ateliers"),
                                 RenderedChoice("m:st", "Stands & coopératives")))
    await tg.channel.deliver(AMINA, [rendered])
    await tg.channel.deliver(AMINA, [rendered])
    first, again = tg.fake.calls_of("sendPhoto", AMINA)
    assert first.content_type == "multipart/form-data"
    assert first.files["photo"] == ("plan.png", b"\x89PNG\r\n\x1a\nplan")
    assert first.params["caption"] == "Plan de la zone A" and first.params["parse_mode"] == "HTML"
    assert again.content_type == "application/json" and not again.files
    assert again.params["photo"] == first.result["photo"][-1]["file_id"]
    message = tg.fake.calls_of("sendMessage", AMINA)[-1]
    assert message.content_type == "application/json" and message.status == 200
    assert message.params == {
        "chat_id": AMINA, "text": "Que souhaitez-vous faire\u202f?", "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True}, "disable_web_page_preview": True,
        "reply_markup": {"inline_keyboard": [[
            {"text": "Ateliers", "callback_data": "m:ws"}],
            [{"text": "Stands & coopératives", "callback_data": "m:st"}]]},
    }


async def test_replies_count_against_the_bots_rate(make_telegram: TelegramFactory) -> None:
    """A reply does not wait for the bot's send-rate bucket, but takes a token for each message
    it sent, so the broadcasts booked after it leave room for it."""
    tg = await make_telegram(telegram_rate=0.0001)  # so slow that nothing refills meanwhile
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    welcome = await tg.say(AMINA, "/start")
    assert "Bienvenue" in welcome
    sent = len(tg.fake.calls_of("sendMessage", AMINA)) - before
    tokens = float(await tg.app.redis.hget(keys.rate_bucket("telegram"), "tokens") or "nan")
    assert 1 - sent - 0.01 <= tokens <= 1 - sent + 0.01


async def test_a_reply_does_not_wait_behind_a_broadcast(make_telegram: TelegramFactory) -> None:
    """While a worker sends a broadcast at the bot's rate (1 a second here), someone who writes
    gets their answer at once, not after the broadcast."""
    tg = await make_telegram(telegram_rate=1)
    app = tg.app
    recipients = [5000 + index for index in range(8)]
    async with app.sessions() as session, session.begin():
        session.add_all([Contact(channel="telegram", user_id=str(chat), language="fr")
                         for chat in recipients])
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    await Outbox(app.sessions).queue_broadcast(
        fair.id, "all", {"fr": "Le salon ouvre à 10 h.", "ar": "يفتح المعرض على 10."},
        utcnow(), urgent=True)
    stop = asyncio.Event()
    worker = asyncio.create_task(OutboxWorker(app).run(stop))
    try:
        await tg.fake.wait_for("sendMessage", recipients[0])
        assert "Bienvenue" in await tg.say(AMINA, "bonjour")
        delivered = {call.chat_id for call in tg.fake.calls_of("sendMessage")} & set(recipients)
        assert len(delivered) < len(recipients)  # the broadcast is still going out
        for chat in recipients:  # and it goes on to the end
            await tg.fake.wait_for("sendMessage", chat, timeout=30)
    finally:
        stop.set()
        await worker
    assert [len(tg.fake.calls_of("sendMessage", chat)) for chat in recipients] == [1] * 8


async def test_a_freed_seat_is_offered_on_telegram_and_accepted(
    make_telegram: TelegramFactory,
) -> None:
    """Amina registers (and gets the .ics), Karim waits; Amina cancels, the worker sends Karim
    the offer with its buttons, and his tap gives him the seat."""
    tg = await make_telegram()
    app = tg.app
    now = dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
    app.engine.clock = lambda: now
    async with app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == "marketing-1")
                              .values(capacity=1))
    await app.state.bump_catalogue_version()

    await tg.say(AMINA, "/start")
    await tg.tap(AMINA, "Français")
    await tg.say(AMINA, "/start ws_marketing-1")
    assert ("Inscription confirmée\u202f: «\u202fTechniques de marketing\u202f»"
            in await tg.tap(AMINA, "S'inscrire"))
    document = tg.fake.calls_of("sendDocument", AMINA)[-1]
    assert b"BEGIN:VCALENDAR" in document.files["document"][1]

    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    await tg.say(KARIM, "/start ws_marketing-1")
    assert "لائحة الانتظار" in await tg.tap(KARIM, "الانضمام إلى لائحة الانتظار")

    await tg.say(AMINA, "/my")
    assert "annulée" in await tg.tap(AMINA, "Annuler\u202f: Techniques de marketing")
    assert await OutboxWorker(app, clock=lambda: now).drain() == 1
    offer = tg.fake.calls_of("sendMessage", KARIM)[-1]
    assert "خبر سار" in (offer.text or "")
    assert tg.labels(KARIM) == ["قبول المقعد", "رفض"]
    assert "المقعد لك" in await tg.tap(KARIM, "قبول المقعد")
    mine = await tg.say(KARIM, "/my")
    assert "مسجل" in mine


def test_split_text_keeps_words_and_limits() -> None:
    text = ("كلمة " * 3000) + "A12"
    pieces = split_text(text)
    assert all(telegram_length(piece) <= 4096 for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    assert split_text("court") == ["court"]
    emoji = "🌿" * 3000
    assert all(telegram_length(piece) <= 4096 for piece in split_text(emoji))


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_tadamon_run_serves_telegram(mode: str, tmp_path: Path, redis_url: str) -> None:
    """The console script, as an operator starts it, talking to the fake Bot API."""
    async with FakeTelegram() as fake:
        port = free_port()
        env = cli_env(**{
            "TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/run.db",
            "TADAMON_REDIS_URL": redis_url,
            "TADAMON_HTTP_PORT": str(port),
            "TADAMON_TELEGRAM_TOKEN": fake.token,
            "TADAMON_TELEGRAM_API_BASE": fake.base_url,
        })
        if mode == "webhook":
            env["TADAMON_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram/webhook"
        process = await asyncio.create_subprocess_exec(
            TADAMON, "run", cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            await fake.wait_for("setWebhook" if mode == "webhook" else "getUpdates",
                                timeout=60)
            for user, text, expected in ((AMINA, "bonjour", "Bienvenue"),
                                         (KARIM, "السلام عليكم", "مرحبًا بك")):
                if mode == "webhook":
                    status = 0
                    for _ in range(50):  # the HTTP server may still be starting
                        status = await fake.send_text(user, text)
                        if status == 200:
                            break
                        await asyncio.sleep(0.2)
                    assert status == 200
                else:
                    await fake.send_text(user, text)
                sent = await fake.wait_for("sendMessage", user, timeout=30)
                assert expected in (sent[0].text or "")
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, err.decode()
        assert b"telegram: on as @tadamon_test_bot" in err
