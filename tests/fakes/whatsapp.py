"""A fake WhatsApp Cloud API (Meta Graph API) server on localhost, speaking the real wire format.

Tests and benchmarks point the bot's WhatsApp channel at it instead of graph.facebook.com::

    fake = FakeWhatsApp()
    await fake.start()
    settings = Settings(whatsapp_api_base=fake.base_url, whatsapp_token=fake.token, ...)

``base_url`` ends with the Graph API version (``http://127.0.0.1:PORT/v23.0``): the routes
live under it, like ``POST {base_url}/{phone_number_id}/messages``.  Every request is recorded
as a :class:`Call` (``fake.calls``, ``fake.messages(...)``, ``await fake.wait_for(...)``).

The other direction, Meta calling the bot, is built with ``fake.text_message(...)``,
``fake.button_reply(...)``, ``fake.status(...)``... (Meta's exact webhook envelope) and sent
with ``await fake.post_webhook(url, envelope)``: the body is serialised like Meta does (non-ASCII
as ``\\uXXXX`` escapes) and signed over those exact bytes (``X-Hub-Signature-256``).  The
subscription handshake is ``await fake.verify(url)``.

Faults are scripted with ``fake.fail(code, ...)`` (Meta's error body, e.g. 130429 throughput,
131047 re-engagement) and ``fake.hang(...)`` (no answer until ``close()``).

Besides the plain answers, the fake rejects what the real API rejects, so that a test catches
a bot breaking WhatsApp's limits: a wrong or missing access token (190), a wrong phone number
id, a missing ``to`` (or ``recipient``, a business-scoped user id), unknown message types,
texts over 4096 characters, more than 3 reply buttons or button titles over 20 characters, list
messages with more than 10 rows, row titles over 24 or descriptions over 72 characters,
duplicate button or row ids, templates without a name or language code, media without an id
or a link, and media uploads of unsupported types.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, ClientError, ClientSession, ClientTimeout, hdrs, web

__all__ = ["SIGNED", "Call", "FakeWhatsApp", "GraphError"]

API_VERSION = "v23.0"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
INTERACTIVE_BODY_LIMIT = 1024
HEADER_LIMIT = 60
FOOTER_LIMIT = 60
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20
MAX_SECTIONS = 10
MAX_ROWS = 10
SECTION_TITLE_LIMIT = 24
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ROW_ID_LIMIT = 200
CTA_DISPLAY_TEXT_LIMIT = 20

MESSAGE_TYPES = (
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
)
MEDIA_TYPES = frozenset({"audio", "document", "image", "sticker", "video"})
INTERACTIVE_TYPES = (
    "address_message",
    "button",
    "call_permission_request",
    "catalog_message",
    "cta_url",
    "flow",
    "list",
    "location_request_message",
    "product",
    "product_list",
    "voice_call",
)
_MB = 1024 * 1024
# Media the Cloud API accepts for upload, with its size limit.
UPLOAD_LIMITS: dict[str, int] = {
    "audio/aac": 16 * _MB,
    "audio/amr": 16 * _MB,
    "audio/mpeg": 16 * _MB,
    "audio/mp4": 16 * _MB,
    "audio/ogg": 16 * _MB,
    "image/jpeg": 5 * _MB,
    "image/png": 5 * _MB,
    "image/webp": 500 * 1024,
    "video/3gpp": 16 * _MB,
    "video/mp4": 16 * _MB,
    "text/plain": 100 * _MB,
    "application/pdf": 100 * _MB,
    "application/msword": 100 * _MB,
    "application/vnd.ms-excel": 100 * _MB,
    "application/vnd.ms-powerpoint": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 * _MB,
}
# Inbound media of each kind of media_message(): (message type, MIME type, file extension).
_INBOUND_MEDIA = {
    "image": ("image", "image/jpeg", "jpg"),
    "audio": ("audio", "audio/mpeg", "mp3"),
    "voice": ("audio", "audio/ogg; codecs=opus", "ogg"),
    "video": ("video", "video/mp4", "mp4"),
    "document": ("document", "application/pdf", "pdf"),
    "sticker": ("sticker", "image/webp", "webp"),
}
_ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
_ATTACHMENTS_PATH = "/whatsapp_business/attachments/"

# Documented errors: code -> (HTTP status, title, details).  The message of the error answer is
# "(#code) title" (the bare title for the Graph API's own OAuth error, 190).
_ERRORS: dict[int, tuple[int, str, str | None]] = {
    0: (401, "AuthException", "We were unable to authenticate the app user."),
    3: (400, "API Method", "Capability or permissions issue."),
    4: (400, "Application request limit reached", "Too many API calls."),
    10: (403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: (400, "Invalid parameter", None),
    190: (401, "Invalid OAuth access token - Cannot parse access token", None),
    368: (
        403,
        "Temporarily blocked for policies violations",
        (
            "The WhatsApp Business Account associated with the app has been restricted or "
            "disabled for violating a platform policy."
        ),
    ),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    130472: (
        400,
        "User's number is part of an experiment",
        "Message failed to send because of an experiment.",
    ),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131005: (403, "Access denied", "Permission is either not granted or has been removed."),
    131008: (400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (503, "Service unavailable", "A service is temporarily unavailable."),
    131021: (400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (400, "Message Undeliverable", "Message Undeliverable."),
    131030: (
        400,
        "Recipient phone number not in allowed list",
        (
            "Recipient phone number not in allowed list: Add recipient phone number to recipient "
            "list and try again."
        ),
    ),
    131031: (401, "Account has been locked", "The WhatsApp Business Account has been locked."),
    131042: (
        400,
        "Business eligibility payment issue",
        (
            "Message failed to send because there were one or more errors related to your payment"
            " method."
        ),
    ),
    131047: (
        400,
        "Re-engagement message",
        (
            "Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number."
        ),
    ),
    131048: (
        400,
        "Spam rate limit hit",
        (
            "Message failed to send because there are restrictions on how many messages can be "
            "sent from this phone number."
        ),
    ),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
    131062: (
        400,
        "Business-scoped User ID recipients are not supported for this message",
        "Business-scoped User ID recipients are not supported for this message.",
    ),
    131052: (400, "Media download error", "Unable to download the media sent by the user."),
    131053: (400, "Media upload error", "Unable to upload the media used in the message."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        (
            "Message failed to send because there were too many messages sent from this phone "
            "number to the same phone number in a short period of time."
        ),
    ),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        (
            "The number of variable parameter values included in the request did not match the "
            "number of variable parameters defined in the template."
        ),
    ),
    132001: (
        404,
        "Template does not exist",
        (
            "The template does not exist in the specified language or the template has not been "
            "approved."
        ),
    ),
    133010: (
        400,
        "Phone number not registered",
        "The phone number is not registered on the WhatsApp Business Platform.",
    ),
}


class _Signature(enum.Enum):
    SIGNED = "signed"


SIGNED = _Signature.SIGNED
"""``post_webhook(signature=SIGNED)`` (the default): Meta's correct signature headers."""


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


