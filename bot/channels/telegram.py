"""The Telegram channel: aiogram's Bot client and types as transport, nothing more.

Updates arrive by long polling or by webhook, become `Inbound`s for the engine, and the
rendered replies go back as HTML messages with inline keyboards, photos, documents and
locations. Updates of one person are handled in order; different people concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hmac
import html
import json
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
    User,
)
from aiohttp import ClientError, ClientTimeout, web
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.channels import Delivery
from bot.channels.intake import InboxReader
from bot.channels.ordering import PerPersonQueue
from bot.channels.pause import SendPause
from bot.channels.quota import ReplyQuota
from bot.channels.uploads import UploadCache
from bot.engine import Engine
from bot.messages import Inbound, Kind, Rendered, RenderedChoice, RenderedMedia
from bot.metrics import Metrics
from bot.settings import Settings
from handlers.router import COMMAND_DESCRIPTIONS
from storage.database import DATABASE_ERRORS
from storage.inbox import Inbox
from storage.repositories import ContactRepository
from storage.state import State

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
POLL_TIMEOUT = 25
MAX_IN_FLIGHT = 512
SEND_ATTEMPTS = 5
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member",
                   "channel_post"]
MEDIA_FIELDS = ("sticker", "voice", "audio", "photo", "video", "video_note", "animation",
                "document", "contact", "poll", "dice", "venue")

T = TypeVar("T")
JSON_HEADERS = {"Content-Type": "application/json"}

# aiogram parses every answer as Response[T]; pydantic caches a parametrized model only while
# something holds it, so without these references it rebuilds the model class on most calls,
# which cost more CPU than everything else a reply does.
_RESPONSE_MODELS: list[object] = [Response[Message], Response[bool], Response[User],
                                  Response[list[Update]]]


class Unreachable(Exception):
    """The person blocked the bot or deleted their account."""


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut a long text into pieces Telegram accepts, at line breaks or spaces, never in a word.

    Pieces are cut from the plain text and escaped afterwards, so an HTML entity is never cut.
    """
    pieces: list[str] = []
    rest = text
    while telegram_length(rest) > limit:
        window = rest[:limit]
        while telegram_length(window) > limit:
            window = window[:-1]
        cut = max(window.rfind("\n"), window.rfind(" "))
        if cut <= 0:
            cut = len(window)  # one word longer than a whole message: cut it, nothing else fits
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest.strip() or not pieces:
        pieces.append(rest)
    return [piece for piece in pieces if piece] or [""]


