"""The floor map: the picture drawn from the stands' coordinates, and the card's "Map" button on
the web chat (in French and Arabic), Telegram and WhatsApp."""

from __future__ import annotations

import io
from pathlib import Path

import yaml
from PIL import Image, features

from bot.app import sample_catalogue
from bot.channels.uploads import UploadCache
from bot.floormap import (
    HIGHLIGHT,
    MARGIN,
    STAND_FILL,
    TITLE_BAND,
    ZONE_LABEL,
    PlanStand,
    draw_floor_map,
    stand_size,
)
from tests.conftest import Chat
from tests.platforms import TelegramFactory, WhatsAppFactory

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TELEGRAM_AMINA, TELEGRAM_KARIM, WHATSAPP_AMINA = 1001, 1002, "212600000101"


def _sample_plan(language: str) -> list[PlanStand]:
    data = yaml.safe_load(Path(sample_catalogue()).read_text(encoding="utf-8"))
    return [PlanStand(stand["number"], stand["zone"][language], stand["x"], stand["y"])
            for stand in data["stands"]]


def _pixel_at(picture: Image.Image, plan: list[PlanStand], number: str) -> tuple[int, ...]:
    """The colour at the centre of a stand, found from where the map places the stands: the
    plan is scaled to the picture's width, between the same margins on both sides."""
    side = stand_size(plan)
    left = min(s.x for s in plan) - side / 2
    right = max(s.x for s in plan) + side / 2
    top = min(s.y for s in plan) - side / 2
    scale = (picture.width - 2 * MARGIN) / (right - left)
    stand = next(s for s in plan if s.number == number)
    x = MARGIN + (stand.x - left) * scale
    y = TITLE_BAND + ZONE_LABEL + (stand.y - top) * scale
    pixel = picture.getpixel((round(x) + 3, round(y) + 8))  # beside the number's ink
    assert isinstance(pixel, tuple)
    return pixel


def test_arabic_is_laid_out_by_raqm() -> None:
    """Without libraqm (and the system's FriBiDi) Arabic labels would be drawn unjoined and
    left to right; the install must provide it."""
    assert features.check("raqm")


def test_the_map_highlights_the_stand_and_only_it() -> None:
    plan = _sample_plan("fr")
    png = draw_floor_map(plan, highlight="B7", title="Stand B7 · Hall B", entrance="Entrée",
                         language="fr")
    assert png.startswith(PNG_SIGNATURE) and 5_000 < len(png) < 500_000
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    assert picture.width == 1000 and 400 < picture.height < 1000
    assert _pixel_at(picture, plan, "B7") == HIGHLIGHT
    for other in ("A1", "B6", "B8", "C30", "D18"):
        assert _pixel_at(picture, plan, other) == STAND_FILL


def test_the_arabic_map_differs_only_by_its_labels() -> None:
    french = _sample_plan("fr")
    arabic = _sample_plan("ar")
    png = draw_floor_map(arabic, highlight="D3", title="الجناح D3", entrance="المدخل",
                         language="ar")
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    assert _pixel_at(picture, french, "D3") == HIGHLIGHT
    assert png != draw_floor_map(french, highlight="D3", title="Stand D3", entrance="Entrée",
                                 language="fr")


async def test_map_button_on_the_web_chat(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    card = await chat("amina", "A18")
    assert "Plan" in card.labels
    shown = await chat.tap("amina", "Plan")
    assert "Le stand A18 est en rouge. Le petit plan, dans le coin, le situe" in shown.text
    [image] = shown.replies[0]["media"]
    assert image["type"] == "image" and "Stand A18" in image["caption"]
    picture = await chat.client.get(image["url"])
    assert picture.status == 200 and picture.content_type == "image/png"
    body = await picture.read()
    assert body.startswith(PNG_SIGNATURE)
    assert "Retour au stand" in shown.labels
    back = await chat.tap("amina", "Retour au stand")
    assert "Stand A18" in back.text

    # Drawn once per stand and language: asking again gives the very same picture.
    await chat("amina", "A18")
    again = await chat.tap("amina", "Plan")
    repeat = await chat.client.get(again.replies[0]["media"][0]["url"])
    assert await repeat.read() == body

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "A18")
    arabic = await chat.tap("karim", "الخريطة")
    [arabic_image] = arabic.replies[0]["media"]
    arabic_body = await (await chat.client.get(arabic_image["url"])).read()
    assert arabic_body.startswith(PNG_SIGNATURE) and arabic_body != body


