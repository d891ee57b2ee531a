"""A fake Telegram Bot API server on localhost, speaking the real wire format.

Tests and benchmarks point aiogram's real client at it instead of api.telegram.org::

    fake = FakeTelegram()
    await fake.start()
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))

Every request is recorded as a :class:`Call` (``fake.calls``, ``fake.calls_of(...)``,
``await fake.wait_for(...)``).  Updates are produced with ``fake.message(...)`` /
``fake.callback(...)`` and delivered with ``await fake.push(update)``: queued for
``getUpdates`` long polling, or POSTed to the webhook after ``setWebhook``.  Faults are
scripted with ``fake.fail(...)`` (an error answer) and ``fake.hang(...)`` (no answer at all).

Besides the plain answers, the fake reproduces a few errors of the real server that a bot
can run into: malformed HTML with ``parse_mode=HTML`` (``can't parse entities``), empty or
too long texts and captions, ``callback_data`` over 64 bytes (``BUTTON_DATA_INVALID``),
editing a message without changing it (``message is not modified``), answering a callback
query twice or one that was never sent (``query is too old``), two concurrent
``getUpdates`` (409), ``getUpdates`` while a webhook is set (409), and sending to a group
that became a supergroup (400 with ``parameters.migrate_to_chat_id``, after
``fake.migrate_group(old, new)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import mimetypes
import re
import secrets
import time
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

__all__ = ["Call", "FakeTelegram", "TelegramError"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
# Update types Telegram leaves out unless asked for explicitly in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters whose value is a plain string even when it looks like a number, a boolean or JSON.
_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "ip_address",
        "data",
        "callback_query_id",
        "inline_query_id",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "action",
        "language_code",
        "title",
        "address",
        "foursquare_id",
        "foursquare_type",
        "google_place_id",
        "google_place_type",
        "name",
        "description",
        "short_description",
        "first_name",
        "last_name",
        "phone_number",
        "vcard",
        "question",
        "explanation",
        "emoji",
        "payload",
        "currency",
        "start_parameter",
        "provider_token",
        "file_id",
        "photo",
        "document",
        "video",
        "audio",
        "animation",
        "voice",
        "video_note",
        "sticker",
        "thumbnail",
        "custom_title",
        "invite_link",
        "error_message",
    }
)
_INT_RE = re.compile(r"-?\d+")
_FLOAT_RE = re.compile(r"-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TAG_RE = re.compile(r"<[^<>]*>")
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a content and reply markup of the current message"
)
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


class TelegramError(Exception):
    """An error answer of the fake: ``{"ok": false, "error_code": status, ...}``."""

    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        parameters: dict[str, int] = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            answer["parameters"] = parameters
        return answer


@dataclass
class Call:
    """One request received by the fake."""

    method: str
    """The method name, e.g. ``"sendMessage"`` (canonical spelling for the known methods)."""
    params: dict[str, Any]
    """Decoded parameters: JSON values parsed back to objects, numbers and booleans typed,
    ``chat_id`` an ``int`` whenever it is numeric."""
    files: dict[str, tuple[str, bytes]]
    """Uploads: parameter (``"photo"``, ``"document"``...) -> ``(filename, content)``."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    status: int | None = None
    """HTTP status of the answer; ``None`` while unanswered (or hung)."""
    response: dict[str, Any] | None = None
    """The JSON answer sent back (``{"ok": true, "result": ...}`` or the error)."""
    via_webhook: bool = False
    """True when the call was the bot's answer to a webhook POST (a method in the reply body)."""
    content_type: str = ""
    """How the request's body was encoded: ``application/json``, ``multipart/form-data``..."""

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def text(self) -> str | None:
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (the sent Message...), else ``None``."""
        return None if self.response is None else self.response.get("result")

    def summary(self) -> str:
        bits = [f"{key}={value!r}" for key, value in self.params.items()]
        bits += [
            f"{key}=<file {name!r}, {len(data)} bytes>" for key, (name, data) in self.files.items()
        ]
        status = "pending" if self.status is None else str(self.status)
        return f"{self.method}({', '.join(bits)}) -> {status}"


@dataclass
class _Fault:
    method: str  # lower case
    status: int | None  # None: hang
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | None = None


@dataclass
class _Body:
    params: dict[str, Any] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_scalar(key: str, value: str) -> Any:
    """A form/query value as Telegram would read it for the parameter ``key``."""
    if key in _STRING_FIELDS:
        return value
    if value in ("true", "false"):
        return value == "true"
    if _INT_RE.fullmatch(value):
        return int(value)
    if _FLOAT_RE.fullmatch(value):
        return float(value)
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _normalize_chat_id(params: dict[str, Any]) -> None:
    for key in ("chat_id", "from_chat_id"):
        value = params.get(key)
        if isinstance(value, str) and _INT_RE.fullmatch(value):
            params[key] = int(value)


def _parse_multipart(
    body: bytes, boundary: str
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Fields and file parts of a multipart/form-data body."""
    fields: dict[str, str] = {}
    uploads: dict[str, tuple[str, bytes]] = {}
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, content = chunk.partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        _, disposition = parse_content_disposition(headers.get("content-disposition"))
        name = disposition.get("name")
        if name is None:
            continue
        filename = content_disposition_filename(disposition)
        if filename is None:
            fields[name] = content.decode("utf-8")
        else:
            uploads[name] = (filename, content)
    return fields, uploads


