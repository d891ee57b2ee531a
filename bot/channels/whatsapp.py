"""The WhatsApp channel: our own thin adapter on the Cloud API (Graph API) with aiohttp.

In: `POST /whatsapp/webhook` checks Meta's signature over the raw body, keeps the body in a
durable inbox (a Redis stream) and answers 200 at once; consumers parse it into `Inbound`s for
the engine and record delivery statuses. Out: text, reply buttons, lists (paged past ten rows),
images, documents, locations and templates, within WhatsApp's limits and its 24-hour window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from bot.channels import Delivery
from bot.channels.base import PlatformChannel
from bot.channels.body import BadBody, error_response, load_json, read_body
from bot.channels.ordering import HandleLater
from bot.channels.retry import (
    GIVE_UP,
    RETRY,
    Action,
    RetryPolicy,
    Verdict,
    pause_all,
    wait_person,
)
from bot.engine import Engine
from bot.metrics import Metrics
from bot.settings import Settings
from handlers.buttons import Menu
from handlers.menu import LIST_BUTTON, MORE_CHOICES
from handlers.messages import Inbound, Kind, Rendered, RenderedChoice
from storage.database import DATABASE_ERRORS
from storage.outbox import OutboxRepository
from storage.privacy import person
from storage.repositories import Sessions
from storage.state import ChoicePages, State, UserBusy

log = logging.getLogger(__name__)

# Document types the Cloud API accepts for upload.
DOCUMENT_TYPES = frozenset({
    "text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})

CHANNEL = "whatsapp"
TEXT_LIMIT = 4096
BODY_LIMIT = 1024  # interactive message body
CAPTION_LIMIT = 1024
BUTTON_TITLE = 20
MAX_BUTTONS = 3
ROW_TITLE = 24
ROW_DESCRIPTION = 72
MAX_ROWS = 10
SEND_ATTEMPTS = 4
WINDOW = dt.timedelta(hours=24)
# A message sent at 23:59:30 may reach Meta after the window closed: keep a margin.
WINDOW_MARGIN = dt.timedelta(minutes=5)
MORE_PREFIX = "wa:more:"
MEDIA_TYPES = ("image", "audio", "voice", "video", "document", "sticker")
# Meta's webhook payloads are at most 3 MB.
WEBHOOK_BODY_LIMIT = 3 * 1024 * 1024
# Messages that report something done to an earlier message or to the account (a reaction, an
# edit, a deletion, a changed number or identity) rather than ask anything: no answer.
SILENT_TYPES = frozenset({"reaction", "system", "edit", "revoke"})
# What an `unsupported` message stands for (its `unsupported.type`) when it asks nothing either.
SILENT_UNSUPPORTED = frozenset({"reaction", "edit", "revoke", "pin", "keep_in_chat",
                                "poll_update"})
# A wa_id is a phone number's digits (a "+" is accepted too); a business-scoped user id (BSUID)
# is a country code, a period and up to 128 letters and digits (contacts keep 128 characters).
PHONE = re.compile(r"\+?[0-9]{1,32}")
BSUID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9.]{1,125}")
# The page of a long list that a "more" row asks for (`str.isdigit` would take "²").
PAGE = re.compile(r"[0-9]{1,3}")
# A webhook may report 130429 without saying for how long: hold every send this long.
THROUGHPUT_PAUSE = 5.0
# Foreign phone number ids are logged once each; past this many, no more are remembered.
FOREIGN_IDS_KEPT = 100

# Meta's error codes that change what we do.
THROUGHPUT = 130429
PAIR_RATE = 131056
WINDOW_CLOSED = 131047
BAD_TOKEN = 190


class GraphError(Exception):
    """An error answer from the Graph API, with Meta's code."""

    def __init__(self, status: int, code: int, message: str, details: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        super().__init__(f"{status} #{code} {message} {details}".strip())


class WindowClosed(Exception):
    """The person last wrote more than 24 hours ago: only a template may be sent."""


def verdict(exc: Exception) -> Verdict:
    """What a failed Graph API call asks for: 130429 backs the whole number off, 131056 waits
    for that person only, server and network errors are tried again; the rest is final (131047
    a closed window, 190 a rejected token, a refused message)."""
    if isinstance(exc, GraphError):
        if exc.code in (WINDOW_CLOSED, BAD_TOKEN) or exc.status == 401:
            return GIVE_UP
        if exc.code == THROUGHPUT:
            return pause_all()
        if exc.code == PAIR_RATE:
            return wait_person()
        return RETRY if exc.status >= 500 else GIVE_UP
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return RETRY
    return GIVE_UP


SEND_RETRY = RetryPolicy(attempts=SEND_ATTEMPTS, base_delay=1.0, classify=verdict)


def unsent(exc: GraphError) -> Delivery:
    """A message Meta did not take: tried again later when it was only unavailable (server
    errors, throughput) after the retries, failed when refused for good."""
    if verdict(exc).action is Action.GIVE_UP:
        return Delivery("failed", reason=str(exc))
    return Delivery("later", reason=str(exc))


def shorten(label: str, limit: int) -> str:
    """A label of at most `limit` characters, cut between words (or at least between letters,
    never inside one), ending with an ellipsis when cut."""
    label = " ".join(label.split())
    if len(label) <= limit:
        return label
    room = limit - 1
    cut = label.rfind(" ", 0, room + 1)
    if cut <= 0:
        cut = room
        while cut > 0 and unicodedata.combining(label[cut]):
            cut -= 1  # keep a letter with its marks (Arabic vowels, accents)
    return label[:cut].rstrip(" ·,-") + "…"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line breaks or spaces."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n"), window.rfind(" "))
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def template_for(templates: dict[str, str], kind: str, language: str
                 ) -> tuple[str, str] | None:
    """The template (name, language code) a message of `kind` goes out with to a reader of
    `language` outside the 24-hour window (TADAMON_WHATSAPP_TEMPLATES); None: there is none."""
    name = templates.get(f"{kind}:{language}")
    if name is not None:
        return name, language
    if language == "en" and (name := templates.get(f"{kind}:fr")) is not None:
        # English readers are sent the French text of what has no English one (a broadcast,
        # a catalogue reminder): the French template carries it.
        return name, "fr"
    return None


