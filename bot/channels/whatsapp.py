"""The WhatsApp channel: our own thin adapter on the Cloud API (Graph API) with aiohttp.

In: `POST /whatsapp/webhook` checks Meta's signature over the raw body, keeps the body in a
durable inbox (a Redis stream) and answers 200 at once; consumers parse it into `Inbound`s for
the engine and record delivery statuses. Out: text, reply buttons, lists (paged past ten rows),
images, documents, locations and templates, within WhatsApp's limits and its 24-hour window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import unicodedata
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from bot.channels import Delivery
from bot.channels.intake import InboxReader
from bot.channels.ordering import PerPersonQueue
from bot.channels.pause import SendPause
from bot.channels.quota import ReplyQuota
from bot.channels.uploads import UploadCache
from bot.engine import Engine
from bot.messages import Inbound, Kind, Rendered, RenderedChoice
from bot.metrics import Metrics
from bot.settings import Settings
from handlers.menu import LIST_BUTTON, MORE_CHOICES
from storage import keys
from storage.database import DATABASE_ERRORS
from storage.inbox import Inbox
from storage.outbox import OutboxRepository
from storage.repositories import Sessions
from storage.state import State

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


def verify_signature(secret: str, raw: bytes, header: str) -> bool:
    """`X-Hub-Signature-256` is HMAC-SHA256 of the raw body, as Meta sent it."""
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.encode(), expected.encode())


class GraphClient:
    """The few Graph API calls we make, with the bearer token, to TADAMON_WHATSAPP_API_BASE."""

    def __init__(self, base: str, phone_number_id: str, token: str) -> None:
        self.messages_url = f"{base}/{phone_number_id}/messages"
        self.media_url = f"{base}/{phone_number_id}/media"
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

    async def _answer(self, response: aiohttp.ClientResponse) -> dict[str, Any]:
        try:
            body = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = {}
        if response.status >= 400 or not isinstance(body, dict) or "error" in body:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            details = (error.get("error_data") or {}).get("details", "")
            raise GraphError(response.status, int(error.get("code") or 0),
                             str(error.get("message") or response.reason), str(details))
        return body

    async def send(self, payload: dict[str, Any]) -> str:
        """POST a message; returns its wamid."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        async with self._client().post(self.messages_url, json=body,
                                       headers=self.headers) as response:
            answer = await self._answer(response)
        return str(answer["messages"][0]["id"])

    async def mark_read(self, wamid: str) -> None:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        async with self._client().post(self.messages_url, json=body,
                                       headers=self.headers) as response:
            await self._answer(response)

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