def _decode_body(content_type: str, raw: bytes, query: dict[str, str] | None = None) -> _Body:
    """Parameters and uploads of a request (or of a webhook reply), in any encoding."""
    body = _Body()
    strings: dict[str, str] = dict(query or {})
    uploads: dict[str, tuple[str, bytes]] = {}
    mime = content_type.partition(";")[0].strip().lower()
    if mime == "application/json" and raw.strip():
        loaded = json.loads(raw)
        if isinstance(loaded, dict):
            body.params.update({key: _decode_scalar(key, v) for key, v in strings.items()})
            body.params.update(loaded)
            strings = {}
    elif mime == "multipart/form-data":
        header = Message()
        header["Content-Type"] = content_type
        boundary = header.get_param("boundary")
        if isinstance(boundary, str) and boundary:
            fields, uploads = _parse_multipart(raw, boundary)
            strings.update(fields)
    elif mime == "application/x-www-form-urlencoded":
        strings.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    body.params.update({key: _decode_scalar(key, value) for key, value in strings.items()})
    _normalize_chat_id(body.params)
    for key, value in list(body.params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            attached = uploads.pop(value.removeprefix("attach://"), None)
            if attached is not None:
                body.files[key] = attached
    body.files.update(uploads)  # direct uploads, and attachments referenced inside JSON
    return body


# HTML parse mode -----------------------------------------------------------------------------

_HTML_ENTITY_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ATTR_RE = re.compile(r"""([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of an HTML-formatted text, or the error Telegram gives."""

    def offset_of(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    def fail(reason: str) -> TelegramError:
        return TelegramError(400, f"Bad Request: can't parse entities: {reason}")

    text = ""
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, dict[str, Any]]] = []
    position = 0

    def add_text(piece: str) -> None:
        nonlocal text
        if "<" in piece:
            index = position + piece.index("<")
            raise fail(f'Unsupported start tag "" at byte offset {offset_of(index)}')
        text += html.unescape(piece)

    for match in _TAG_RE.finditer(source):
        add_text(source[position : match.start()])
        position = match.end()
        inner = match.group()[1:-1].strip()
        closing = inner.startswith("/")
        inner = inner.removeprefix("/").strip()
        name, _, attributes = inner.partition(" ")
        name = name.lower()
        if closing:
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {offset_of(match.start())}")
            open_name, opened = stack.pop()
            if name != open_name:
                raise fail(
                    f"Unmatched end tag at byte offset {offset_of(match.start())}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            opened["length"] = _utf16_len(text) - opened["offset"]
            if opened["length"] > 0:
                entities.append(opened)
            continue
        if name not in _HTML_ENTITY_TAGS:
            raise fail(f'Unsupported start tag "{name}" at byte offset {offset_of(match.start())}')
        attrs = {
            key.lower(): next((v for v in values if v), "")
            for key, *values in _ATTR_RE.findall(attributes)
        }
        entity: dict[str, Any] = {"type": _HTML_ENTITY_TAGS[name], "offset": _utf16_len(text)}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(f'Unsupported start tag "span" at byte offset {offset_of(match.start())}')
        if name == "a":
            if not attrs.get("href"):
                entity["type"] = "url"
            else:
                entity["url"] = html.unescape(attrs["href"])
        elif name == "blockquote" and "expandable" in attrs:
            entity["type"] = "expandable_blockquote"
        elif name == "tg-emoji":
            entity["custom_emoji_id"] = attrs.get("emoji-id", "")
        elif name == "code" and stack and stack[-1][0] == "pre":
            language = attrs.get("class", "").removeprefix("language-")
            if language:
                stack[-1][1]["language"] = language
        stack.append((name, entity))
    add_text(source[position:])
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return text, entities


# The fake server ---------------------------------------------------------------------------


class FakeTelegram:
    """A fake Telegram Bot API server bound to 127.0.0.1."""

    _TRUE_METHODS = (
        "setMyCommands",
        "deleteMyCommands",
        "sendChatAction",
        "leaveChat",
        "deleteMessage",
        "setChatMenuButton",
        "setMyDescription",
        "setMyShortDescription",
        "setMyName",
        "logOut",
        "close",
    )

    def __init__(
        self, token: str = "123456:TEST-token", username: str = "tadamon_test_bot"
    ) -> None:
        self.token = token
        self.username = username
        self.bot_id = int(token.split(":", 1)[0])
        self.calls: list[Call] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_errors: list[str] = []
        """Delivery problems of webhook pushes (unreachable, non-2xx answers), in order."""
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        """setMyCommands: ``(scope type, language_code or "")`` -> the commands."""
        self.files: dict[str, tuple[str, bytes]] = {}
        """Uploaded files by file_id (served by getFile and ``/file/bot<token>/<path>``)."""
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._queue: list[dict[str, Any]] = []
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._update_ids = itertools.count(10_001)
        self._last_update_id = 10_000
        self._query_ids = itertools.count(4_000_000_001)
        self._file_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._message_ids: dict[int | str, int] = {}
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._webhook_allowed: frozenset[str] | None = None
        self._migrated: dict[int | str, int] = {}
        self._handlers: dict[str, Any] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendlocation": self._send_location,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "getfile": self._get_file,
            "deletemycommands": self._delete_my_commands,
            "deletemessage": self._delete_message,
        }
        self._names = {
            name.lower(): name
            for name in (
                "getMe",
                "getUpdates",
                "setWebhook",
                "deleteWebhook",
                "getWebhookInfo",
                "sendMessage",
                "sendPhoto",
                "sendDocument",
                "sendLocation",
                "editMessageText",
                "editMessageReplyMarkup",
                "answerCallbackQuery",
                "getMyCommands",
                "getFile",
                *self._TRUE_METHODS,
            )
        }

    # lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, once started."""
        if self._base_url is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._base_url

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Tadamon",
            "username": self.username,
        }

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, bound = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{bound}"
        self._client = ClientSession(timeout=ClientTimeout(total=60))

    async def close(self) -> None:
        """Stop the server; hung requests and waiting long polls are released first."""
        self._closed.set()
        async with self._changed:
            self._changed.notify_all()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # recorded calls -------------------------------------------------------------------------

    def _matches(self, call: Call, method: str, chat_id: int | None) -> bool:
        return call.method.lower() == method.lower() and (
            chat_id is None or call.params.get("chat_id") == chat_id
        )

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        """The recorded calls of ``method`` (to ``chat_id`` if given), in order."""
        return [call for call in self.calls if self._matches(call, method, chat_id)]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Texts (and captions) the bot sent, to ``chat_id`` if given, in order."""
        methods = ("sendmessage", "sendphoto", "senddocument", "editmessagetext")
        return [
            call.text
            for call in self.calls
            if call.method.lower() in methods
            and call.text is not None
            and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    def summary(self) -> str:
        if not self.calls:
            return "  (no calls)"
        return "\n".join(f"  {call.summary()}" for call in self.calls)

    async def wait_for(
        self,
        method: str,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - the fake's API
    ) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` (to ``chat_id``) were recorded."""

        def enough() -> bool:
            return len(self.calls_of(method, chat_id)) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
            except TimeoutError:
                target = f" to chat {chat_id}" if chat_id is not None else ""
                got = len(self.calls_of(method, chat_id))
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} {method}{target} "
                    f"call(s), got {got}; recorded calls:\n{self.summary()}"
                ) from None
        return self.calls_of(method, chat_id)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # updates --------------------------------------------------------------------------------

    def next_update_id(self) -> int:
        self._last_update_id = next(self._update_ids)
        return self._last_update_id

    def _take_update_id(self, update_id: int | None) -> int:
        if update_id is None:
            return self.next_update_id()
        if update_id > self._last_update_id:
            self._last_update_id = update_id
            self._update_ids = itertools.count(update_id + 1)
        return update_id

    def _next_message_id(self, chat_id: int | str) -> int:
        self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
        return self._message_ids[chat_id]

    def _chat(self, chat_id: int | str) -> dict[str, Any]:
        known = self._chats.get(chat_id)
        if known is not None:
            return dict(known)
        if isinstance(chat_id, str):
            return {"id": -1_001_000_000_001, "type": "channel", "title": chat_id.lstrip("@")}
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Tadamon fair"}
        return {"id": chat_id, "type": "private", "first_name": "Amina"}

    @staticmethod
    def _user(user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def message(
        self,
        user_id: int,
        text: str | None,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
        language_code: str | None = "fr",
        first_name: str = "Amina",
        update_id: int | None = None,
        **extra_message_fields: Any,
    ) -> dict[str, Any]:
        """A message Update from a user (``text=None`` for e.g. a location message)."""
        if chat_id is None:
            if chat_type == "private":
                chat_id = user_id
            elif chat_type == "group":
                chat_id = -user_id
            else:
                chat_id = -1_000_000_000_000 - user_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Tadamon fair"
        self._chats[chat_id] = chat
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(user_id, first_name, language_code),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0] if text.strip() else text
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
                ]
        message.update(extra_message_fields)
        return {"update_id": self._take_update_id(update_id), "message": message}

    def callback(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int = 1,
        language_code: str | None = "fr",
        update_id: int | None = None,
        chat_id: int | None = None,
        first_name: str = "Amina",
        inline_message_id: str | None = None,
    ) -> dict[str, Any]:
        """A callback_query Update: the user tapped a button of the bot's message
        ``message_id`` (the message the fake sent, when it knows it); with
        ``inline_message_id``, a button of a message sent via the bot in inline mode, which
        comes with no ``message`` (the bot is not in that chat)."""
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        if inline_message_id is not None:
            return {
                "update_id": self._take_update_id(update_id),
                "callback_query": {
                    "id": query_id,
                    "from": self._user(user_id, first_name, language_code),
                    "inline_message_id": inline_message_id,
                    "chat_instance": str(-7919 * user_id - 3),
                    "data": data,
                },
            }
        chat_id = user_id if chat_id is None else chat_id
        message = self._messages.get((chat_id, message_id))
        if message is None:
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": self.bot_user,
                "text": "…",
            }
            self._messages[(chat_id, message_id)] = message
        return {
            "update_id": self._take_update_id(update_id),
            "callback_query": {
                "id": query_id,
                "from": self._user(user_id, first_name, language_code),
                "chat_instance": str(-7919 * abs(chat_id) - 1),
                "message": json.loads(json.dumps(message)),
                "data": data,
            },
        }

    async def push(self, update: dict[str, Any]) -> int:
        """Deliver an Update: queued for getUpdates (returns its update_id), or POSTed to the
        webhook (returns the HTTP status of the bot's answer, 0 if unreachable)."""
        if self.webhook_url is None:
            self._queue.append(update)
            await self._notify()
            return int(update["update_id"])
        return await self._deliver(update)

    async def send_text(self, user_id: int, text: str, **kw: Any) -> int:
        return await self.push(self.message(user_id, text, **kw))

    async def tap(self, user_id: int, data: str, **kw: Any) -> int:
        return await self.push(self.callback(user_id, data, **kw))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not confirmed yet."""
        return list(self._queue)

    async def _deliver(self, update: dict[str, Any]) -> int:
        assert self.webhook_url is not None
        if self._client is None:
            raise RuntimeError("FakeTelegram is not started")
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        try:
            async with self._client.post(
                self.webhook_url, data=json.dumps(update), headers=headers
            ) as response:
                status = response.status
                raw = await response.read()
                content_type = response.headers.get("Content-Type", "")
        except (ClientError, TimeoutError) as error:
            self.webhook_errors.append(f"Connection failed: {type(error).__name__}: {error}")
            return 0
        if not 200 <= status < 300:
            phrase = _phrase(status)
            self.webhook_errors.append(f"Wrong response from the webhook: {status} {phrase}")
            return status
        with contextlib.suppress(ValueError):
            body = _decode_body(content_type, raw)
            method = body.params.pop("method", None)
            if isinstance(method, str) and method:
                call = Call(method, body.params, body.files, time.monotonic(), via_webhook=True)
                await self._record(call)
                await self._answer(call)
        return status

    # faults ---------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id``) answer an error."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            elif status in _DEFAULT_DESCRIPTIONS:
                description = _DEFAULT_DESCRIPTIONS[status]
            else:
                description = _phrase(status) or "Error"
        self._faults.append(
            _Fault(method.lower(), status, description, retry_after, times, chat_id)
        )

    def migrate_group(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group ``old_chat_id`` became the supergroup ``new_chat_id``: from now on every
        send to the old id answers 400 with ``parameters.migrate_to_chat_id``, as Telegram's."""
        self._migrated[old_chat_id] = new_chat_id
        known = self._chats.get(old_chat_id, {})
        self._chats[new_chat_id] = {
            "id": new_chat_id,
            "type": "supergroup",
            "title": known.get("title", "Tadamon fair"),
        }

    def hang(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get no answer until ``close()``."""
        self._faults.append(_Fault(method.lower(), None, "", None, times))

    def heal(self) -> None:
        """Forget the faults still scripted: from now on every call is answered as usual
        (with ``fail(..., times=N)`` for a large N, a fault that lasts until healed)."""
        self._faults.clear()

    def _take_fault(self, call: Call) -> _Fault | None:
        for fault in self._faults:
            if fault.method == call.method.lower() and (
                fault.chat_id is None or call.params.get("chat_id") == fault.chat_id
            ):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # HTTP -----------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        await self._notify()

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        name = request.match_info["method"]
        method = self._names.get(name.lower(), name)
        raw = await request.read()
        try:
            body = _decode_body(request.headers.get("Content-Type", ""), raw, dict(request.query))
        except ValueError:  # also UnicodeDecodeError
            call = Call(method, {}, {}, at)
            await self._record(call)
            return self._respond(call, TelegramError(400, "Bad Request: invalid request body"))
        call = Call(method, body.params, body.files, at, content_type=request.content_type)
        await self._record(call)
        if request.match_info["token"] != self.token:
            return self._respond(call, TelegramError(401, "Unauthorized"))
        return await self._answer(call)

    async def _answer(self, call: Call) -> web.Response:
        fault = self._take_fault(call)
        if fault is not None:
            if fault.status is None:
                await self._closed.wait()
                return self._respond(call, TelegramError(502, "Bad Gateway"))
            return self._respond(
                call, TelegramError(fault.status, fault.description, fault.retry_after)
            )
        handler = self._handlers.get(call.method.lower())
        if handler is None and call.method in self._TRUE_METHODS:
            handler = self._true
        if handler is None:
            return self._respond(call, TelegramError(404, "Not Found: method not found"))
        try:
            result = await handler(call.params, call.files)
        except TelegramError as error:
            return self._respond(call, error)
        return self._respond(call, result)

    def _respond(self, call: Call, outcome: Any) -> web.Response:
        if isinstance(outcome, TelegramError):
            status, answer = outcome.status, outcome.body()
        else:
            status, answer = 200, {"ok": True, "result": outcome}
        call.status, call.response = status, answer
        return web.json_response(answer, status=status)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for file_id, (_, content) in self.files.items():
            if self._file_path(file_id) == path:
                return web.Response(body=content)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    # methods --------------------------------------------------------------------------------

    async def _true(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _allowed(self, update: dict[str, Any], allowed: frozenset[str] | None) -> bool:
        kinds = set(update) - {"update_id"}
        if allowed is None:
            return not kinds & _OPT_IN_UPDATES
        return bool(kinds & allowed)

    async def _get_updates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.webhook_url is not None:
            raise TelegramError(409, _WEBHOOK_CONFLICT)
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        self._poll_generation += 1
        generation = self._poll_generation
        deadline = time.monotonic() + timeout
        async with self._changed:
            self._changed.notify_all()  # an older long poll ends with 409
            while True:
                if self._closed.is_set():
                    return []
                if self._poll_generation != generation:
                    raise TelegramError(409, _DEFAULT_DESCRIPTIONS[409])
                if self.webhook_url is not None:
                    raise TelegramError(409, _WEBHOOK_CONFLICT)
                if offset > 0:
                    self._queue = [u for u in self._queue if u["update_id"] >= offset]
                elif offset < 0:
                    self._queue = self._queue[offset:]
                self._queue = [u for u in self._queue if self._allowed(u, self._allowed_updates)]
                if self._queue:
                    return [json.loads(json.dumps(u)) for u in self._queue[:limit]]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def _set_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        url = params.get("url")
        if not url:
            return await self._delete_webhook(params, files)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TelegramError(400, "Bad Request: bad webhook: Failed to resolve host")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise TelegramError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._queue.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._webhook_allowed = frozenset(allowed) if allowed else None
        self.webhook_url = url
        self.webhook_secret = None if secret is None else str(secret)
        self.webhook_errors.clear()
        await self._notify()
        return True

    async def _delete_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        self.webhook_url = None
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _get_webhook_info(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook_url is not None:
            info["max_connections"] = 40
            if self._webhook_allowed is not None:
                info["allowed_updates"] = sorted(self._webhook_allowed)
            if self.webhook_errors:
                info["last_error_date"] = int(time.time())
                info["last_error_message"] = self.webhook_errors[-1]
        return info

    # sending

    def _target_chat(self, params: dict[str, Any]) -> int | str:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise TelegramError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int | str):
            raise TelegramError(400, "Bad Request: chat not found")
        if chat_id in self._migrated:
            raise TelegramError(400, _MIGRATED, migrate_to_chat_id=self._migrated[chat_id])
        return chat_id

    @staticmethod
    def _formatted(params: dict[str, Any], key: str, limit: int) -> tuple[str, list[Any]]:
        value = params.get(key)
        source = "" if value is None else str(value)
        entities = params.get("entities" if key == "text" else "caption_entities")
        parse_mode = str(params.get("parse_mode") or "").lower()
        if parse_mode == "html":
            plain, parsed = _parse_html(source)
        else:
            plain, parsed = source, list(entities) if isinstance(entities, list) else []
        if len(plain) > limit:
            what = "message" if key == "text" else "message caption"
            raise TelegramError(400, f"Bad Request: {what} is too long")
        return plain, parsed

    @staticmethod
    def _inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
        """The reply_markup to echo in the Message (only inline keyboards are), validated."""
        markup = params.get("reply_markup")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise TelegramError(400, "Bad Request: BUTTON_DATA_INVALID")
                if len(button) <= 1:
                    raise TelegramError(
                        400,
                        "Bad Request: can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard",
                    )
        return markup

    def _new_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        markup = self._inline_markup(params)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **content,
        }
        thread = params.get("message_thread_id")
        if isinstance(thread, int) and thread > 0:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        if markup is not None:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        return json.loads(json.dumps(message))  # type: ignore[no-any-return]

    def _with_caption(self, params: dict[str, Any]) -> dict[str, Any]:
        caption, entities = self._formatted(params, "caption", CAPTION_LIMIT)
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        return content

    async def _send_message(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        self._target_chat(params)
        text, entities = self._formatted(params, "text", TEXT_LIMIT)
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._new_message(params, **content)

    def _file_path(self, file_id: str) -> str:
        name = self.files[file_id][0] if file_id in self.files else "file"
        return f"documents/{file_id}_{name}"

    def _file(
        self, field_name: str, params: dict[str, Any], files: dict[str, Any]
    ) -> tuple[str, str, str, int]:
        """(file_id, file_unique_id, file name, size) of an uploaded or referenced file."""
        upload = files.get(field_name)
        if upload is not None:
            filename, content = upload
            number = next(self._file_ids)
            file_id = f"BQACAgQAAx0Fake{number:06d}{secrets.token_urlsafe(8)}"
            self.files[file_id] = (filename, content)
            return file_id, f"AgADFake{number:06d}", filename, len(content)
        reference = params.get(field_name)
        if not isinstance(reference, str) or not reference:
            raise TelegramError(400, f"Bad Request: there is no {field_name} in the request")
        known = self.files.get(reference)
        if known is not None:
            return reference, f"AgAD{reference[-8:]}", known[0], len(known[1])
        name = reference.rsplit("/", 1)[-1] or field_name
        return reference, f"AgAD{secrets.token_hex(4)}", name, 0

    @staticmethod
    def _image_size(content: bytes) -> tuple[int, int]:
        if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
            return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
        return 800, 600

    async def _send_photo(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        self._target_chat(params)
        file_id, unique_id, _, size = self._file("photo", params, files)
        width, height = 800, 600
        if "photo" in files:
            width, height = self._image_size(files["photo"][1])
        scale = max(width, height) / 90 or 1
        sizes = [
            {
                "file_id": f"{file_id}-s",
                "file_unique_id": f"{unique_id}-s",
                "width": max(int(width / scale), 1),
                "height": max(int(height / scale), 1),
                "file_size": max(size // 20, 1) if size else 0,
            },
            {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "width": width,
                "height": height,
                "file_size": size,
            },
        ]
        for photo in sizes:
            if not photo["file_size"]:
                del photo["file_size"]
        return self._new_message(params, photo=sizes, **self._with_caption(params))

    async def _send_document(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        self._target_chat(params)
        file_id, unique_id, filename, size = self._file("document", params, files)
        document: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_name": filename,
            "mime_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
        }
        if size:
            document["file_size"] = size
        return self._new_message(params, document=document, **self._with_caption(params))

    async def _send_location(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        self._target_chat(params)
        try:
            latitude = float(params["latitude"])
            longitude = float(params["longitude"])
        except (KeyError, TypeError, ValueError):
            raise TelegramError(400, "Bad Request: wrong latitude or longitude") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise TelegramError(400, "Bad Request: wrong latitude or longitude")
        return self._new_message(params, location={"latitude": latitude, "longitude": longitude})

    # editing

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise TelegramError(400, "Bad Request: message identifier is not specified")
        key = (chat_id, message_id)
        if key not in self._messages:  # a message the fake never saw: take it as it comes
            self._messages[key] = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(chat_id),
                "date": int(time.time()),
                "text": "…",
            }
        return self._messages[key]

    async def _edit_message_text(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        text, entities = self._formatted(params, "text", TEXT_LIMIT)
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        markup = self._inline_markup(params)
        if params.get("inline_message_id"):
            return True
        message = self._stored(params)
        if "text" not in message:
            raise TelegramError(400, "Bad Request: there is no text in the message to edit")
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise TelegramError(400, _NOT_MODIFIED)
        message["text"] = text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        self._set_markup(message, markup)
        return json.loads(json.dumps(message))

    async def _edit_message_reply_markup(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> Any:
        markup = self._inline_markup(params)
        if params.get("inline_message_id"):
            return True
        message = self._stored(params)
        if message.get("reply_markup") == markup:
            raise TelegramError(400, _NOT_MODIFIED)
        self._set_markup(message, markup)
        return json.loads(json.dumps(message))

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
        message["edit_date"] = int(time.time())
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup

    async def _answer_callback_query(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise TelegramError(400, _QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        if len(str(params.get("text") or "")) > 200:
            raise TelegramError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    # bot settings and files

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope")
        kind = scope.get("type", "default") if isinstance(scope, dict) else "default"
        return str(kind), str(params.get("language_code") or "")

    async def _set_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise TelegramError(400, 'Bad Request: parameter "commands" is required')
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise TelegramError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _delete_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _delete_message(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        if isinstance(message_id, int):
            self._messages.pop((chat_id, message_id), None)
        return True

    async def _get_my_commands(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(params), [])

    async def _get_file(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            raise TelegramError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-8:]}",
            "file_size": len(self.files[file_id][1]),
            "file_path": self._file_path(file_id),
        }

    def add_file(self, content: bytes, filename: str = "file.bin") -> str:
        """Store a file as if a user had sent it; returns its file_id (for getFile)."""
        number = next(self._file_ids)
        file_id = f"BQACAgQAAx0Fake{number:06d}{secrets.token_urlsafe(8)}"
        self.files[file_id] = (filename, content)
        return file_id
