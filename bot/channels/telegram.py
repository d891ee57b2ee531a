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
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast

# isort: off
import bot.channels.aiogram_types  # noqa: F401  (first: aiogram's types built when first used)

# isort: on
from aiogram import Bot
from aiogram.client.default import Default, DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
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
    ChatMemberUpdated,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
    User,
)
from aiogram.utils.token import TokenValidationError
from aiohttp import ClientError, ClientTimeout, web
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from redis.exceptions import RedisError

from bot.channels import Delivery
from bot.channels.base import PlatformChannel
from bot.channels.body import BadBody, error_response, load_json, read_body
from bot.channels.ordering import HandleLater
from bot.channels.retry import GIVE_UP, RETRY, RetryPolicy, Verdict, pause_all
from bot.engine import Engine
from bot.metrics import Metrics
from bot.settings import Settings
from handlers.menu import private_chat_only
from handlers.messages import Inbound, Kind, Rendered, RenderedChoice, RenderedMedia
from handlers.router import COMMAND_DESCRIPTIONS
from storage.database import DATABASE_ERRORS
from storage.privacy import person
from storage.repositories import ContactRepository
from storage.state import State

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
POLL_TIMEOUT = 25
SEND_ATTEMPTS = 5
# What the bot acts on. Telegram keeps the rest (edits, channel posts, reactions...) to itself,
# and any that still arrive are ignored.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# An update is a few kilobytes; the largest (a long message quoting another) stay far below this.
WEBHOOK_BODY_LIMIT = 1024 * 1024
MEDIA_FIELDS = ("sticker", "voice", "audio", "photo", "video", "video_note", "animation",
                "document", "contact", "poll", "dice", "venue")

T = TypeVar("T")
JSON_HEADERS = {"Content-Type": "application/json"}
# Failures worth trying again: the next attempt may well go through.
RETRIED = (TelegramNetworkError, TelegramServerError, ClientError, TimeoutError)



def verdict(exc: Exception) -> Verdict:
    """What a failed Bot API call asks for: 429 pauses the whole bot for its retry_after,
    network and server errors are tried again, anything else Telegram refused is final."""
    if isinstance(exc, TelegramRetryAfter):
        return pause_all(exc.retry_after)
    if isinstance(exc, RETRIED):
        return RETRY
    return GIVE_UP


SEND_RETRY = RetryPolicy(attempts=SEND_ATTEMPTS, base_delay=0.5, classify=verdict)

# aiogram parses every answer as Response[T]; pydantic caches a parametrized model only while
# something holds it, so without these references it rebuilds the model class on most calls,
# which cost more CPU than everything else a reply does.
_RESPONSE_MODELS: list[object] = [Response[Message], Response[bool], Response[User],
                                  Response[list[dict[str, Any]]]]


class Unreachable(Exception):
    """The person blocked the bot or deleted their account."""


class SendLater(Exception):
    """Telegram was still unavailable (server or network errors, 429) after the retries."""


