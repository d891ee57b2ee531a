"""The WhatsApp channel against a fake Graph API, with webhooks signed like Meta's."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import signal
import subprocess
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.whatsapp import shorten
from bot.i18n import FSI, PDI
from handlers.messages import Rendered, RenderedChoice
from storage import keys
from storage.models import OutboxMessage, OutboxStatus, utcnow
from tests.conftest import TADAMON, cli_env
from tests.fakes.whatsapp import FakeWhatsApp
from tests.platforms import WhatsAppFactory
from tests.servers import free_port

AMINA, KARIM = "212600000101", "212600000102"


async def test_verification_handshake(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    assert await wa.fake.verify(wa.url) == (200, "1158201444")
    status, _body = await wa.fake.verify(wa.url, token="guess")
    assert status == 403


async def test_unsigned_or_forged_webhooks_are_refused(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    envelope = wa.fake.text_message(AMINA, "bonjour")
    assert await wa.fake.post_webhook(wa.url, envelope, signature=None) == 401
    assert await wa.fake.post_webhook(wa.url, envelope, signature="wrong") == 401
    assert await wa.fake.post_webhook(wa.url, envelope, signature="sha256=00") == 401
    # a body re-serialised differently from Meta's bytes no longer matches their signature
    resent = wa.fake.encode(envelope).replace(b'"bonjour"', b'"bonjour" ')
    assert await wa.fake.post_webhook(wa.url, envelope, raw=resent,
                                      signature=wa.fake.sign(wa.fake.encode(envelope))) == 401
    await wa.channel.idle()
    assert wa.fake.messages() == []
    assert await wa.app.engine.contacts.get("whatsapp", AMINA) is None
    assert await wa.channel.inbox.pending() == 0


async def test_french_conversation_through_buttons_and_lists(
    make_whatsapp: WhatsAppFactory,
) -> None:
    wa = await make_whatsapp()
    welcome = await wa.say(AMINA, "bonjour")
    assert "Bienvenue à «\u202fSalon provincial" in welcome
    assert wa.labels(AMINA) == ["العربية", "Français", "English"]
    assert wa.fake.messages(AMINA, "interactive")[-1].interactive["type"] == "button"

    menu = await wa.tap(AMINA, "Français")
    assert "Langue choisie\u202f: français." in menu
    assert wa.fake.messages(AMINA, "interactive")[-1].interactive["type"] == "list"
    assert "Ateliers" in wa.labels(AMINA)

    days = await wa.tap(AMINA, "m:ws")
    assert "16 ateliers" in days
    day = await wa.tap(AMINA, "wsd:0")
    assert "Ateliers du dimanche 13 décembre" in day

    card = await wa.say(AMINA, "STAND A18")  # the click-to-chat text of a QR poster
    assert "Stand A18" in card
    assert "Coopérative Al Wafae du tapis" in card
    # every inbound message was marked as read
    assert len(wa.fake.messages(type="read")) == 5


async def test_arabic_conversation(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp(database="postgres")
    welcome = await wa.say(KARIM, "السلام عليكم")
    assert "مرحبًا بك في" in welcome
    menu = await wa.tap(KARIM, "العربية")
    assert "تم اختيار اللغة: العربية." in menu
    interactive = wa.fake.messages(KARIM, "interactive")[-1].interactive
    assert interactive["action"]["button"] == "اختر"
    card = await wa.say(KARIM, "رواق A12")
    assert f"الرواق {FSI}A12{PDI}" in card
    contact = await wa.app.engine.contacts.get("whatsapp", KARIM)
    assert contact is not None and contact.language == "ar"


async def test_more_than_ten_choices_are_paged(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    await wa.tap(AMINA, "m:st")
    await wa.tap(AMINA, "zone:0")  # Hall A: 36 stands, shown eight at a time
    first = wa.fake.messages(AMINA, "interactive")[-1]
    rows = first.rows
    assert len(rows) == 10
    assert rows[-1][0] == "wa:more:1"
    assert rows[-1][1] == "Suite"
    shown = {row[0] for row in rows[:-1]}
    await wa.tap(AMINA, "wa:more:1")
    second = wa.fake.messages(AMINA, "interactive")[-1].rows
    assert second[0][0] not in shown
    assert all(len(title) <= 24 for _id, title, _d in first.rows + second)
    # a row from the second page works like any other choice
    card = await wa.tap(AMINA, "menu")
    assert "Que souhaitez-vous faire" in card


async def test_a_more_row_of_a_list_gone_gets_the_menu_once_in_arabic(
        make_whatsapp: WhatsAppFactory) -> None:
    """A "more" tapped after the list's pages expired is an ordinary message of that person:
    the main menu in their language, and Meta's redelivery of the same tap answers nothing."""
    wa = await make_whatsapp()
    await wa.say(KARIM, "السلام عليكم")
    await wa.tap(KARIM, "العربية")
    await wa.tap(KARIM, "m:st")
    await wa.tap(KARIM, "zone:0")
    assert wa.options(KARIM)[-1][0] == "wa:more:1"
    await wa.app.redis.delete(keys.choice_pages("whatsapp", KARIM))  # a day later
    tap = wa.fake.list_reply(KARIM, "wa:more:1")
    menu = await wa.post(tap, KARIM)
    assert "ماذا تريد أن تفعل؟" in menu
    assert "Que souhaitez-vous faire" not in menu
    sent = len(wa.fake.messages(KARIM))
    assert await wa.fake.post_webhook(wa.url, tap) == 200
    await wa.channel.idle()
    assert len(wa.fake.messages(KARIM)) == sent


