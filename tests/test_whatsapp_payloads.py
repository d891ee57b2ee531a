"""Real-world WhatsApp webhook bodies and hostile ones, posted signed to the webhook route, with
the fake Graph API recording what the bot sent. The fixtures follow Meta's documented payloads:
system notices, edits, deletions, group messages, username users known only by their
business-scoped user id, value-level errors, bodies for another number of the same account."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from yarl import URL

from bot.channels.whatsapp import message_ref
from handlers.messages import Rendered
from storage.models import Contact, utcnow
from tests.platforms import WhatsAppChat, WhatsAppFactory

AMINA, KARIM = "212600000101", "212600000102"
# Business-scoped user ids (BSUIDs) of people who hide their number behind a username.
SALMA_ID = "MA.1409817365209847"
OTHER_NUMBER = "1055555555"  # another phone number id of the same business account


async def settle(wa: WhatsAppChat) -> None:
    """Let the channel take and handle every body posted so far."""
    await wa.channel.idle()


async def post_raw(wa: WhatsAppChat, raw: bytes, *,
                   signed: bool = True) -> tuple[int, str, dict[str, Any] | None]:
    """POST bytes to the webhook (signed like Meta unless told); the status, content type and
    JSON body of the answer."""
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Hub-Signature-256"] = wa.fake.sign(raw)
    async with aiohttp.ClientSession() as client, client.post(
            wa.url, data=io.BytesIO(raw), headers=headers) as response:
        body = (await response.json() if response.content_type == "application/json"
                else None)
        return response.status, response.content_type, body


async def post_in_two_segments(url: str, raw: bytes, signature: str) -> int:
    """POST a body the way a mobile network may deliver it: headers and half of the body, a
    short wait, then the rest, in separate TCP segments. Returns the HTTP status."""
    target = URL(url)
    assert target.host is not None and target.port is not None
    reader, writer = await asyncio.open_connection(target.host, target.port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
            f"X-Hub-Signature-256: {signature}\r\nConnection: close\r\n\r\n").encode()
    half = len(raw) // 2
    writer.write(head + raw[:half])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(raw[half:])
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


# ---- 1. bodies for another number ---------------------------------------------------------------

async def test_a_body_for_another_number_is_ignored_and_logged_once(
    make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    wa = await make_whatsapp()
    fake = wa.fake
    for text in ("Bonjour, le salon ouvre à quelle heure ?", "واش كاين شي ورشة غدا؟"):
        foreign = fake.text_message(AMINA, text, phone_number_id=OTHER_NUMBER)
        assert await fake.post_webhook(wa.url, foreign) == 200  # Meta must not retry it
    await settle(wa)
    assert fake.messages(AMINA) == []
    assert fake.messages(type="read") == []
    assert await wa.app.engine.contacts.get("whatsapp", AMINA) is None
    said = [record for record in caplog.records
            if OTHER_NUMBER in record.getMessage() and record.levelno >= logging.WARNING]
    assert len(said) == 1
    assert fake.phone_number_id in said[0].getMessage()

    # A body with a change for each number: only ours is answered.
    mixed = fake.text_message(KARIM, "hello, where is the prayer room?")
    other = fake.text_message(AMINA, "bonjour", phone_number_id=OTHER_NUMBER)
    mixed["entry"][0]["changes"].append(other["entry"][0]["changes"][0])
    assert await fake.post_webhook(wa.url, mixed) == 200
    await fake.wait_for(KARIM)
    await settle(wa)
    assert fake.messages(AMINA) == []
    assert await wa.app.engine.contacts.get("whatsapp", KARIM) is not None
    assert await wa.app.engine.contacts.get("whatsapp", AMINA) is None


# ---- 2. notices, edits, deletions, groups, username users ------------------------------------

async def test_notices_edits_and_deletions_get_no_answer(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    fake = wa.fake
    welcome = await wa.say(AMINA, "Salam, je cherche la coopérative d'argan")
    assert "Bienvenue" in welcome
    await wa.tap(AMINA, "Français")
    asked = fake.message_id_of(fake.text_message(AMINA, "x"))
    sent = len(fake.messages(AMINA))
    reads = len(fake.messages(type="read"))
    for envelope in (
        fake.system_message(AMINA, new_wa_id="212611223344"),   # changed number
        fake.system_message(AMINA, identity="Jx8qCzDq1Vk="),     # new security code
        fake.edit(AMINA, asked, "Salam, je cherche la coopérative Tifawin"),
        fake.revoke(AMINA, asked),
        fake.unsupported(AMINA, "edit"),         # an edit, as older numbers report it
        fake.unsupported(AMINA, "poll_update"),  # a vote on a poll
        fake.reaction(AMINA, fake.messages(AMINA)[-1].message_id or "", "🙏"),
        fake.system_message(KARIM, new_wa_id="212622334455"),    # someone we never met
    ):
        assert await fake.post_webhook(wa.url, envelope) == 200
    await settle(wa)
    assert len(fake.messages(AMINA)) == sent
    assert fake.messages(KARIM) == []
    assert len(fake.messages(type="read")) == reads
    assert await wa.app.engine.contacts.get("whatsapp", KARIM) is None

    # Someone who sent what Cloud API cannot show (a poll) is still told what works.
    poll = await wa.post(fake.unsupported(AMINA, "poll_creation"), AMINA)
    assert "Je ne sais lire que les messages écrits" in poll


async def test_a_message_in_a_group_gets_no_private_answer(
    make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.channels.whatsapp")
    wa = await make_whatsapp()
    group = "Y2FwaV9ncm91cDoxMjAzNjMwNDA4MjcxOTIyMDQ="
    in_group = wa.fake.text_message(AMINA, "السلام عليكم، شكون عندو البرنامج ديال الورشات؟",
                                    group_id=group)
    assert await wa.fake.post_webhook(wa.url, in_group) == 200
    await settle(wa)
    assert wa.fake.messages() == []
    assert await wa.app.engine.contacts.get("whatsapp", AMINA) is None
    assert any(group in record.getMessage() for record in caplog.records)
    # The same person writing to us directly is answered.
    assert "مرحبًا بك" in await wa.say(AMINA, "السلام عليكم")


async def test_a_username_user_is_answered_by_their_user_id(
    make_whatsapp: WhatsAppFactory,
) -> None:
    """Meta withholds the number of a user who chose a username: the message has no `from`,
    only `from_user_id`. The Cloud API takes that id as `recipient`, so the reply goes there."""
    wa = await make_whatsapp()
    fake = wa.fake
    hello = fake.text_message(None, "Bonjour, je voudrais voir les ateliers", user_id=SALMA_ID,
                              username="@salma.coop", name="Salma")
    assert "from" not in fake.value_of(hello)["messages"][0]
    assert await fake.post_webhook(wa.url, hello) == 200
    [welcome, *_rest] = await fake.wait_for(SALMA_ID)
    await settle(wa)
    assert "Bienvenue" in (welcome.text or "")
    assert welcome.body["recipient"] == SALMA_ID and "to" not in welcome.body
    assert welcome.status == 200
    [read] = fake.messages(type="read")
    assert read.body["message_id"] == fake.message_id_of(hello)

    french = next(key for key, title in fake.messages(SALMA_ID, "interactive")[-1].buttons
                  if title == "Français")
    before = len(fake.messages(SALMA_ID))
    assert await fake.post_webhook(wa.url, fake.button_reply(None, french,
                                                             user_id=SALMA_ID)) == 200
    await fake.wait_for(SALMA_ID, count=before + 1)
    await settle(wa)
    assert "Langue choisie\u202f: français." in "\n".join(
        call.text or "" for call in fake.messages(SALMA_ID)[before:])
    async with wa.app.sessions() as session:
        contact = (await session.scalars(select(Contact))).one()
    assert (contact.user_id, contact.platform_alt_id, contact.language) == (
        SALMA_ID, SALMA_ID, "fr")

    # Reminders and broadcasts reach her the same way.
    now = utcnow()
    reminder = Rendered(text="Rappel : votre atelier commence à 10:00, salle 1.", language="fr")
    sent = await wa.channel.send_bulk(SALMA_ID, "fr", now, "reminder", reminder, now)
    assert sent.status == "sent"
    last = fake.messages(SALMA_ID)[-1]
    assert last.body["recipient"] == SALMA_ID and last.text == reminder.text


async def test_a_message_naming_no_sender_is_logged_with_its_id(
    make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    wa = await make_whatsapp()
    nameless = wa.fake.text_message(None, "bonjour", user_id="not a user id")
    wamid = wa.fake.message_id_of(nameless)
    assert await wa.fake.post_webhook(wa.url, nameless) == 200
    await settle(wa)
    assert wa.fake.calls == []
    # by a reference: a wamid holds the sender's number
    assert any(message_ref(wamid) in record.getMessage() and record.levelno >= logging.WARNING
               for record in caplog.records)


# ---- 3. value-level errors ------------------------------------------------------------------

async def test_a_throughput_error_in_a_webhook_backs_the_number_off(
    make_whatsapp: WhatsAppFactory,
) -> None:
    wa = await make_whatsapp()
    state = wa.app.engine.state
    other = wa.fake.envelope(errors=[wa.fake.webhook_error(131000)])
    assert await wa.fake.post_webhook(wa.url, other) == 200
    await settle(wa)
    assert await state.channel_paused_for("whatsapp") == 0  # only said
    throughput = wa.fake.envelope(errors=[wa.fake.webhook_error(130429)])
    assert await wa.fake.post_webhook(wa.url, throughput) == 200
    await settle(wa)
    # Every process of the number holds its sends (the pause is shared through Redis).
    assert await state.channel_paused_for("whatsapp") > 0


# ---- 4. redelivered bodies ------------------------------------------------------------------

async def test_a_redelivered_message_is_marked_read_once(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    hello = wa.fake.text_message(AMINA, "Bonjour ! Où se trouve le stand A12 ?")
    assert "Bienvenue" in await wa.post(hello, AMINA)
    sent = len(wa.fake.messages(AMINA))
    for _ in range(2):  # Meta delivers at least once
        assert await wa.fake.post_webhook(wa.url, hello) == 200
        await settle(wa)
    assert len(wa.fake.messages(AMINA)) == sent
    [read] = wa.fake.messages(type="read")
    assert read.body["message_id"] == wa.fake.message_id_of(hello)


# ---- 5. hostile bodies ----------------------------------------------------------------------

async def test_deeply_nested_json_is_refused_with_400_json(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    nested = b"[" * 8000 + b"]" * 8000
    status, content_type, body = await post_raw(wa, nested)
    assert (status, content_type) == (400, "application/json")
    assert body is not None and body["error"]
    inside = b'{"object":"whatsapp_business_account","entry":[],"x":' + nested + b"}"
    status, content_type, body = await post_raw(wa, inside)
    assert (status, content_type) == (400, "application/json")
    # The signature is checked before anything reads the body.
    status, _type, _body = await post_raw(wa, nested, signed=False)
    assert status == 401
    await settle(wa)
    assert wa.fake.calls == []
    assert await wa.channel.inbox.pending() == 0
    # The route still works.
    assert "Bienvenue" in await wa.say(AMINA, "bonjour")


async def test_an_oversized_body_is_refused_with_413_json(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    envelope = wa.fake.text_message(AMINA, "bonjour " * 400_000)  # over Meta's 3 MB
    raw = wa.fake.encode(envelope)
    assert len(raw) > 3 * 1024 * 1024
    status, content_type, body = await post_raw(wa, raw)
    assert (status, content_type) == (413, "application/json")
    assert body is not None and body["error"]
    await settle(wa)
    assert wa.fake.calls == []


async def test_a_body_in_several_tcp_segments_is_accepted(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    question = ("السلام عليكم، بغيت نعرف فين كاين الرواق ديال التعاونيات ديال الأركان "
                "وشحال كيبقى مفتوح، وواش كاينة شي ورشة على التسويق الرقمي هاد الأسبوع؟ ")
    envelope = wa.fake.text_message(AMINA, question * 3)
    raw = wa.fake.encode(envelope)
    assert len(raw) > 2000
    assert await post_in_two_segments(wa.url, raw, wa.fake.sign(raw)) == 200
    [reply, *_rest] = await wa.fake.wait_for(AMINA)
    await settle(wa)
    assert reply.status == 200 and reply.text


async def test_header_bytes_that_are_not_utf8_are_refused(make_whatsapp: WhatsAppFactory) -> None:
    """A signature or verify token that is not UTF-8 (sent by hand: HTTP clients refuse to)
    gets 401 / 403, not a 500."""
    wa = await make_whatsapp()
    target = URL(wa.url)
    assert target.host is not None and target.port is not None
    requests = {
        401: (b"POST " + target.path.encode() + b" HTTP/1.1\r\nHost: tadamon\r\n"
              b"X-Hub-Signature-256: sha256=\xff\xfe\xc3\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"),
        403: (b"GET " + target.path.encode() + b"?hub.mode=subscribe&hub.challenge=42"
              b"&hub.verify_token=%ff%fe HTTP/1.1\r\nHost: tadamon\r\nConnection: close\r\n\r\n"),
    }
    for status, request in requests.items():
        reader, writer = await asyncio.open_connection(target.host, target.port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    assert wa.fake.calls == []


async def test_a_forged_more_row_gets_the_menu(make_whatsapp: WhatsAppFactory) -> None:
    """A "more" row whose page is not ASCII digits ("²" passes str.isdigit, then int() fails)
    gets the menu, not an error."""
    wa = await make_whatsapp()
    await wa.say(AMINA, "bonjour")
    await wa.tap(AMINA, "Français")
    await wa.tap(AMINA, "m:st")
    await wa.tap(AMINA, "zone:0")  # a long list, so its pages are kept
    menu = await wa.post(wa.fake.list_reply(AMINA, "wa:more:²"), AMINA)
    assert "Que souhaitez-vous faire" in menu


async def test_a_body_of_the_wrong_shape_loses_none_of_its_good_messages(
        make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Found by fuzzing: an entry, a change or a contact list of another type than Meta
    documents made the whole body unreadable (AttributeError logged, body dropped), Amina's
    good message with it."""
    wa = await make_whatsapp()
    envelope = wa.fake.text_message(AMINA, "Bonjour, où est le stand A12 ?")
    envelope["entry"][0]["changes"][0]["value"]["contacts"] = "Amina"
    envelope["entry"][0]["changes"].insert(0, ["not", "a", "change"])
    envelope["entry"][0]["changes"].append({"value": {"metadata": "x", "messages": {"a": 1}}})
    envelope["entry"].insert(0, "not an entry")
    answer = await wa.post(envelope, AMINA)
    assert "Bienvenue" in answer
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(("kind", "content"), [
    ("text", "Bonjour"), ("text", ["Bonjour"]), ("interactive", "menu"),
    ("interactive", {"type": "button_reply", "button_reply": "menu"}), ("location", "Khouribga"),
    ("button", "Menu"), ("unsupported", "poll"),
])
async def test_a_message_whose_content_has_another_shape_is_answered(
        make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture, kind: str,
        content: Any) -> None:
    """Found by fuzzing: a message whose text, interactive, location, button or unsupported
    part was not an object raised AttributeError while it was read: a traceback logged and
    the person left without an answer."""
    wa = await make_whatsapp()
    envelope = wa.fake.text_message(AMINA, "x")
    message = wa.fake.value_of(envelope)["messages"][0]
    del message["text"]
    message["type"] = kind
    message[kind] = content
    assert await wa.post(envelope, AMINA)
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []


