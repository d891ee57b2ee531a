"""The Telegram and WhatsApp channels of a test app, wired to fake platform servers, and
helpers that read like a conversation: `say`, `tap`, `labels`. Fixtures: `make_telegram`,
`make_whatsapp` (registered by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.http import make_web_app
from tests.conftest import AppFactory
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.servers import free_port


class TelegramChat:
    """People writing to the bot through the fake Bot API; reads like the conversation."""

    def __init__(self, fake: FakeTelegram, app: App, channel: TelegramChannel,
                 base_url: str) -> None:
        self.fake = fake
        self.app = app
        self.channel = channel
        self.base_url = base_url

    async def settle(self, chat_id: int, before: int) -> list[str]:
        """Wait for the answer to the update just pushed; return the texts sent."""
        await self.fake.wait_for("sendMessage", chat_id, count=before + 1)
        await self.channel.idle()
        return [call.text or "" for call in self.fake.calls_of("sendMessage", chat_id)[before:]]

    async def say(self, user: int, text: str, **kw: Any) -> str:
        before = len(self.fake.calls_of("sendMessage", user))
        await self.fake.send_text(user, text, **kw)
        return "\n".join(await self.settle(user, before))

    async def tap(self, user: int, label_or_data: str) -> str:
        data = self.button(user, label_or_data)
        before = len(self.fake.calls_of("sendMessage", user))
        message_id = self.last_keyboard_message(user)
        await self.fake.tap(user, data, message_id=message_id)
        return "\n".join(await self.settle(user, before))

    def buttons(self, user: int) -> list[dict[str, str]]:
        for call in reversed(self.fake.calls_of("sendMessage", user)):
            markup = call.params.get("reply_markup")
            if markup:
                return [button for row in markup["inline_keyboard"] for button in row]
        return []

    def labels(self, user: int) -> list[str]:
        return [button["text"] for button in self.buttons(user)]

    def last_keyboard_message(self, user: int) -> int:
        for call in reversed(self.fake.calls_of("sendMessage", user)):
            if call.params.get("reply_markup") and call.result:
                return int(call.result["message_id"])
        return 1

    def button(self, user: int, label_or_data: str) -> str:
        for button in self.buttons(user):
            if label_or_data in (button["text"], button["callback_data"]):
                return button["callback_data"]
        for button in self.buttons(user):
            if label_or_data in button["text"]:
                return button["callback_data"]
        raise AssertionError(f"no button {label_or_data!r} in {self.buttons(user)}")


TelegramFactory = Callable[..., Awaitable[TelegramChat]]


@pytest.fixture
async def make_telegram(make_app: AppFactory) -> AsyncIterator[TelegramFactory]:
    """`await make_telegram(mode="polling"|"webhook", database=...)`: the app's Telegram
    channel connected to a fake Bot API server."""
    running: list[tuple[FakeTelegram, App, TestServer]] = []

    async def make(mode: str = "polling", **options: Any) -> TelegramChat:
        fake = FakeTelegram()
        await fake.start()
        port = free_port()
        settings: dict[str, Any] = {"telegram_token": fake.token,
                                    "telegram_api_base": fake.base_url}
        if mode == "webhook":
            settings["telegram_webhook_url"] = f"http://127.0.0.1:{port}/telegram/webhook"
        app = await make_app(**settings, **options)
        server = TestServer(make_web_app(app), port=port)
        await server.start_server()
        running.append((fake, app, server))
        await app.start_channels()
        channel = app.channels[0]
        assert isinstance(channel, TelegramChannel)
        await fake.wait_for("setMyCommands", count=4)
        if mode == "webhook":
            await fake.wait_for("setWebhook")
        else:
            await fake.wait_for("getUpdates")
        return TelegramChat(fake, app, channel, f"http://127.0.0.1:{port}")

    yield make
    for fake, app, server in running:
        await app.stop_channels()
        await server.close()
        await fake.close()


class WhatsAppChat:
    """People writing to the bot through signed webhooks; reads like the conversation."""

    def __init__(self, fake: FakeWhatsApp, app: App, channel: WhatsAppChannel,
                 url: str) -> None:
        self.fake = fake
        self.app = app
        self.channel = channel
        self.url = url

    async def post(self, envelope: dict[str, Any], wa_id: str) -> str:
        before = len(self.fake.messages(wa_id))
        assert await self.fake.post_webhook(self.url, envelope) == 200
        await self.fake.wait_for(wa_id, count=before + 1)
        await self.channel.idle()
        return "\n".join(call.text or "" for call in self.fake.messages(wa_id)[before:])

    async def say(self, wa_id: str, text: str, **kw: Any) -> str:
        return await self.post(self.fake.text_message(wa_id, text, **kw), wa_id)

    def options(self, wa_id: str) -> list[tuple[str, str]]:
        """(id, title) of the buttons or rows of the last interactive message."""
        interactive = self.fake.messages(wa_id, "interactive")
        if not interactive:
            return []
        last = interactive[-1]
        return list(last.buttons) or [(row[0], row[1]) for row in last.rows]

    def labels(self, wa_id: str) -> list[str]:
        return [title for _id, title in self.options(wa_id)]

    async def tap(self, wa_id: str, label_or_id: str) -> str:
        last = self.fake.messages(wa_id, "interactive")[-1]
        kind = (last.interactive or {}).get("type")
        options = self.options(wa_id)
        # An exact id or title first ("★★★★" is not "★★★★★"), then a part of a title.
        chosen = (next((key for key, title in options if label_or_id in (key, title)), None)
                  or next((key for key, title in options if label_or_id in title), None))
        if chosen is not None:
            if kind == "button":
                return await self.post(self.fake.button_reply(wa_id, chosen), wa_id)
            return await self.post(self.fake.list_reply(wa_id, chosen), wa_id)
        raise AssertionError(f"no option {label_or_id!r} in {self.options(wa_id)}")


WhatsAppFactory = Callable[..., Awaitable[WhatsAppChat]]


@pytest.fixture
async def make_whatsapp(make_app: AppFactory) -> AsyncIterator[WhatsAppFactory]:
    running: list[tuple[FakeWhatsApp, App, TestServer]] = []

    async def make(**options: Any) -> WhatsAppChat:
        fake = FakeWhatsApp()
        await fake.start()
        settings = {
            "whatsapp_token": fake.token,
            "whatsapp_phone_number_id": fake.phone_number_id,
            "whatsapp_app_secret": fake.app_secret,
            "whatsapp_verify_token": fake.verify_token,
            "whatsapp_api_base": fake.base_url,
        }
        app = await make_app(**settings, **options)
        server = TestServer(make_web_app(app), port=free_port())
        await server.start_server()
        running.append((fake, app, server))
        await app.start_channels()
        channel = app.channels[0]
        assert isinstance(channel, WhatsAppChannel)
        return WhatsAppChat(fake, app, channel, str(server.make_url("/whatsapp/webhook")))

    yield make
    for fake, app, server in running:
        await app.stop_channels()
        await server.close()
        await fake.close()