class WhatsAppChannel:
    """Signed webhooks in (through the durable inbox), Graph API calls out."""

    name = CHANNEL

    def __init__(self, settings: Settings, engine: Engine, state: State, sessions: Sessions,
                 metrics: Metrics) -> None:
        assert settings.whatsapp_token is not None
        assert settings.whatsapp_app_secret is not None
        assert settings.whatsapp_verify_token is not None
        assert settings.whatsapp_phone_number_id is not None
        self.settings = settings
        self.engine = engine
        self.state = state
        self.metrics = metrics
        self.outbox = OutboxRepository(sessions)
        self.secret = settings.whatsapp_app_secret.get_secret_value()
        self.verify_token = settings.whatsapp_verify_token.get_secret_value()
        self.templates = settings.whatsapp_templates
        self.uploads = UploadCache()
        self.api = GraphClient(settings.whatsapp_api_base, settings.whatsapp_phone_number_id,
                               settings.whatsapp_token.get_secret_value())
        self.inbox = Inbox(state.redis, CHANNEL)
        self.queue: PerPersonQueue[tuple[str, dict[str, Any], dict[str, Any]]] = (
            PerPersonQueue(self._event))
        self.reader = InboxReader(self.inbox, self.queue, self._events)
        self._background: set[asyncio.Task[Any]] = set()
        self.pause = SendPause(state, CHANNEL)
        self.quota = ReplyQuota(state.redis, CHANNEL, settings.whatsapp_rate)
        self.token_rejected = False

    # ---- lifecycle -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/whatsapp/webhook", self.verify),
                web.post("/whatsapp/webhook", self.webhook)]

    async def start(self) -> None:
        self.reader.start("whatsapp-inbox")
        log.info("whatsapp: on, number %s, webhook at /whatsapp/webhook",
                 self.settings.whatsapp_phone_number_id)

    async def stop(self) -> None:
        await self.reader.stop(20)
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await self.api.close()

    async def idle(self) -> None:
        """Wait until the inbox is empty and everything taken from it is answered."""
        await self.reader.idle()
        while self._background:
            await asyncio.wait(self._background)

    # ---- webhook ---------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
        given = request.query.get("hub.verify_token", "")
        if (request.query.get("hub.mode") == "subscribe"
                and hmac.compare_digest(given.encode(), self.verify_token.encode())):
            return web.Response(text=request.query.get("hub.challenge", ""))
        log.warning("whatsapp webhook verification with a wrong token from %s", request.remote)
        return web.Response(status=403, text="forbidden")

    async def webhook(self, request: web.Request) -> web.Response:
        """`POST /whatsapp/webhook`: 401 unless signed by Meta; kept, then 200 at once."""
        raw = await request.read()
        if not verify_signature(self.secret, raw,
                                request.headers.get("X-Hub-Signature-256", "")):
            log.warning("whatsapp webhook with a missing or wrong signature from %s",
                        request.remote)
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            log.warning("malformed whatsapp webhook refused")
            return web.json_response({"error": "malformed body"}, status=400)
        if not await self.reader.keep(raw):
            return web.json_response({"error": "try again"}, status=503)
        return web.Response(status=200)

    def _events(self, body: str) -> list[tuple[str, tuple[str, dict[str, Any], dict[str, Any]]]]:
        """(person, (kind, item, profile)) for every message and status of a webhook body."""
        envelope = json.loads(body)
        events: list[tuple[str, tuple[str, dict[str, Any], dict[str, Any]]]] = []
        for entry in envelope.get("entry") or []:
            for change in (entry or {}).get("changes") or []:
                value = (change or {}).get("value") or {}
                profiles = {str(item.get("wa_id")): item for item in value.get("contacts") or []
                            if isinstance(item, dict)}
                for message in value.get("messages") or []:
                    if isinstance(message, dict) and message.get("from"):
                        sender = str(message["from"])
                        events.append((sender, ("message", message,
                                                profiles.get(sender, {}))))
                for status in value.get("statuses") or []:
                    if isinstance(status, dict) and status.get("id"):
                        events.append((str(status.get("recipient_id", "")),
                                       ("status", status, {})))
                for error in value.get("errors") or []:
                    log.warning("whatsapp reports an error: %s", error)
        return events

    # ---- inbound ---------------------------------------------------------------------------

    async def _event(self, event: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
        kind, item, profile = event
        if kind == "status":
            await self._status(item)
            return
        inbound = self.inbound(item, profile)
        if inbound is None:
            return
        if inbound.message_id:
            self._spawn(self._mark_read(inbound.message_id))
        if inbound.kind is Kind.CHOICE and (inbound.choice or "").startswith(MORE_PREFIX):
            await self._more(inbound.user_id, inbound.choice or "")
            return
        rendered = await self.engine.handle(inbound)
        await self.quota.sent(len(await self.deliver(inbound.user_id, rendered)))

    @staticmethod
    def inbound(message: dict[str, Any], profile: dict[str, Any]) -> Inbound | None:
        """A WhatsApp message as an Inbound; None for what needs no answer (reactions)."""
        kind = message.get("type")
        common: dict[str, Any] = {
            "channel": CHANNEL,
            "user_id": str(message["from"]),
            "message_id": str(message.get("id") or "") or None,
            "user_alt_id": profile.get("user_id") or message.get("from_user_id"),
        }
        if kind == "text":
            return Inbound(kind=Kind.TEXT, text=str((message.get("text") or {}).get("body", "")),
                           **common)
        if kind == "interactive":
            interactive = message.get("interactive") or {}
            reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
            if reply.get("id"):
                return Inbound(kind=Kind.CHOICE, choice=str(reply["id"]), **common)
            return Inbound(kind=Kind.UNSUPPORTED, **common)
        if kind == "button":  # a quick-reply button of a template
            return Inbound(kind=Kind.TEXT, text=str((message.get("button") or {}).get("text", "")),
                           **common)
        if kind == "location":
            location = message.get("location") or {}
            return Inbound(kind=Kind.LOCATION, latitude=location.get("latitude"),
                           longitude=location.get("longitude"), **common)
        if kind in MEDIA_TYPES:
            return Inbound(kind=Kind.MEDIA, **common)
        if kind == "reaction":
            return None
        return Inbound(kind=Kind.UNSUPPORTED, **common)

    async def _status(self, status: dict[str, Any]) -> None:
        errors = status.get("errors") or []
        error = "; ".join(f"#{item.get('code')} {item.get('title') or item.get('message', '')}"
                          for item in errors if isinstance(item, dict)) or None
        try:
            await self.outbox.record_delivery(CHANNEL, str(status["id"]),
                                              str(status.get("status")), error)
        except DATABASE_ERRORS:
            log.exception("whatsapp status for %s not recorded", status.get("id"))
        if error:
            log.info("whatsapp message %s to %s failed: %s", status.get("id"),
                     status.get("recipient_id"), error)

    async def _mark_read(self, wamid: str) -> None:
        if self.token_rejected:
            return
        try:
            await self.api.mark_read(wamid)
        except (GraphError, aiohttp.ClientError, TimeoutError) as exc:
            log.debug("mark-as-read of %s failed: %s", wamid, exc)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
                payloads.append({"to": to, "type": "location", "location": location})
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
            payloads.append({"to": to, "type": media.kind, media.kind: content})
        pieces = split_text(item.text)
        if not item.choices:
            payloads.extend({"to": to, "type": "text", "text": {"body": piece,
                                                                "preview_url": False}}
                            for piece in pieces)
            return payloads
        body = pieces.pop() if pieces else "·"
        if len(body) > BODY_LIMIT:
            tail = split_text(body, BODY_LIMIT)
            body = tail.pop()
            pieces.extend(tail)
        payloads.extend({"to": to, "type": "text", "text": {"body": piece}} for piece in pieces)
        payloads.append(await self._interactive(to, body, item.choices, item.language))
        return payloads

    async def _interactive(self, to: str, body: str, choices: tuple[RenderedChoice, ...],
                           language: str, page: int = 0) -> dict[str, Any]:
        """Reply buttons when three short choices; else a list, paged past ten rows."""
        if len(choices) <= MAX_BUTTONS and all(len(c.label) <= BUTTON_TITLE for c in choices):
            return {"to": to, "type": "interactive", "interactive": {
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
        return {"to": to, "type": "interactive", "interactive": {
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
        record = {"body": body, "language": language,
                  "choices": [[choice.id, choice.label] for choice in choices]}
        try:
            await self.state.redis.set(keys.choice_pages(CHANNEL, to),
                                       json.dumps(record, ensure_ascii=False),
                                       ex=keys.PAGES_TTL)
        except RedisError:
            log.warning("redis unavailable: the rest of a long list cannot be shown")

    async def _more(self, to: str, choice: str) -> None:
        """The person tapped "more": the next rows of the list they were shown."""
        page = choice.removeprefix(MORE_PREFIX)
        try:
            raw = await self.state.redis.get(keys.choice_pages(CHANNEL, to))
        except RedisError:
            raw = None
        if not raw or not page.isdigit():
            rendered = await self.engine.handle(Inbound(CHANNEL, to, Kind.TEXT, text="menu"))
            await self.quota.sent(len(await self.deliver(to, rendered)))
            return
        record = json.loads(raw)
        choices = tuple(RenderedChoice(str(item[0]), str(item[1])) for item in record["choices"])
        payload = await self._interactive(to, str(record["body"]), choices,
                                          str(record["language"]), int(page))
        if await self._send(to, payload) is not None:
            await self.quota.sent(1)

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
            return await self._with_retries(to, partial(self.api.send, payload))
        except WindowClosed:
            log.warning("whatsapp:%s is outside the 24-hour window; reply not sent", to)
        except GraphError as exc:
            self.metrics.send_errors.labels(CHANNEL).inc()
            log.warning("whatsapp message to %s not sent: %s", to, exc)
        except (aiohttp.ClientError, TimeoutError):
            self.metrics.send_errors.labels(CHANNEL).inc()
            log.exception("whatsapp unreachable; message to %s not sent", to)
        return None

    async def _with_retries(self, to: str | None,
                            call: Callable[[], Awaitable[str]]) -> str:
        """Meta's rules: 130429 backs the whole number off, 131056 waits for that person,
        131047 is a closed window, 190 a rejected token (said once, not retried); server and
        network errors are retried with backoff."""
        if self.token_rejected:
            raise GraphError(401, BAD_TOKEN, "access token rejected earlier")
        delay = 1.0
        for attempt in range(1, SEND_ATTEMPTS + 1):
            await self.pause.wait()
            try:
                return await call()
            except GraphError as exc:
                last = attempt == SEND_ATTEMPTS
                if exc.code == WINDOW_CLOSED:
                    raise WindowClosed(str(exc)) from None
                if exc.code == BAD_TOKEN or exc.status == 401:
                    if not self.token_rejected:
                        log.error("whatsapp: the Graph API rejects TADAMON_WHATSAPP_TOKEN "
                                  "(%s); no more sends until restarted with a valid token", exc)
                    self.token_rejected = True
                    raise
                if exc.code == THROUGHPUT and not last:
                    await self.pause.pause(delay)
                elif exc.code == PAIR_RATE and not last:
                    await asyncio.sleep(delay * 2)  # only this person's messages wait
                elif exc.status >= 500 and not last:
                    await asyncio.sleep(delay * (1 + random.random() / 2))
                else:
                    raise
            except (aiohttp.ClientError, TimeoutError):
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(delay * (1 + random.random() / 2))
            delay *= 2
        raise GraphError(0, 0, "gave up")  # pragma: no cover - the loop raises or returns

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
                return Delivery("failed", reason=str(exc))
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Delivery("failed", reason=f"network: {exc}")
        return await self._template(to, language, kind, rendered)

    async def _template(self, to: str, language: str, kind: str,
                        rendered: Rendered) -> Delivery:
        name = self.templates.get(f"{kind}:{language}")
        if name is None:
            return Delivery("skipped", reason=(
                f"outside the 24-hour window and no template for {kind}:{language} "
                "(TADAMON_WHATSAPP_TEMPLATES)"))
        # Meta refuses line breaks, tabs and long runs of spaces in template parameters.
        text = " · ".join(line.strip() for line in rendered.text.splitlines() if line.strip())
        payload = {"to": to, "type": "template", "template": {
            "name": name, "language": {"code": language},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": shorten(text, BODY_LIMIT)}]}]}}
        try:
            return Delivery("sent", await self._with_retries(to, partial(self.api.send, payload)))
        except (GraphError, WindowClosed) as exc:
            return Delivery("failed", reason=str(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Delivery("failed", reason=f"network: {exc}")
