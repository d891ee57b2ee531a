"""The chat's registration confirmation carries the check-in QR code: a picture of the
registration's code (or of the console's check-in address for it), with one sentence saying to
show it at the door and the code written out, on the web chat, Telegram and WhatsApp, in
French, Arabic, Darija and English; a seat accepted from an offer carries it too."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select, update

from bot.app import App
from bot.i18n import FSI, PDI
from storage.models import Contact, Registration, RegistrationStatus, Workshop
from tests.conftest import Chat, ChatFactory
from tests.platforms import TelegramFactory, WhatsAppFactory

pytestmark = pytest.mark.timeout(180)

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decoded(png: bytes) -> list[str]:
    """What the QR codes of a picture say."""
    assert png.startswith(PNG_SIGNATURE)
    return [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


async def code_of(app: App, channel: str, user_id: str, key: str = "valorisation-1") -> str:
    """The check-in code of this person's registration (confirmed) for workshop `key`."""
    async with app.sessions() as session:
        row = await session.scalar(
            select(Registration)
            .join(Contact, Contact.id == Registration.contact_id)
            .join(Workshop, Workshop.id == Registration.workshop_id)
            .where(Contact.channel == channel, Contact.user_id == user_id, Workshop.key == key))
    assert row is not None and row.status == RegistrationStatus.CONFIRMED
    assert row.checkin_code is not None and len(row.checkin_code) == 10
    return row.checkin_code


async def image_of(chat: Chat, answer_media: list[dict[str, str]]) -> bytes:
    [image] = [item for item in answer_media if item["type"] == "image"]
    response = await chat.client.get(image["url"])
    assert response.status == 200
    return await response.read()


async def test_web_chat_confirmation_in_french_carries_the_qr_code(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    sessions = await chat("amina", "je veux m'inscrire à l'atelier Valorisation des produits")
    await chat.tap("amina", "Valorisation des produits · dim. 13")
    confirmed = await chat.tap("amina", "S'inscrire")
    assert "Inscription confirmée" in confirmed.text, sessions
    code = await code_of(chat.app, "web", chat.user_id("amina"))
    assert (f"À l'entrée de l'atelier, montrez ce code QR ou donnez le code {code}."
            in confirmed.text)
    media = confirmed.replies[0]["media"]
    assert [item["type"] for item in media] == ["document", "image"]  # the calendar, the QR
    assert media[1]["caption"] == f"Code d'entrée\u202f: {code}"
    assert decoded(await image_of(chat, media)) == [code]

    # Asked again later: the same registration keeps its code.
    again = await chat("amina", "/start ws_valorisation-1")
    assert "Inscription confirmée." in again.text
    assert await code_of(chat.app, "web", chat.user_id("amina")) == code


async def test_with_a_public_address_the_qr_code_opens_the_console(
        make_chat: ChatFactory) -> None:
    chat = await make_chat(public_url="https://salon.example")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "بغيت نتسجل فورشة تثمين المنتوجات")  # Darija: I want to register
    await chat.tap("karim", "تثمين المنتوجات · الأحد 13")
    confirmed = await chat.tap("karim", "التسجيل")
    code = await code_of(chat.app, "web", chat.user_id("karim"))
    assert f"أعطِ الرمز {FSI}{code}{PDI}." in confirmed.text  # the code kept whole in Arabic
    assert decoded(await image_of(chat, confirmed.replies[0]["media"])) == [
        f"https://salon.example/admin/checkin?code={code}"]


async def test_a_seat_accepted_from_an_offer_carries_the_qr_code(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == "valorisation-1")
                              .values(capacity=1))
    await chat.app.state.bump_catalogue_version()
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_valorisation-1")
    await chat.tap("amina", "S'inscrire")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start ws_valorisation-1")
    waiting = await chat.tap("karim", "الانضمام إلى لائحة الانتظار")
    assert not any(item["type"] == "image" for item in waiting.replies[0]["media"])
    await chat("amina", "mes ateliers")
    await chat.tap("amina", "Annuler\u202f: Valorisation des produits")
    await chat("karim", "ورشاتي")
    accepted = await chat.tap("karim", "قبول المقعد")
    assert "المقعد لك" in accepted.text
    code = await code_of(chat.app, "web", chat.user_id("karim"))
    assert f"{FSI}{code}{PDI}" in accepted.text
    assert decoded(await image_of(chat, accepted.replies[0]["media"])) == [code]


async def test_telegram_confirmation_in_english_is_a_photo_of_the_code(
        make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(1001, "hello")
    await tg.tap(1001, "English")
    await tg.say(1001, "I want to register for the workshop Valorisation des produits")
    await tg.tap(1001, "Valorisation des produits · Sun 13")
    confirmed = await tg.tap(1001, "Register")
    code = await code_of(tg.app, "telegram", "1001")
    assert f"At the door, show this QR code or give the code {code}." in confirmed
    [photo] = tg.fake.calls_of("sendPhoto", 1001)
    filename, data = photo.files["photo"][:2]
    assert filename == "checkin.png" and decoded(data) == [code]
    assert photo.result["caption"] == f"Check-in code: {code}"


async def test_whatsapp_confirmation_in_darija_is_an_image_of_the_code(
        make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    person = "212600000777"
    await wa.say(person, "السلام عليكم")
    await wa.tap(person, "العربية")
    await wa.say(person, "بغيت نتسجل فورشة تثمين المنتوجات")
    await wa.tap(person, wa.options(person)[0][0])  # the first session, on Sunday
    confirmed = await wa.tap(person, "التسجيل")
    code = await code_of(wa.app, "whatsapp", person)
    assert f"{FSI}{code}{PDI}" in confirmed and "رمز QR" in confirmed
    image = wa.fake.messages(person, "image")[-1]
    filename, mime, content = wa.fake.media[image.body["image"]["id"]]
    assert (filename, mime) == ("checkin.png", "image/png") and decoded(content) == [code]
    assert code in image.body["image"]["caption"]