def template_text(text: str) -> str:
    """A message's text as its template's parameter carries it."""
    # Meta refuses line breaks, tabs and long runs of spaces in template parameters.
    joined = " · ".join(line.strip() for line in text.splitlines() if line.strip())
    return shorten(joined, BODY_LIMIT)


def address(to: str) -> dict[str, str]:
    """Who a message goes to: `to` for a phone number (wa_id), `recipient` for a username
    user known only by their business-scoped user id, as the Cloud API takes them."""
    return {"to": to} if PHONE.fullmatch(to) else {"recipient": to}


def sender(message: dict[str, Any]) -> str | None:
    """The person who wrote: their wa_id, else (a username user, phone number withheld) their
    business-scoped user id; None when the message names neither."""
    wa_id = message.get("from")
    if isinstance(wa_id, str | int) and not isinstance(wa_id, bool) and PHONE.fullmatch(
            str(wa_id)):
        return str(wa_id)
    user_id = message.get("from_user_id")
    return user_id if isinstance(user_id, str) and BSUID.fullmatch(user_id) else None


def message_ref(wamid: object) -> str:
    """How a log line names a WhatsApp message: a short hash of its id, since a wamid is the
    base64 of bytes that hold the sender's (or recipient's) phone number."""
    return "wamid#" + hashlib.sha256(str(wamid).encode()).hexdigest()[:8]


# A run of digits, possibly written with spaces, dashes, dots or brackets; and a wamid.
_NUMBER_LIKE = re.compile(r"\+?[0-9][0-9 ().-]*[0-9]")
_WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_-]+")