async def test_a_more_row_delivered_twice_shows_its_page_once(
        make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    await wa.tap(AMINA, "m:st")
    await wa.tap(AMINA, "zone:0")
    tap = wa.fake.list_reply(AMINA, "wa:more:1")
    await wa.post(tap, AMINA)
    sent = len(wa.fake.messages(AMINA))
    assert await wa.fake.post_webhook(wa.url, tap) == 200
    await wa.channel.idle()
    assert len(wa.fake.messages(AMINA)) == sent


async def test_replies_count_against_the_numbers_rate(make_whatsapp: WhatsAppFactory) -> None:
    """Replies pass the number's send window: at a limit of one message a second, the
    welcome's messages reach Meta a second apart. Each takes a token of the number's shared
    bucket, so the bulk messages booked after them leave room for them."""
    wa = await make_whatsapp(whatsapp_rate=1)
    assert "Bienvenue" in await wa.say(AMINA, "bonjour")
    arrivals = [call.at for call in wa.fake.messages(AMINA)]
    assert len(arrivals) >= 2
    assert all(later - earlier > 0.99 for earlier, later in itertools.pairwise(arrivals))
    tokens = float(await wa.app.redis.hget(keys.rate_bucket("whatsapp"), "tokens") or "nan")
    # A fresh bucket (one message of burst) charged once per message, refilled at 1/s between.
    assert tokens < 1.0


async def test_a_replayed_webhook_has_one_effect(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    await wa.say(AMINA, "avis")
    rating = wa.fake.list_reply(AMINA, "rate:5")
    await wa.post(rating, AMINA)
    sent = len(wa.fake.messages(AMINA))
    assert await wa.fake.post_webhook(wa.url, rating) == 200  # Meta retries
    await wa.channel.idle()
    assert len(wa.fake.messages(AMINA)) == sent
    contact = await wa.app.engine.contacts.get("whatsapp", AMINA)
    assert contact is not None
    assert len(await wa.app.engine.feedback.for_contact(contact.id)) == 1


async def test_media_reactions_and_locations(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    voice = await wa.post(wa.fake.media_message(AMINA, "voice"), AMINA)
    assert "Je ne sais lire que les messages écrits" in voice
    sticker = await wa.post(wa.fake.media_message(AMINA, "sticker"), AMINA)
    assert "Je ne sais lire" in sticker
    place = await wa.post(wa.fake.location_message(AMINA, 32.88, -6.9), AMINA)
    assert "Ouvert tous les jours" in place
    before = len(wa.fake.messages(AMINA))
    assert await wa.fake.post_webhook(
        wa.url, wa.fake.reaction(AMINA, wa.fake.messages(AMINA)[-1].message_id or "")) == 200
    await wa.channel.idle()
    assert len(wa.fake.messages(AMINA)) == before


async def test_business_scoped_user_id_is_kept(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour", user_id="MA.1234567890")
    async with wa.app.sessions() as session:
        from storage.models import Contact

        contact = (await session.scalars(select(Contact))).one()
    assert (contact.user_id, contact.platform_alt_id) == (AMINA, "MA.1234567890")


async def _outbox_row(app: App, wamid: str) -> int:
    contact = await app.engine.contacts.arrive("whatsapp", AMINA, "fr")
    async with app.sessions() as session, session.begin():
        row = OutboxMessage(contact_id=contact.id, channel="whatsapp", kind="reminder",
                            payload={}, due_at=utcnow(), status=OutboxStatus.SENT,
                            idempotency_key=f"test:{wamid}", platform_message_id=wamid)
        session.add(row)
        await session.flush()
        return row.id


async def _row(app: App, row_id: int) -> OutboxMessage:
    async with app.sessions() as session:
        found = await session.get(OutboxMessage, row_id)
        assert found is not None
        return found


async def test_statuses_update_the_delivery_rows(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    row_id = await _outbox_row(wa.app, "wamid.sent-1")
    for status in ("delivered", "read", "delivered"):  # the late "delivered" changes nothing
        assert await wa.fake.post_webhook(
            wa.url, wa.fake.status("wamid.sent-1", status, AMINA)) == 200
        await wa.channel.idle()
    row = await _row(wa.app, row_id)
    assert row.delivery_status == "read"
    failed_id = await _outbox_row(wa.app, "wamid.sent-2")
    await wa.fake.post_webhook(wa.url, wa.fake.status("wamid.sent-2", "failed", AMINA))
    await wa.channel.idle()
    failed = await _row(wa.app, failed_id)
    assert failed.status == OutboxStatus.FAILED
    assert failed.delivery_status == "failed"
    assert "131026" in (failed.error or "")


def _reminder(text: str = "Demain : ouverture du salon à 10:00.\nStand A12.") -> Rendered:
    return Rendered(text=text, language="fr")


async def test_outside_the_window_only_templates_go(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp(whatsapp_templates="reminder:fr=salon_rappel")
    now = utcnow()
    long_ago = now - dt.timedelta(days=2)
    sent = await wa.channel.send_bulk(AMINA, "fr", long_ago, "reminder", _reminder(), now)
    assert sent.status == "sent"
    template = wa.fake.messages(AMINA, "template")[-1].body["template"]
    assert template["name"] == "salon_rappel"
    assert template["language"] == {"code": "fr"}
    parameter = template["components"][0]["parameters"][0]["text"]
    assert "\n" not in parameter and "Stand A12" in parameter
    skipped = await wa.channel.send_bulk(AMINA, "ar", long_ago, "reminder", _reminder(), now)
    assert skipped.status == "skipped"
    assert "no template for reminder:ar" in (skipped.reason or "")
    inside = await wa.channel.send_bulk(AMINA, "fr", now - dt.timedelta(hours=1), "reminder",
                                        _reminder(), now)
    assert inside.status == "sent"
    assert wa.fake.messages(AMINA, "text")[-1].text == "Demain : ouverture du salon à 10:00.\n" \
        "Stand A12."
    # Meta says the window closed after all (131047): the template goes instead
    wa.fake.fail(131047, to=AMINA)
    switched = await wa.channel.send_bulk(AMINA, "fr", now - dt.timedelta(hours=2), "reminder",
                                          _reminder(), now)
    assert switched.status == "sent"
    assert len(wa.fake.messages(AMINA, "template")) == 2


async def test_platform_errors(make_whatsapp: WhatsAppFactory,
                               caplog: pytest.LogCaptureFixture) -> None:
    wa = await make_whatsapp()
    now = utcnow()
    recent = now - dt.timedelta(minutes=5)
    wa.fake.fail(130429, to=AMINA)  # throughput: the whole number backs off, then sends
    throughput = await wa.channel.send_bulk(AMINA, "fr", recent, "broadcast", _reminder(), now)
    assert throughput.status == "sent"
    wa.fake.fail(131056, to=KARIM)  # pair rate: that person waits, then gets it
    pair = await wa.channel.send_bulk(KARIM, "fr", recent, "broadcast", _reminder(), now)
    assert pair.status == "sent"
    wa.fake.fail(131026, to=AMINA)  # undeliverable: recorded, not retried
    before = len(wa.fake.messages(AMINA))
    undeliverable = await wa.channel.send_bulk(AMINA, "fr", recent, "broadcast", _reminder(),
                                               now)
    assert undeliverable.status == "failed" and "131026" in (undeliverable.reason or "")
    assert len(wa.fake.messages(AMINA)) == before + 1
    wa.fake.fail(190, times=10)  # a bad token: said loudly once, no loop
    for _ in range(3):
        result = await wa.channel.send_bulk(AMINA, "fr", recent, "broadcast", _reminder(), now)
        assert result.status == "failed"
    assert len(wa.fake.messages(AMINA)) == before + 2
    assert sum("rejects TADAMON_WHATSAPP_TOKEN" in record.message
               for record in caplog.records) == 1


def test_labels_are_shortened_between_words() -> None:
    assert shorten("Gestion financière des coopératives", 20) == "Gestion financière…"
    assert shorten("التدبير المالي للتعاونيات الفلاحية", 20) == "التدبير المالي…"
    assert shorten("Court", 20) == "Court"
    word = "Anticonstitutionnellement"
    assert shorten(word, 20) == word[:19] + "…"
    vowelled = "مُحَمَّدٌ" * 5  # letters carrying vowel marks, no space to cut at
    cut = shorten(vowelled, 20)
    kept = cut.removesuffix("…")
    assert len(cut) <= 20 and vowelled.startswith(kept)
    # the cut falls before a letter, never between a letter and its marks
    assert not unicodedata.combining(vowelled[len(kept)])


async def test_long_text_and_many_buttons_respect_whatsapp_limits(
    make_whatsapp: WhatsAppFactory,
) -> None:
    wa = await make_whatsapp()
    long = " ".join(f"mot{index}" for index in range(1200))
    choices = tuple(RenderedChoice(f"st:A{index}", f"Stand A{index} · Coopérative numéro "
                                   f"{index} de la région")
                    for index in range(1, 13))
    sent = await wa.channel.deliver(AMINA, [Rendered(text=long, language="fr",
                                                     choices=choices)])
    calls = wa.fake.messages(AMINA)
    assert len(sent) == len(calls) and all(call.status == 200 for call in calls)
    shown = " ".join(call.text or "" for call in calls)
    assert shown.split() == long.split()
    rows = calls[-1].rows
    assert len(rows) == 10 and rows[-1][0] == "wa:more:1"
    assert all(description is None or len(description) <= 72 for _i, _t, description in rows)


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_tadamon_run_serves_whatsapp(language: str, tmp_path: Path,
                                           redis_url: str) -> None:
    """The console script, as an operator starts it, talking to the fake Graph API."""
    async with FakeWhatsApp() as fake:
        port = free_port()
        env = cli_env(**{
            "TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/run.db",
            "TADAMON_REDIS_URL": redis_url,
            "TADAMON_HTTP_PORT": str(port),
            "TADAMON_WHATSAPP_TOKEN": fake.token,
            "TADAMON_WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
            "TADAMON_WHATSAPP_APP_SECRET": fake.app_secret,
            "TADAMON_WHATSAPP_VERIFY_TOKEN": fake.verify_token,
            "TADAMON_WHATSAPP_API_BASE": fake.base_url,
        })
        process = await asyncio.create_subprocess_exec(
            TADAMON, "run", cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}/whatsapp/webhook"
        try:
            text, expected = (("bonjour", "Bienvenue") if language == "fr"
                              else ("السلام عليكم", "مرحبًا بك"))
            status = 0
            for _ in range(150):  # the server is starting
                status = await fake.send_text(url, AMINA, text)
                if status == 200:
                    break
                await asyncio.sleep(0.2)
            assert status == 200
            sent = await fake.wait_for(AMINA, timeout=30)
            assert expected in (sent[0].text or "")
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, err.decode()
        assert b"whatsapp: on" in err


async def test_registering_on_whatsapp_sends_the_calendar_file(
    make_whatsapp: WhatsAppFactory,
) -> None:
    """A visitor registers through the card's button; the confirmation comes with the .ics,
    uploaded as a document type the Cloud API accepts, under its .ics name."""
    wa = await make_whatsapp()
    wa.app.engine.clock = lambda: dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    card = await wa.say(AMINA, "/start ws_marketing-1")
    assert "Techniques de marketing" in card
    assert "S'inscrire" in wa.labels(AMINA)
    confirmed = await wa.tap(AMINA, "S'inscrire")
    assert "Inscription confirmée\u202f: «\u202fTechniques de marketing\u202f»" in confirmed
    document = wa.fake.messages(AMINA, "document")[-1]
    assert document.body["document"]["filename"] == "workshop.ics"
    filename, mime, content = wa.fake.media[document.body["document"]["id"]]
    assert (filename, mime) == ("workshop.ics", "text/plain")
    assert content.startswith(b"BEGIN:VCALENDAR")
    mine = await wa.say(AMINA, "mes ateliers")
    assert "Vos ateliers" in mine and "inscription confirmée" in mine
