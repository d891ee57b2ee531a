"""What the platform channels share through bot/channels/base.py, checked on both platforms
against their fake servers: a webhook body the inbox cannot keep gets 503 and is answered when
the platform delivers it again; the app finds both as bulk senders."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.channels.base import PlatformChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebInboxSender
from bot.channels.whatsapp import WhatsAppChannel
from tests.platforms import TelegramFactory, WhatsAppFactory
from tests.servers import free_port

AMINA_TG, AMINA_WA = 1001, "212600000101"
BOT = Path(__file__).resolve().parents[1] / "bot"


def _redis_down() -> Redis:
    """A client of a Redis server that is not there (nothing listens on the port)."""
    return Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)


async def test_telegram_webhook_answers_503_while_the_inbox_cannot_keep_it(
        make_telegram: TelegramFactory, caplog: pytest.LogCaptureFixture) -> None:
    tg = await make_telegram("webhook")
    kept, tg.channel.inbox.redis = tg.channel.inbox.redis, _redis_down()
    update = tg.fake.message(AMINA_TG, "Bonjour, où est le stand A12 ?")
    assert await tg.fake.push(update) == 503
    assert "telegram body refused for a later retry" in caplog.text
    down, tg.channel.inbox.redis = tg.channel.inbox.redis, kept
    await down.aclose()
    assert await tg.fake.push(update) == 200  # Telegram's redelivery
    answer = await tg.fake.wait_for("sendMessage", AMINA_TG)
    assert "Bienvenue" in (answer[0].text or "")


async def test_whatsapp_webhook_answers_503_while_the_inbox_cannot_keep_it(
        make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture) -> None:
    wa = await make_whatsapp()
    kept, wa.channel.inbox.redis = wa.channel.inbox.redis, _redis_down()
    envelope = wa.fake.text_message(AMINA_WA, "السلام عليكم، أين الرواق A12؟")
    assert await wa.fake.post_webhook(wa.url, envelope) == 503
    assert "whatsapp body refused for a later retry" in caplog.text
    down, wa.channel.inbox.redis = wa.channel.inbox.redis, kept
    await down.aclose()
    assert "مرحبًا بك" in await wa.post(envelope, AMINA_WA)  # Meta's redelivery


async def test_both_platforms_are_platform_channels_and_bulk_senders(
        make_telegram: TelegramFactory, make_whatsapp: WhatsAppFactory) -> None:
    tg = await make_telegram()
    wa = await make_whatsapp()
    for chat, kind in ((tg, TelegramChannel), (wa, WhatsAppChannel)):
        assert isinstance(chat.channel, kind) and isinstance(chat.channel, PlatformChannel)
        assert chat.app.bulk_sender(kind.name) is chat.channel
        # The web chat's people are reached through their inbox.
        assert isinstance(chat.app.bulk_sender("web"), WebInboxSender)
        assert chat.app.bulk_sender("sms") is None


def test_no_module_of_bot_names_a_redis_key() -> None:
    """Every Redis key lives in storage/keys.py and is used through storage/ code: nothing
    under bot/ imports the key names."""
    offenders = []
    for path in sorted(BOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            if "storage.keys" in names or any(name.startswith("storage.keys.")
                                              for name in names):
                offenders.append(str(path.relative_to(BOT.parent)))
    assert offenders == []