class ChatMoved(Exception):
    """The group became a supergroup, with a new chat id (Telegram's `migrate_to_chat_id`)."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(f"the group is now the supergroup {chat_id}")
        self.chat_id = chat_id


def _chat(chat_id: int | str | None) -> str:
    """How a log line names a chat: a private chat's id is its person's Telegram id."""
    return person(CHANNEL, str(chat_id))


def told(exc: BaseException) -> str:
    """An error's name and text, with the chat it names (aiogram writes the chat id into the
    text of some: flood control, a group that moved) as its reference instead."""
    said = f"{type(exc).__name__}: {exc}"
    chat_id = getattr(getattr(exc, "method", None), "chat_id", None)
    if chat_id is not None and str(chat_id):
        said = said.replace(str(chat_id), _chat(chat_id))
    return said


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates, answered as plain JSON so that each update is read on its own: one that
    aiogram cannot read (a newer Bot API) is logged and skipped, instead of failing every
    poll after it."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def topic(message: Message | InaccessibleMessage | None) -> int | None:
    """The forum topic a message was written in, for the answer to go there too."""
    if isinstance(message, Message) and message.is_topic_message:
        return message.message_thread_id
    return None


def update_kind(update: Update) -> str:
    """What an update carries ("edited_message", "message_reaction"...), for the log."""
    fields = set(update.model_fields_set) | set(update.model_extra or {})
    return ",".join(sorted(fields - {"update_id"})) or "nothing"


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


def html_pieces(text: str) -> list[str]:
    """The messages Telegram is sent for a text (parse mode HTML): cut, then escaped."""
    return [html.escape(piece, quote=False) for piece in split_text(text)]


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


async def bot_username(settings: Settings) -> str | None:
    """The bot's username (what `https://t.me/<bot>` names), asked of the Bot API with getMe;
    None when it does not answer or the token is not a bot's."""
    assert settings.telegram_token is not None
    try:
        bot = Bot(settings.telegram_token.get_secret_value(),
                  session=JsonSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)))
    except TokenValidationError:
        return None
    try:
        me = await bot.get_me(request_timeout=10)  # seconds: someone waits at a terminal
    except (AiogramError, ClientError, TimeoutError, ValidationError):
        return None
    finally:
        await bot.session.close()
    return me.username


def json_payload(bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any] | None:
    """The method's parameters as a JSON object, the bot's defaults (parse mode, link
    previews) filled in; None when it carries a file, or anything else JSON cannot say as
    aiogram's form would (dates as timestamps): then aiogram's own request is sent."""
    defaults: dict[str, Any] = {}
    for name, value in method:
        if isinstance(value, Default):
            defaults[name] = getattr(bot.default, value.name, None)
        elif isinstance(value, InputFile | dt.datetime | dt.timedelta):
            return None
    try:
        payload = method.model_copy(update=defaults).model_dump(
            mode="json", exclude_none=True, by_alias=True, warnings=False)
    except PydanticSerializationError:  # a file or a default deeper in (media groups...)
        return None
    return payload


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session, sending a request without files as a JSON body (the Bot API
    takes JSON as well as forms) instead of a urlencoded form: building and encoding the form
    was about a fifth of the cost of each message a worker sends. Requests with files (maps,
    .ics) go as aiogram sends them, multipart. Only aiogram's public surface is used: the
    method's pydantic model, `create_session`, `api.api_url` and `check_response`."""

    async def make_request(self, bot: Bot, method: TelegramMethod[T],
                           timeout: int | None = None) -> T:  # noqa: ASYNC109 (aiogram's signature)
        payload = json_payload(bot, method)
        if payload is None:
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


