"""The fake Telegram Bot API server, driven by aiogram's real client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientSession, web

from tests.fakes.telegram import FakeTelegram

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x08\x08\x02\x00\x00\x00"
    b"\r\n\x00binary\xff\xfe--tail"
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    return Bot(token or fake.token, session=session)


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = make_bot(fake)
    yield client
    await client.session.close()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_get_me(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "tadamon_test_bot"
    assert me.can_join_groups is True
    assert fake.calls_of("getMe")[0].status == 200


async def test_wrong_token_and_unknown_method(fake: FakeTelegram) -> None:
    intruder = make_bot(fake, token="999:wrong")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await intruder.get_me()
    finally:
        await intruder.session.close()
    async with ClientSession() as http:
        async with http.post(f"{fake.base_url}/bot{fake.token}/sendTelepathy") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # JSON bodies and query strings are accepted too
        url = f"{fake.base_url}/bot{fake.token}/sendMessage?chat_id=42"
        async with http.post(url, json={"text": "123", "disable_notification": True}) as response:
            assert (await response.json())["result"]["text"] == "123"
    call = fake.calls_of("sendMessage", chat_id=42)[0]
    assert call.params == {"chat_id": 42, "text": "123", "disable_notification": True}


async def test_send_message_with_inline_keyboard(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Ateliers", callback_data="menu:workshops")]]
    )
    first = await bot.send_message(
        42, "Bienvenue <b>Amina</b>", reply_markup=keyboard, parse_mode="HTML"
    )
    second = await bot.send_message(42, "123")
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "Bienvenue Amina"
    assert first.entities is not None and first.entities[0].type == "bold"
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump() == keyboard.model_dump()
    assert second.text == "123"

    calls = await fake.wait_for("sendMessage", chat_id=42, count=2)
    assert calls[0].params["chat_id"] == 42
    assert calls[0].params["text"] == "Bienvenue <b>Amina</b>"
    assert calls[0].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Ateliers", "callback_data": "menu:workshops"}]]
    }
    assert calls[1].params["text"] == "123"  # text stays a string
    assert fake.texts(42) == ["Bienvenue <b>Amina</b>", "123"]


async def test_send_photo_document_and_location(fake: FakeTelegram, bot: Bot) -> None:
    photo = await bot.send_photo(42, BufferedInputFile(PNG, "plan.png"), caption="Le plan")
    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (16, 8)
    assert photo.caption == "Le plan"
    call = fake.calls_of("sendPhoto")[0]
    assert call.files["photo"] == ("plan.png", PNG)
    assert call.params["caption"] == "Le plan"

    document = await bot.send_document(42, BufferedInputFile(b"a;b\n1;2\n", "stands.csv"))
    assert document.document is not None
    assert document.document.file_name == "stands.csv"
    assert document.document.mime_type == "text/csv"
    assert fake.calls_of("sendDocument")[0].files["document"] == ("stands.csv", b"a;b\n1;2\n")
    downloaded = await bot.download(document.document.file_id)
    assert downloaded is not None and downloaded.read() == b"a;b\n1;2\n"

    location = await bot.send_location(42, latitude=36.8065, longitude=10.1815)
    assert location.location is not None and location.location.latitude == 36.8065
    params = fake.calls_of("sendLocation", chat_id=42)[0].params
    assert (params["latitude"], params["longitude"]) == (36.8065, 10.1815)
    assert [message.message_id for message in (photo, document, location)] == [1, 2, 3]


async def test_get_updates_long_polling(fake: FakeTelegram, bot: Bot) -> None:
    first = await fake.send_text(7, "/start")
    second = await fake.push(fake.message(7, "ateliers", language_code="ar"))
    assert second == first + 1

    updates = await bot.get_updates(timeout=5)
    assert [update.update_id for update in updates] == [first, second]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    assert updates[0].message.entities is not None
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[1].message is not None and updates[1].message.from_user is not None
    assert updates[1].message.from_user.language_code == "ar"
    # not confirmed yet: they come again
    assert len(await bot.get_updates(timeout=0)) == 2

    poll = asyncio.create_task(bot.get_updates(offset=second + 1, timeout=40))
    await asyncio.sleep(0.3)
    assert not poll.done()
    assert fake.pending_updates == []  # confirmed by the offset
    third = await fake.send_text(7, "stands")
    # the waiting poll is woken by the new update, long before its 40 s are up
    updates = await asyncio.wait_for(poll, timeout=20)
    assert [update.update_id for update in updates] == [third]

    assert await bot.get_updates(offset=third + 1, timeout=0) == []


async def test_dispatcher_polling(fake: FakeTelegram, bot: Bot) -> None:
    """aiogram's own polling loop runs against the fake."""
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"écho : {message.text}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        await fake.send_text(3, "salam", language_code="ar")
        await fake.send_text(3, "encore")
        calls = await fake.wait_for("sendMessage", chat_id=3, count=2, timeout=5)
        assert [call.params["text"] for call in calls] == ["écho : salam", "écho : encore"]
        assert fake.calls_of("getUpdates")[0].params["allowed_updates"] == ["message"]
    finally:
        await dispatcher.stop_polling()
        await polling


