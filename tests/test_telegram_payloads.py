"""Telegram updates as the Bot API really sends them, beyond a person's text in a private chat:
inline-mode buttons, channel posts, groups that become supergroups, forum topics, updates
aiogram cannot read, redeliveries, and hostile webhook bodies.

The fixtures follow the Bot API documentation (core.telegram.org/bots/api: Update,
CallbackQuery, Message, ChatMemberUpdated, MessageReactionUpdated, ResponseParameters)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from storage.privacy import person
from tests.platforms import TelegramChat, TelegramFactory

AMINA, KARIM = 1001, 1002
MODES = ["polling", "webhook"]
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _user(user_id: int, first_name: str, language_code: str = "fr") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name,
            "language_code": language_code}


def _group(chat_id: int, kind: str = "group", **extra: Any) -> dict[str, Any]:
    return {"id": chat_id, "title": "Coopératives de Khouribga", "type": kind, **extra}


def _message(tg: TelegramChat, chat: dict[str, Any], sender: dict[str, Any] | None,
             **fields: Any) -> dict[str, Any]:
    """A message Update with the next update id."""
    message: dict[str, Any] = {"message_id": fields.pop("message_id", 7), "date": int(time.time()),
                               "chat": chat, **fields}
    if sender is not None:
        message["from"] = sender
    return {"update_id": tg.fake.next_update_id(), "message": message}


async def _settled(tg: TelegramChat) -> None:
    """Wait until everything pushed so far was handled: a private message pushed last is
    answered only after the updates before it were taken (polling hands them out in order;
    the webhook inbox is read in order)."""
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.send_text(AMINA, "bonjour")
    await tg.settle(AMINA, before)


def _secret(tg: TelegramChat) -> dict[str, str]:
    return {WEBHOOK_SECRET_HEADER: tg.app.settings.telegram_webhook_secret.get_secret_value()}


# 1. A button on a message sent via the bot in inline mode -----------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_button_on_an_inline_message_is_only_answered(
    make_telegram: TelegramFactory, mode: str,
) -> None:
    """The tap comes with `inline_message_id` and no `message`: the bot is not in that chat, and
    Karim never opened a private chat with it (Telegram would answer 403). The tap is answered
    with a short text; nothing is written to Karim, and he is not marked unreachable."""
    tg = await make_telegram(mode)
    tg.fake.fail("sendMessage", status=403, chat_id=KARIM,
                 description="Forbidden: bot can't initiate conversation with a user")
    update = tg.fake.callback(KARIM, "m:ws", language_code="ar",
                              inline_message_id="AgAAAFMXAQAqBzQDmd0HbB3XNKI")
    assert "message" not in update["callback_query"]
    await tg.fake.push(update)
    answers = await tg.fake.wait_for("answerCallbackQuery")
    await _settled(tg)
    assert tg.fake.calls_of("sendMessage", KARIM) == []
    karim = await tg.app.engine.contacts.get("telegram", str(KARIM))
    assert karim is None or not karim.unreachable
    assert len(answers) == 1
    assert answers[0].params["callback_query_id"] == update["callback_query"]["id"]
    assert answers[0].status == 200
    assert "المحادثات الخاصة" in answers[0].params.get("text", "")  # in Karim's language


# 2. Channel posts -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_channel_posts_get_no_notice(make_telegram: TelegramFactory, mode: str) -> None:
    """The bot is an administrator of the fair's channel: what the channel publishes is not
    someone talking to the bot, and no "private chat only" notice goes into the channel."""
    tg = await make_telegram(mode)
    channel = {"id": -1001987654321, "title": "Salon ESS Khouribga", "username": "salon_ess_kh",
               "type": "channel"}
    post = {"message_id": 31, "sender_chat": channel, "chat": channel, "date": int(time.time()),
            "text": "Le salon ouvre demain à 10 h. يفتح المعرض غدًا على الساعة 10."}
    await tg.fake.push({"update_id": tg.fake.next_update_id(), "channel_post": post})
    edited = {**post, "edit_date": int(time.time()), "text": "Le salon ouvre demain à 9 h."}
    await tg.fake.push({"update_id": tg.fake.next_update_id(), "edited_channel_post": edited})
    await _settled(tg)
    assert tg.fake.calls_of("sendMessage", channel["id"]) == []


# 3. A group that becomes a supergroup ---------------------------------------------------------


OLD_GROUP, SUPERGROUP = -4005006007, -1004005006007


def _migration(tg: TelegramChat) -> list[dict[str, Any]]:
    """The two service messages Telegram sends when a group becomes a supergroup: one in the old
    group (`migrate_to_chat_id`), one in the new supergroup (`migrate_from_chat_id`)."""
    tg.fake.migrate_group(OLD_GROUP, SUPERGROUP)
    admin = _user(KARIM, "Karim")
    return [
        _message(tg, _group(OLD_GROUP), admin, message_id=12, migrate_to_chat_id=SUPERGROUP),
        _message(tg, _group(SUPERGROUP, "supergroup"), admin, message_id=1,
                 migrate_from_chat_id=OLD_GROUP),
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_a_group_told_before_it_became_a_supergroup_is_not_told_again(
    make_telegram: TelegramFactory, mode: str,
) -> None:
    tg = await make_telegram(mode)
    await tg.fake.push(_message(tg, _group(OLD_GROUP), _user(AMINA, "Amina"), text="salam"))
    notice = await tg.fake.wait_for("sendMessage", OLD_GROUP)
    assert "Je réponds uniquement en conversation privée" in (notice[0].text or "")
    for update in _migration(tg):
        await tg.fake.push(update)
    await tg.fake.push(_message(tg, _group(SUPERGROUP, "supergroup"), _user(KARIM, "Karim"),
                                message_id=2, text="فين كاين الرواق A12؟"))
    await _settled(tg)
    assert len(tg.fake.calls_of("sendMessage", OLD_GROUP)) == 1
    assert tg.fake.calls_of("sendMessage", SUPERGROUP) == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_group_that_became_a_supergroup_is_told_once_at_its_new_id(
    make_telegram: TelegramFactory, mode: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing is sent to the dead group id; the supergroup hears the notice once, when
    someone writes there."""
    tg = await make_telegram(mode)
    for update in _migration(tg):
        await tg.fake.push(update)
    for text in ("Où est le stand A12 ?", "A12"):
        await tg.fake.push(_message(tg, _group(SUPERGROUP, "supergroup"), _user(AMINA, "Amina"),
                                    message_id=3, text=text))
    await _settled(tg)
    assert tg.fake.calls_of("sendMessage", OLD_GROUP) == []
    notices = tg.fake.calls_of("sendMessage", SUPERGROUP)
    assert len(notices) == 1
    assert "Je réponds uniquement en conversation privée" in (notices[0].text or "")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING
                and record.name.startswith("bot.")]