def scrubbed(text: str, to: str | None = None) -> str:
    """A platform's text without the wamids it quotes, nor the number `to` in any of the ways
    it may be written (+212612345678, 212 612-345678, 0612345678), which becomes a reference;
    any other run of ten digits or more may be someone's number too, and is left out."""
    text = _WAMID.sub(lambda found: message_ref(found.group()), text)
    digits = "".join(ch for ch in to or "" if ch.isdigit())

    def hide(found: re.Match[str]) -> str:
        seen = "".join(ch for ch in found.group() if ch.isdigit())
        if len(digits) >= 8 and len(seen.lstrip("0")) >= 8 and digits.endswith(seen.lstrip("0")):
            return person(CHANNEL, str(to))
        return "[number]" if len(seen) >= 10 else found.group()

    return _NUMBER_LIKE.sub(hide, text)


def verify_signature(secret: str, raw: bytes, header: str) -> bool:
    """`X-Hub-Signature-256` is HMAC-SHA256 of the raw body, as Meta sent it."""
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), expected.encode())


class GraphClient:
    """The few Graph API calls we make, with the bearer token, to TADAMON_WHATSAPP_API_BASE."""

    def __init__(self, base: str, phone_number_id: str, token: str) -> None:
        self.messages_url = f"{base}/{phone_number_id}/messages"
        self.media_url = f"{base}/{phone_number_id}/media"
        self.number_url = f"{base}/{phone_number_id}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30),
                connector=aiohttp.TCPConnector(limit=100))
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _answer(self, response: aiohttp.ClientResponse,
                      to: str | None = None) -> dict[str, Any]:
        try:
            body = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = {}
        if response.status >= 400 or not isinstance(body, dict) or "error" in body:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            details = (error.get("error_data") or {}).get("details", "")
            # Meta's words go into log lines and delivery records: never the recipient's
            # number, nor a wamid (which holds a number), should Meta quote them.
            raise GraphError(response.status, int(error.get("code") or 0),
                             scrubbed(str(error.get("message") or response.reason), to),
                             scrubbed(str(details), to))
        return body

    async def send(self, payload: dict[str, Any]) -> str:
        """POST a message; returns its wamid."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        to = payload.get("to") or payload.get("recipient")
        async with self._client().post(self.messages_url, json=body,
                                       headers=self.headers) as response:
            answer = await self._answer(response, str(to) if to else None)
        return str(answer["messages"][0]["id"])

    async def mark_read(self, wamid: str, sender: str | None = None) -> None:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        async with self._client().post(self.messages_url, json=body,
                                       headers=self.headers) as response:
            await self._answer(response, sender)

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """Upload a picture or a file; returns the media id to send."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, filename=filename or "file", content_type=mime)
        async with self._client().post(self.media_url, data=form,
                                       headers=self.headers) as response:
            answer = await self._answer(response)
        return str(answer["id"])

    async def display_number(self) -> str:
        """The business number as people dial it, digits only (`display_phone_number`)."""
        async with self._client().get(self.number_url, headers=self.headers,
                                      params={"fields": "display_phone_number"}) as response:
            answer = await self._answer(response)
        return "".join(ch for ch in str(answer["display_phone_number"]) if ch.isdigit())


