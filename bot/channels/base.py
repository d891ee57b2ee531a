"""What the platform channels (Telegram, WhatsApp) share: webhook bodies kept in a durable
inbox, each person's events handled in order, every message through the engine, the replies
delivered and counted against the channel's rate, sends retried by one policy and held by the
channel's pause. A subclass reads its platform's payloads and speaks its wire format."""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import web

from bot.channels import Delivery
from bot.channels.body import error_response
from bot.channels.intake import InboxReader
from bot.channels.ordering import PerPersonQueue
from bot.channels.pause import SendPause
from bot.channels.quota import ChannelQuota
from bot.channels.retry import RetryPolicy
from bot.channels.uploads import UploadCache
from bot.engine import Engine
from bot.metrics import Metrics
from bot.settings import Settings
from handlers.messages import Inbound, Rendered
from storage.inbox import Inbox
from storage.state import State

Event = TypeVar("Event")
T = TypeVar("T")

# Events in hand at once: past this, reading the inbox (or polling) waits for room.
MAX_IN_FLIGHT = 512
# At shutdown, how long the events in hand may take to finish.
DRAIN_SECONDS = 20.0
# How long a reply to someone who just wrote is tried through a platform outage (429s, server
# errors): they are waiting for it. A message sent later goes back to the outbox instead.
REPLY_PATIENCE = 30.0


class PlatformChannel(abc.ABC, Generic[Event]):
    """Intake -> inbox -> per-person queue -> engine -> quota -> deliver, for one platform."""

    name: ClassVar[str]
    retry: ClassVar[RetryPolicy]

    def __init__(self, settings: Settings, engine: Engine, state: State, metrics: Metrics,
                 rate: float) -> None:
        self.settings = settings
        self.engine = engine
        self.state = state
        self.metrics = metrics
        self.uploads = UploadCache()
        self.queue: PerPersonQueue[Event] = PerPersonQueue(self.process, MAX_IN_FLIGHT)
        # Webhook bodies are kept in a Redis stream before the 200, then read from it.
        self.inbox = Inbox(state.redis, self.name)
        self.reader = InboxReader(self.inbox, self.queue, self.events, self.retake)
        self.pause = SendPause(state, self.name)
        self.quota = ChannelQuota(state.redis, self.name, rate)
        self._background: set[asyncio.Task[Any]] = set()

    # ---- what each platform says its own way ------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The platform's webhook routes."""

    @abc.abstractmethod
    def events(self, body: str) -> Iterable[tuple[str, Event]]:
        """(person, event) for each piece of a webhook body kept in the inbox."""

    @abc.abstractmethod
    async def process(self, event: Event) -> None:
        """One event of a person, in their order: an Inbound for `answer`, or a platform
        notice (a delivery status, a blocked bot...)."""

    @abc.abstractmethod
    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery:
        """A message to someone who did not just write (reminder, offer, broadcast)."""

    def marks(self, event: Event) -> tuple[str, str] | None:
        """(user id, message id) the engine locks and deduplicates this event's message by
        (None: it goes through no turn of the engine)."""
        return None

    async def retake(self, bodies: list[str]) -> None:
        """Bodies taken over from a process that died with them in hand: a message may have
        been marked handled before its answer went out (the mark is set when the engine is
        done, before the sending), and its person's lock may still be the dead process's.
        Both are cleared, so that it is answered, twice at worst (when the answer had gone out
        whole), never not at all nor with "please wait"."""
        users: set[str] = set()
        for body in bodies:
            for _person, event in self.events(body):
                marks = self.marks(event)
                if marks is not None:
                    users.add(marks[0])
                    await self.state.forget_delivery(self.name, marks[1])
        for user_id in users:
            await self.state.unlock_user(self.name, user_id)

    async def close(self) -> None:
        """Release the platform client (its HTTP session)."""

    def reads_inbox(self) -> bool:
        """Whether updates come through the inbox (webhooks) rather than another way."""
        return True

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.start_reading()

    def start_reading(self) -> None:
        self.reader.start(f"{self.name}-inbox")

    async def stop(self) -> None:
        """Stop reading, let the events in hand finish, close the platform client."""
        await self.reader.stop(DRAIN_SECONDS)
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await self.close()

    async def idle(self) -> None:
        """Wait until everything received so far has been answered."""
        if self.reads_inbox():
            await self.reader.idle()
        await self.queue.idle()
        while self._background:
            await asyncio.wait(self._background)

    # ---- the flow ---------------------------------------------------------------------------

    async def accept(self, raw: bytes) -> web.Response:
        """The answer to a checked webhook body: 200 once kept, 503 when the inbox cannot keep
        it (the platform delivers it again later)."""
        if not await self.reader.keep(raw):
            return error_response(503, "try again")
        return web.Response(status=200)

    async def answer(self, inbound: Inbound,
                     deliver: Callable[[list[Rendered]], Awaitable[list[str]]]) -> None:
        """A person's message through the engine, the replies delivered."""
        await deliver(await self.engine.handle(inbound))

    async def send(self, call: Callable[[], Awaitable[T]], *, reply: bool = False) -> T:
        """A platform call under the channel's retry policy and pause; a `reply` is tried for
        REPLY_PATIENCE seconds, however many attempts that takes."""
        return await self.retry.run(call, self.pause, REPLY_PATIENCE if reply else 0.0)

    async def send_message(self, call: Callable[[], Awaitable[T]], *, reply: bool = False) -> T:
        """A message to someone: `send`, each attempt first let through the channel's window."""
        async def counted() -> T:
            async with self.quota.sending():
                return await call()

        return await self.send(counted, reply=reply)

    def send_failed(self) -> None:
        """Count a message that could not go (the cause is logged by the caller)."""
        self.metrics.send_errors.labels(self.name).inc()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work nobody waits for (a read receipt), still awaited at `idle` and `stop`."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