async def test_notices_whose_details_have_another_shape_are_read(
        make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Found by fuzzing: a system notice, an error's `error_data` or a status's `errors` that
    was not what Meta documents raised AttributeError (a traceback logged)."""
    wa = await make_whatsapp()
    system = wa.fake.system_message(AMINA)
    wa.fake.value_of(system)["messages"][0]["system"] = "changed"
    error = wa.fake.envelope(errors=[{"code": 131000, "error_data": "details"}])
    status = wa.fake.status(wa.fake.wamid(AMINA, outbound=True), "failed", AMINA)
    wa.fake.value_of(status)["statuses"][0]["errors"] = 131026
    for envelope in (system, error, status):
        assert await wa.fake.post_webhook(wa.url, envelope) == 200
    await settle(wa)
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []
    assert "whatsapp reports an error: #131000" in caplog.text


@pytest.mark.parametrize("sender", [[{}, {"a": False}], {"wa_id": AMINA}, "Amina", True])
async def test_a_sender_that_is_no_phone_number_is_not_a_person(
        make_whatsapp: WhatsAppFactory, sender: Any) -> None:
    """Found by fuzzing: a `from` that was a list, an object or a name became a person named
    by its text ("[{}, {'a': False}]"): a contact was recorded, the Graph API refused every
    answer and every broadcast to it. Such a message names no sender: logged, not answered."""
    wa = await make_whatsapp()
    envelope = wa.fake.text_message(AMINA, "bonjour")
    wa.fake.value_of(envelope)["messages"][0]["from"] = sender
    assert await wa.fake.post_webhook(wa.url, envelope) == 200
    await settle(wa)
    assert wa.fake.calls == []
    async with wa.app.sessions() as session:
        assert list(await session.scalars(select(Contact.user_id))) == []
