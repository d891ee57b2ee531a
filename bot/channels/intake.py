"""Reading a channel's durable inbox: each accepted webhook body becomes per-person work, and
the body is acknowledged once all of it is done (so a crash leaves it to be taken again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from redis.exceptions import RedisError

from bot.channels.ordering import PerPersonQueue
from storage.batch import GroupWrite
from storage.inbox import Inbox

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class InboxReader(Generic[Item]):
    """Reads the inbox for ever; `events(body)` says who each piece of a body concerns."""

    def __init__(self, inbox: Inbox, queue: PerPersonQueue[Item],
                 events: Callable[[str], Iterable[tuple[str, Item]]]) -> None:
        self.inbox = inbox
        self.queue = queue
        self.events = events
        self._task: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        # Entries done while an acknowledgement is under way are acknowledged by the next one.
        self._done: GroupWrite[str] = GroupWrite(self._acknowledge_all)

    async def keep(self, raw: bytes) -> bool:
        """Keep an accepted webhook body; False when Redis cannot: then the route must not
        answer 200, so the platform delivers it again later."""
        try:
            await self.inbox.add(raw.decode("utf-8", errors="replace"))
        except RedisError:
            log.exception("redis unavailable: %s body refused for a later retry",
                          self.inbox.stream)
            return False
        return True

    def start(self, name: str) -> None:
        self._task = asyncio.create_task(self._read(), name=name)

    async def stop(self, seconds: float) -> None:
        """Stop reading; let what was taken finish and be acknowledged."""
        # redis-py may turn a cancellation during a blocking read into a ConnectionError, which
        # the loop would take for an outage: the flag ends the loop whatever the read raised.
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 5)
        await self.queue.drain(seconds)
        if self._acks:
            await asyncio.wait(self._acks, timeout=5)

    async def idle(self) -> None:
        """Wait until the inbox is empty and all that was taken from it is done."""
        while True:
            await self.queue.idle()
            if self._acks:
                await asyncio.wait(self._acks)
            elif await self.inbox.pending() == 0:
                return
            else:
                await asyncio.sleep(0.02)

    async def _read(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                entries = await self.inbox.read()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away, anything: the reader must go on
                log.warning("%s unreadable; retrying in %.1f s", self.inbox.stream, backoff,
                            exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            for entry_id, body in entries:
                try:
                    pieces = list(self.events(body))
                except Exception:  # a body we cannot read will not get better: drop it
                    log.exception("%s entry %s unreadable; dropped", self.inbox.stream,
                                  entry_id)
                    pieces = []
                tasks = [await self.queue.put(person, item) for person, item in pieces]
                ack = asyncio.create_task(self._acknowledge(entry_id, tasks))
                self._acks.add(ack)
                ack.add_done_callback(self._acks.discard)

    async def _acknowledge(self, entry_id: str, tasks: list[asyncio.Task[None]]) -> None:
        if tasks:
            await asyncio.wait(tasks)
        await self._done.add(entry_id)

    async def _acknowledge_all(self, entries: Counter[str]) -> None:
        try:
            await self.inbox.done(*entries)
        except RedisError:
            log.warning("%s: %d entries not acknowledged; they will be taken again",
                        self.inbox.stream, len(entries))