class TelegramChannel(PlatformChannel[Update]):
    """Polling or webhook in, Bot API calls out; the conversation is the engine's."""

    name = CHANNEL
    retry = SEND_RETRY

    def __init__(self, settings: Settings, engine: Engine, state: State,
                 contacts: ContactRepository, metrics: Metrics) -> None:
        assert settings.telegram_token is not None
        super().__init__(settings, engine, state, metrics, settings.telegram_rate)
        self.contacts = contacts
        self.secret = settings.telegram_webhook_secret.get_secret_value()
        self.bot = Bot(
            settings.telegram_token.get_secret_value(),
            session=JsonSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
            default=DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True),
        )
        self.username = ""
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
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
        me = await self.send(self.bot.get_me)
        self.username = me.username or ""
        # What "Continue on Telegram" links name (the web chat offers them once it is known).
        self.engine.renderer.apps["telegram"] = self.username
        await self._publish_commands()
        if self.settings.telegram_webhook_url:
            self.start_reading()
            await self.send(partial(self.bot.set_webhook, self.settings.telegram_webhook_url,
                                    secret_token=self.secret, allowed_updates=ALLOWED_UPDATES))
            log.info("telegram: on as @%s, webhook %s", self.username,
                     self.settings.telegram_webhook_url)
        else:
            await self.send(partial(self.bot.delete_webhook, drop_pending_updates=False))
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
        await super().stop()

    async def close(self) -> None:
        await self.bot.session.close()

    def reads_inbox(self) -> bool:
        """Webhook updates come through the inbox; polled ones straight to the queue."""
        return bool(self.settings.telegram_webhook_url)

    async def _publish_commands(self) -> None:
        renderer = self.engine.renderer
        for language in ("fr", "ar", "en", None):
            commands = [
                BotCommand(command=name,
                           description=renderer.text(description, language or "fr")[:256])
                for name, description in COMMAND_DESCRIPTIONS.items()
            ]
            await self.send(partial(self.bot.set_my_commands, commands,
                                    language_code=language))

    # ---- inbound ---------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """`POST /telegram/webhook`: 401 unless the secret header matches (before anything is
        read); 400 or 413 JSON for a body that is not an update; 200 once it is kept."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   self.secret.encode()):
            log.warning("telegram webhook call with a wrong secret from %s", request.remote)
            return error_response(401, "wrong secret token")
        try:
            raw = await read_body(request, WEBHOOK_BODY_LIMIT)
            body = load_json(raw)
        except BadBody as exc:
            log.warning("telegram webhook body refused (%d): %s", exc.status, exc.message)
            return error_response(exc.status, exc.message)
        update_id = body.get("update_id") if isinstance(body, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("telegram webhook body without an update id refused")
            return error_response(400, "malformed update")
        return await self.accept(raw)

    def events(self, body: str) -> list[tuple[str, Update]]:
        """The update kept in the inbox, for its person's queue."""
        try:
            raw = load_json(body)
        except BadBody:
            log.warning("telegram inbox entry is not JSON; dropped")
            return []
        update = self._read(raw)
        if update is None:
            return []
        who = self._person(update)
        return [(who, update)] if who is not None else []

    def marks(self, event: Update) -> tuple[str, str] | None:
        """As `_inbound` and `_callback` name the person and the message for the engine."""
        if event.callback_query is not None:
            return str(event.callback_query.from_user.id), f"cb{event.callback_query.id}"
        message = event.message
        if message is None or message.from_user is None:
            return None
        return str(message.from_user.id), f"u{event.update_id}"

    def _read(self, raw: Any) -> Update | None:
        """The update as aiogram reads it; None, logged with its update id, when it cannot."""
        try:
            return Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError as exc:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            # Where and why, never the values: they may be someone's message.
            reasons = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)[:3])
            log.warning("telegram update %s cannot be read, skipped: %s", update_id, reasons)
            return None

    async def _poll(self) -> None:
        """Long polling that never dies: every failure waits and tries again."""
        offset: int | None = None
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                batch = await self.bot(
                    GetRawUpdates(offset=offset, timeout=POLL_TIMEOUT,
                                  allowed_updates=ALLOWED_UPDATES),
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
            for raw in batch:
                update_id = raw.get("update_id")
                if isinstance(update_id, int):
                    offset = max(offset or 0, update_id + 1)
                update = self._read(raw)
                if update is not None:
                    await self.feed(update)

    async def feed(self, update: Update) -> None:
        """Queue an update behind the same person's earlier ones."""
        key = self._person(update)
        if key is not None:
            await self.queue.put(key, update)

    @staticmethod
    def _person(update: Update) -> str | None:
        """Whose queue an update joins; None for the kinds the bot does not use."""
        if update.message is not None:
            return str(update.message.chat.id)
        if update.callback_query is not None:
            return str(update.callback_query.from_user.id)
        if update.my_chat_member is not None:
            return str(update.my_chat_member.chat.id)
        log.debug("telegram update %d (%s) ignored", update.update_id, update_kind(update))
        return None

    async def process(self, update: Update) -> None:
        """One update: to an Inbound, through the engine, replies sent back."""
        if update.callback_query is not None:
            await self._callback(update.callback_query)
        elif update.my_chat_member is not None:
            if await self._first_time(update):
                await self._membership(update, update.my_chat_member)
        elif update.message is not None:
            message = update.message
            if message.chat.type != "private":
                if await self._first_time(update):
                    await self._group(update, message)
                return
            inbound = self._inbound(update, message)
            if inbound is not None:
                await self._answer(message.chat.id, inbound, topic(message))

    async def _first_time(self, update: Update) -> bool:
        """False for an update handled already: Telegram delivers at least once. (Updates the
        engine handles are deduplicated there.)"""
        try:
            first = await self.state.first_delivery(CHANNEL, f"u{update.update_id}")
        except RedisError:
            return True
        if not first:
            self.metrics.duplicates.labels(CHANNEL).inc()
            log.info("telegram update %d delivered again; ignored", update.update_id)
        return first

    async def _membership(self, update: Update, member: ChatMemberUpdated) -> None:
        """A person blocked or unblocked the bot (in a private chat). With the database away
        the update is handled again later, as if not seen yet."""
        if member.chat.type == "private":
            blocked = member.new_chat_member.status == "kicked"
            try:
                await self._set_unreachable(str(member.chat.id), blocked, later=True)
            except HandleLater:
                with contextlib.suppress(RedisError):
                    await self.state.forget_delivery(CHANNEL, f"u{update.update_id}")
                raise

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

    async def _callback(self, query: CallbackQuery) -> None:
        message = query.message
        # Answer the tap first, so the button stops spinning whatever happens next; once only,
        # even when Telegram delivers the tap again.
        if await self._first_answer(query.id):
            # No message: a button of a message sent via the bot in inline mode. The bot is not
            # in that chat, and the person may never have written to it: it says so, there.
            text = self._private_only(query.from_user) if message is None else None
            with contextlib.suppress(TelegramAPIError, ClientError, TimeoutError):
                await self.send(partial(self.bot.answer_callback_query, query.id, text=text))
        if message is None:
            log.info("telegram tap %s on an inline-mode message: answered, nothing sent",
                     query.id)
            return
        if not query.data:
            return
        inbound = Inbound(channel=CHANNEL, user_id=str(query.from_user.id), kind=Kind.CHOICE,
                          choice=query.data, message_id=f"cb{query.id}",
                          language_hint=query.from_user.language_code)
        await self._answer(message.chat.id, inbound, topic(message))

    async def _first_answer(self, query_id: str) -> bool:
        try:
            return await self.state.first_delivery(CHANNEL, f"answered:{query_id}")
        except RedisError:
            return True

    def _private_only(self, user: User) -> str:
        """The group notice ("I answer in private conversations only") in the person's
        language, short enough for the answer to a tap (200 characters)."""
        renderer = self.engine.renderer
        hint = (user.language_code or "").split("-")[0].lower()
        language = hint if hint in renderer.translations else "fr"
        return renderer.render(private_chat_only(""), language).text[:200]

    async def _group(self, update: Update, message: Message) -> None:
        """In a group: say once where the bot works, then stay quiet."""
        if message.migrate_to_chat_id is not None or message.migrate_from_chat_id is not None:
            await self._migrated(message)
            return
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
        rendered = await self.engine.handle(inbound)
        try:
            await self.deliver(message.chat.id, rendered, topic(message))
        except ChatMoved as moved:
            await self._notice_moved_group(message.chat.id, moved.chat_id, rendered)
        except Unreachable as exc:
            log.info("group %s refuses the bot's messages (%s); no notice",
                     _chat(message.chat.id), exc)

    async def _notice_moved_group(self, old: int, new: int, rendered: list[Rendered]) -> None:
        """The notice meant for a group that became a supergroup goes to the supergroup, unless
        it was told already."""
        try:
            first = await self.state.first_group_notice(CHANNEL, str(new))
        except RedisError:
            log.warning("redis unavailable: notice for supergroup %s skipped",
                        _chat(new))
            return
        if not first:
            log.info("group %s is now the supergroup %s, told already; nothing sent",
                     _chat(old), _chat(new))
            return
        try:
            await self.deliver(new, rendered)
        except (ChatMoved, Unreachable) as exc:
            log.info("group %s is now the supergroup %s, which refuses the notice (%s)",
                     _chat(old), _chat(new),
                     f"it moved to {_chat(exc.chat_id)}" if isinstance(exc, ChatMoved) else exc)
            return
        log.info("group %s is now the supergroup %s: notice sent there", _chat(old),
                 _chat(new))

    async def _migrated(self, message: Message) -> None:
        """A group became a supergroup: nothing is said there, and a group told where the bot
        works is not told again at its new id."""
        if message.migrate_from_chat_id is None:
            # The old group's side; the supergroup's side (migrate_from_chat_id) follows.
            log.info("group %s became the supergroup %s", _chat(message.chat.id),
                     _chat(message.migrate_to_chat_id))
            return
        old, new = message.migrate_from_chat_id, message.chat.id
        try:
            # Marks the old group as told, which costs nothing: no one writes there any more.
            told = not await self.state.first_group_notice(CHANNEL, str(old))
            if told:
                await self.state.first_group_notice(CHANNEL, str(new))
        except RedisError:
            log.warning("redis unavailable: group %s moved to %s unrecorded",
                        _chat(old), _chat(new))
            return
        log.info("group %s became the supergroup %s (%s)", _chat(old), _chat(new),
                 "told already, it stays quiet" if told else "not told yet")

    async def _answer(self, chat_id: int, inbound: Inbound, thread: int | None = None) -> None:
        try:
            await self.answer(inbound, partial(self.deliver, chat_id, thread=thread))
        except Unreachable:
            await self._set_unreachable(str(chat_id), True)
        except ChatMoved as moved:  # only groups move; logged should Telegram say otherwise
            log.warning("%s became the supergroup %s; answer not sent", _chat(chat_id),
                        _chat(moved.chat_id))

    # ---- outbound --------------------------------------------------------------------------

    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery:
        """A reminder, offer or broadcast (Telegram has no window: it goes as it is)."""
        try:
            sent = await self.deliver(int(to), [rendered], later=True)
        except Unreachable as exc:
            await self._set_unreachable(to, True)
            return Delivery("skipped", reason=f"unreachable: {exc}")
        except ChatMoved as exc:
            return Delivery("failed", reason=str(exc))
        except SendLater as exc:
            return Delivery("later", reason=str(exc))
        if not sent:
            return Delivery("failed", reason="telegram refused or could not be reached")
        return Delivery("sent", sent[-1])

    async def edit_text(self, to: str, message_id: str, rendered: Rendered) -> bool:
        """Replace the text of a message the bot sent (a broadcast's progress)."""
        edited = await self._send(partial(self.bot.edit_message_text,
                                          html.escape(split_text(rendered.text)[0], quote=False),
                                          chat_id=int(to), message_id=int(message_id)))
        return edited is not None

    async def deliver(self, chat_id: int, replies: list[Rendered], thread: int | None = None,
                      *, later: bool = False) -> list[str]:
        """Send rendered replies (into the forum topic `thread`, if any): media first, then the
        text, buttons on its last piece; returns the ids of the messages Telegram accepted.
        With `later`, a message Telegram still could not take after the retries raises
        SendLater (an outbox row is tried again later) instead of being left out."""
        sent: list[str] = []
        for item in replies:
            for media in item.media:
                caption = html.escape(split_text(media.caption, CAPTION_LIMIT)[0]) or None
                if media.kind == "image":
                    await self._send_photo(chat_id, media, caption, thread, later)
                elif media.kind == "document":
                    document = BufferedInputFile(media.data, media.filename or "file")
                    await self._send(partial(self.bot.send_document, chat_id, document,
                                             caption=caption, message_thread_id=thread), later)
                elif media.latitude is not None and media.longitude is not None:
                    await self._send(partial(self.bot.send_location, chat_id, media.latitude,
                                             media.longitude, message_thread_id=thread), later)
            markup = keyboard(item.choices)
            pieces = html_pieces(item.text) if item.text.strip() else []
            if not pieces and markup is not None:
                pieces = ["·"]
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                message = await self._send(partial(self.bot.send_message, chat_id, piece,
                                                   message_thread_id=thread,
                                                   reply_markup=markup if last else None),
                                             later)
                if message is not None:
                    sent.append(str(message.message_id))
        return sent

    async def _send_photo(self, chat_id: int, media: RenderedMedia, caption: str | None,
                          thread: int | None, later: bool = False) -> None:
        """A picture goes by the file_id Telegram gave it the first time; uploaded again
        when Telegram no longer takes that id."""
        known = self.uploads.get(media.data)
        if known is not None:
            if await self._send(partial(self.bot.send_photo, chat_id, known, caption=caption,
                                        message_thread_id=thread), later) is not None:
                return
            self.uploads.forget(media.data)
        photo = BufferedInputFile(media.data, media.filename or "picture.png")
        message = await self._send(partial(self.bot.send_photo, chat_id, photo,
                                           caption=caption, message_thread_id=thread), later)
        if message is not None and message.photo:
            self.uploads.put(media.data, message.photo[-1].file_id)

    async def _send(self, call: Callable[[], Awaitable[T]], later: bool = False) -> T | None:
        """A send under the retry policy: 403 means unreachable, a group that became a
        supergroup raises ChatMoved; what still fails after the retries raises SendLater when
        `later` allows, else is logged, as is anything else Telegram refuses."""
        try:
            return await self.send_message(call, reply=not later)
        except TelegramForbiddenError as exc:
            raise Unreachable(str(exc)) from None
        except TelegramMigrateToChat as exc:
            raise ChatMoved(exc.migrate_to_chat_id) from None
        except (*RETRIED, TelegramRetryAfter) as exc:
            self.send_failed()
            if later:
                log.warning("telegram still unavailable after %d attempts: %s; tried again "
                            "later", SEND_ATTEMPTS, told(exc))
                raise SendLater(told(exc)) from None
            # Its text, not its traceback: aiogram writes the chat id into some errors' text.
            log.error("telegram send failed after %d attempts: %s", SEND_ATTEMPTS, told(exc))
            return None
        except TelegramAPIError as exc:
            self.send_failed()
            log.error("telegram refused a message: %s", told(exc))
            return None
        except OSError:
            self.send_failed()
            log.exception("telegram refused a message")
            return None

    async def _set_unreachable(self, user_id: str, unreachable: bool,
                               later: bool = False) -> None:
        """Record whether the person can be reached; with `later`, a database outage raises
        HandleLater instead of being logged and forgotten."""
        try:
            await self.contacts.set_unreachable(CHANNEL, user_id, unreachable)
        except DATABASE_ERRORS as exc:
            if later:
                log.warning("database unavailable: %s %s recorded later (%s)",
                            person(CHANNEL, user_id),
                            "blocking the bot" if unreachable else "unblocking it", exc)
                raise HandleLater(str(exc)) from None
            log.exception("cannot record that %s is unreachable", person(CHANNEL, user_id))
        if unreachable:
            # Their conversation's copy of the contact must not outlive this: when they write
            # again, the database is read and they are reachable again.
            with contextlib.suppress(RedisError):
                await self.state.clear_session(CHANNEL, user_id)
        if unreachable:
            log.info("%s blocked the bot; marked unreachable", person(CHANNEL, user_id))