@pytest.mark.parametrize("mode", MODES)
async def test_a_late_message_of_a_migrated_group_is_answered_at_the_new_id(
    make_telegram: TelegramFactory, mode: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The service messages were missed (the bot was offline): a message written in the old
    group arrives late, the notice to the old id is refused with `migrate_to_chat_id`, and it
    goes once to the supergroup instead; the log says so, not "failed after 5 attempts"."""
    tg = await make_telegram(mode)
    caplog.set_level(logging.INFO, logger="bot.channels.telegram")
    tg.fake.migrate_group(OLD_GROUP, SUPERGROUP)
    for text in ("salam", "wach kayn chi atelier lyoum?"):
        await tg.fake.push(_message(tg, _group(OLD_GROUP), _user(KARIM, "Karim", "ar"),
                                    text=text))
    await _settled(tg)
    refused = tg.fake.calls_of("sendMessage", OLD_GROUP)
    assert [call.status for call in refused] == [400]
    assert refused[0].response is not None
    assert refused[0].response["parameters"] == {"migrate_to_chat_id": SUPERGROUP}
    moved = tg.fake.calls_of("sendMessage", SUPERGROUP)
    assert [call.status for call in moved] == [200]
    assert "أجيب فقط في المحادثات الخاصة" in (moved[0].text or "")
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "attempts" not in said
    assert person("telegram", str(SUPERGROUP)) in said


# 4. Forum topics ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_answers_stay_in_the_forum_topic(make_telegram: TelegramFactory, mode: str) -> None:
    """In a forum supergroup the notice goes to the topic the message was written in, and in a
    private chat with topics the answer stays in its topic."""
    tg = await make_telegram(mode)
    forum = _group(-1002233445566, "supergroup", is_forum=True)
    topic = {"message_id": 42, "date": int(time.time()), "chat": forum,
             "from": _user(KARIM, "Karim"), "message_thread_id": 42,
             "forum_topic_created": {"name": "Ateliers", "icon_color": 7322096}}
    await tg.fake.push(_message(tg, forum, _user(AMINA, "Amina"), message_id=57,
                                message_thread_id=42, is_topic_message=True,
                                reply_to_message=topic, text="Il reste des places ?"))
    notice = await tg.fake.wait_for("sendMessage", forum["id"])
    assert notice[0].params.get("message_thread_id") == 42

    private = {"id": KARIM, "first_name": "Karim", "type": "private"}
    before = len(tg.fake.calls_of("sendMessage", KARIM))
    await tg.fake.push(_message(tg, private, _user(KARIM, "Karim"), message_id=9,
                                message_thread_id=3, is_topic_message=True, text="A12"))
    await tg.fake.wait_for("sendMessage", KARIM, count=before + 1)
    await tg.channel.idle()
    answers = tg.fake.calls_of("sendMessage", KARIM)
    assert "Stand A12" in "\n".join(call.text or "" for call in answers[before:])
    assert {call.params.get("message_thread_id") for call in answers[before:]} == {3}


# 5. An update aiogram cannot read -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_an_unreadable_update_is_logged_with_its_id_and_the_next_ones_are_answered(
    make_telegram: TelegramFactory, mode: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """A forwarded message whose origin is of a kind this aiogram does not know yet (a newer
    Bot API): the update cannot be read. It is logged with its update id, and the updates
    after it are still answered (in polling, it no longer blocks every later update)."""
    tg = await make_telegram(mode)
    private = {"id": AMINA, "first_name": "Amina", "type": "private"}
    unreadable = _message(tg, private, _user(AMINA, "Amina"), text="Regarde ce stand",
                          forward_origin={"type": "story", "date": int(time.time()) - 60})
    await tg.fake.push(unreadable)
    answer = await tg.say(AMINA, "A12")
    assert "Stand A12" in answer
    logged = [record.getMessage() for record in caplog.records
              if record.levelno >= logging.WARNING and record.name.startswith("bot.")]
    assert any(str(unreadable["update_id"]) in line for line in logged), logged


# 6. A redelivered button tap ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_redelivered_tap_is_answered_once(make_telegram: TelegramFactory,
                                                  mode: str) -> None:
    """The same callback query delivered again (the same update, or the same query under a new
    update id): one answerCallbackQuery, one reply."""
    tg = await make_telegram(mode)
    await tg.say(AMINA, "bonjour")
    await tg.tap(AMINA, "Français")
    tap = tg.fake.callback(AMINA, tg.button(AMINA, "Ateliers"),
                           message_id=tg.last_keyboard_message(AMINA))
    query_id = tap["callback_query"]["id"]
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.push(tap)
    reply = await tg.settle(AMINA, before)
    assert "16 ateliers" in reply[0]
    if mode == "webhook":  # polling never hands out an update id twice in one process
        assert await tg.fake.push(tap) == 200
    await tg.fake.push({**tap, "update_id": tg.fake.next_update_id()})
    await _settled(tg)
    answers = [call for call in tg.fake.calls_of("answerCallbackQuery")
               if call.params["callback_query_id"] == query_id]
    assert [call.status for call in answers] == [200]
    assert tg.fake.texts(AMINA).count(reply[0]) == 1


# 7. Other kinds of updates --------------------------------------------------------------------


def _bot_status(tg: TelegramChat, user_id: int, old: str, new: str) -> dict[str, Any]:
    """my_chat_member in a private chat: the person blocked (kicked) or unblocked the bot."""
    bot = {"id": tg.fake.bot_id, "is_bot": True, "first_name": "Tadamon",
           "username": tg.fake.username}

    def member(status: str) -> dict[str, Any]:
        return {"status": status, "user": bot, **({"until_date": 0} if status == "kicked" else {})}

    return {"update_id": tg.fake.next_update_id(), "my_chat_member": {
        "chat": {"id": user_id, "first_name": "Amina", "type": "private"},
        "from": _user(user_id, "Amina"), "date": int(time.time()),
        "old_chat_member": member(old), "new_chat_member": member(new)}}


async def test_a_redelivered_block_does_not_undo_an_unblock(
    make_telegram: TelegramFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    """Amina blocks the bot, unblocks it, then Telegram delivers the block again: she stays
    reachable. Edits, reactions and other updates the bot does not use are ignored quietly."""
    tg = await make_telegram("webhook")
    await tg.say(AMINA, "bonjour")
    blocked = _bot_status(tg, AMINA, "member", "kicked")
    assert await tg.fake.push(blocked) == 200
    await tg.channel.idle()
    amina = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert amina is not None and amina.unreachable
    assert await tg.fake.push(_bot_status(tg, AMINA, "kicked", "member")) == 200
    assert await tg.fake.push(blocked) == 200  # delivered again
    await tg.channel.idle()
    amina = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert amina is not None and not amina.unreachable

    sent = len(tg.fake.calls)
    private = {"id": AMINA, "first_name": "Amina", "type": "private"}
    edited = _message(tg, private, _user(AMINA, "Amina"), text="A12")
    edited["edited_message"] = {**edited.pop("message"), "edit_date": int(time.time())}
    reaction = {"update_id": tg.fake.next_update_id(), "message_reaction": {
        "chat": private, "message_id": 2, "user": _user(AMINA, "Amina"),
        "date": int(time.time()), "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": "❤"}]}}
    unknown = {"update_id": tg.fake.next_update_id(),
               "some_future_update": {"chat": private, "date": int(time.time())}}
    for update in (edited, reaction, unknown, reaction):
        assert await tg.fake.push(update) == 200
    await tg.channel.idle()
    assert tg.fake.calls[sent:] == []
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING
                and record.name.startswith("bot.")]


# 8. Hostile webhook bodies --------------------------------------------------------------------


async def test_hostile_webhook_bodies_get_json_errors(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram("webhook")
    url = f"{tg.base_url}/telegram/webhook"
    nested = b"[" * 8000 + b"]" * 8000
    oversized = b'{"update_id": 1, "message": {"text": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    async with aiohttp.ClientSession() as client:
        # the secret is checked first: nothing is read for a caller without it
        async with client.post(url, data=nested) as response:
            assert response.status == 401
            assert (await response.json())["error"]
        async with client.post(url, data=nested, headers=_secret(tg)) as response:
            assert response.status == 400
            assert response.content_type == "application/json"
            assert (await response.json())["error"]
        async with client.post(url, data=io.BytesIO(oversized), headers=_secret(tg)) as response:
            assert response.status == 413
            assert response.content_type == "application/json"
            assert (await response.json())["error"]

        async def chunks() -> Any:  # no Content-Length: the limit holds while reading
            for _ in range(40):
                yield b"x" * 64 * 1024

        async with client.post(url, data=chunks(), headers=_secret(tg)) as response:
            assert response.status == 413
            assert (await response.json())["error"]
        # a body in several pieces is read whole
        update = tg.fake.message(AMINA, "Bonjour, où se trouve le stand A12 ?")

        async def pieces() -> Any:
            raw = json.dumps(update).encode()
            yield raw[:20]
            yield raw[20:]

        async with client.post(url, data=pieces(), headers=_secret(tg)) as response:
            assert response.status == 200
    answer = await tg.fake.wait_for("sendMessage", AMINA)
    assert "Bienvenue" in (answer[0].text or "")


async def test_a_secret_header_that_is_not_utf8_is_refused(make_telegram: TelegramFactory) -> None:
    """Header bytes that are not UTF-8 (sent by hand: HTTP clients refuse to) get 401, not 500."""
    tg = await make_telegram("webhook")
    host, port = tg.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /telegram/webhook HTTP/1.1\r\nHost: tadamon\r\n"
                 b"X-Telegram-Bot-Api-Secret-Token: \xff\xfe\xc3\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                 b"Connection: close\r\n\r\n{}")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    assert json.loads(body)["error"]
