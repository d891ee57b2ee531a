"""The fake WhatsApp Cloud API, driven by a raw aiohttp client, and its signed webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, FormData, web

from tests.fakes.whatsapp import Call, FakeWhatsApp

USER = "212612345678"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10binary\xff\xfe--tail"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp() as server:
        yield server


@pytest.fixture
async def client(fake: FakeWhatsApp) -> AsyncIterator[ClientSession]:
    session = ClientSession(headers={"Authorization": f"Bearer {fake.token}"})
    yield session
    await session.close()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def send(
    client: ClientSession, fake: FakeWhatsApp, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with client.post(fake.messages_url, json=body) as response:
        return response.status, await response.json()


def message(kind: str, content: Any, to: str = USER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
    }


def buttons(count: int, title: str = "Option") -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": "Choisissez / اختر"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"b{i}", "title": f"{title} {i}"}}
                for i in range(count)
            ]
        },
    }


def list_of(rows: int, title: str = "Atelier") -> dict[str, Any]:
    sections = [
        {
            "title": f"Jour {day}",
            "rows": [
                {"id": f"w{day}-{i}", "title": f"{title} {i}", "description": "Salle A"}
                for i in range(day, rows, 2)
            ],
        }
        for day in (0, 1)
    ]
    return {
        "type": "list",
        "header": {"type": "text", "text": "Ateliers"},
        "body": {"text": "Les ateliers du jour"},
        "footer": {"text": "Tadamon"},
        "action": {"button": "Voir", "sections": [s for s in sections if s["rows"]]},
    }


async def test_text_message(fake: FakeWhatsApp, client: ClientSession) -> None:
    assert fake.base_url.endswith("/v23.0")
    status, answer = await send(client, fake, message("text", {"body": "Salam 👋"}, "+" + USER))
    assert status == 200
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+" + USER, "wa_id": USER}]
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.HBg")
    [call] = fake.messages(to=USER)
    assert (call.method, call.path, call.type, call.text) == (
        "POST",
        f"/{fake.phone_number_id}/messages",
        "text",
        "Salam 👋",
    )
    assert call.status == 200 and call.message_id == wamid
    assert call.headers["Authorization"] == f"Bearer {fake.token}"
    _, again = await send(client, fake, message("text", {"body": "2"}))
    assert again["messages"][0]["id"] != wamid
    assert fake.texts(USER) == ["Salam 👋", "2"]


async def test_text_limits_and_required_fields(fake: FakeWhatsApp, client: ClientSession) -> None:
    status, answer = await send(client, fake, message("text", {"body": "x" * 4096}))
    assert status == 200
    status, answer = await send(client, fake, message("text", {"body": "x" * 4097}))
    assert status == 400 and answer["error"]["code"] == 100
    assert answer["error"]["type"] == "OAuthException" and answer["error"]["fbtrace_id"]
    no_to = message("text", {"body": "hi"})
    del no_to["to"]
    status, answer = await send(client, fake, no_to)
    assert (status, answer["error"]["message"]) == (400, "(#100) The parameter to is required.")
    status, answer = await send(client, fake, {**message("text", {"body": "hi"}), "type": "gif"})
    assert status == 400 and answer["error"]["code"] == 100
    status, answer = await send(
        client, fake, {**message("text", {"body": "hi"}), "messaging_product": "sms"}
    )
    assert status == 400 and answer["error"]["code"] == 100
    assert [call.status for call in fake.messages()] == [200, 400, 400, 400, 400]


async def test_reply_buttons(fake: FakeWhatsApp, client: ClientSession) -> None:
    status, answer = await send(client, fake, message("interactive", buttons(3)))
    assert status == 200, answer
    [call] = fake.messages(type="interactive")
    assert call.text == "Choisissez / اختر"
    assert call.buttons == [("b0", "Option 0"), ("b1", "Option 1"), ("b2", "Option 2")]

    status, answer = await send(client, fake, message("interactive", buttons(4)))
    assert status == 400
    error = answer["error"]
    assert (error["code"], error["message"]) == (131009, "(#131009) Parameter value is not valid")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert "3" in error["error_data"]["details"]

    status, answer = await send(client, fake, message("interactive", buttons(2, "x" * 19)))
    assert status == 400 and answer["error"]["code"] == 131009  # "x"*19 + " 0": 21 chars
    duplicate = buttons(2)
    duplicate["action"]["buttons"][1]["reply"]["id"] = "b0"
    status, answer = await send(client, fake, message("interactive", duplicate))
    assert status == 400 and answer["error"]["code"] == 131009


async def test_list_message(fake: FakeWhatsApp, client: ClientSession) -> None:
    status, answer = await send(client, fake, message("interactive", list_of(10)))
    assert status == 200, answer
    [call] = fake.messages()
    assert len(call.rows) == 10 and call.rows[0] == ("w0-0", "Atelier 0", "Salle A")

    status, answer = await send(client, fake, message("interactive", list_of(11)))
    assert status == 400 and answer["error"]["code"] == 131009
    assert "10" in answer["error"]["error_data"]["details"]

    long_title = list_of(3)
    long_title["action"]["sections"][0]["rows"][0]["title"] = "x" * 25
    status, answer = await send(client, fake, message("interactive", long_title))
    assert status == 400 and answer["error"]["code"] == 131009

    long_description = list_of(3)
    long_description["action"]["sections"][1]["rows"][0]["description"] = "d" * 73
    status, _ = await send(client, fake, message("interactive", long_description))
    assert status == 400
    long_button = list_of(3)
    long_button["action"]["button"] = "b" * 21
    status, _ = await send(client, fake, message("interactive", long_button))
    assert status == 400


async def test_template_location_and_reaction(fake: FakeWhatsApp, client: ClientSession) -> None:
    template = {"name": "rappel_atelier", "language": {"code": "fr"}}
    status, answer = await send(client, fake, message("template", template))
    assert status == 200
    assert answer["messages"][0]["message_status"] == "accepted"
    status, answer = await send(client, fake, message("template", {"name": "rappel_atelier"}))
    assert status == 400 and answer["error"]["code"] == 100
    location = {"latitude": 33.5731, "longitude": -7.5898, "name": "Foire", "address": "Rabat"}
    status, _ = await send(client, fake, message("location", location))
    assert status == 200
    status, _ = await send(client, fake, message("location", {"latitude": 95, "longitude": 0}))
    assert status == 400
    status, _ = await send(
        client, fake, message("reaction", {"message_id": "wamid.X", "emoji": "🙏"})
    )
    assert status == 200
    assert [call.type for call in fake.messages() if call.status == 200] == [
        "template",
        "location",
        "reaction",
    ]


async def test_media_upload_then_image_by_id(fake: FakeWhatsApp, client: ClientSession) -> None:
    form = FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/png")
    form.add_field("file", PNG, filename="plan.png", content_type="image/png")
    async with client.post(f"{fake.base_url}/{fake.phone_number_id}/media", data=form) as response:
        assert response.status == 200
        media_id = (await response.json())["id"]
    assert fake.media[media_id] == ("plan.png", "image/png", PNG)
    [upload] = [call for call in fake.calls if call.path.endswith("/media")]
    assert upload.body == {"messaging_product": "whatsapp", "type": "image/png"}
    assert upload.files == {"file": ("plan.png", "image/png", PNG)}
    assert fake.messages() == []

    image = {"id": media_id, "caption": "Le plan de la foire"}
    status, _ = await send(client, fake, message("image", image))
    assert status == 200
    assert fake.messages(type="image")[0].text == "Le plan de la foire"
    status, answer = await send(client, fake, message("image", {"caption": "no media"}))
    assert status == 400 and answer["error"]["code"] == 100
    document = {"link": "https://example.org/programme.pdf", "filename": "programme.pdf"}
    status, _ = await send(client, fake, message("document", document))
    assert status == 200

    async with client.get(f"{fake.base_url}/{media_id}") as response:
        info = await response.json()
    assert info["file_size"] == len(PNG) and info["mime_type"] == "image/png"
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    async with client.get(info["url"]) as response:
        assert response.status == 200 and await response.read() == PNG

    form = FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("file", b"MZ", filename="x.exe", content_type="application/x-msdownload")
    async with client.post(f"{fake.base_url}/{fake.phone_number_id}/media", data=form) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == 100


async def test_mark_as_read(fake: FakeWhatsApp, client: ClientSession) -> None:
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgX"}
    status, answer = await send(client, fake, read)
    assert (status, answer) == (200, {"success": True})
    assert fake.messages() == []
    [call] = fake.messages(type="read")
    assert call.type == "read" and call.to is None and call.body["message_id"] == "wamid.HBgX"
    status, answer = await send(client, fake, {**read, "message_id": ""})
    assert status == 400 and answer["error"]["code"] == 100


async def test_bearer_phone_number_id_and_paths(fake: FakeWhatsApp) -> None:
    body = message("text", {"body": "hi"})
    async with ClientSession() as anonymous:
        async with anonymous.post(fake.messages_url, json=body) as response:
            assert response.status == 401
            error = (await response.json())["error"]
        assert error["code"] == 190 and error["type"] == "OAuthException"
        assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
        wrong = {"Authorization": "Bearer EAAG-stolen"}
        async with anonymous.post(fake.messages_url, json=body, headers=wrong) as response:
            assert response.status == 401
        right = {"Authorization": f"Bearer {fake.token}"}
        async with anonymous.post(
            f"{fake.base_url}/999/messages", json=body, headers=right
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == 100
        async with anonymous.post(f"{fake.base_url}/a/b/c", json=body, headers=right) as response:
            assert response.status == 404
            assert "error" in await response.json()
        unversioned = f"{fake.root_url}/{fake.phone_number_id}/messages"
        async with anonymous.post(unversioned, json=body, headers=right) as response:
            assert response.status == 404
    assert fake.messages() != [] and all(call.status != 200 for call in fake.calls)


async def test_fail_gives_meta_error_then_recovers(
    fake: FakeWhatsApp, client: ClientSession
) -> None:
    fake.fail(130429)
    status, answer = await send(client, fake, message("text", {"body": "1"}))
    assert status == 429
    error = answer["error"]
    assert error["code"] == 130429 and error["message"] == "(#130429) Rate limit hit"
    assert error["type"] == "OAuthException" and error["fbtrace_id"].startswith("A")
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Cloud API message throughput has been reached.",
    }
    assert (await send(client, fake, message("text", {"body": "2"})))[0] == 200

    fake.fail(131047, to="212600000001", times=2)
    assert (await send(client, fake, message("text", {"body": "3"})))[0] == 200
    for _ in range(2):
        status, answer = await send(client, fake, message("text", {"body": "4"}, "212600000001"))
        assert status == 400 and answer["error"]["code"] == 131047
        assert "Re-engagement message" in answer["error"]["message"]
    assert (await send(client, fake, message("text", {"body": "5"}, "212600000001")))[0] == 200

    fake.fail(131056, status=400, details="slow down")
    status, answer = await send(client, fake, message("text", {"body": "6"}))
    assert status == 400
    assert answer["error"]["message"] == (
        "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    )
    assert answer["error"]["error_data"]["details"] == "slow down"

    fake.fail(190)
    status, answer = await send(client, fake, message("text", {"body": "7"}))
    assert status == 401 and answer["error"]["code"] == 190

    fake.fail(131026)  # faults skip mark-as-read unless asked for
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1"}
    assert (await send(client, fake, read))[0] == 200
    assert (await send(client, fake, message("text", {"body": "8"})))[0] == 400


async def test_hang_until_close() -> None:
    fake = FakeWhatsApp()
    await fake.start()
    session = ClientSession(headers={"Authorization": f"Bearer {fake.token}"})
    pending: asyncio.Task[tuple[int, dict[str, Any]]] | None = None
    try:
        fake.hang()
        with pytest.raises(TimeoutError):
            async with session.post(
                fake.messages_url,
                json=message("text", {"body": "lost"}),
                timeout=ClientTimeout(total=0.3),
            ):
                pass
        assert fake.messages()[0].status is None
        assert (await send(session, fake, message("text", {"body": "ok"})))[0] == 200

        fake.hang()
        pending = asyncio.create_task(send(session, fake, message("text", {"body": "stuck"})))
        hung = await fake.wait_for(count=3, timeout=5)
        assert hung[-1].text == "stuck" and hung[-1].status is None
    finally:
        await asyncio.wait_for(fake.close(), timeout=20)  # a hung request does not hold it up
        try:
            assert pending is not None
            status, answer = await pending
            assert status == 503 and answer["error"]["code"] == 131016
        finally:
            await session.close()


async def test_wait_for(fake: FakeWhatsApp, client: ClientSession) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await send(client, fake, message("text", {"body": "a"}))
        await send(client, fake, message("interactive", buttons(2)))

    task = asyncio.create_task(later())
    calls = await fake.wait_for(to=USER, count=2, timeout=5)
    await task
    assert [call.type for call in calls] == ["text", "interactive"]
    assert all(isinstance(call, Call) and call.status == 200 for call in calls)
    with pytest.raises(AssertionError, match=r"(?s)got 0.*POST /1098765432/messages"):
        await fake.wait_for(to=USER, type="template", timeout=0.2)


# webhooks -------------------------------------------------------------------------------------


class Receiver:
    """A tiny bot-side webhook endpoint that checks Meta's signature like a bot must."""

    def __init__(self, app_secret: str, verify_token: str) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.queries: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/whatsapp/webhook", self.post)
        app.router.add_get("/whatsapp/webhook", self.get)
        return app

    async def post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.posts.append((raw, dict(request.headers)))
        header = request.headers.get("X-Hub-Signature-256", "")
        expected = hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(header, f"sha256={expected}"):
            return web.Response(status=403, text="bad signature")
        return web.Response(text="EVENT_RECEIVED")

    async def get(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        if (
            request.query.get("hub.mode") == "subscribe"
            and request.query.get("hub.verify_token") == self.verify_token
        ):
            return web.Response(text=request.query.get("hub.challenge", ""))
        return web.Response(status=403, text="Forbidden")


@pytest.fixture
async def receiver(fake: FakeWhatsApp) -> AsyncIterator[tuple[Receiver, str]]:
    bot = Receiver(fake.app_secret, fake.verify_token)
    runner, url = await serve(bot.app())
    yield bot, f"{url}/whatsapp/webhook"
    await runner.cleanup()


async def test_post_webhook_signs_the_exact_raw_bytes(
    fake: FakeWhatsApp, receiver: tuple[Receiver, str]
) -> None:
    bot, url = receiver
    envelope = fake.text_message(USER, "مرحبا، أين ورشة التعاونيات؟ 👍", name="Fatima")
    assert await fake.post_webhook(url, envelope) == 200
    raw, headers = bot.posts[-1]
    assert raw == fake.encode(envelope)
    assert headers["X-Hub-Signature-256"] == fake.sign(raw)
    expected = hmac.new(b"app-secret-test", raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == "sha256=" + expected
    assert headers["Content-Type"] == "application/json"
    assert raw.isascii() and b"\\u0645\\u0631\\u062d\\u0628\\u0627" in raw
    assert b"\\ud83d\\udc4d" in raw  # the emoji as a surrogate pair, like Meta
    assert json.loads(raw) == envelope
    # a bot that re-serialises the parsed JSON gets other bytes, and a wrong signature
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert fake.sign(reserialised) != headers["X-Hub-Signature-256"]

    assert await fake.post_webhook(url, envelope, signature=None) == 403
    assert "X-Hub-Signature-256" not in bot.posts[-1][1]
    assert await fake.post_webhook(url, envelope, signature="wrong") == 403
    assert bot.posts[-1][1]["X-Hub-Signature-256"].startswith("sha256=")
    tampered = fake.encode(envelope).replace(b"Fatima", b"Fatimb")
    assert await fake.post_webhook(url, envelope, raw=tampered) == 200  # signed as sent
    assert bot.posts[-1][0] == tampered
    assert await fake.post_webhook("http://127.0.0.1:9/nowhere", envelope) == 0


async def test_verify_sends_the_hub_parameters(
    fake: FakeWhatsApp, receiver: tuple[Receiver, str]
) -> None:
    bot, url = receiver
    assert await fake.verify(url) == (200, "1158201444")
    assert bot.queries[-1] == {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": "verify-test",
    }
    status, _ = await fake.verify(url, token="nope", challenge="42")
    assert status == 403
    assert bot.queries[-1]["hub.verify_token"] == "nope"


async def test_envelopes(fake: FakeWhatsApp, client: ClientSession) -> None:
    text = fake.text_message(USER, "salut", user_id="MA.1234567890")
    assert text["object"] == "whatsapp_business_account"
    entry = text["entry"][0]
    assert entry["id"] == fake.waba_id and entry["changes"][0]["field"] == "messages"
    value = FakeWhatsApp.value_of(text)
    assert value["metadata"] == {
        "display_phone_number": "212500000000",
        "phone_number_id": fake.phone_number_id,
    }
    assert value["contacts"] == [
        {"profile": {"name": "Amina"}, "wa_id": USER, "user_id": "MA.1234567890"}
    ]
    [msg] = value["messages"]
    assert msg["from"] == USER and msg["type"] == "text" and msg["text"] == {"body": "salut"}
    assert msg["id"].startswith("wamid.") and msg["timestamp"].isdigit()
    assert "statuses" not in value and "errors" not in value
    assert FakeWhatsApp.message_id_of(fake.text_message(USER, "x")) != msg["id"]

    # replies pick the title and the context of the bot's message that offered the choice
    _, sent = await send(client, fake, message("interactive", buttons(3)))
    reply = FakeWhatsApp.value_of(fake.button_reply(USER, "b1"))["messages"][0]
    assert reply["type"] == "interactive"
    assert reply["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b1", "title": "Option 1"},
    }
    assert reply["context"] == {"from": "212500000000", "id": sent["messages"][0]["id"]}
    _, sent = await send(client, fake, message("interactive", list_of(4)))
    row = FakeWhatsApp.value_of(fake.list_reply(USER, "w1-1"))["messages"][0]
    assert row["interactive"]["list_reply"] == {
        "id": "w1-1",
        "title": "Atelier 1",
        "description": "Salle A",
    }
    assert row["context"]["id"] == sent["messages"][0]["id"]

    loc = FakeWhatsApp.value_of(fake.location_message(USER, 34.02, -6.83, place="Foire"))
    assert loc["messages"][0]["location"] == {
        "latitude": 34.02,
        "longitude": -6.83,
        "name": "Foire",
    }
    voice = FakeWhatsApp.value_of(fake.media_message(USER, "voice"))["messages"][0]
    assert voice["type"] == "audio" and voice["audio"]["voice"] is True
    assert voice["audio"]["mime_type"] == "audio/ogg; codecs=opus"
    assert voice["audio"]["id"] in fake.media and voice["audio"]["sha256"]
    doc = FakeWhatsApp.value_of(
        fake.media_message(USER, "document", content=b"%PDF", caption="CV", filename="cv.pdf")
    )["messages"][0]
    assert doc["document"]["filename"] == "cv.pdf" and doc["document"]["caption"] == "CV"
    assert fake.media[doc["document"]["id"]] == ("cv.pdf", "application/pdf", b"%PDF")
    like = FakeWhatsApp.value_of(fake.reaction(USER, "wamid.A"))["messages"][0]
    assert like["reaction"] == {"message_id": "wamid.A", "emoji": "👍"}

    sent_status = FakeWhatsApp.value_of(fake.status("wamid.B", "sent", USER))
    [status] = sent_status["statuses"]
    assert status["status"] == "sent" and status["recipient_id"] == USER
    assert status["conversation"]["origin"] == {"type": "service"}
    assert status["pricing"]["category"] == "service" and "errors" not in status
    assert "contacts" not in sent_status and "messages" not in sent_status
    read = FakeWhatsApp.value_of(fake.status("wamid.B", "read", USER))["statuses"][0]
    assert "conversation" not in read and "pricing" not in read
    failed = FakeWhatsApp.value_of(fake.status("wamid.B", "failed", USER))["statuses"][0]
    [error] = failed["errors"]
    assert error["code"] == 131026 and error["title"] and error["error_data"]["details"]
    custom = fake.status("wamid.C", "failed", USER, errors=[fake.webhook_error(131047)])
    assert FakeWhatsApp.value_of(custom)["statuses"][0]["errors"][0]["code"] == 131047
    system_error = fake.envelope(errors=[fake.webhook_error(131000)])
    assert list(FakeWhatsApp.value_of(system_error)) == [
        "messaging_product",
        "metadata",
        "errors",
    ]


async def test_sending_to_a_business_scoped_user_id(
    fake: FakeWhatsApp, client: ClientSession
) -> None:
    """A username user's number may be withheld: the Messages API takes their business-scoped
    user id as ``recipient`` (no ``to``) and answers with that ``user_id``."""
    body = message("text", {"body": "Bienvenue"})
    del body["to"]
    status, answer = await send(client, fake, {**body, "recipient": "MA.1409817365209847"})
    assert status == 200
    assert answer["contacts"] == [
        {"input": "MA.1409817365209847", "user_id": "MA.1409817365209847"}
    ]
    [call] = fake.messages("MA.1409817365209847")
    assert call.to == "MA.1409817365209847" and call.type == "text"
    assert fake.texts("MA.1409817365209847") == ["Bienvenue"]
    status, answer = await send(client, fake, {**body, "recipient": "not an id"})
    assert (status, answer["error"]["message"]) == (400, "(#100) The parameter to is required.")
    status, answer = await send(client, fake, body)
    assert status == 400 and answer["error"]["code"] == 100


def test_real_world_envelopes(fake: FakeWhatsApp) -> None:
    """Meta's documented shapes for what is not a plain question."""
    hidden = FakeWhatsApp.value_of(
        fake.text_message(None, "salut", user_id="MA.1409817365209847", username="@salma")
    )
    [msg] = hidden["messages"]
    assert "from" not in msg and msg["from_user_id"] == "MA.1409817365209847"
    assert hidden["contacts"] == [
        {"profile": {"name": "Amina", "username": "@salma"}, "user_id": "MA.1409817365209847"}
    ]
    foreign = FakeWhatsApp.value_of(fake.text_message(USER, "salut", phone_number_id="1055"))
    assert foreign["metadata"]["phone_number_id"] == "1055"
    grouped = FakeWhatsApp.value_of(fake.text_message(USER, "salut", group_id="Y2FwaV9n"))
    assert grouped["messages"][0]["group_id"] == "Y2FwaV9n"

    changed = FakeWhatsApp.value_of(fake.system_message(USER, new_wa_id="212611223344"))
    assert "contacts" not in changed  # system notices come without one
    [notice] = changed["messages"]
    assert notice["type"] == "system" and notice["from"] == USER
    assert notice["system"]["type"] == "user_changed_number"
    assert notice["system"]["wa_id"] == "212611223344"
    identity = FakeWhatsApp.value_of(fake.system_message(USER, identity="Jx8q"))["messages"][0]
    assert identity["system"]["type"] == "user_identity_changed"
    assert identity["system"]["identity"] == "Jx8q"

    edit = FakeWhatsApp.value_of(fake.edit(USER, "wamid.A", "salut !"))["messages"][0]
    assert edit["type"] == "edit" and edit["edit"] == {
        "original_message_id": "wamid.A",
        "message": {"type": "text", "text": {"body": "salut !"}},
    }
    revoke = FakeWhatsApp.value_of(fake.revoke(USER, "wamid.A"))["messages"][0]
    assert revoke["revoke"] == {"original_message_id": "wamid.A"}
    poll = FakeWhatsApp.value_of(fake.unsupported(USER, "poll_creation"))["messages"][0]
    assert poll["type"] == "unsupported" and poll["unsupported"] == {"type": "poll_creation"}
    assert poll["errors"][0]["code"] == 131051
    unknown = FakeWhatsApp.value_of(fake.unsupported(USER))["messages"][0]
    assert "unsupported" not in unknown and unknown["errors"][0]["code"] == 131051