async def display_number(settings: Settings) -> str | None:
    """The WhatsApp number (what `https://wa.me/<number>` names), asked of the Graph API;
    None when it does not answer or no number is configured."""
    if settings.whatsapp_token is None or not settings.whatsapp_phone_number_id:
        return None
    api = GraphClient(settings.whatsapp_api_base, settings.whatsapp_phone_number_id,
                      settings.whatsapp_token.get_secret_value())
    try:
        async with asyncio.timeout(10):  # seconds: someone waits at a terminal
            return await api.display_number()
    except (GraphError, aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return None
    finally:
        await api.close()


def _object(value: Any) -> dict[str, Any]:
    """A JSON object of a webhook body; {} when Meta's documented object is something else."""
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array of a webhook body, leaving out what is not one."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# One piece of a webhook body: ("message", message, sender's profile), ("status", status, {})
# or ("error", error, {}).
Event = tuple[str, dict[str, Any], dict[str, Any]]


class WhatsAppChannel(PlatformChannel[Event]):
    """Signed webhooks in (through the durable inbox), Graph API calls out."""

    name = CHANNEL
    retry = SEND_RETRY

    def __init__(self, settings: Settings, engine: Engine, state: State, sessions: Sessions,
                 metrics: Metrics) -> None:
        assert settings.whatsapp_token is not None
        assert settings.whatsapp_app_secret is not None
        assert settings.whatsapp_verify_token is not None
        assert settings.whatsapp_phone_number_id is not None
        super().__init__(settings, engine, state, metrics, settings.whatsapp_rate)
        self.outbox = OutboxRepository(sessions)
        self.secret = settings.whatsapp_app_secret.get_secret_value()
        self.verify_token = settings.whatsapp_verify_token.get_secret_value()
        self.templates = settings.whatsapp_templates
        self.api = GraphClient(settings.whatsapp_api_base, settings.whatsapp_phone_number_id,
                               settings.whatsapp_token.get_secret_value())
        self.token_rejected = False
        self.phone_number_id = settings.whatsapp_phone_number_id
        self._foreign_ids: set[str] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/whatsapp/webhook", self.verify),
                web.post("/whatsapp/webhook", self.webhook)]

    async def start(self) -> None:
        await super().start()
        log.info("whatsapp: on, number %s, webhook at /whatsapp/webhook",
                 self.settings.whatsapp_phone_number_id)

    async def close(self) -> None:
        await self.api.close()

    # ---- webhook ---------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
        given = request.query.get("hub.verify_token", "")
        if (request.query.get("hub.mode") == "subscribe"
                and hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                        self.verify_token.encode())):
            return web.Response(text=request.query.get("hub.challenge", ""))
        log.warning("whatsapp webhook verification with a wrong token from %s", request.remote)
        return web.Response(status=403, text="forbidden")

    async def webhook(self, request: web.Request) -> web.Response:
        """`POST /whatsapp/webhook`: 401 unless signed by Meta; kept, then 200 at once."""
        try:
            raw = await read_body(request, WEBHOOK_BODY_LIMIT)
        except BadBody as exc:
            log.warning("whatsapp webhook from %s refused: %s", request.remote, exc.message)
            return error_response(exc.status, exc.message)
        # The signature is checked over the raw bytes, in constant time, before any parsing.
        if not verify_signature(self.secret, raw,
                                request.headers.get("X-Hub-Signature-256", "")):
            log.warning("whatsapp webhook with a missing or wrong signature from %s",
                        request.remote)
            return error_response(401, "bad signature")
        try:
            body = load_json(raw)
        except BadBody as exc:
            log.warning("malformed whatsapp webhook refused: %s", exc.message)
            return error_response(exc.status, exc.message)
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            log.warning("malformed whatsapp webhook refused")
            return error_response(400, "malformed body")
        return await self.accept(raw)

    def events(self, body: str) -> list[tuple[str, Event]]:
        """(person, (kind, item, profile)) for every message, status and error of a webhook
        body addressed to our number."""
        envelope = load_json(body)
        events: list[tuple[str, Event]] = []
        for entry in _objects(_object(envelope).get("entry")):
            for change in _objects(entry.get("changes")):
                value = _object(change.get("value"))
                if self._ours(value):
                    events.extend(self._value_events(value))
        return events

    def marks(self, event: Event) -> tuple[str, str] | None:
        """As `inbound` names the person and the message for the engine: sender, wamid."""
        kind, item, _profile = event
        who = sender(item) if kind == "message" else None
        if who is None or not item.get("id"):
            return None
        return who, str(item["id"])

    def _ours(self, value: dict[str, Any]) -> bool:
        """False for a change addressed to another number of the business account: answering
        it from ours would speak for a number we do not serve."""
        number = str(_object(value.get("metadata")).get("phone_number_id") or "")
        if not number or number == self.phone_number_id:
            return True
        if number not in self._foreign_ids and len(self._foreign_ids) < FOREIGN_IDS_KEPT:
            self._foreign_ids.add(number)
            log.warning("whatsapp webhook for phone number id %s ignored: this service answers "
                        "for TADAMON_WHATSAPP_PHONE_NUMBER_ID=%s only", number,
                        self.phone_number_id)
        return False

    @staticmethod
    def _value_events(value: dict[str, Any]) -> list[tuple[str, Event]]:
        events: list[tuple[str, Event]] = []
        profiles: dict[str, dict[str, Any]] = {}
        for item in _objects(value.get("contacts")):
            for key in ("wa_id", "user_id"):
                if item.get(key):
                    profiles[str(item[key])] = item
        for message in _objects(value.get("messages")):
            who = sender(message)
            if who is None:
                log.warning("whatsapp message %s names no sender (no phone number, no valid "
                            "user id); not answered", message_ref(message.get("id")))
                continue
            events.append((who, ("message", message, profiles.get(who, {}))))
        for status in _objects(value.get("statuses")):
            if status.get("id"):
                who = status.get("recipient_id") or status.get("recipient_user_id") or ""
                events.append((str(who), ("status", status, {})))
        for error in _objects(value.get("errors")):
            events.append(("", ("error", error, {})))
        return events

    # ---- inbound ---------------------------------------------------------------------------

    async def process(self, event: Event) -> None:
        kind, item, profile = event
        if kind == "status":
            await self._status(item)
            return
        if kind == "error":
            await self._error(item)
            return
        inbound = self.inbound(item, profile)
        if inbound is None:
            return
        if inbound.message_id:
            self.spawn(self._mark_read(inbound.message_id, inbound.user_id))
        if inbound.kind is Kind.CHOICE and (inbound.choice or "").startswith(MORE_PREFIX):
            pages = await self._pages(inbound)
            if pages is not None:
                await self._more(inbound, *pages)
                return
            # The list is gone (or the row forged): the tap asks for the menu, an ordinary
            # message of that person (deduplicated, under their lock, in their language).
            inbound = dataclasses.replace(inbound, choice=Menu().pack())
        await self.answer(inbound, partial(self.deliver, inbound.user_id))

    @staticmethod
    def inbound(message: dict[str, Any], profile: dict[str, Any]) -> Inbound | None:
        """A WhatsApp message as an Inbound; None for what needs no answer: reactions, edits,
        deletions, system notices, messages written in a group."""
        kind = message.get("type")
        who = sender(message)
        if who is None or not WhatsAppChannel._asks(message):
            return None
        common: dict[str, Any] = {
            "channel": CHANNEL,
            "user_id": who,
            "message_id": str(message.get("id") or "") or None,
            "user_alt_id": profile.get("user_id") or message.get("from_user_id"),
        }
        if kind == "text":
            return Inbound(kind=Kind.TEXT, text=str(_object(message.get("text")).get("body", "")),
                           **common)
        if kind == "interactive":
            interactive = _object(message.get("interactive"))
            reply = (_object(interactive.get("button_reply"))
                     or _object(interactive.get("list_reply")))
            if reply.get("id"):
                return Inbound(kind=Kind.CHOICE, choice=str(reply["id"]), **common)
            return Inbound(kind=Kind.UNSUPPORTED, **common)
        if kind == "button":  # a quick-reply button of a template
            return Inbound(kind=Kind.TEXT, text=str(_object(message.get("button")).get("text", "")),
                           **common)
        if kind == "location":
            location = _object(message.get("location"))
            return Inbound(kind=Kind.LOCATION, latitude=location.get("latitude"),
                           longitude=location.get("longitude"), **common)
        if kind in MEDIA_TYPES:
            return Inbound(kind=Kind.MEDIA, **common)
        return Inbound(kind=Kind.UNSUPPORTED, **common)

    @staticmethod
    def _asks(message: dict[str, Any]) -> bool:
        """False for a message that is no one asking us anything (logged, not answered)."""
        kind = str(message.get("type") or "")
        if message.get("group_id"):
            # The bot talks in private only, and never answers a group member privately for
            # what they wrote to the group.
            log.info("whatsapp message %s written in group %s not answered",
                     message_ref(message.get("id")), message.get("group_id"))
            return False
        if kind == "system":
            system = _object(message.get("system"))
            # Not its body: it quotes names and phone numbers ("... changed to +212...").
            log.info("whatsapp system notice %s for %s", system.get("type"),
                     person(CHANNEL, sender(message) or ""))
            return False
        subtype = str(_object(message.get("unsupported")).get("type") or "")
        if kind in SILENT_TYPES or (kind == "unsupported" and subtype in SILENT_UNSUPPORTED):
            log.debug("whatsapp %s %s needs no answer", subtype or kind,
                      message_ref(message.get("id")))
            return False
        return True

    async def _status(self, status: dict[str, Any]) -> None:
        error = "; ".join(f"#{item.get('code')} {item.get('title') or item.get('message', '')}"
                          for item in _objects(status.get("errors"))) or None
        try:
            await self.outbox.record_delivery(CHANNEL, str(status["id"]),
                                              str(status.get("status")), error)
        except DATABASE_ERRORS as exc:
            log.warning("database unavailable: whatsapp status for %s recorded later (%s)",
                        message_ref(status.get("id")), exc)
            raise HandleLater(str(exc)) from None
        if error:
            recipient = str(status.get("recipient_id") or status.get("recipient_user_id") or "")
            log.info("whatsapp message %s to %s failed: %s", message_ref(status.get("id")),
                     person(CHANNEL, recipient), scrubbed(error, recipient))

    async def _error(self, error: dict[str, Any]) -> None:
        """An error Meta reports for the number as a whole: 130429 backs the number off as a
        refused send does; the others are only said."""
        code = error.get("code")
        log.warning("whatsapp reports an error: #%s %s %s", code,
                    scrubbed(str(error.get("title") or error.get("message") or "")),
                    scrubbed(str(_object(error.get("error_data")).get("details") or "")))
        if str(code) == str(THROUGHPUT):
            await self.pause.pause(THROUGHPUT_PAUSE)

    async def _mark_read(self, wamid: str, sender: str) -> None:
        """Tell the person their message was read, once: not again when Meta redelivers it."""
        if self.token_rejected:
            return
        try:
            if not await self.state.first_read_receipt(CHANNEL, wamid):
                return
        except RedisError:
            pass  # better a second receipt than none
        try:
            await self.api.mark_read(wamid, sender)
        except (GraphError, aiohttp.ClientError, TimeoutError) as exc:
            log.debug("mark-as-read of %s failed: %s", message_ref(wamid), exc)

    # ---- outbound --------------------------------------------------------------------------

    async def deliver(self, to: str, replies: list[Rendered]) -> list[str]:
        """Send rendered replies to someone who just wrote; returns the wamids sent."""
        sent: list[str] = []
        for item in replies:
            for payload in await self._payloads(to, item):
                wamid = await self._send(to, payload)
                if wamid is None:
                    return sent
                sent.append(wamid)
        return sent

    async def _payloads(self, to: str, item: Rendered) -> list[dict[str, Any]]:
        payloads: list[dict[str, Any]] = []
        for media in item.media:
            caption = shorten(media.caption, CAPTION_LIMIT) if media.caption else None
            if media.kind == "location" and media.latitude is not None:
                location: dict[str, Any] = {"latitude": media.latitude,
                                            "longitude": media.longitude}
                if caption:
                    location["name"] = caption
                payloads.append({**address(to), "type": "location", "location": location})
                continue
            if media.kind not in ("image", "document"):
                continue
            mime = media.mime
            if media.kind == "document" and mime not in DOCUMENT_TYPES:
                # The Cloud API takes a few document types only: a calendar file goes as plain
                # text, its .ics name telling the phone which app opens it.
                mime = "text/plain"
            try:
                media_id = await self._upload(media.data, mime, media.filename)
            except (GraphError, aiohttp.ClientError, TimeoutError):
                log.exception("whatsapp media upload failed; the picture or file is left out")
                continue
            content: dict[str, Any] = {"id": media_id}
            if caption:
                content["caption"] = caption
            if media.kind == "document":
                content["filename"] = media.filename or "file"
            payloads.append({**address(to), "type": media.kind, media.kind: content})
        pieces = split_text(item.text)
        if not item.choices:
            payloads.extend({**address(to), "type": "text",
                             "text": {"body": piece, "preview_url": False}}
                            for piece in pieces)
            return payloads
        body = pieces.pop() if pieces else "·"
        if len(body) > BODY_LIMIT:
            tail = split_text(body, BODY_LIMIT)
            body = tail.pop()
            pieces.extend(tail)
        payloads.extend({**address(to), "type": "text", "text": {"body": piece}}
                        for piece in pieces)
        payloads.append(await self._interactive(to, body, item.choices, item.language))
        return payloads

    async def _interactive(self, to: str, body: str, choices: tuple[RenderedChoice, ...],
                           language: str, page: int = 0) -> dict[str, Any]:
        """Reply buttons when three short choices; else a list, paged past ten rows."""
        if len(choices) <= MAX_BUTTONS and all(len(c.label) <= BUTTON_TITLE for c in choices):
            return {**address(to), "type": "interactive", "interactive": {
                "type": "button", "body": {"text": body},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": choice.id, "title": choice.label}}
                    for choice in choices]}}}
        per_page = MAX_ROWS if len(choices) <= MAX_ROWS else MAX_ROWS - 1
        shown = choices[page * per_page:(page + 1) * per_page]
        rows = [self._row(choice.id, choice.label) for choice in shown]
        if (page + 1) * per_page < len(choices):
            renderer = self.engine.renderer
            rows.append(self._row(f"{MORE_PREFIX}{page + 1}",
                                  renderer.text(MORE_CHOICES, language)))
            await self._keep_pages(to, body, choices, language)
        button = shorten(self.engine.renderer.text(LIST_BUTTON, language), BUTTON_TITLE)
        return {**address(to), "type": "interactive", "interactive": {
            "type": "list", "body": {"text": body},
            "action": {"button": button, "sections": [{"rows": rows}]}}}

    @staticmethod
    def _row(row_id: str, label: str) -> dict[str, Any]:
        row: dict[str, Any] = {"id": row_id, "title": shorten(label, ROW_TITLE)}
        if len(" ".join(label.split())) > ROW_TITLE:
            row["description"] = shorten(label, ROW_DESCRIPTION)
        return row

    async def _keep_pages(self, to: str, body: str, choices: tuple[RenderedChoice, ...],
                          language: str) -> None:
        pages = ChoicePages(body, language, tuple((choice.id, choice.label)
                                                  for choice in choices))
        try:
            await self.state.keep_pages(CHANNEL, to, pages)
        except RedisError:
            log.warning("redis unavailable: the rest of a long list cannot be shown")

    async def _pages(self, inbound: Inbound) -> tuple[ChoicePages, int] | None:
        """The kept list and the page a "more" row asks for; None when either is gone."""
        page = (inbound.choice or "").removeprefix(MORE_PREFIX)
        if not PAGE.fullmatch(page):
            return None
        try:
            pages = await self.state.pages(CHANNEL, inbound.user_id)
        except RedisError:
            pages = None
        return None if pages is None else (pages, int(page))

    async def _more(self, inbound: Inbound, pages: ChoicePages, page: int) -> None:
        """The person tapped "more": the next rows of the list they were shown, once even
        when Meta delivers the tap again."""
        if not await self._first_turn(inbound):
            return
        to = inbound.user_id
        choices = tuple(RenderedChoice(choice_id, label) for choice_id, label in pages.choices)
        payload = await self._interactive(to, pages.body, choices, pages.language, page)
        await self._send(to, payload)

    async def _first_turn(self, inbound: Inbound) -> bool:
        """False for a message handled already (or sent in a flood), as the engine would have
        it: the same dedupe mark and the same per-person lock."""
        try:
            async with self.state.turn(CHANNEL, inbound.user_id, inbound.message_id) as turn:
                turn.save = False  # the conversation is not ours to write
                if turn.duplicate:
                    self.metrics.duplicates.labels(CHANNEL).inc()
                return not (turn.duplicate or turn.throttled)
        except (UserBusy, RedisError):
            return True  # better a page twice than none

    async def _upload(self, data: bytes, mime: str, filename: str) -> str:
        """The media id of these bytes: uploaded once, then reused for a day (Meta keeps an
        uploaded file 30 days)."""
        known = self.uploads.get(data)
        if known is not None:
            return known
        media_id = await self._with_retries(None, partial(self.api.upload, data, mime, filename))
        self.uploads.put(data, media_id)
        return media_id

    async def _send(self, to: str, payload: dict[str, Any]) -> str | None:
        """Send one message; None when it could not go (the cause is logged)."""
        try:
            return await self._with_retries(to, partial(self.api.send, payload), reply=True)
        except WindowClosed:
            log.warning("%s is outside the 24-hour window; reply not sent", person(CHANNEL, to))
        except GraphError as exc:
            self.send_failed()
            log.warning("whatsapp message to %s not sent: %s", person(CHANNEL, to), exc)
        except (aiohttp.ClientError, TimeoutError):
            self.send_failed()
            log.exception("whatsapp unreachable; message to %s not sent", person(CHANNEL, to))
        return None

    async def _with_retries(self, to: str | None, call: Callable[[], Awaitable[str]],
                            reply: bool = False) -> str:
        """A Graph API call under SEND_RETRY (with a reply's patience); 131047 raises
        WindowClosed, and a rejected token (190, 401) is said once and stops every later call
        until restarted."""
        if self.token_rejected:
            raise GraphError(401, BAD_TOKEN, "access token rejected earlier")
        try:
            # A message (to someone) passes the channel's send window; an upload does not.
            if to is None:
                return await self.send(call, reply=reply)
            return await self.send_message(call, reply=reply)
        except GraphError as exc:
            if exc.code == WINDOW_CLOSED:
                raise WindowClosed(str(exc)) from None
            if exc.code == BAD_TOKEN or exc.status == 401:
                if not self.token_rejected:
                    log.error("whatsapp: the Graph API rejects TADAMON_WHATSAPP_TOKEN "
                              "(%s); no more sends until restarted with a valid token", exc)
                self.token_rejected = True
            raise

    # ---- messages that must go out -----------------------------------------------------------

    def in_window(self, last_inbound_at: dt.datetime | None, now: dt.datetime) -> bool:
        """True while the person's last message is less than 24 hours old (with a margin)."""
        return last_inbound_at is not None and now - last_inbound_at < WINDOW - WINDOW_MARGIN

    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery:
        """A reminder, offer or broadcast: as is inside the 24-hour window, else through the
        template configured for its kind and language; skipped, with the reason, when none."""
        if self.in_window(last_inbound_at, now):
            try:
                sent: list[str] = []
                for payload in await self._payloads(to, rendered):
                    sent.append(await self._with_retries(to, partial(self.api.send, payload)))
                return Delivery("sent", sent[-1] if sent else None)
            except WindowClosed:
                pass  # the window closed in the meantime: the template says it
            except GraphError as exc:
                return unsent(exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Delivery("later", reason=f"network: {exc}")
        return await self._template(to, language, kind, rendered)

    async def _template(self, to: str, language: str, kind: str,
                        rendered: Rendered) -> Delivery:
        template = template_for(self.templates, kind, language)
        if template is None:
            return Delivery("skipped", reason=(
                f"outside the 24-hour window and no template for {kind}:{language} "
                "(TADAMON_WHATSAPP_TEMPLATES)"))
        name, code = template
        payload = {**address(to), "type": "template", "template": {
            "name": name, "language": {"code": code},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": template_text(rendered.text)}]}]}}
        try:
            return Delivery("sent", await self._with_retries(to, partial(self.api.send, payload)))
        except GraphError as exc:
            return unsent(exc)
        except WindowClosed as exc:
            return Delivery("failed", reason=str(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Delivery("later", reason=f"network: {exc}")
