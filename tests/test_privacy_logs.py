"""Log lines name nobody (issue 19): whole conversations on Telegram, WhatsApp and the web chat,
with their error paths (a redelivered message, the database failing under a message, sends the
platform refuses), are logged at DEBUG from every logger, and no line holds a Telegram id, a
chat id, a phone number in any of its forms, a wamid (which holds the number), a name the
platform gave, a web chat session token or its public id. People are named `person(...)`."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from sqlalchemy import select, text

from bot.app import App
from bot.channels.telegram import SEND_ATTEMPTS
from bot.http import make_runner
from bot.settings import Settings
from bot.worker import OutboxWorker
from handlers.messages import Rendered
from storage import database, keys
from storage.models import ServiceKey
from storage.privacy import LOG_KEY_NAME, person
from storage.websessions import public_id
from tests.conftest import AppFactory, DatabaseFactory
from tests.fakes.whatsapp import FakeWhatsApp
from tests.platforms import TelegramChat, TelegramFactory, WhatsAppChat, WhatsAppFactory
from tests.servers import free_port

# The Telegram person: the platform gives their id (their private chat's id too) and names.
TG_USER = 5_550_123_987
TG_FIRST, TG_LAST, TG_USERNAME = "Zineb", "Tazarinet", "zineb_tz1987"
# The WhatsApp person: a Moroccan number, and the name of their WhatsApp profile.
WA_ID = "212612345678"
WA_NAME = "Mounia Aitouzzine"
PHONE_FORMS = (WA_ID, "+" + WA_ID, "0612345678", "612345678", "+212 612-345678")

BEFORE_THE_FAIR = dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
FAIR_DAY = dt.datetime(2026, 12, 13, 10, 0, tzinfo=dt.UTC)
AFTER_THE_WORKSHOP = dt.datetime(2026, 12, 13, 11, 50, tzinfo=dt.UTC)

STOPPED = "vous ne recevrez plus d'annonces ni de rappels"
ROOT = Path(__file__).resolve().parents[1]
WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_-]+")
FORMAT = logging.Formatter("%(levelname)s %(name)s: %(message)s")


def _telegram_secrets() -> tuple[str, ...]:
    return (str(TG_USER), TG_FIRST, TG_LAST, TG_USERNAME)


def _whatsapp_secrets() -> tuple[str, ...]:
    return (*PHONE_FORMS, WA_NAME, *WA_NAME.split())


def leaks(lines: list[str], secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    """(secret, line) for every secret found in a line, and for every wamid written out in
    one (it is the base64 of bytes that hold a phone number)."""
    found = [(secret, line) for line in lines for secret in secrets
             if secret.lower() in line.lower()]
    for line in lines:
        for wamid in WAMID.findall(line):
            try:
                decoded = base64.b64decode(wamid.removeprefix("wamid.") + "==")
            except (binascii.Error, ValueError):
                decoded = b""
            found.append((f"a wamid holding {decoded[:40]!r}", line))
    return found


def shown(found: list[tuple[str, str]]) -> str:
    """The leaks found, one line each, for the failure message."""
    return "\n".join(f"{secret!r} in: {line[:400]}" for secret, line in found[:20])


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record of the test, formatted as a handler would write it: the message with its
    arguments, the traceback and the stack when there is one."""
    lines = [FORMAT.format(record) for record in caplog.records]
    # DEBUG lines were captured, and SQLAlchemy's statements: the search saw everything.
    assert any(line.startswith("DEBUG ") for line in lines)
    assert any(line.startswith("INFO sqlalchemy.engine") for line in lines)
    return lines


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, and SQLAlchemy's statements too (as someone debugging would
    turn them on)."""
    # In this order: each call sets the capturing handler's level too.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    return caplog


def test_the_search_would_notice_a_leak() -> None:
    """The check below cannot pass for want of looking: each thing it looks for is found in a
    line that holds it, however the line writes it, and a reference to the person is not."""
    for secret in (*_telegram_secrets(), *_whatsapp_secrets()):
        line = f"INFO bot.engine: handling {secret.upper()}: failed"
        assert leaks([line], (*_telegram_secrets(), *_whatsapp_secrets()))
    wamid = FakeWhatsApp().wamid(WA_ID)
    assert leaks([f"DEBUG x: mark-as-read of {wamid} failed"], ())
    assert not leaks([f"INFO bot.engine: throttling {person('whatsapp', WA_ID)}",
                      f"INFO bot.engine: throttling {person('telegram', str(TG_USER))}"],
                     (*_telegram_secrets(), *_whatsapp_secrets()))


@asynccontextmanager
async def contacts_table_away(app: App) -> AsyncIterator[None]:
    """The database fails under the next message that reads a contact (its table renamed)."""
    async with app.db.begin() as connection:
        await connection.execute(text("ALTER TABLE contacts RENAME TO contacts_away"))
    try:
        yield
    finally:
        async with app.db.begin() as connection:
            await connection.execute(text("ALTER TABLE contacts_away RENAME TO contacts"))


async def at_human_pace(app: App) -> None:
    """Forget the person's messages of the last seconds: a conversation typed by a test is
    faster than the flood limit (15 messages in 10 seconds) lets anyone be."""
    found = await app.redis.keys(f"{keys.PREFIX}:throttle:*")
    if found:
        await app.redis.delete(*found)


async def _worker_sends(app: App) -> int:
    """The workshop's reminders and its feedback prompt, sent by the outbox worker."""
    return await OutboxWorker(app, clock=lambda: AFTER_THE_WORKSHOP).drain()