@functools.lru_cache(maxsize=2048)
def keyboard(choices: tuple[RenderedChoice, ...]) -> InlineKeyboardMarkup | None:
    """Buttons two to a row when their labels are short, else one to a row (the same menus
    recur all day, so they are built once)."""
    rows: list[list[InlineKeyboardButton]] = []
    for choice in choices:
        if len(choice.id.encode()) > CALLBACK_LIMIT:
            log.error("button id %r is over Telegram's 64 bytes; left out", choice.id)
            continue
        button = InlineKeyboardButton(text=choice.label[:64], callback_data=choice.id)
        short = len(choice.label) <= 16
        if short and rows and len(rows[-1]) == 1 and len(rows[-1][0].text) <= 16:
            rows[-1].append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session, sending a request without files as a JSON body (the Bot API
    takes JSON as well as forms) instead of a urlencoded form: building and encoding the form
    was about a fifth of the cost of each message a worker sends. Requests with files (maps,
    .ics) go as aiogram sends them, multipart."""

    async def make_request(self, bot: Bot, method: TelegramMethod[T],
                           timeout: int | None = None) -> T:  # noqa: ASYNC109 (aiogram's signature)
        files: dict[str, InputFile] = {}
        payload = {key: prepared for key, value in method.model_dump(warnings=False).items()
                   if (prepared := self.prepare_value(value, bot=bot, files=files,
                                                      _dumps_json=False)) is not None}
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url, data=self.json_dumps(payload), headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                raw = await response.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method,
                                       message=f"{type(exc).__name__}: {exc}") from exc
        checked = self.check_response(bot=bot, method=method, status_code=response.status,
                                      content=raw)
        return cast(T, checked.result)


class TelegramChannel:
    """Polling or webhook in, Bot API calls out; the conversation is the engine's."""

    name = CHANNEL

    def __init__(self, settings: Settings, engine: Engine, state: State,
                 contacts: ContactRepository, metrics: Metrics) -> None:
        assert settings.telegram_token is not None
        self.settings = settings
        self.engine = engine
        self.state = state
        self.contacts = contacts
        self.metrics = metrics
        self.secret = settings.telegram_webhook_secret.get_secret_value()
        self.bot = Bot(
            settings.telegram_token.get_secret_value(),
            session=JsonSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
            default=DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True),
        )
        self.username = ""
        self.uploads = UploadCache()
        self.queue: PerPersonQueue[Update] = PerPersonQueue(self.process, MAX_IN_FLIGHT)
        # Webhook updates are kept in a Redis stream before the 200, then read from it.
        self.inbox = Inbox(state.redis, CHANNEL)
        self.reader = InboxReader(self.inbox, self.queue, self._updates)
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.pause = SendPause(state, CHANNEL)
        self.quota = ReplyQuota(state.redis, CHANNEL, settings.telegram_rate)
        self._unauthorized_logged = False

    # ---- lifecycle -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/telegram/webhook", self.webhook)]

    async def start(self) -> None:
        """Connect in the background: a Telegram outage or a bad token must not stop the
        other channels from serving."""
        self._poller = asyncio.create_task(self._connect(), name="telegram")

    async def _connect(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self._introduce()
                return
            except asyncio.CancelledError:
                raise
            except TelegramUnauthorizedError:
                log.error("telegram: off, the Bot API rejects TADAMON_TELEGRAM_TOKEN (401)")
                return
            except Exception:
                log.warning("telegram: cannot reach the Bot API; retrying in %.0f s", delay,
                            exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _introduce(self) -> None:
        """Learn the bot's name, publish its commands, then poll or register the webhook."""
        me = await self._call(self.bot.get_me)
        self.username = me.username or ""
        await self._publish_commands()
        if self.settings.telegram_webhook_url:
            self.reader.start("telegram-inbox")
            await self._call(partial(self.bot.set_webhook, self.settings.telegram_webhook_url,
                                     secret_token=self.secret,
                                     allowed_updates=ALLOWED_UPDATES))
            log.info("telegram: on as @%s, webhook %s", self.username,
                     self.settings.telegram_webhook_url)
        else:
            await self._call(partial(self.bot.delete_webhook, drop_pending_updates=False))
            log.info("telegram: on as @%s, long polling (set TADAMON_TELEGRAM_WEBHOOK_URL "
                     "for a webhook)", self.username)
            await self._poll()

    async def stop(self) -> None:
        """Stop polling, let the updates in hand finish, close the HTTP session."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.reader.stop(20)
        await self.bot.session.close()

    async def idle(self) -> None:
        """Wait until every update received so far has been answered."""
        if self.settings.telegram_webhook_url:
            await self.reader.idle()
        await self.queue.idle()

    async def _publish_commands(self) -> None:
        renderer = self.engine.renderer
        for language in ("fr", "ar", None):
            commands = [
                BotCommand(command=name,
                           description=renderer.text(description, language or "fr")[:256])
                for name, description in COMMAND_DESCRIPTIONS.items()
            ]
            await self._call(partial(self.bot.set_my_commands, commands,
                                     language_code=language))

    # ---- inbound ---------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """`POST /telegram/webhook`: 401 unless the secret header matches; 200 at once."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("telegram webhook call with a wrong secret from %s", request.remote)
            return web.json_response({"error": "wrong secret token"}, status=401)
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
            log.warning("malformed telegram update refused")
            return web.json_response({"error": "malformed update"}, status=400)
        if not await self.reader.keep(raw):
            return web.json_response({"error": "try again"}, status=503)
        return web.Response(status=200)

    def _updates(self, body: str) -> list[tuple[str, Update]]:
        """The update kept in the inbox, for its person's queue."""
        try:
            update = Update.model_validate(json.loads(body), context={"bot": self.bot})
        except (ValueError, ValidationError):
            log.warning("malformed telegram update dropped from the inbox")
            return []
        person = self._person(update)
        return [(person, update)] if person is not None else []

    async def _poll(self) -> None:
        """Long polling that never dies: every failure waits and tries again."""
        offset: int | None = None
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES,
                    request_timeout=POLL_TIMEOUT + 10)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except TelegramRetryAfter as exc:
                await self.pause.pause(exc.retry_after)
                continue
            except TelegramUnauthorizedError:
                if not self._unauthorized_logged:
                    log.error("telegram rejects TADAMON_TELEGRAM_TOKEN (401): check the token")
                    self._unauthorized_logged = True
                await asyncio.sleep(30)
                continue
            except TelegramConflictError:
                log.error("telegram: another process polls this bot, or a webhook is set")
                await asyncio.sleep(5)
                continue
            except Exception:  # network, server errors, anything: the loop must go on
                log.warning("telegram polling failed; retrying in %.0f s", backoff,
                            exc_info=True)
                await asyncio.sleep(backoff + random.random())
                backoff = min(backoff * 2, 30.0)
                continue
            for update in updates:
                offset = update.update_id + 1
                await self.feed(update)

    async def feed(self, update: Update) -> None:
        """Queue an update behind the same person's earlier ones."""
        key = self._person(update)
        if key is not None:
            await self.queue.put(key, update)

    @staticmethod
    def _person(update: Update) -> str | None:
        if update.message is not None:
            return str(update.message.chat.id)
        if update.callback_query is not None:
            return str(update.callback_query.from_user.id)
        if update.my_chat_member is not None:
            return str(update.my_chat_member.chat.id)
        if update.channel_post is not None:
            return str(update.channel_post.chat.id)
        return None

    async def process(self, update: Update) -> None:
        """One update: to an Inbound, through the engine, replies sent back."""
        if update.callback_query is not None:
            await self._callback(update, update.callback_query)
            return
        if update.my_chat_member is not None:
            member = update.my_chat_member
            if member.chat.type == "private":
                blocked = member.new_chat_member.status == "kicked"
                await self._set_unreachable(str(member.chat.id), blocked)
            return
        message = update.message or update.channel_post
        if message is None:
            return  # edited messages and other update kinds need no answer
        if message.chat.type != "private":
            await self._group(update, message)
            return
        inbound = self._inbound(update, message)
        if inbound is not None:
            await self._answer(message.chat.id, inbound)

    def _inbound(self, update: Update, message: Message) -> Inbound | None:
        user = message.from_user
        if user is None:
            return None
        common: dict[str, Any] = {
            "channel": CHANNEL,
            "user_id": str(user.id),
            "message_id": f"u{update.update_id}",
            "language_hint": user.language_code,
        }
        if message.text is not None:
            text = message.text
            command, _sep, payload = text.partition(" ")
            if command.split("@", 1)[0].lower() == "/start":
                return Inbound(kind=Kind.START, text=text, payload=payload.strip(), **common)
            return Inbound(kind=Kind.TEXT, text=text, **common)
        if message.location is not None:
            return Inbound(kind=Kind.LOCATION, latitude=message.location.latitude,
                           longitude=message.location.longitude, **common)
        if any(getattr(message, name, None) for name in MEDIA_FIELDS):
            return Inbound(kind=Kind.MEDIA, **common)
        return Inbound(kind=Kind.UNSUPPORTED, **common)

    async def _callback(self, update: Update, query: CallbackQuery) -> None:
        # Always answer the tap first, so the button stops spinning whatever happens next.
        with contextlib.suppress(TelegramAPIError, ClientError, TimeoutError):
            await self._send_call(partial(self.bot.answer_callback_query, query.id))
        if not query.data:
            return
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        inbound = Inbound(channel=CHANNEL, user_id=str(query.from_user.id), kind=Kind.CHOICE,
                          choice=query.data, message_id=f"u{update.update_id}",
                          language_hint=query.from_user.language_code)
        await self._answer(chat_id, inbound)

    async def _group(self, update: Update, message: Message) -> None:
        """In a group or channel: say once where the bot works, then stay quiet."""
        try:
            first = await self.state.first_group_notice(CHANNEL, str(message.chat.id))
        except RedisError:
            log.warning("redis unavailable: group notice skipped", exc_info=True)
            return
        if not first:
            return
        user = message.from_user
        inbound = Inbound(channel=CHANNEL, user_id=f"chat{message.chat.id}", kind=Kind.GROUP,
                          payload=f"https://t.me/{self.username}" if self.username else "",
                          message_id=f"u{update.update_id}",
                          language_hint=user.language_code if user else None)
        await self._answer(message.chat.id, inbound)

    async def _answer(self, chat_id: int, inbound: Inbound) -> None:
        rendered = await self.engine.handle(inbound)
        try:
            await self.quota.sent(len(await self.deliver(chat_id, rendered)))
        except Unreachable:
            await self._set_unreachable(str(chat_id), True)

    # ---- outbound --------------------------------------------------------------------------

    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery:
        """A reminder, offer or broadcast (Telegram has no window: it goes as it is)."""
        try:
            sent = await self.deliver(int(to), [rendered])
        except Unreachable as exc:
            await self._set_unreachable(to, True)
            return Delivery("skipped", reason=f"unreachable: {exc}")
        if not sent:
            return Delivery("failed", reason="telegram refused or could not be reached")
        return Delivery("sent", sent[-1])

    async def edit_text(self, to: str, message_id: str, rendered: Rendered) -> bool:
        """Replace the text of a message the bot sent (a broadcast's progress)."""
        edited = await self._send(partial(self.bot.edit_message_text,
                                          html.escape(split_text(rendered.text)[0], quote=False),
                                          chat_id=int(to), message_id=int(message_id)))
        return edited is not None

    async def deliver(self, chat_id: int, replies: list[Rendered]) -> list[str]:
        """Send rendered replies: media first, then the text, buttons on its last piece;
        returns the ids of the messages Telegram accepted."""
        sent: list[str] = []
        for item in replies:
            for media in item.media:
                caption = html.escape(split_text(media.caption, CAPTION_LIMIT)[0]) or None
                if media.kind == "image":
                    await self._send_photo(chat_id, media, caption)
                elif media.kind == "document":
                    document = BufferedInputFile(media.data, media.filename or "file")
                    await self._send(partial(self.bot.send_document, chat_id, document,
                                             caption=caption))
                elif media.latitude is not None and media.longitude is not None:
                    await self._send(partial(self.bot.send_location, chat_id, media.latitude,
                                             media.longitude))
            markup = keyboard(item.choices)
            pieces = split_text(item.text) if item.text.strip() else []
            if not pieces and markup is not None:
                pieces = ["·"]
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                message = await self._send(partial(self.bot.send_message, chat_id,
                                                   html.escape(piece, quote=False),
                                                   reply_markup=markup if last else None))
                if message is not None:
                    sent.append(str(message.message_id))
        return sent

    async def _send_photo(self, chat_id: int, media: RenderedMedia, caption: str | None
                          ) -> None:
        """A picture goes by the file_id Telegram gave it the first time; uploaded again
        when Telegram no longer takes that id."""
        known = self.uploads.get(media.data)
        if known is not None:
            if await self._send(partial(self.bot.send_photo, chat_id, known,
                                        caption=caption)) is not None:
                return
            self.uploads.forget(media.data)
        photo = BufferedInputFile(media.data, media.filename or "picture.png")
        message = await self._send(partial(self.bot.send_photo, chat_id, photo,
                                           caption=caption))
        if message is not None and message.photo:
            self.uploads.put(media.data, message.photo[-1].file_id)

    async def _send(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """A send with the platform's rules: 429 pauses the whole bot, 403 means unreachable,
        network and server errors are retried with backoff; a bad request is logged."""
        try:
            return await self._send_call(call)
        except TelegramForbiddenError as exc:
            raise Unreachable(str(exc)) from None
        except TelegramBadRequest:
            self.metrics.send_errors.labels(CHANNEL).inc()
            log.exception("telegram refused a message")
            return None
        except (TelegramAPIError, ClientError, TimeoutError, OSError):
            self.metrics.send_errors.labels(CHANNEL).inc()
            log.exception("telegram send failed after %d attempts", SEND_ATTEMPTS)
            return None

    async def _send_call(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            await self.pause.wait()
            try:
                return await call()
            except TelegramRetryAfter as exc:
                await self.pause.pause(exc.retry_after)
            except (TelegramNetworkError, TelegramServerError, ClientError, TimeoutError):
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay *= 2
        return await call()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Start-up calls: same retries as sends."""
        return await self._send_call(call)

    async def _set_unreachable(self, user_id: str, unreachable: bool) -> None:
        try:
            await self.contacts.set_unreachable(CHANNEL, user_id, unreachable)
        except DATABASE_ERRORS:
            log.exception("cannot record that telegram:%s is unreachable", user_id)
        if unreachable:
            # Their conversation's copy of the contact must not outlive this: when they write
            # again, the database is read and they are reachable again.
            with contextlib.suppress(RedisError):
                await self.state.clear_session(CHANNEL, user_id)
        if unreachable:
            log.info("telegram:%s blocked the bot; marked unreachable", user_id)