async def test_a_forged_map_button_is_refused(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    forged = await chat.post({"session": chat.session("amina"), "choice": "map:A18"})
    assert forged.status == 200 and "Ce bouton n'est plus valable" in forged.text
    assert all(not item["media"] for item in forged.replies)


async def test_map_on_telegram_is_a_photo(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(TELEGRAM_AMINA, "bonjour")
    await tg.tap(TELEGRAM_AMINA, "Français")
    await tg.say(TELEGRAM_AMINA, "A12")
    await tg.tap(TELEGRAM_AMINA, "Plan")
    photo = tg.fake.calls_of("sendPhoto", TELEGRAM_AMINA)[-1]
    filename, data = photo.files["photo"][:2]
    assert filename == "map-A12.png" and data.startswith(PNG_SIGNATURE)
    assert "Stand A12" in photo.result["caption"]
    file_id = photo.result["photo"][-1]["file_id"]

    # The same map for someone else: sent by the file_id Telegram gave it, not uploaded again.
    await tg.say(TELEGRAM_KARIM, "bonjour")
    await tg.tap(TELEGRAM_KARIM, "Français")
    await tg.say(TELEGRAM_KARIM, "A12")
    await tg.tap(TELEGRAM_KARIM, "Plan")
    again = tg.fake.calls_of("sendPhoto", TELEGRAM_KARIM)[-1]
    assert "photo" not in again.files and again.params["photo"] == file_id

    # Telegram no longer takes that id: the picture is uploaded again, and still arrives.
    tg.fake.fail("sendPhoto", status=400, description="Bad Request: wrong file identifier")
    await tg.say(TELEGRAM_AMINA, "A12")
    await tg.tap(TELEGRAM_AMINA, "Plan")
    refused, uploaded = tg.fake.calls_of("sendPhoto", TELEGRAM_AMINA)[-2:]
    assert refused.status == 400 and uploaded.status == 200
    assert uploaded.files["photo"][1] == data


async def test_map_on_whatsapp_is_an_uploaded_image(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    await wa.say(WHATSAPP_AMINA, "bonjour")
    await wa.tap(WHATSAPP_AMINA, "Français")
    await wa.say(WHATSAPP_AMINA, "A12")
    await wa.tap(WHATSAPP_AMINA, "Plan")
    image = wa.fake.messages(WHATSAPP_AMINA, "image")[-1]
    assert "Stand A12" in image.body["image"]["caption"]
    filename, mime, content = wa.fake.media[image.body["image"]["id"]]
    assert (filename, mime) == ("map-A12.png", "image/png")
    assert content.startswith(PNG_SIGNATURE)

    # Asked again: the uploaded file's id is used again, nothing is uploaded twice.
    await wa.say(WHATSAPP_AMINA, "A12")
    await wa.tap(WHATSAPP_AMINA, "Plan")
    again = wa.fake.messages(WHATSAPP_AMINA, "image")[-1]
    assert again.body["image"]["id"] == image.body["image"]["id"]
    assert len([call for call in wa.fake.calls if call.path.endswith("/media")]) == 1


def test_the_upload_cache_forgets_old_ids_and_keeps_its_size() -> None:
    now = [0.0]
    cache = UploadCache(size=2, ttl=100.0, clock=lambda: now[0])
    cache.put(b"map A12", "id-1")
    cache.put(b"map B7", "id-2")
    assert cache.get(b"map A12") == "id-1"  # now the most recently used
    cache.put(b"map C3", "id-3")  # over the size: B7, the least recently used, goes
    assert (cache.get(b"map B7"), cache.get(b"map A12"), cache.get(b"map C3")) == (
        None, "id-1", "id-3")
    now[0] = 101.0
    assert cache.get(b"map A12") is None  # older than the ttl: uploaded again
    cache.put(b"map A12", "id-4")
    cache.forget(b"map A12")
    assert cache.get(b"map A12") is None