def _error_message(code: int, title: str) -> str:
    return title if code == 190 else f"(#{code}) {title}"


class GraphError(Exception):
    """An error answer of the fake, in the Graph API's format::

    {"error": {"message", "type", "code", ("error_subcode"), ("error_data": {"messaging_product":
    "whatsapp", "details"}), "fbtrace_id"}}
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 400,
        details: str | None = None,
        type: str = "OAuthException",
        subcode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.type = type
        self.subcode = subcode
        self.fbtrace_id = _trace_id()

    @classmethod
    def of(
        cls,
        code: int,
        *,
        status: int | None = None,
        message: str | None = None,
        details: str | None = None,
    ) -> GraphError:
        """The error Meta answers for ``code``, with its documented status, message and details
        unless given."""
        default_status, title, default_details = _ERRORS.get(code, (400, "Error", None))
        return cls(
            code,
            message if message is not None else _error_message(code, title),
            status=default_status if status is None else status,
            details=default_details if details is None else details,
        )

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = self.fbtrace_id
        return {"error": error}


def _required(param: str) -> GraphError:
    return GraphError(100, f"(#100) The parameter {param} is required.")


def _invalid_param(details: str) -> GraphError:
    return GraphError(100, "(#100) Invalid parameter", details=details)


def _invalid_value(details: str) -> GraphError:
    return GraphError(131009, "(#131009) Parameter value is not valid", details=details)


def _unsupported(method: str, object_id: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        type="GraphMethodException",
        subcode=33,
    )


def _unknown_path(path: str) -> GraphError:
    return GraphError(2500, f"Unknown path components: {path}", status=404)


# A business-scoped user id: a country code, a period, letters and digits (US.13491208655302741918).
_BSUID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9.]{1,128}")


def _wa_id(to: str) -> str:
    """The WhatsApp id Meta reports for a ``to``: the digits of a phone number."""
    digits = to.strip().removeprefix("+").replace(" ", "").replace("-", "")
    return digits if digits.isdigit() else to


@dataclass
class Call:
    """One request received by the fake."""

    method: str
    """HTTP method, ``"POST"``, ``"GET"``..."""
    path: str
    """Path under the base URL, e.g. ``"/1098765432/messages"`` (the full path for a request
    outside it)."""
    body: dict[str, Any]
    """The JSON body (messages), or the form fields (media upload)."""
    files: dict[str, tuple[str, str, bytes]]
    """Uploads: field -> ``(filename, content type, content)``."""
    headers: dict[str, str]
    at: float
    """``time.monotonic()`` when the request arrived."""
    status: int | None = None
    """HTTP status of the answer; ``None`` while unanswered (or hung)."""
    response: dict[str, Any] | None = None
    """The JSON answer sent back."""

    @property
    def to(self) -> str | None:
        """``to`` (a phone number), else ``recipient`` (a business-scoped user id)."""
        value = self.body.get("to") or self.body.get("recipient")
        return value if isinstance(value, str) else None

    @property
    def type(self) -> str | None:
        """The message type (``"text"`` when omitted, as Meta defaults it), or ``"read"`` for a
        mark-as-read."""
        if self.body.get("status") == "read":
            return "read"
        addressed = "to" in self.body or "recipient" in self.body
        value = self.body.get("type", "text" if addressed else None)
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str | None:
        """``text.body``, ``interactive.body.text`` or the caption of a media message."""
        kind = self.type
        content = self.body.get(kind) if kind else None
        if not isinstance(content, dict):
            return None
        if kind == "text":
            value = content.get("body")
        elif kind == "interactive":
            body = content.get("body")
            value = body.get("text") if isinstance(body, dict) else None
        else:
            value = content.get("caption")
        return value if isinstance(value, str) else None

    @property
    def interactive(self) -> dict[str, Any] | None:
        value = self.body.get("interactive")
        return value if isinstance(value, dict) else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """``(id, title)`` of the reply buttons of an interactive button message."""
        interactive = self.interactive or {}
        action = interactive.get("action") or {}
        found = []
        for button in action.get("buttons") or []:
            reply = button.get("reply") if isinstance(button, dict) else None
            if isinstance(reply, dict):
                found.append((str(reply.get("id")), str(reply.get("title"))))
        return found

    @property
    def rows(self) -> list[tuple[str, str, str | None]]:
        """``(id, title, description)`` of the rows of an interactive list message."""
        interactive = self.interactive or {}
        action = interactive.get("action") or {}
        found = []
        for section in action.get("sections") or []:
            for row in (section.get("rows") if isinstance(section, dict) else None) or []:
                if isinstance(row, dict):
                    description = row.get("description")
                    found.append(
                        (
                            str(row.get("id")),
                            str(row.get("title")),
                            None if description is None else str(description),
                        )
                    )
        return found

    @property
    def message_id(self) -> str | None:
        """The ``wamid`` the fake gave a successful send."""
        messages = (self.response or {}).get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            value = messages[0].get("id")
            return value if isinstance(value, str) else None
        return None

    @property
    def error(self) -> dict[str, Any] | None:
        """The ``error`` object of an error answer."""
        value = (self.response or {}).get("error")
        return value if isinstance(value, dict) else None

    def summary(self) -> str:
        bits = [f"{key}={value!r}" for key, value in self.body.items()]
        bits += [
            f"{key}=<file {name!r} {mime}, {len(data)} bytes>"
            for key, (name, mime, data) in self.files.items()
        ]
        status = "pending" if self.status is None else str(self.status)
        return f"{self.method} {self.path}({', '.join(bits)}) -> {status}"


@dataclass
class _Fault:
    code: int | None  # None: hang
    status: int | None
    message: str | None
    details: str | None
    remaining: int
    to: str | None
    type: str | None

    def error(self) -> GraphError:
        assert self.code is not None
        return GraphError.of(
            self.code, status=self.status, message=self.message, details=self.details
        )


class FakeWhatsApp:
    """The WhatsApp Cloud API of one business phone number, and the Meta side of its webhook."""

    def __init__(
        self,
        token: str = "EAAG-test-token",
        phone_number_id: str = "1098765432",
        app_secret: str = "app-secret-test",
        verify_token: str = "verify-test",
        *,
        waba_id: str = "102290129340398",
        display_phone_number: str = "212500000000",
        api_version: str = API_VERSION,
        verified_name: str = "Tadamon",
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.waba_id = waba_id
        self.display_phone_number = display_phone_number
        self.api_version = api_version
        self.verified_name = verified_name
        self.calls: list[Call] = []
        self.media: dict[str, tuple[str, str, bytes]] = {}
        """Media the fake knows: media id -> ``(filename, MIME type, content)`` (uploads, and
        the media of ``media_message(...)``)."""
        self._faults: list[_Fault] = []
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._root_url: str | None = None
        self._ids = itertools.count(1)
        self._conversations: dict[str, str] = {}

    # lifecycle ------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, once started."""
        if self._root_url is None:
            raise RuntimeError("FakeWhatsApp is not started")
        return self._root_url

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v23.0``: what ``TADAMON_WHATSAPP_API_BASE`` is set to."""
        return f"{self.root_url}/{self.api_version}"

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/{self.phone_number_id}/messages"

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=128 * _MB)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, bound = self._runner.addresses[0][:2]
        self._root_url = f"http://{host}:{bound}"
        self._session()

    async def close(self) -> None:
        """Stop the server; hung requests are released first (with a 503)."""
        self._closed.set()
        await self._notify()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWhatsApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _session(self) -> ClientSession:
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=60))
        return self._client

    # recorded calls -------------------------------------------------------------------------

    def _is_send(self, call: Call) -> bool:
        return call.method == "POST" and call.path == f"/{self.phone_number_id}/messages"

    @staticmethod
    def _matches(call: Call, to: str | None, type: str | None) -> bool:
        if to is not None and (call.to is None or _wa_id(call.to) != _wa_id(to)):
            return False
        if type is None:
            return call.type != "read"
        return call.type == type

    def messages(self, to: str | None = None, type: str | None = None) -> list[Call]:
        """``POST /{phone_number_id}/messages`` calls (to ``to``, of ``type`` if given), in
        order, answered or not; mark-as-read calls only with ``type="read"``."""
        return [
            call for call in self.calls if self._is_send(call) and self._matches(call, to, type)
        ]

    def texts(self, to: str | None = None) -> list[str]:
        """Texts the bot sent successfully (bodies, interactive bodies, captions), in order."""
        return [
            call.text for call in self.messages(to) if call.status == 200 and call.text is not None
        ]

    def summary(self) -> str:
        if not self.calls:
            return "  (no calls)"
        return "\n".join(f"  {call.summary()}" for call in self.calls)

    async def wait_for(
        self,
        to: str | None = None,
        count: int = 1,
        type: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the fake's API
    ) -> list[Call]:
        """Wait until at least ``count`` messages (to ``to``, of ``type``) were recorded."""

        def enough() -> bool:
            return len(self.messages(to, type)) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
            except TimeoutError:
                target = f" to {to}" if to is not None else ""
                kind = f" {type}" if type is not None else ""
                got = len(self.messages(to, type))
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count}{kind} message(s){target}, "
                    f"got {got}; recorded calls:\n{self.summary()}"
                ) from None
        return self.messages(to, type)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # faults ---------------------------------------------------------------------------------

    def fail(
        self,
        code: int,
        *,
        times: int = 1,
        to: str | None = None,
        status: int | None = None,
        message: str | None = None,
        details: str | None = None,
        type: str | None = None,
    ) -> None:
        """The next ``times`` sends (to ``to``, of message ``type``; mark-as-read calls only
        with ``type="read"``) answer Meta's error ``code``: its documented HTTP status, message
        and details unless given (e.g. 130429 -> 429 "(#130429) Rate limit hit")."""
        self._faults.append(_Fault(code, status, message, details, times, to, type))

    def hang(self, times: int = 1, *, to: str | None = None, type: str | None = None) -> None:
        """The next ``times`` sends (filtered like ``fail``) get no answer until ``close()``."""
        self._faults.append(_Fault(None, None, None, None, times, to, type))

    def heal(self) -> None:
        """Forget the faults still scripted: from now on every send is answered as usual
        (with ``fail(..., times=N)`` for a large N, a fault that lasts until healed)."""
        self._faults.clear()

    def _take_fault(self, call: Call) -> _Fault | None:
        for fault in self._faults:
            if self._matches(call, fault.to, fault.type):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # HTTP -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        prefix = f"/{self.api_version}"
        full = request.path
        under_base = full.startswith(prefix + "/")
        path = full[len(prefix) :] if under_base else full
        call = Call(request.method, path, {}, {}, dict(request.headers), at)
        self.calls.append(call)
        unreadable: GraphError | None = None
        try:
            call.body, call.files = await self._read(request)
        except GraphError as error:
            unreadable = error
        try:
            self._authorize(request)
            if unreadable is not None:
                raise unreadable
            if full.startswith(_ATTACHMENTS_PATH) and request.method == "GET":
                return await self._download(call, request)
            if not under_base:
                raise _unknown_path(full)
            outcome: dict[str, Any] | GraphError = await self._route(call)
        except GraphError as error:
            outcome = error
        response = self._respond(call, outcome)
        await self._notify()
        return response

    @staticmethod
    async def _read(
        request: web.Request,
    ) -> tuple[dict[str, Any], dict[str, tuple[str, str, bytes]]]:
        fields: dict[str, Any] = {}
        files: dict[str, tuple[str, str, bytes]] = {}
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                data = bytes(await part.read(decode=False))
                if part.filename is not None:
                    mime = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                    files[part.name] = (part.filename, mime, data)
                else:
                    fields[part.name] = data.decode("utf-8", "replace")
            return fields, files
        raw = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            fields.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        elif raw.strip():
            try:
                loaded = json.loads(raw)
            except ValueError:
                raise _invalid_param("The request body is not valid JSON.") from None
            if not isinstance(loaded, dict):
                raise _invalid_param("The request body must be a JSON object.")
            fields.update(loaded)
        return fields, files

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
        token = token or request.query.get("access_token", "")
        if token != self.token:
            raise GraphError.of(190)

    async def _route(self, call: Call) -> dict[str, Any]:
        segments = call.path.strip("/").split("/")
        if len(segments) == 1 and segments[0]:
            object_id = segments[0]
            if call.method == "GET" and object_id == self.phone_number_id:
                return self._phone_number()
            if object_id in self.media and call.method in ("GET", "DELETE"):
                if call.method == "DELETE":
                    del self.media[object_id]
                    return {"success": True}
                return self._media_info(object_id)
            raise _unsupported(call.method, object_id)
        if len(segments) == 2 and segments[1] in ("messages", "media"):
            object_id, edge = segments
            if object_id != self.phone_number_id or call.method != "POST":
                raise _unsupported(call.method, object_id)
            if edge == "media":
                return self._upload(call)
            fault = self._take_fault(call)
            if fault is not None:
                if fault.code is None:
                    await self._notify()  # the hung call is visible to wait_for
                    await self._closed.wait()
                    raise GraphError.of(131016)
                raise fault.error()
            return self._send(call.body)
        raise _unknown_path("/" + "/".join(segments[1:]) if len(segments) > 1 else call.path)

    def _respond(self, call: Call, outcome: dict[str, Any] | GraphError) -> web.Response:
        if isinstance(outcome, GraphError):
            status, answer = outcome.status, outcome.body()
        else:
            status, answer = 200, outcome
        call.status, call.response = status, answer
        return web.json_response(answer, status=status)

    # the Graph API --------------------------------------------------------------------------

    def _phone_number(self) -> dict[str, Any]:
        return {
            "verified_name": self.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": f"+{self.display_phone_number}",
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": self.phone_number_id,
        }

    def _media_info(self, media_id: str) -> dict[str, Any]:
        _, mime, content = self.media[media_id]
        return {
            "messaging_product": "whatsapp",
            "url": f"{self.root_url}{_ATTACHMENTS_PATH}?mid={media_id}&ext={int(time.time())}"
            f"&hash={secrets.token_urlsafe(12)}",
            "mime_type": mime,
            "sha256": hashlib.sha256(content).hexdigest(),
            "file_size": len(content),
            "id": media_id,
        }

    async def _download(self, call: Call, request: web.Request) -> web.StreamResponse:
        media_id = request.query.get("mid", "")
        if media_id not in self.media:
            raise _unknown_path(request.path)
        _, mime, content = self.media[media_id]
        call.status, call.response = 200, None
        await self._notify()
        return web.Response(body=content, headers={hdrs.CONTENT_TYPE: mime})

    def _new_media_id(self) -> str:
        return f"10{next(self._ids):06d}{secrets.randbelow(10**8):08d}"

    def _upload(self, call: Call) -> dict[str, Any]:
        self._check_product(call.body)
        upload = call.files.get("file")
        if upload is None:
            raise _required("file")
        filename, part_type, content = upload
        declared = str(call.body.get("type") or part_type)
        mime = declared.partition(";")[0].strip().lower()
        limit = UPLOAD_LIMITS.get(mime)
        if limit is None:
            raise GraphError(
                100,
                "(#100) Param file must be a file with one of the following types: "
                + ", ".join(UPLOAD_LIMITS)
                + f". Received file of type '{mime}'.",
            )
        if len(content) > limit:
            raise GraphError.of(
                131053, details=f"File of type {mime} is too big: the limit is {limit} bytes."
            )
        media_id = self._new_media_id()
        self.media[media_id] = (filename, declared, content)
        return {"id": media_id}

    def add_media(
        self, content: bytes, mime_type: str = "image/jpeg", filename: str = "file.jpg"
    ) -> str:
        """Store a media as if uploaded (or sent by a user); returns its media id."""
        media_id = self._new_media_id()
        self.media[media_id] = (filename, mime_type, content)
        return media_id

    @staticmethod
    def _check_product(body: dict[str, Any]) -> None:
        product = body.get("messaging_product")
        if product is None:
            raise _required("messaging_product")
        if product != "whatsapp":
            raise GraphError(
                100,
                f'(#100) Param messaging_product must be one of {{WHATSAPP}} - got "{product}".',
            )

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_product(body)
        if "status" in body:
            return self._mark_read(body)
        to = body.get("to")
        recipient = body.get("recipient")
        by_user_id = not to and isinstance(recipient, str) and bool(_BSUID.fullmatch(recipient))
        if by_user_id:
            to = recipient
        elif not isinstance(to, str) or not to.strip():
            raise _required("to")
        assert isinstance(to, str)
        recipient_type = body.get("recipient_type", "individual")
        if recipient_type not in ("individual", "group"):
            raise _invalid_param("Param recipient_type must be one of {INDIVIDUAL, GROUP}.")
        kind = body.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise GraphError(
                100,
                "(#100) Param type must be one of {"
                + ", ".join(name.upper() for name in MESSAGE_TYPES)
                + f'}} - got "{kind}".',
            )
        content = body.get(kind)
        if not isinstance(content, dict | list) or not content:
            raise _required(kind)
        if kind == "text":
            self._check_text(content)
        elif kind == "interactive":
            self._check_interactive(content)
        elif kind in MEDIA_TYPES:
            self._check_media(kind, content)
        elif kind == "location":
            self._check_location(content)
        elif kind == "template":
            self._check_template(content)
        elif kind == "reaction":
            self._check_reaction(content)
        context = body.get("context")
        if context is not None and not (
            isinstance(context, dict) and isinstance(context.get("message_id"), str)
        ):
            raise _required("context['message_id']")
        wa_id = _wa_id(to)
        message: dict[str, Any] = {"id": self.wamid(wa_id, outbound=True)}
        if kind == "template":
            message["message_status"] = "accepted"
        # A send by business-scoped user id is answered with that id, not a wa_id.
        contact = {"input": to, "user_id": to} if by_user_id else {"input": to, "wa_id": wa_id}
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}

    @staticmethod
    def _mark_read(body: dict[str, Any]) -> dict[str, Any]:
        if body["status"] != "read":
            raise _invalid_param('Param status must be "read".')
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise _required("message_id")
        indicator = body.get("typing_indicator")
        if indicator is not None and (
            not isinstance(indicator, dict) or indicator.get("type") != "text"
        ):
            raise _invalid_param("Param typing_indicator['type'] must be one of {TEXT}.")
        return {"success": True}

    @staticmethod
    def _string(container: dict[str, Any], key: str, param: str) -> str:
        value = container.get(key)
        if value is None or value == "":
            raise _required(param)
        if not isinstance(value, str):
            raise _invalid_param(f"Param {param} must be a string.")
        return value

    @staticmethod
    def _limit(value: str, limit: int, what: str) -> None:
        if len(value) > limit:
            raise _invalid_value(f"{what} is too long. Max length is {limit}.")

    def _check_text(self, text: Any) -> None:
        if not isinstance(text, dict):
            raise _required("text['body']")
        body = self._string(text, "body", "text['body']")
        if len(body) > TEXT_LIMIT:
            raise GraphError(
                100, f"(#100) Param text['body'] must be at most {TEXT_LIMIT} characters long."
            )

    def _check_interactive(self, interactive: Any) -> None:
        if not isinstance(interactive, dict):
            raise _required("interactive['type']")
        kind = interactive.get("type")
        if kind is None:
            raise _required("interactive['type']")
        if kind not in INTERACTIVE_TYPES:
            raise GraphError(
                100,
                "(#100) Param interactive['type'] must be one of {"
                + ", ".join(name.upper() for name in INTERACTIVE_TYPES)
                + f'}} - got "{kind}".',
            )
        if kind not in ("button", "list", "cta_url"):
            return  # the other kinds are passed on as they come
        body = interactive.get("body")
        if not isinstance(body, dict):
            raise _required("interactive['body']")
        text = self._string(body, "text", "interactive['body']['text']")
        self._limit(text, INTERACTIVE_BODY_LIMIT, "Body text")
        header = interactive.get("header")
        if header is not None:
            if not isinstance(header, dict) or header.get("type") not in (
                "text",
                "image",
                "video",
                "document",
            ):
                raise _invalid_param("Param interactive['header']['type'] is invalid.")
            if kind == "list" and header["type"] != "text":
                raise _invalid_value("Header of list messages must be of type text.")
            if header["type"] == "text":
                value = self._string(header, "text", "interactive['header']['text']")
                self._limit(value, HEADER_LIMIT, "Header text")
        footer = interactive.get("footer")
        if footer is not None:
            if not isinstance(footer, dict):
                raise _invalid_param("Param interactive['footer'] must be an object.")
            value = self._string(footer, "text", "interactive['footer']['text']")
            self._limit(value, FOOTER_LIMIT, "Footer text")
        action = interactive.get("action")
        if not isinstance(action, dict):
            raise _required("interactive['action']")
        if kind == "button":
            self._check_buttons(action)
        elif kind == "list":
            self._check_list(action)
        else:
            self._check_cta_url(action)

    def _check_buttons(self, action: dict[str, Any]) -> None:
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            raise _required("interactive['action']['buttons']")
        if len(buttons) > MAX_BUTTONS:
            raise _invalid_value(f"buttons: Too many elements. Max allowed: {MAX_BUTTONS}.")
        ids: set[str] = set()
        titles: set[str] = set()
        for button in buttons:
            if not isinstance(button, dict) or button.get("type") != "reply":
                raise _invalid_param(
                    "Param interactive['action']['buttons'][]['type'] must be one of {REPLY}."
                )
            reply = button.get("reply")
            if not isinstance(reply, dict):
                raise _required("interactive['action']['buttons'][]['reply']")
            button_id = self._string(
                reply, "id", "interactive['action']['buttons'][]['reply']['id']"
            )
            title = reply.get("title")
            if not isinstance(title, str) or not 1 <= len(title) <= BUTTON_TITLE_LIMIT:
                raise _invalid_value(
                    f"Button title length invalid. Min length: 1, Max length: {BUTTON_TITLE_LIMIT}"
                )
            if len(button_id) > BUTTON_ID_LIMIT:
                raise _invalid_value(
                    f"Button ID length invalid. Min length: 1, Max length: {BUTTON_ID_LIMIT}"
                )
            if button_id in ids:
                raise _invalid_value(
                    f"Duplicate button id: {button_id}. Button ids must be unique."
                )
            if title in titles:
                raise _invalid_value(
                    f"Duplicate button title: {title}. Button titles must be unique."
                )
            ids.add(button_id)
            titles.add(title)

    def _check_list(self, action: dict[str, Any]) -> None:
        button = self._string(action, "button", "interactive['action']['button']")
        self._limit(button, LIST_BUTTON_LIMIT, "Button text")
        sections = action.get("sections")
        if not isinstance(sections, list) or not sections:
            raise _required("interactive['action']['sections']")
        if len(sections) > MAX_SECTIONS:
            raise _invalid_value(f"Too many sections. Max allowed: {MAX_SECTIONS}.")
        ids: set[str] = set()
        total = 0
        for section in sections:
            if not isinstance(section, dict):
                raise _invalid_param("Param interactive['action']['sections'][] must be an object.")
            title = section.get("title")
            if title is None and len(sections) > 1:
                raise _required("interactive['action']['sections'][]['title']")
            if title is not None:
                if not isinstance(title, str):
                    raise _invalid_param("Param sections[]['title'] must be a string.")
                self._limit(title, SECTION_TITLE_LIMIT, "Section title")
            rows = section.get("rows")
            if not isinstance(rows, list) or not rows:
                raise _required("interactive['action']['sections'][]['rows']")
            total += len(rows)
            if total > MAX_ROWS:
                raise _invalid_value(f"Total row count exceed max allowed count: {MAX_ROWS}")
            for row in rows:
                if not isinstance(row, dict):
                    raise _invalid_param("Param sections[]['rows'][] must be an object.")
                row_id = self._string(row, "id", "sections[]['rows'][]['id']")
                row_title = self._string(row, "title", "sections[]['rows'][]['title']")
                self._limit(row_id, ROW_ID_LIMIT, "Row ID")
                self._limit(row_title, ROW_TITLE_LIMIT, "Row title")
                description = row.get("description")
                if description is not None:
                    if not isinstance(description, str):
                        raise _invalid_param("Param rows[]['description'] must be a string.")
                    self._limit(description, ROW_DESCRIPTION_LIMIT, "Row description")
                if row_id in ids:
                    raise _invalid_value(f"Duplicate row id: {row_id}. Row ids must be unique.")
                ids.add(row_id)

    def _check_cta_url(self, action: dict[str, Any]) -> None:
        if action.get("name") != "cta_url":
            raise _invalid_param("Param interactive['action']['name'] must be cta_url.")
        parameters = action.get("parameters")
        if not isinstance(parameters, dict):
            raise _required("interactive['action']['parameters']")
        text = self._string(parameters, "display_text", "parameters['display_text']")
        self._limit(text, CTA_DISPLAY_TEXT_LIMIT, "Display text")
        url = self._string(parameters, "url", "parameters['url']")
        if not url.startswith(("http://", "https://")):
            raise _invalid_value("The url must be a valid http or https URL.")

    def _check_media(self, kind: str, media: Any) -> None:
        if not isinstance(media, dict):
            raise _required(f"{kind}['id'] or {kind}['link']")
        media_id, link = media.get("id"), media.get("link")
        if not media_id and not link:
            raise _required(f"{kind}['id'] or {kind}['link']")
        if media_id and link:
            raise _invalid_param(f"Only one of {kind}['id'] and {kind}['link'] can be given.")
        if link and not (isinstance(link, str) and link.startswith(("http://", "https://"))):
            raise _invalid_param(f"Param {kind}['link'] must be a valid URL.")
        caption = media.get("caption")
        if caption is not None:
            if not isinstance(caption, str):
                raise _invalid_param(f"Param {kind}['caption'] must be a string.")
            self._limit(caption, CAPTION_LIMIT, "Caption")

    @staticmethod
    def _check_location(location: Any) -> None:
        if not isinstance(location, dict):
            raise _required("location['latitude']")
        for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
            value = location.get(key)
            if value is None or value == "":
                raise _required(f"location['{key}']")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise _invalid_param(f"Param location['{key}'] must be a number.") from None
            if not -bound <= number <= bound:
                raise _invalid_value(f"Param location['{key}'] is out of range.")

    def _check_template(self, template: Any) -> None:
        if not isinstance(template, dict):
            raise _required("template['name']")
        self._string(template, "name", "template['name']")
        language = template.get("language")
        if not isinstance(language, dict):
            raise _required("template['language']")
        self._string(language, "code", "template['language']['code']")
        components = template.get("components")
        if components is not None and not isinstance(components, list):
            raise _invalid_param("Param template['components'] must be an array.")

    def _check_reaction(self, reaction: Any) -> None:
        if not isinstance(reaction, dict):
            raise _required("reaction['message_id']")
        self._string(reaction, "message_id", "reaction['message_id']")
        if not isinstance(reaction.get("emoji", ""), str):
            raise _invalid_param("Param reaction['emoji'] must be a string.")

    # webhooks: what Meta posts to the bot ---------------------------------------------------

    def wamid(self, wa_id: str = "212600000000", *, outbound: bool = False) -> str:
        """A new, unique WhatsApp message id in Meta's format (``wamid.HBg...``)."""
        number = next(self._ids)
        digits = wa_id.encode()[:200]
        ident = f"{number:06X}{secrets.token_hex(6).upper()}".encode()
        raw = (
            b"\x1c\x18"
            + bytes([len(digits)])
            + digits
            + (b"\x15\x02\x00\x11\x18" if outbound else b"\x15\x02\x00\x12\x18")
            + bytes([len(ident)])
            + ident
            + b"\x00"
        )
        return "wamid." + base64.b64encode(raw).decode()

    def envelope(
        self,
        *,
        messages: list[dict[str, Any]] | None = None,
        statuses: list[dict[str, Any]] | None = None,
        contacts: list[dict[str, Any]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        """Meta's webhook body for the ``messages`` field; empty lists are left out, as Meta
        does.  ``phone_number_id``: another number of the same business account, to which the
        body is addressed (default: this fake's number)."""
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_phone_number,
                "phone_number_id": phone_number_id or self.phone_number_id,
            },
        }
        for key, items in (
            ("contacts", contacts),
            ("messages", messages),
            ("statuses", statuses),
            ("errors", errors),
        ):
            if items:
                value[key] = items
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.waba_id, "changes": [{"value": value, "field": "messages"}]}],
        }

    @staticmethod
    def value_of(envelope: dict[str, Any]) -> dict[str, Any]:
        """``entry[0].changes[0].value`` of an envelope."""
        value: dict[str, Any] = envelope["entry"][0]["changes"][0]["value"]
        return value

    @classmethod
    def message_id_of(cls, envelope: dict[str, Any]) -> str:
        """The ``wamid`` of the (first) user message of an envelope."""
        return str(cls.value_of(envelope)["messages"][0]["id"])

    def _inbound(
        self,
        wa_id: str | None,
        kind: str,
        content: dict[str, Any],
        *,
        name: str,
        user_id: str | None,
        message_id: str | None,
        timestamp: int | None,
        context: dict[str, Any] | None = None,
        username: str | None = None,
        group_id: str | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        """A user's message.  ``wa_id=None``: a username user whose phone number Meta withholds
        (``from`` and ``wa_id`` left out; ``user_id`` and ``username`` name them)."""
        message: dict[str, Any] = {}
        if context is not None:
            message["context"] = context
        if wa_id is not None:
            message["from"] = wa_id
        if user_id is not None:
            message["from_user_id"] = user_id  # business-scoped user id (BSUID)
        if group_id is not None:
            message["group_id"] = group_id
        message["id"] = message_id or self.wamid(wa_id or user_id or "")
        message["timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
        message["type"] = kind
        message[kind] = content
        profile: dict[str, Any] = {"name": name}
        if username is not None:
            profile["username"] = username
        contact: dict[str, Any] = {"profile": profile}
        if wa_id is not None:
            contact["wa_id"] = wa_id
        if user_id is not None:
            contact["user_id"] = user_id
        return self.envelope(
            contacts=[contact], messages=[message], phone_number_id=phone_number_id
        )

    def text_message(
        self,
        wa_id: str | None,
        body: str,
        *,
        name: str = "Amina",
        user_id: str | None = None,
        username: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        reply_to: str | None = None,
        group_id: str | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        """A user's text message (``reply_to``: the wamid of a message it quotes).

        ``wa_id=None`` with ``user_id``: from a username user whose phone number is withheld.
        ``group_id``: written in a group the business belongs to (Groups API).
        ``phone_number_id``: addressed to another number of the business account."""
        context = None if reply_to is None else self._context(wa_id, reply_to)
        return self._inbound(
            wa_id,
            "text",
            {"body": body},
            name=name,
            user_id=user_id,
            message_id=message_id,
            timestamp=timestamp,
            context=context,
            username=username,
            group_id=group_id,
            phone_number_id=phone_number_id,
        )

    def _context(self, wa_id: str | None, message_id: str | None) -> dict[str, Any]:
        if message_id is None:
            sent = [call for call in self.messages(wa_id) if call.message_id is not None]
            message_id = sent[-1].message_id if sent else self.wamid(wa_id or "", outbound=True)
        return {"from": self.display_phone_number, "id": message_id}

    def _choice(self, wa_id: str, choice_id: str, kind: str) -> tuple[str, str, str | None] | None:
        """(wamid, title, description) of the latest interactive message sent to ``wa_id`` that
        offered the button or row ``choice_id``."""
        for call in reversed(self.messages(wa_id, "interactive")):
            if call.message_id is None or (call.interactive or {}).get("type") != kind:
                continue
            options = [(i, t, None) for i, t in call.buttons] if kind == "button" else call.rows
            for option_id, title, description in options:
                if option_id == choice_id:
                    return call.message_id, title, description
        return None

    def button_reply(
        self,
        wa_id: str | None,
        button_id: str,
        title: str = "",
        *,
        context_id: str | None = None,
        name: str = "Amina",
        user_id: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """The user tapped a reply button.  The title and the ``context`` (the bot's message)
        default to those of the latest button message sent to ``wa_id`` (or to ``user_id``, for
        a username user: ``wa_id=None``) with that button."""
        found = self._choice(wa_id or user_id or "", button_id, "button")
        if found is not None:
            context_id = context_id or found[0]
            title = title or found[1]
        return self._inbound(
            wa_id,
            "interactive",
            {"type": "button_reply", "button_reply": {"id": button_id, "title": title}},
            name=name,
            user_id=user_id,
            message_id=message_id,
            timestamp=timestamp,
            context=self._context(wa_id, context_id),
        )

    def list_reply(
        self,
        wa_id: str,
        row_id: str,
        title: str = "",
        description: str = "",
        *,
        context_id: str | None = None,
        name: str = "Amina",
        user_id: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """The user picked a row of a list message (title, description and context default to
        the latest list sent to ``wa_id`` with that row)."""
        found = self._choice(wa_id, row_id, "list")
        if found is not None:
            context_id = context_id or found[0]
            title = title or found[1]
            description = description or (found[2] or "")
        reply: dict[str, Any] = {"id": row_id, "title": title}
        if description:
            reply["description"] = description
        return self._inbound(
            wa_id,
            "interactive",
            {"type": "list_reply", "list_reply": reply},
            name=name,
            user_id=user_id,
            message_id=message_id,
            timestamp=timestamp,
            context=self._context(wa_id, context_id),
        )

    def location_message(
        self,
        wa_id: str,
        latitude: float,
        longitude: float,
        *,
        place: str | None = None,
        address: str | None = None,
        url: str | None = None,
        name: str = "Amina",
        user_id: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A shared location (``place``: the location's name, for a chosen place)."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if place is not None:
            location["name"] = place
        if address is not None:
            location["address"] = address
        if url is not None:
            location["url"] = url
        return self._inbound(
            wa_id,
            "location",
            location,
            name=name,
            user_id=user_id,
            message_id=message_id,
            timestamp=timestamp,
        )

    def media_message(
        self,
        wa_id: str,
        kind: str,
        *,
        content: bytes | None = None,
        media_id: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        animated: bool = False,
        name: str = "Amina",
        user_id: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A media message: ``kind`` is image, audio, voice (an audio with ``voice: true``),
        video, document or sticker.  The media is stored in ``fake.media`` (unless a
        ``media_id`` is given), so the bot can fetch it with ``GET /{media_id}``."""
        if kind not in _INBOUND_MEDIA:
            raise ValueError(f"unknown media kind {kind!r}: one of {', '.join(_INBOUND_MEDIA)}")
        message_type, default_mime, extension = _INBOUND_MEDIA[kind]
        mime = mime_type or default_mime
        data = content if content is not None else f"fake {kind} ".encode() + secrets.token_bytes(8)
        filename = filename or f"{kind}.{extension}"
        if media_id is None:
            media_id = self.add_media(data, mime, filename)
        media: dict[str, Any] = {}
        if caption is not None and message_type in ("image", "video", "document"):
            media["caption"] = caption
        if message_type == "document":
            media["filename"] = filename
        media["mime_type"] = mime
        media["sha256"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
        media["id"] = media_id
        if message_type == "audio":
            media["voice"] = kind == "voice"
        if message_type == "sticker":
            media["animated"] = animated
        return self._inbound(
            wa_id,
            message_type,
            media,
            name=name,
            user_id=user_id,
            message_id=message_id,
            timestamp=timestamp,
        )

    def reaction(
        self,
        wa_id: str,
        message_id: str,
        emoji: str = "👍",
        *,
        name: str = "Amina",
        user_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """The user reacted to the message ``message_id`` (``emoji=""``: reaction removed)."""
        reaction: dict[str, Any] = {"message_id": message_id}
        if emoji:
            reaction["emoji"] = emoji
        return self._inbound(
            wa_id,
            "reaction",
            reaction,
            name=name,
            user_id=user_id,
            message_id=None,
            timestamp=timestamp,
        )

    def edit(
        self,
        wa_id: str,
        original_message_id: str,
        body: str,
        *,
        name: str = "Amina",
        user_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """The user edited their text message ``original_message_id`` (Meta sends ``edit``
        with the new content; Coexistence numbers)."""
        edit = {
            "original_message_id": original_message_id,
            "message": {"type": "text", "text": {"body": body}},
        }
        return self._inbound(
            wa_id, "edit", edit, name=name, user_id=user_id, message_id=None, timestamp=timestamp
        )

    def revoke(
        self,
        wa_id: str,
        original_message_id: str,
        *,
        name: str = "Amina",
        user_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """The user deleted their message ``original_message_id`` for everyone."""
        return self._inbound(
            wa_id,
            "revoke",
            {"original_message_id": original_message_id},
            name=name,
            user_id=user_id,
            message_id=None,
            timestamp=timestamp,
        )

    def unsupported(
        self,
        wa_id: str,
        subtype: str | None = None,
        *,
        name: str = "Amina",
        user_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A message Cloud API cannot show (a poll, an edit on an older number...): ``type:
        unsupported`` with error 131051 and, when Meta knows it, ``unsupported.type``."""
        envelope = self._inbound(
            wa_id,
            "unsupported",
            {"type": subtype} if subtype else {},
            name=name,
            user_id=user_id,
            message_id=None,
            timestamp=timestamp,
        )
        message = self.value_of(envelope)["messages"][0]
        if not subtype:
            del message["unsupported"]
        message["errors"] = [self.webhook_error(131051)]
        return envelope

    def system_message(
        self,
        wa_id: str,
        *,
        new_wa_id: str | None = None,
        identity: str | None = None,
        name: str = "Amina",
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A system notice about the user, without a ``contacts`` array, as Meta sends it:
        their number changed (``new_wa_id``) or their identity did (``identity``: the hash of
        their new security code)."""
        system: dict[str, Any]
        if identity is not None:
            system = {
                "body": f"{name}'s security code changed",
                "identity": identity,
                "customer": wa_id,
                "type": "user_identity_changed",
            }
        else:
            new = new_wa_id or "212699999999"
            system = {
                "body": f"User {name} changed from {wa_id} to {new}",
                "wa_id": new,
                "type": "user_changed_number",
            }
        message = {
            "from": wa_id,
            "id": self.wamid(wa_id),
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
            "type": "system",
            "system": system,
        }
        return self.envelope(messages=[message])

    @staticmethod
    def webhook_error(code: int, details: str | None = None) -> dict[str, Any]:
        """An error object as Meta puts it in ``statuses[].errors`` or ``value.errors``."""
        _, title, default_details = _ERRORS.get(code, (400, "Error", None))
        error: dict[str, Any] = {"code": code, "title": title, "message": title}
        error["error_data"] = {"details": details or default_details or title}
        error["href"] = _ERROR_CODES_URL
        return error

    def status(
        self,
        wamid: str,
        status: str,
        recipient_id: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        category: str = "service",
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A status update (sent / delivered / read / failed) of the bot's message ``wamid``.

        ``sent`` and ``delivered`` carry ``conversation`` and ``pricing`` as Meta sends them
        (``category="service"``: a free customer-service reply); ``failed`` carries ``errors``
        (default: 131026 Message Undeliverable)."""
        now = int(time.time()) if timestamp is None else timestamp
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(now),
            "recipient_id": recipient_id,
        }
        if status in ("sent", "delivered"):
            conversation_id = self._conversations.setdefault(recipient_id, secrets.token_hex(16))
            conversation: dict[str, Any] = {"id": conversation_id}
            if status == "sent":
                conversation["expiration_timestamp"] = str(now + 24 * 3600)
            conversation["origin"] = {"type": category}
            entry["conversation"] = conversation
            free = category == "service"
            entry["pricing"] = {
                "billable": not free,
                "pricing_model": "PMP",
                "category": category,
                "type": "free_customer_service" if free else "regular",
            }
        if status == "failed" or errors:
            entry["errors"] = errors or [self.webhook_error(131026)]
        return self.envelope(statuses=[entry])

    # delivering webhooks --------------------------------------------------------------------

    def sign(self, raw: bytes) -> str:
        """``X-Hub-Signature-256`` of a body: ``sha256=`` + HMAC-SHA256(app secret, raw)."""
        digest = hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    def sign_sha1(self, raw: bytes) -> str:
        """The legacy ``X-Hub-Signature`` header Meta also sends."""
        return "sha1=" + hmac.new(self.app_secret.encode(), raw, hashlib.sha1).hexdigest()

    @staticmethod
    def encode(envelope: dict[str, Any]) -> bytes:
        """The body as Meta serialises it: compact, non-ASCII as ``\\uXXXX`` escapes (lower-case
        hex); the signature is over these exact bytes."""
        return json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")

    async def post_webhook(
        self,
        url: str,
        envelope: dict[str, Any],
        *,
        signature: str | _Signature | None = SIGNED,
        raw: bytes | None = None,
    ) -> int:
        """POST an envelope to the bot's webhook like Meta; returns the HTTP status of the
        answer (0 when the bot is unreachable).

        ``signature``: ``SIGNED`` (the correct headers), ``None`` (no signature header),
        ``"wrong"`` (a well-formed signature of other bytes) or a header value to send as is.
        ``raw``: bytes to send instead of ``encode(envelope)`` (signed as they are)."""
        payload = self.encode(envelope) if raw is None else raw
        headers: dict[str, str] = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
        }
        if signature is SIGNED:
            headers["X-Hub-Signature"] = self.sign_sha1(payload)
            headers["X-Hub-Signature-256"] = self.sign(payload)
        elif signature == "wrong":
            headers["X-Hub-Signature"] = self.sign_sha1(payload + b" ")
            headers["X-Hub-Signature-256"] = self.sign(payload + b" ")
        elif isinstance(signature, str):
            headers["X-Hub-Signature-256"] = signature
        try:
            async with self._session().post(url, data=payload, headers=headers) as response:
                await response.read()
                return response.status
        except (ClientError, TimeoutError):
            return 0

    async def send_text(self, url: str, wa_id: str, body: str, **kw: Any) -> int:
        """``post_webhook(url, text_message(wa_id, body, **kw))``."""
        return await self.post_webhook(url, self.text_message(wa_id, body, **kw))

    async def tap(self, url: str, wa_id: str, button_id: str, **kw: Any) -> int:
        """``post_webhook(url, button_reply(wa_id, button_id, **kw))``."""
        return await self.post_webhook(url, self.button_reply(wa_id, button_id, **kw))

    async def verify(
        self, url: str, token: str | None = None, challenge: str = "1158201444"
    ) -> tuple[int, str]:
        """Meta's subscription handshake: ``GET url?hub.mode=subscribe&hub.challenge=...&
        hub.verify_token=...``; returns the status and the body of the answer."""
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": self.verify_token if token is None else token,
        }
        headers = {hdrs.USER_AGENT: "facebookplatform/1.0 (+http://developers.facebook.com)"}
        async with self._session().get(url, params=params, headers=headers) as response:
            return response.status, await response.text()
