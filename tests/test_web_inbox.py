"""The web chat can be written to later: reminders, seat offers, broadcasts and notices queued
for a web chat person wait in their inbox (`GET /chat/api/inbox`), each shown once, and a Web
Push notification goes to the browsers that allowed it (checked by a fake push service)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.errors import ConfigurationError
from bot.settings import load_settings
from bot.worker import OutboxWorker
from handlers.messages import Local, reply
from storage.models import OutboxMessage, OutboxStatus, WebPushSubscription, utcnow
from storage.outbox import Outbox
from tests.conftest import AppFactory, Chat, ChatFactory
from tests.fakes.push import FakePushService
from tests.test_registration_conversation import small_workshop

CASABLANCA = ZoneInfo("Africa/Casablanca")
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=CASABLANCA)
# marketing-1 starts on 13 December at 11:00: its evening reminder is due on the 12th at 18:00.
EVENING = dt.datetime(2026, 12, 12, 18, 30, tzinfo=CASABLANCA)
TEXT = {"fr": "Le salon ferme à 20:00 ce soir.\nMerci de votre visite.",
        "ar": "يغلق المعرض على الساعة 20:00 هذا المساء.\nشكرًا على زيارتكم."}


@pytest.fixture
async def push_service() -> AsyncIterator[FakePushService]:
    async with FakePushService() as fake:
        yield fake


async def inbox(chat: Chat, user: str) -> list[dict[str, Any]]:
    """What the person's page gets from the inbox now."""
    response = await chat.client.get("/chat/api/inbox", params={"session": chat.session(user)})
    body = await response.json()
    assert response.status == 200, body
    replies: list[dict[str, Any]] = body["replies"]
    return replies


async def drain(app: App, at: dt.datetime) -> int:
    return await OutboxWorker(app, clock=lambda: at.astimezone(dt.UTC)).drain()


async def subscribe(chat: Chat, user: str, push_service: FakePushService) -> dict[str, Any]:
    """The person's browser allows notifications, as the page does it."""
    subscription = push_service.subscribe()
    response = await chat.client.post("/chat/api/push", json={
        "session": chat.session(user), "subscription": subscription})
    assert response.status == 201, await response.json()
    return subscription


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_web_visitors_reminder_waits_in_the_inbox_and_is_shown_once(
    make_chat: ChatFactory, database: str,
) -> None:
    chat = await make_chat(database=database)
    chat.app.engine.clock = lambda: NOW
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    registered = await chat.tap("amina", "S'inscrire")
    # The promise says where the reminder will be found.
    assert ("Nous vous le rappellerons avant le début\u202f: ici, quand vous reviendrez sur "
            "cette page.") in registered.text
    assert await inbox(chat, "amina") == []

    await drain(chat.app, EVENING)
    replies = await inbox(chat, "amina")
    assert len(replies) == 1
    assert "Rappel" in replies[0]["text"] and "Techniques de marketing" in replies[0]["text"]
    assert set(replies[0]) == {"text", "choices", "media"}
    # Shown once: neither a second look nor a second worker pass brings it back.
    assert await inbox(chat, "amina") == []
    assert await drain(chat.app, EVENING) == 0
    assert await inbox(chat, "amina") == []
    async with chat.app.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.channel == "web", OutboxMessage.status == OutboxStatus.SENT)))
    assert [row.kind for row in rows] == ["workshop_reminder"]

    # The hour before, the second reminder; someone else's inbox stays empty.
    await drain(chat.app, dt.datetime(2026, 12, 13, 10, 5, tzinfo=CASABLANCA))
    soon = await inbox(chat, "amina")
    assert len(soon) == 1 and "Techniques de marketing" in soon[0]["text"]
    await chat("karim", "salam")
    assert await inbox(chat, "karim") == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_freed_seat_is_offered_in_the_inbox_and_accepted_with_its_button(
    make_chat: ChatFactory, database: str,
) -> None:
    chat = await make_chat(database=database)
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat, capacity=1)
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start ws_marketing-1")
    waiting = await chat.tap("karim", "الانضمام إلى لائحة الانتظار")
    assert "سنعرضه عليك هنا، عند عودتك إلى هذه الصفحة." in waiting.text

    await chat("amina", "mes ateliers")
    await chat.tap("amina", "Annuler\u202f: Techniques de marketing")
    assert await drain(chat.app, NOW) == 1
    offers = await inbox(chat, "karim")
    assert len(offers) == 1
    assert "تقنيات التسويق" in offers[0]["text"]
    labels = [choice["label"] for choice in offers[0]["choices"]]
    assert "قبول المقعد" in labels
    accept = next(choice["id"] for choice in offers[0]["choices"]
                  if choice["label"] == "قبول المقعد")
    accepted = await chat.post({"session": chat.session("karim"), "choice": accept})
    assert "المقعد لك: تم تسجيلك في ورشة «تقنيات التسويق»" in accepted.text
    assert await inbox(chat, "karim") == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_broadcast_reaches_web_visitors_and_counts_them_as_sent(
    make_chat: ChatFactory, database: str,
) -> None:
    chat = await make_chat(database=database)
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("salma", "stop")  # opted out: truly not reached
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(chat.app.sessions)
    assert await outbox.recipients_by_channel("all") == {"web": 2}
    broadcast_id, count = await outbox.queue_broadcast(fair.id, "all", TEXT, NOW)
    assert count == 2
    await drain(chat.app, NOW + dt.timedelta(hours=2))
    progress = await outbox.progress(broadcast_id)
    assert (progress["sent"], progress["skipped"], progress["failed"]) == (2, 0, 0)
    assert [reply["text"] for reply in await inbox(chat, "amina")] == [TEXT["fr"]]
    assert [reply["text"] for reply in await inbox(chat, "karim")] == [TEXT["ar"]]
    assert await inbox(chat, "salma") == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_push_reaches_the_push_service_signed_and_encrypted(
    make_chat: ChatFactory, push_service: FakePushService, database: str,
) -> None:
    chat = await make_chat(database=database, push_services=push_service.base_url,
                           vapid_subject="mailto:salon@example.org")
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    phone = await subscribe(chat, "amina", push_service)
    key = await (await chat.client.get("/chat/api/push")).json()
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None
    await Outbox(chat.app.sessions).queue_broadcast(fair.id, "all", TEXT, NOW)
    await drain(chat.app, NOW + dt.timedelta(hours=2))

    [push] = await push_service.wait_for(1)
    assert push.status == 201, push.error
    assert push.vapid_key == key["key"]  # signed with the key the page subscribed with
    assert push.claims["sub"] == "mailto:salon@example.org"
    # Our name and the message's first line, nothing more.
    assert push.data == {"title": "Tadamon", "body": "Le salon ferme à 20:00 ce soir.",
                         "lang": "fr", "dir": "ltr"}
    assert int(push.ttl or 0) > 0
    # The message itself is in the inbox.
    assert [reply["text"] for reply in await inbox(chat, "amina")] == [TEXT["fr"]]

    # The browser unsubscribed: its push service answers 410 and the subscription is dropped.
    push_service.gone(phone)
    await Outbox(chat.app.sessions).queue_broadcast(fair.id, "all", TEXT, NOW)
    await drain(chat.app, NOW + dt.timedelta(hours=2))
    assert [push.status for push in push_service.pushes_to(phone)] == [201, 410]
    async with chat.app.sessions() as session:
        assert list(await session.scalars(select(WebPushSubscription))) == []
    assert len(await inbox(chat, "amina")) == 1  # the message is kept all the same