async def test_callback_query_and_edits(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Oui", callback_data="yes")]]
    )
    sent = await bot.send_message(7, "Question ?", reply_markup=keyboard)
    await fake.tap(7, "yes", message_id=sent.message_id)
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.data == "yes"
    assert isinstance(query.message, Message) and query.message.text == "Question ?"

    assert await bot.answer_callback_query(query.id, text="Merci")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)

    edited = await bot.edit_message_text("Réponse : oui", chat_id=7, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "Réponse : oui"
    assert edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Réponse : oui", chat_id=7, message_id=sent.message_id)
    edited = await bot.edit_message_reply_markup(
        chat_id=7, message_id=sent.message_id, reply_markup=keyboard
    )
    assert isinstance(edited, Message) and edited.reply_markup is not None
    assert edited.reply_markup.model_dump() == keyboard.model_dump()


async def test_a_tap_on_an_inline_mode_message(fake: FakeTelegram, bot: Bot) -> None:
    """A button of a message sent via the bot in inline mode: `inline_message_id`, no message;
    the query can be answered once, like any other."""
    await fake.tap(7, "yes", inline_message_id="AgAAAFMXAQAqBzQDmd0HbB3XNKI")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.message is None
    assert query.inline_message_id == "AgAAAFMXAQAqBzQDmd0HbB3XNKI"
    assert query.from_user.id == 7 and query.data == "yes" and query.chat_instance
    assert await bot.answer_callback_query(query.id, text="Écrivez-moi en privé.")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)


async def test_a_group_that_became_a_supergroup(fake: FakeTelegram, bot: Bot) -> None:
    """After `migrate_group`, sends to the old id get Telegram's 400 with
    `parameters.migrate_to_chat_id`; the new id takes them."""
    fake.migrate_group(-4005, -1004005)
    with pytest.raises(TelegramMigrateToChat) as moved:
        await bot.send_message(-4005, "Bonjour le groupe")
    assert moved.value.migrate_to_chat_id == -1004005
    (refused,) = fake.calls_of("sendMessage", -4005)
    assert refused.status == 400
    assert refused.response == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1004005},
    }
    sent = await bot.send_message(-1004005, "Bonjour le groupe")
    assert sent.chat.id == -1004005 and sent.chat.type == "supergroup"


async def test_a_message_into_a_forum_topic(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(-1002233, "Dans le sujet", message_thread_id=42)
    assert sent.message_thread_id == 42 and sent.is_topic_message
    assert fake.calls_of("sendMessage", -1002233)[0].params["message_thread_id"] == 42
    general = await bot.send_message(-1002233, "Dans le sujet général")
    assert general.message_thread_id is None


async def test_wire_errors_of_the_real_server(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(7, "1 < 2 <i>oui", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(7, "x" * 4097)
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(7, "x", reply_markup=too_long)


async def test_faults(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(42, "hello")
    assert retry.value.retry_after == 3
    assert "retry after 3" in retry.value.message

    fake.fail("sendMessage", status=403, chat_id=43)
    await bot.send_message(42, "not this chat")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(43, "hello")

    fake.fail("sendPhoto", status=500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_photo(42, BufferedInputFile(PNG, "p.png"))
    await bot.send_photo(42, BufferedInputFile(PNG, "p.png"))
    assert [call.status for call in fake.calls] == [429, 200, 403, 500, 500, 200]


async def test_hang_times_out_and_close_releases() -> None:
    fake = FakeTelegram()
    await fake.start()
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    client = Bot(fake.token, session=session)
    try:
        fake.hang("getMe")
        with pytest.raises(TelegramNetworkError, match="timeout"):
            await client.get_me(request_timeout=1)
        assert fake.calls_of("getMe")[0].status is None
        assert (await client.get_me()).id == 123456  # only the next call hangs
        hung = asyncio.create_task(fake.wait_for("sendMessage", timeout=5))
        fake.hang("sendMessage")
        pending = asyncio.create_task(client.send_message(1, "x"))
        await hung
    finally:
        await asyncio.wait_for(fake.close(), timeout=20)  # a hung request does not hold it up
        with pytest.raises(TelegramServerError):
            await pending
        await client.session.close()


async def test_wait_for_timeout_lists_the_calls(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(5, "salut")
    with pytest.raises(AssertionError, match=r"(?s)sendPhoto.*got 0.*sendMessage\(chat_id=5"):
        await fake.wait_for("sendPhoto", timeout=0.2)


async def test_webhook_mode(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, url = await serve(app)
    try:
        assert await bot.set_webhook(f"{url}/hook", secret_token="s3cret_-X")
        assert fake.webhook_url == f"{url}/hook"
        assert fake.webhook_secret == "s3cret_-X"
        info = await bot.get_webhook_info()
        assert info.url == f"{url}/hook" and info.pending_update_count == 0

        update = fake.message(9, "/start")
        assert await fake.push(update) == 200
        assert received == [(update, "s3cret_-X")]

        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        assert await bot.delete_webhook()
        assert fake.webhook_url is None
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_webhook_reply_with_a_method(fake: FakeTelegram, bot: Bot) -> None:
    """aiogram can answer a webhook POST with a method in the body; the fake runs it."""
    router = Router()

    @router.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"écho : {message.text}")

    @router.callback_query()
    async def tapped(query: CallbackQuery) -> None:
        await query.answer()

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="abc").register(
        app, path="/tg"
    )
    runner, url = await serve(app)
    try:
        await bot.set_webhook(f"{url}/tg", secret_token="abc")
        assert await fake.send_text(11, "bonjour") == 200
        (call,) = fake.calls_of("sendMessage", chat_id=11)
        assert call.via_webhook and call.params["text"] == "écho : bonjour"
        assert call.status == 200
        assert await fake.tap(11, "x") == 200
        await fake.wait_for("answerCallbackQuery")

        await bot.set_webhook(f"{url}/tg", secret_token="wrong")
        assert await fake.send_text(11, "bonjour") == 401
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"
    finally:
        await runner.cleanup()