async def test_every_process_names_people_with_the_deployments_key(
    make_database: DatabaseFactory, redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """A process that cannot read the key starts all the same, with a key of its own, and
    says so; once read, its references are the deployment's (the key kept in the database)."""
    url = await make_database("sqlite")
    engine = database.create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE service_keys RENAME TO service_keys_away"))
    await engine.dispose()
    app = App(Settings(_env_file=None, database_url=url, redis_url=redis_url))  # type: ignore[call-arg]
    try:
        await app.prepare()
        assert any("log reference key is unreadable" in record.getMessage()
                   for record in caplog.records if record.levelno == logging.WARNING)
        async with app.db.begin() as connection:
            await connection.execute(text("ALTER TABLE service_keys_away RENAME TO service_keys"))
        await app.load_log_key()
        async with app.sessions() as session:
            key = await session.scalar(select(ServiceKey.value)
                                       .where(ServiceKey.name == LOG_KEY_NAME))
        assert key is not None
        digest = hmac.new(key.encode(), f"whatsapp:{WA_ID}".encode(), hashlib.sha256)
        assert person("whatsapp", WA_ID) == f"whatsapp:#{digest.hexdigest()[:8]}"
    finally:
        await app.close()


# ---- Telegram ----------------------------------------------------------------------------


def _named(update: dict[str, Any]) -> dict[str, Any]:
    """The update with everything Telegram says of the person: first and last name, username."""
    names = {"first_name": TG_FIRST, "last_name": TG_LAST, "username": TG_USERNAME}
    for key in ("message", "callback_query"):
        item = update.get(key)
        if item is None:
            continue
        item["from"].update(names)
        chat = item.get("chat") or item.get("message", {}).get("chat", {})
        if chat.get("type") == "private":
            chat.update(names)
    return update


async def _tg_say(tg: TelegramChat, words: str, **kw: Any) -> str:
    await at_human_pace(tg.app)
    before = len(tg.fake.calls_of("sendMessage", TG_USER))
    await tg.fake.push(_named(tg.fake.message(TG_USER, words, first_name=TG_FIRST, **kw)))
    return "\n".join(await tg.settle(TG_USER, before))


async def _tg_tap(tg: TelegramChat, label: str) -> str:
    await at_human_pace(tg.app)
    before = len(tg.fake.calls_of("sendMessage", TG_USER))
    update = tg.fake.callback(TG_USER, tg.button(TG_USER, label), first_name=TG_FIRST,
                              message_id=tg.last_keyboard_message(TG_USER))
    await tg.fake.push(_named(update))
    return "\n".join(await tg.settle(TG_USER, before))


async def test_a_telegram_conversation_logs_no_id_and_no_name(
    everything_logged: pytest.LogCaptureFixture, make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram("webhook")
    tg.app.engine.clock = lambda: BEFORE_THE_FAIR
    assert "Bienvenue" in await _tg_say(tg, "/start")
    assert "Langue choisie" in await _tg_tap(tg, "Français")
    assert "A12" in await _tg_say(tg, "a 12")
    assert "Coopérative Annahla" in await _tg_say(tg, "fin kayn l3sel")
    assert "16 ateliers" in await _tg_say(tg, "je voudrais voir le programme des ateliers")
    assert "Aucun atelier n'est prévu le vendredi" in await _tg_say(tg, "ورشات اليوم")
    assert "Les toilettes sont près de l'entrée" in await _tg_say(tg, "where are the toilets?")
    # What people write is never logged either, even their own number and name.
    assert await _tg_say(tg, f"je suis {TG_FIRST} {TG_LAST}, mon numéro est 0612345678")
    assert "Techniques de marketing" in await _tg_say(tg, "/start ws_marketing-1")
    assert "Inscription confirmée" in await _tg_tap(tg, "S'inscrire")

    # A redelivered update: answered once.
    update = _named(tg.fake.message(TG_USER, "A18", first_name=TG_FIRST))
    before = len(tg.fake.calls_of("sendMessage", TG_USER))
    assert await tg.fake.push(update) == 200
    await tg.settle(TG_USER, before)
    assert await tg.fake.push(update) == 200
    await tg.channel.idle()
    assert len(tg.fake.calls_of("sendMessage", TG_USER)) == before + 1

    tg.app.engine.clock = lambda: FAIR_DAY
    await _tg_say(tg, "avis")
    assert "Merci pour votre note" in await _tg_tap(tg, "★★★★")
    assert "commentaire a été enregistré" in await _tg_say(tg, "Très bien organisé, merci !")

    # The database fails under a message: an apology, and a line that names a reference.
    await tg.app.state.clear_session("telegram", str(TG_USER))
    async with contacts_table_away(tg.app):
        assert "indisponible" in await _tg_say(tg, "menu")
    # Telegram refuses a reply (400), then the person blocks the bot (403) before the worker
    # sends their reminders.
    tg.fake.fail("sendMessage", status=400, description="Bad Request: chat not found",
                 chat_id=TG_USER)
    await _tg_say(tg, "menu")
    # Telegram's flood control holds a message to them past every retry (aiogram's text of
    # the error names the chat): it waits in the outbox, with the reason.
    tg.fake.fail("sendMessage", status=429, retry_after=1, times=SEND_ATTEMPTS + 1,
                 chat_id=TG_USER)
    held = await tg.channel.send_bulk(str(TG_USER), "fr", None, "broadcast",
                                      Rendered(text="Rappel", language="fr"), FAIR_DAY)
    assert held.status == "later"
    assert person("telegram", str(TG_USER)) in (held.reason or "")
    tg.fake.heal()
    tg.fake.fail("sendMessage", status=403, chat_id=TG_USER)
    assert await _worker_sends(tg.app) >= 1
    contact = await tg.app.engine.contacts.get("telegram", str(TG_USER))
    assert contact is not None and contact.unreachable
    # In a group, the person's messages get the group notice.
    before = len(tg.fake.calls_of("sendMessage"))
    await tg.fake.push(_named(tg.fake.message(TG_USER, "salam", chat_type="group",
                                              first_name=TG_FIRST)))
    await tg.fake.wait_for("sendMessage", count=before + 1)
    assert STOPPED in await _tg_say(tg, "stop")
    assert "réactiver" in await _tg_say(tg, "merci")
    assert "Bon retour" in await _tg_tap(tg, "Oui, les réactiver")
    # The person has their data erased, then writes again: a first contact.
    assert "Effacer toutes vos données" in await _tg_say(tg, "supprimer mes données")
    assert "vos données sont effacées" in await _tg_tap(tg, "Oui, effacer")
    assert "مرحبًا بك" in await _tg_say(tg, "salam")  # a new person: no language chosen yet
    await tg.channel.idle()

    lines = logged(everything_logged)
    found = leaks(lines, _telegram_secrets())
    assert not found, shown(found)
    # The lines about the person were written, naming them by reference.
    reference = person("telegram", str(TG_USER))
    assert any(f"{reference} blocked the bot" in line for line in lines)
    assert any(f"database unavailable while handling {reference}" in line for line in lines)
    assert any("chat not found" in line for line in lines)
    assert any(f"Flood control exceeded on method 'SendMessage' in chat {reference}" in line
               for line in lines)
    assert str(TG_USER) not in (held.reason or "")


# ---- WhatsApp ----------------------------------------------------------------------------


async def _wa_say(wa: WhatsAppChat, words: str) -> str:
    await at_human_pace(wa.app)
    return await wa.say(WA_ID, words, name=WA_NAME)


async def _wa_tap(wa: WhatsAppChat, label: str) -> str:
    await at_human_pace(wa.app)
    last = wa.fake.messages(WA_ID, "interactive")[-1]
    options = wa.options(WA_ID)
    chosen = (next((key for key, title in options if label in (key, title)), None)
              or next(key for key, title in options if label in title))
    if (last.interactive or {}).get("type") == "button":
        return await wa.post(wa.fake.button_reply(WA_ID, chosen, name=WA_NAME), WA_ID)
    return await wa.post(wa.fake.list_reply(WA_ID, chosen, name=WA_NAME), WA_ID)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
async def test_a_whatsapp_conversation_logs_no_number_and_no_name(
    everything_logged: pytest.LogCaptureFixture, make_whatsapp: WhatsAppFactory, database: str,
) -> None:
    wa = await make_whatsapp(database=database)
    wa.app.engine.clock = lambda: BEFORE_THE_FAIR
    assert "Bienvenue" in await _wa_say(wa, "bonjour")
    assert "Langue choisie" in await _wa_tap(wa, "Français")
    assert "A18" in await _wa_say(wa, "STAND A18")
    assert "Coopérative Annahla" in await _wa_say(wa, "fin kayn l3sel")
    assert "16 ateliers" in await _wa_say(wa, "je voudrais voir le programme des ateliers")
    assert "Aucun atelier n'est prévu le vendredi" in await _wa_say(wa, "ورشات اليوم")
    assert "Les toilettes sont près de l'entrée" in await _wa_say(wa, "where are the toilets?")
    assert await _wa_say(wa, f"ana {WA_NAME}, nmra dyali +212 612-345678")
    assert "Techniques de marketing" in await _wa_say(wa, "/start ws_marketing-1")
    assert "Inscription confirmée" in await _wa_tap(wa, "S'inscrire")

    # A redelivered webhook: answered once.
    envelope = wa.fake.text_message(WA_ID, "A12", name=WA_NAME)
    await wa.post(envelope, WA_ID)
    sent = len(wa.fake.messages(WA_ID))
    assert await wa.fake.post_webhook(wa.url, envelope) == 200
    await wa.channel.idle()
    assert len(wa.fake.messages(WA_ID)) == sent

    wa.app.engine.clock = lambda: FAIR_DAY
    await _wa_say(wa, "avis")
    assert "Merci pour votre note" in await _wa_tap(wa, "★★★★")
    assert "commentaire a été enregistré" in await _wa_say(wa, "Très bien organisé, merci !")

    # The database fails under a message.
    await wa.app.state.clear_session("whatsapp", WA_ID)
    async with contacts_table_away(wa.app):
        assert "indisponible" in await _wa_say(wa, "menu")
    # Meta refuses a reply, quoting the number in its details (the fake's documented errors
    # do not; the real API's wording is not promised), and a mark-as-read.
    wa.fake.fail(131026, to=WA_ID, details=f"Message to {WA_ID} (+{WA_ID}) undeliverable")
    wa.fake.fail(100, type="read", details=f"Invalid message id for 0{WA_ID[3:]}")
    sent = len(wa.fake.messages(WA_ID))
    assert await wa.fake.post_webhook(wa.url, wa.fake.text_message(WA_ID, "menu",
                                                                    name=WA_NAME)) == 200
    await wa.fake.wait_for(WA_ID, count=sent + 1)
    await wa.channel.idle()
    # A message of ours that Meta could not deliver, the person's number changing, a
    # reaction: each reported by a webhook.
    ours = wa.fake.messages(WA_ID)[-1].message_id or wa.fake.wamid(WA_ID, outbound=True)
    for body in (wa.fake.status(ours, "failed", WA_ID),
                 wa.fake.system_message(WA_ID, new_wa_id="212612345679", name=WA_NAME),
                 wa.fake.reaction(WA_ID, ours, name=WA_NAME)):
        assert await wa.fake.post_webhook(wa.url, body) == 200
        await wa.channel.idle()
    # The worker's sends: Meta refuses the first (undeliverable).
    wa.fake.fail(131026, to=WA_ID)
    assert await _worker_sends(wa.app) >= 1
    assert STOPPED in await _wa_say(wa, "stop")
    assert "réactiver" in await _wa_say(wa, "merci")
    assert "Bon retour" in await _wa_say(wa, "reprendre")
    assert "Effacer toutes vos données" in await _wa_say(wa, "bghit nms7 kolchi 3liya")
    assert "vos données sont effacées" in await _wa_tap(wa, "Oui, effacer")
    assert "Bienvenue" in await _wa_say(wa, "bonjour")

    lines = logged(everything_logged)
    found = leaks(lines, _whatsapp_secrets())
    assert not found, shown(found)
    reference = person("whatsapp", WA_ID)
    assert any(f"database unavailable while handling {reference}" in line for line in lines)
    assert any(f"whatsapp message to {reference} not sent" in line and "undeliverable" in line
               for line in lines)
    assert any(f"to {reference} failed: #131026" in line for line in lines)
    assert any(f"system notice user_changed_number for {reference}" in line for line in lines)


def test_the_reverse_proxy_logs_no_query_string() -> None:
    """`GET /chat/api/inbox?session=S`: nginx's access log (docker-compose.yml) writes paths
    without their query, so no session token reaches it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = compose["configs"]["nginx-tadamon"]["content"]
    formats = re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", config)
    assert formats
    for _name, layout in formats:
        assert "$$uri" in layout
        for variable in ("$$request ", "$$request\"", "$$request_uri", "$$args", "$$query_string",
                         "$$http_referer"):
            assert variable not in layout, variable
    server = config.split("server {", 1)[1]
    assert [used for _path, used in re.findall(r"access_log\s+(\S+)\s+(\w+);", server)] == [
        name for name, _layout in formats]


# ---- Web chat ----------------------------------------------------------------------------


class WebPerson:
    """Someone in the web chat, served as `tadamon run` serves it (its runner, no access log)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.token = ""
        self.last: dict[str, Any] = {}

    async def start(self) -> None:
        async with self.http.post(f"{self.base}/chat/api/sessions", json={}) as response:
            assert response.status == 201
            self.token = (await response.json())["session"]

    async def _post(self, body: dict[str, Any]) -> str:
        async with self.http.post(f"{self.base}/chat/api/messages",
                                  json={"session": self.token, **body}) as response:
            assert response.status == 200, await response.text()
            self.last = await response.json()
        return "\n".join(reply["text"] for reply in self.last["replies"])

    async def say(self, words: str) -> str:
        return await self._post({"text": words})

    async def tap(self, label: str) -> str:
        choices = [choice for reply in self.last["replies"] for choice in reply["choices"]]
        chosen = (next((c["id"] for c in choices if label in (c["id"], c["label"])), None)
                  or next(c["id"] for c in choices if label in c["label"]))
        return await self._post({"choice": chosen})

    async def inbox(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base}/chat/api/inbox",
                                 params={"session": self.token}) as response:
            assert response.status == 200
            replies: list[dict[str, Any]] = (await response.json())["replies"]
            return replies


@asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    runner = make_runner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_web_chat_conversation_logs_no_session_token(
    everything_logged: pytest.LogCaptureFixture, make_app: AppFactory,
) -> None:
    app = await make_app(web_sessions_per_minute=100_000)
    app.engine.clock = lambda: BEFORE_THE_FAIR
    async with served(app) as base, aiohttp.ClientSession() as http:
        amina = WebPerson(http, base)
        await amina.start()
        assert "Bienvenue" in await amina.say("bonjour")
        assert "Langue choisie" in await amina.tap("Français")
        assert "Coopérative Annahla" in await amina.say("fin kayn l3sel")
        assert "16 ateliers" in await amina.say("je voudrais voir le programme des ateliers")
        assert "Aucun atelier n'est prévu le vendredi" in await amina.say("ورشات اليوم")
        assert "Les toilettes sont près de l'entrée" in await amina.say("where are the toilets?")
        assert "A12" in await amina.say("A12")
        assert "Techniques de marketing" in await amina.say("/start ws_marketing-1")
        assert "Inscription confirmée" in await amina.tap("S'inscrire")
        app.engine.clock = lambda: FAIR_DAY
        await amina.say("avis")
        assert "Merci pour votre note" in await amina.tap("★★★★")
        assert "commentaire a été enregistré" in await amina.say("Très bien organisé, merci !")
        async with contacts_table_away(app):
            await app.state.clear_session("web", public_id(amina.token))
            assert "indisponible" in await amina.say("menu")
        assert await _worker_sends(app) >= 1
        assert await amina.inbox()
        # A message sent with a session this deployment never issued is refused, and logged.
        async with http.post(f"{base}/chat/api/messages",
                             json={"session": "x" * 43, "text": "salut"}) as refused:
            assert refused.status == 401
        assert STOPPED in await amina.say("stop")

    lines = logged(everything_logged)
    secrets = (amina.token, public_id(amina.token))
    found = leaks(lines, secrets)
    assert not found, shown(found)
    reference = person("web", public_id(amina.token))
    assert any(f"database unavailable while handling {reference}" in line for line in lines)