async def test_a_message_sent_again_after_a_crash_is_kept_and_pushed_once(
    make_chat: ChatFactory, push_service: FakePushService,
) -> None:
    chat = await make_chat(push_services=push_service.base_url)
    await chat("amina", "bonjour")
    await subscribe(chat, "amina", push_service)
    contact_id = await chat.app.web_inbox.contact_id(chat.user_id("amina"))
    assert contact_id is not None
    rendered = chat.app.renderer.render(reply(Local({"fr": "Bienvenue au salon."})), "fr")
    # The worker kept row 41 and died before recording it; the next one sends it again.
    for _attempt in range(2):
        delivery = await chat.app.web_sender.deliver(41, contact_id, rendered, utcnow())
        assert delivery.status == "sent"
    assert [item["text"] for item in await inbox(chat, "amina")] == ["Bienvenue au salon."]
    assert len(push_service.pushes) == 1


async def test_the_vapid_key_is_made_once_and_kept_across_restarts(
    make_app: AppFactory, make_chat: ChatFactory,
) -> None:
    first = await make_chat()
    key = await (await first.client.get("/chat/api/push")).json()
    again = App(first.app.settings)
    try:
        assert await again.web_push.public_key() == key["key"]
    finally:
        await again.close()
    configured = await make_chat(
        vapid_private_key="Cq3JV9UGFJ2RP0tyyYPxMfjqE8dD1Dxx9kXXSYUtTYo")
    other = await (await configured.client.get("/chat/api/push")).json()
    assert other["key"] != key["key"] and len(other["key"]) == 87


async def test_inbox_and_push_refuse_what_is_not_theirs(
    chat: Chat, push_service: FakePushService,
) -> None:
    await chat("amina", "bonjour")
    missing = await chat.client.get("/chat/api/inbox")
    assert missing.status == 400 and "session" in (await missing.json())["error"]
    malformed = await chat.client.get("/chat/api/inbox", params={"session": "<script>"})
    assert malformed.status == 400
    unknown = await chat.client.get("/chat/api/inbox", params={"session": "A" * 43})
    assert unknown.status == 401
    foreign = await chat.client.get("/chat/api/inbox", params={"session": chat.session("amina")},
                                    headers={"Origin": "https://evil.example"})
    assert foreign.status == 403

    # An endpoint at no push service the server posts to (here: a fake one not configured,
    # or an address inside the network) is refused.
    for endpoint in (push_service.subscribe()["endpoint"], "http://10.0.0.1/admin",
                     "https://fcm.googleapis.com.evil.example/x"):
        subscription = {**push_service.subscribe(), "endpoint": endpoint}
        refused = await chat.client.post("/chat/api/push", json={
            "session": chat.session("amina"), "subscription": subscription})
        assert refused.status == 400, endpoint
    bad_keys = await chat.client.post("/chat/api/push", json={
        "session": chat.session("amina"),
        "subscription": {"endpoint": "https://fcm.googleapis.com/fcm/send/x",
                         "keys": {"p256dh": "short", "auth": "x"}}})
    assert bad_keys.status == 400
    good = {**push_service.subscribe(), "endpoint": "https://fcm.googleapis.com/fcm/send/x"}
    stranger = await chat.client.post("/chat/api/push", json={
        "session": "B" * 43, "subscription": good})
    assert stranger.status == 401
    accepted = await chat.client.post("/chat/api/push", json={
        "session": chat.session("amina"), "subscription": good})
    assert accepted.status == 201


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("TADAMON_VAPID_PRIVATE_KEY", "not-a-key", "must be a P-256 private key"),
    ("TADAMON_VAPID_SUBJECT", "salon@example.org", "must be a mailto: address"),
    ("TADAMON_PUSH_SERVICES", "fcm.googleapis.com, ftp://x", "neither a host nor an origin"),
])
def test_push_settings_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch, variable: str,
                                         value: str, says: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"^{variable}: .*{says}"):
        load_settings(_env_file=None)
