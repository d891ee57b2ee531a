"""The web chat channel: a phone-sized page with its script, style and service worker, and its
JSON API (`POST /chat/api/sessions`, `POST /chat/api/messages`, `GET /chat/api/inbox`, and
`GET`/`POST /chat/api/push` for Web Push).

What is queued for a web chat person later (reminders, offers, broadcasts, notices) is kept in
their inbox (storage/webinbox.py) and shown by their page when it is open or next opened; a
Web Push notification tells browsers that allowed it.

The web chat vouches for nobody: a person is a session token the server issued, and is known
everywhere else by the public id derived from it (storage/websessions.py)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from bot.channels import Delivery
from bot.channels.body import BadBody, load_json, read_body
from bot.channels.webpush import WebPush
from bot.engine import Engine
from bot.settings import IPNetwork, Settings
from handlers.messages import Inbound, Kind, Rendered
from handlers.understanding import Intent
from storage.database import DATABASE_ERRORS
from storage.state import State
from storage.webinbox import PushTarget, WebInbox
from storage.websessions import WebSessionRepository

log = logging.getLogger(__name__)

CHANNEL = "web"
MAX_BODY = 16 * 1024
MAX_SESSION_BODY = 1024
# Word characters of any script pass here: the router reads ids strictly and answers a forged
# one ("offer:yes:²") politely, in the person's language, rather than with a 400.
CHOICE_RE = re.compile(r"[\w:.+-]{1,64}")
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A deep link's payload, as `/?start=` gives it to the page (the router reads it strictly).
MAX_START = 256
# The browser's language, as a BCP 47 tag (`ar`, `fr-FR`, `ar-MA`).
LANGUAGE_TAG_RE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{10,64}")
# A session as a query parameter: what could be a token at all (401 if this server did not
# issue it), anything else is malformed (400).
SESSION_PARAM_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# A Push API subscription's keys: the browser's P-256 public key and its 16-byte auth secret.
P256DH_RE = re.compile(r"[A-Za-z0-9_-]{80,100}={0,2}")
AUTH_RE = re.compile(r"[A-Za-z0-9_-]{16,32}={0,2}")
ENDPOINT_MAX = 1024

# The page runs only its own script and style (no inline code: an injected tag does nothing),
# talks only to this server, and cannot be framed.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
               "base-uri 'none'; form-action 'self'")
# JSON answers are data, never a document to run.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# On every answer of the web chat, whatever it is.
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
STATIC = {"webchat.js": "text/javascript", "webchat.css": "text/css"}
# The service worker shows push notifications; served from the root so that its scope is the
# whole page.
SERVICE_WORKER = "webchat-sw.js"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error, "replies": []}, status=status, headers=headers)


def _hardened(handler: Handler) -> Handler:
    """The handler, with the headers every web chat answer carries."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        for name, value in COMMON_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.content_type == "application/json":
            response.headers.setdefault("Content-Security-Policy", API_POLICY)
        return response

    return wrapped


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a peer or an X-Forwarded-For hop (`1.2.3.4:5678` and `[::1]:80`
    too); IPv4-mapped IPv6 addresses as the IPv4 address they are."""
    text = (value or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             proxies: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def client_address(peer: str | None, forwarded: Iterable[str],
                   proxies: Iterable[IPNetwork]) -> str:
    """Who is asking: the peer; or, only when the peer is a trusted proxy, the right-most hop
    of X-Forwarded-For that is not one (the hops left of it are the client's to invent)."""
    proxies = tuple(proxies)
    address = _address(peer)
    if address is None:
        return peer or "unknown"
    if not _trusted(address, proxies):
        return str(address)
    hops = [hop for header in forwarded for hop in header.split(",")]
    for hop in reversed(hops):
        parsed = _address(hop)
        if parsed is None:
            break  # a proxy wrote something else than an address: stop believing the list
        address = parsed
        if not _trusted(address, proxies):
            break
    return str(address)


@dataclass(frozen=True, slots=True)
class _Message:
    """A well-formed body of `POST /chat/api/messages`, its session not yet checked."""

    session: str
    kind: Kind
    text: str = ""
    choice: str | None = None
    client_id: str | None = None
    payload: str | None = None
    language: str | None = None  # the browser's, as the page says it

    def inbound(self, person: str, client: str | None, accept_language: str | None
                ) -> Inbound:
        # The client's ids are unique within its session only: the person's public id makes
        # them unique for the deduplication, which spans every web chat session.
        message_id = f"{person}:{self.client_id}" if self.client_id else None
        return Inbound(CHANNEL, person, self.kind, text=self.text, choice=self.choice,
                       payload=self.payload, message_id=message_id,
                       language_hint=self.language or _first_language(accept_language),
                       client=client)


def _first_language(header: str | None) -> str | None:
    """The language a browser's Accept-Language puts first (`ar-MA,ar;q=0.9,fr;q=0.8`)."""
    first = (header or "").split(",")[0].split(";")[0].strip()
    return first if LANGUAGE_TAG_RE.fullmatch(first) else None


def _parse(data: Any) -> _Message | web.Response:
    if not isinstance(data, dict):
        return _error(400, "the body must be a JSON object")
    session = data.get("session")
    if not isinstance(session, str):
        return _error(400, "session is required: get one from POST /chat/api/sessions")
    client_id = data.get("id")
    if client_id is not None and (not isinstance(client_id, str)
                                  or not MESSAGE_ID_RE.fullmatch(client_id)):
        return _error(400, "id must be 1 to 64 letters, digits, - or _")
    language = data.get("lang")
    if language is not None and (not isinstance(language, str)
                                 or not LANGUAGE_TAG_RE.fullmatch(language)):
        return _error(400, "lang must be a language tag such as ar or fr-FR")
    text, choice, start = data.get("text"), data.get("choice"), data.get("start")
    if choice is not None:
        if not isinstance(choice, str) or not CHOICE_RE.fullmatch(choice):
            return _error(400, "choice must be a short button id")
        return _Message(session, Kind.CHOICE, choice=choice, client_id=client_id,
                        language=language)
    if start is not None:
        if not isinstance(start, str) or len(start) > MAX_START:
            return _error(400, f"start must be a deep link payload of at most {MAX_START} "
                               "characters")
        return _Message(session, Kind.START, text=f"/start {start}".strip(),
                        client_id=client_id, payload=start.strip(), language=language)
    if not isinstance(text, str):
        return _error(400, "text, choice or start is required")
    return _Message(session, Kind.TEXT, text=text, client_id=client_id, language=language)


class WebChat:
    """Translates between the browser's JSON and the engine; no conversation logic here."""

    def __init__(self, engine: Engine, state: State, web_sessions: WebSessionRepository,
                 settings: Settings, inbox: WebInbox, push: WebPush) -> None:
        self.engine = engine
        self.state = state
        self.web_sessions = web_sessions
        self.inbox = inbox
        self.push = push
        self.proxies = settings.trusted_proxies
        self.public_origin = settings.public_origin
        files = resources.files("bot.channels")
        self.page = files.joinpath("webchat.html").read_bytes()
        self.static = {name: files.joinpath(name).read_bytes() for name in STATIC}
        self.service_worker = files.joinpath(SERVICE_WORKER).read_bytes()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", _hardened(self.index)),
            web.get("/chat/static/{name}", _hardened(self.static_file)),
            web.post("/chat/api/sessions", _hardened(self.new_session)),
            web.post("/chat/api/messages", _hardened(self.message)),
            web.get("/chat/api/inbox", _hardened(self.inbox_replies)),
            web.get("/chat/api/push", _hardened(self.push_key)),
            web.post("/chat/api/push", _hardened(self.push_subscribe)),
            web.get("/chat/media/{token}", _hardened(self.media)),
            web.get("/sw.js", _hardened(self.worker_script)),
        ]

    async def worker_script(self, request: web.Request) -> web.Response:
        return web.Response(body=self.service_worker, content_type="text/javascript",
                            charset="utf-8",
                            headers={"Cache-Control": "no-cache",
                                     "Content-Security-Policy": PAGE_POLICY})

    async def _person(self, session: object) -> str | web.Response:
        """The public id behind a session token, or the error answer."""
        if not isinstance(session, str) or not SESSION_PARAM_RE.fullmatch(session):
            return _error(400, "session is required: get one from POST /chat/api/sessions")
        try:
            person = await self.web_sessions.resolve(session)
        except DATABASE_ERRORS:
            log.exception("database unavailable: cannot check a web chat session")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        if person is None:
            log.info("web chat: a session this deployment did not issue")
            return _error(401, "unknown session: get a new one from POST /chat/api/sessions")
        return person

    async def inbox_replies(self, request: web.Request) -> web.Response:
        """`GET /chat/api/inbox?session=S`: what was queued for the person since they last
        looked, each message once."""
        refused = self._foreign(request)
        if refused is not None:
            return refused
        if len(request.query.getall("session", [])) > 1:
            return _error(400, "give one session")
        person = await self._person(request.query.get("session"))
        if isinstance(person, web.Response):
            return person
        try:
            contact_id = await self.inbox.contact_id(person)
            replies = await self.inbox.take(contact_id) if contact_id is not None else []
        except DATABASE_ERRORS:
            log.exception("database unavailable: the web chat inbox waits")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        return web.json_response({"replies": replies}, headers={"Cache-Control": "no-store"},
                                 dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    async def push_key(self, request: web.Request) -> web.Response:
        """`GET /chat/api/push`: the VAPID public key browsers subscribe with."""
        refused = self._foreign(request)
        if refused is not None:
            return refused
        try:
            key = await self.push.public_key()
        except DATABASE_ERRORS:
            log.exception("database unavailable: no web push key")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        return web.json_response({"key": key}, headers={"Cache-Control": "no-cache"})

    async def push_subscribe(self, request: web.Request) -> web.Response:
        """`POST /chat/api/push` `{"session": S, "subscription": PushSubscription.toJSON()}`:
        notify this browser when something is queued for the person."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            data = load_json(await read_body(request, MAX_BODY))
        except BadBody as exc:
            log.info("web chat: push subscription refused: %s", exc.message)
            return _error(exc.status, exc.message)
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        target = _subscription(data.get("subscription"))
        if isinstance(target, str):
            return _error(400, target)
        if not self.push.allowed(target.endpoint):
            log.info("web chat: a push endpoint outside TADAMON_PUSH_SERVICES refused")
            return _error(400, "this push service is not one the server posts to")
        person = await self._person(data.get("session"))
        if isinstance(person, web.Response):
            return person
        try:
            contact_id = await self.inbox.contact_id(person)
            if contact_id is None:
                return _error(409, "write a first message before asking for notifications")
            await self.inbox.subscribe(contact_id, target)
        except DATABASE_ERRORS:
            log.exception("database unavailable: a push subscription was not kept")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        return web.json_response({"subscribed": True}, status=201)

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache",
                                     "Content-Security-Policy": PAGE_POLICY})

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            return _error(404, "not found")
        return web.Response(body=self.static[name], content_type=STATIC[name], charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def new_session(self, request: web.Request) -> web.Response:
        """`POST /chat/api/sessions`: a new session token, a few per client address."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            raw = await read_body(request, MAX_SESSION_BODY)
            data = load_json(raw) if raw.strip() else {}
        except BadBody as exc:
            log.info("web chat: new session refused: %s", exc.message)
            return _error(exc.status, exc.message)
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object, or empty")
        client = await self._client(request)
        wait = await self.web_sessions.admit(client)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            log.info("web chat: too many new sessions from client %s; retry in %d s",
                     client, seconds)
            return _error(429, "too many new conversations from your network: try again in "
                               f"{seconds} s", headers={"Retry-After": str(seconds)})
        try:
            token = await self.web_sessions.issue(client)
        except DATABASE_ERRORS:
            log.exception("database unavailable: no new web chat session")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        return web.json_response({"session": token}, status=201,
                                 headers={"Cache-Control": "no-store"})

    async def message(self, request: web.Request) -> web.Response:
        """`POST /chat/api/messages`: one message of a person, answered."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            data = load_json(await read_body(request, MAX_BODY))
        except BadBody as exc:
            log.info("web chat: message refused: %s", exc.message)
            return _error(exc.status, exc.message)
        parsed = _parse(data)
        if isinstance(parsed, web.Response):
            return parsed
        try:
            person = await self.web_sessions.resolve(parsed.session)
        except DATABASE_ERRORS:
            log.exception("database unavailable: cannot check a web chat session")
            return _error(503, "the service is briefly unavailable: try again in a minute")
        if person is None:
            log.info("web chat: a session this deployment did not issue")
            return _error(401, "unknown session: get a new one from POST /chat/api/sessions")
        inbound = parsed.inbound(person, await self._client(request),
                                 request.headers.get("Accept-Language"))
        answer = await self.engine.answer(inbound)
        if answer.erased:  # the session went with the person: this process forgets it too
            self.web_sessions.forget(parsed.session)
        intent = answer.intent or Intent.UNKNOWN
        return web.json_response(await self._answer(answer.rendered, intent.value),
                                 dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    def _foreign(self, request: web.Request) -> web.Response | None:
        """An error for a request another website's page sent (its visitors' browsers send
        its Origin)."""
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in self._origins(request):
            log.info("web chat: request from a foreign origin refused: %.100s", origin)
            return _error(403, "requests from another website are refused")
        return None

    def _refuse(self, request: web.Request) -> web.Response | None:
        """An error for a request the API does not take from anyone: another website's, or
        anything but JSON (a form can send plain text to any site without asking; JSON needs
        a preflight no other site gets)."""
        foreign = self._foreign(request)
        if foreign is not None:
            return foreign
        if request.content_type != "application/json":
            return _error(415, "send Content-Type: application/json")
        return None

    def _origins(self, request: web.Request) -> set[str]:
        """The request's own origin (as its trusted proxy says, if any) and the public one."""
        scheme = request.scheme
        peer = _address(request.remote)
        forwarded = request.headers.get("X-Forwarded-Proto")
        if forwarded and peer is not None and _trusted(peer, self.proxies):
            scheme = forwarded.split(",")[0].strip().lower()
        origins = {f"{scheme}://{request.host}".lower()}
        if self.public_origin is not None:
            origins.add(self.public_origin)
        return origins

    async def _client(self, request: web.Request) -> str:
        """The keyed hash of the client's address (never the address)."""
        address = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                                 self.proxies)
        return await self.web_sessions.client_hash(address)

    async def _answer(self, rendered: list[Rendered], intent: str) -> dict[str, Any]:
        language = rendered[-1].language if rendered else "fr"
        replies = [await self.reply(item) for item in rendered]
        return {"lang": language, "dir": "rtl" if language == "ar" else "ltr", "intent": intent,
                "replies": replies}

    async def reply(self, item: Rendered) -> dict[str, Any]:
        """One reply as the API gives it: text, buttons, media (files kept for a day)."""
        media: list[dict[str, Any]] = []
        for part in item.media:
            if part.kind == "location":
                media.append({"type": "location", "latitude": part.latitude,
                              "longitude": part.longitude, "label": part.caption})
                continue
            try:
                token = await self.state.put_media(part.data, part.mime, part.filename)
            except RedisError:
                log.exception("cannot keep a web chat file; it is left out of the reply")
                continue
            entry: dict[str, Any] = {"type": part.kind, "url": f"/chat/media/{token}",
                                     "caption": part.caption}
            if part.kind == "document":
                entry["filename"] = part.filename
            media.append(entry)
        return {
            "text": item.text,
            "choices": [{"id": choice.id, "label": choice.label} for choice in item.choices],
            "media": media,
        }

    async def media(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        found = await self.state.get_media(token) if TOKEN_RE.fullmatch(token) else None
        if found is None:
            return _error(404, "not found (files are kept for a day)")
        data, mime, filename = found
        headers = {"Cache-Control": "private, max-age=86400"}
        if filename:
            headers["Content-Disposition"] = f'inline; filename="{filename}"'
        return web.Response(body=data, content_type=mime, headers=headers)


def _subscription(data: Any) -> PushTarget | str:
    """A browser's PushSubscription (as its toJSON gives it), or why it is not one."""
    if not isinstance(data, dict):
        return "subscription must be a PushSubscription object"
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= ENDPOINT_MAX:
        return "subscription.endpoint must be a URL"
    if not isinstance(keys, dict):
        return "subscription.keys must hold p256dh and auth"
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not P256DH_RE.fullmatch(p256dh):
        return "subscription.keys.p256dh must be a base64url P-256 public key"
    if not isinstance(auth, str) or not AUTH_RE.fullmatch(auth):
        return "subscription.keys.auth must be a base64url secret"
    return PushTarget(endpoint, p256dh, auth)


class WebInboxSender:
    """The web chat as a channel that can be written to later: a message is kept in the
    person's inbox (that is its delivery), then their browsers get a push notification."""

    def __init__(self, web_chat: WebChat) -> None:
        self.web_chat = web_chat

    async def deliver(self, outbox_id: int | None, contact_id: int, rendered: Rendered,
                      now: dt.datetime) -> Delivery:
        """Keep the message for the person; push only the first time it is kept."""
        reply = await self.web_chat.reply(rendered)
        kept = await self.web_chat.inbox.keep(contact_id, reply, outbox_id, now)
        if not kept:
            return Delivery("sent", reason="kept already")
        try:
            await self.web_chat.push.notify(contact_id, rendered.text, rendered.language)
        except Exception:  # the message is kept: a notification lost is only a courtesy lost
            log.warning("web push failed; the message waits in the inbox", exc_info=True)
        return Delivery("sent")

    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery:
        """A message for the web chat person `to` (their public id)."""
        contact_id = await self.web_chat.inbox.contact_id(to)
        if contact_id is None:
            return Delivery("skipped", reason="no such web chat person")
        return await self.deliver(None, contact_id, rendered, now)
