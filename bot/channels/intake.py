"""Reading a channel's durable inbox: each accepted webhook body becomes per-person work, and
the body is acknowledged once all of it is done (so a crash leaves it to be taken again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from redis.exceptions import RedisError

from bot.channels.ordering import HandleLater, PerPersonQueue
from storage.batch import GroupWrite
from storage.inbox import HEARTBEAT, Inbox

log = logging.getLogger(__name__)

Item = TypeVar("Item")

# Reading an unreachable Redis is tried again after a backoff this long at most: the reader
# is back soon after Redis is.
READ_BACKOFF_MAX = 2.0
# Pieces of a body that asked to be handled later are tried again in this process for half the
# idle time after which the stream gives the entry to any reader again, then left to it.
LATER_BACKOFF_MAX = 8.0


class InboxReader(Generic[Item]):
    """Reads the inbox for ever; `events(body)` says who each piece of a body concerns."""

    def __init__(self, inbox: Inbox, queue: PerPersonQueue[Item],
                 events: Callable[[str], Iterable[tuple[str, Item]]],
                 retake: Callable[[list[str]], Awaitable[None]] | None = None) -> None:
        self.inbox = inbox
        self.queue = queue
        self.events = events
        self.retake = retake
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._gone = asyncio.Event()
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
        self._heartbeat = asyncio.create_task(self._beat(), name=f"{name}-heartbeat")
        self._task = asyncio.create_task(self._read(), name=name)

    async def _beat(self) -> None:
        """Say this reader is alive, so that if its process dies another reader takes over
        what it had in hand within seconds (apart from the reading, which may wait for room).
        It ends on a flag, not by cancellation: redis-py may turn a cancellation in the middle
        of a command into a ConnectionError, which the loop would swallow and go on."""
        while not self._gone.is_set():
            with contextlib.suppress(RedisError):  # the reader logs Redis outages
                await self.inbox.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), HEARTBEAT)

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
        self._gone.set()  # alive until what it held is done
        if self._heartbeat is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._heartbeat, 5)
            with contextlib.suppress(RedisError):
                await self.inbox.leave()

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
                backoff = min(backoff * 2, READ_BACKOFF_MAX)
                continue
            retaken = [entry.body for entry in entries if entry.retaken]
            if retaken and self.retake is not None:
                # All at once, before any of them is queued: a lock released now is not one
                # this process has just taken.
                try:
                    await self.retake(retaken)
                except Exception:  # handled as any body; at worst some answer is missing
                    log.exception("%s: marks of %d bodies taken over not cleared",
                                  self.inbox.stream, len(retaken))
            for entry_id, body, _retaken in entries:
                try:
                    pieces = list(self.events(body))
                except Exception:  # a body we cannot read will not get better: drop it
                    log.exception("%s entry %s unreadable; dropped", self.inbox.stream,
                                  entry_id)
                    pieces = []
                tasks = [await self.queue.put(person, item) for person, item in pieces]
                ack = asyncio.create_task(self._acknowledge(entry_id, pieces, tasks))
                self._acks.add(ack)
                ack.add_done_callback(self._acks.discard)

    async def _acknowledge(self, entry_id: str, pieces: list[tuple[str, Item]],
                           tasks: list[asyncio.Task[None]]) -> None:
        """Acknowledge the entry once all of it is handled. Pieces that asked to be handled
        later are put in the queue again for a while; past that, or at shutdown, the entry is
        left unacknowledged, and the stream gives it to a reader again."""
        loop = asyncio.get_running_loop()
        until, delay = loop.time() + self.inbox.claim_idle / 2, 1.0
        while tasks:
            await asyncio.wait(tasks)
            pieces = [piece for piece, task in zip(pieces, tasks, strict=True)
                      if not task.cancelled() and isinstance(task.exception(), HandleLater)]
            if not pieces:
                break
            if self._stopping.is_set() or loop.time() + delay > until:
                log.warning("%s entry %s left for later: %d of its events could not be "
                            "handled yet", self.inbox.stream, entry_id, len(pieces))
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, LATER_BACKOFF_MAX)
            tasks = [await self.queue.put(person, item) for person, item in pieces]
        await self._done.add(entry_id)

    async def _acknowledge_all(self, entries: Counter[str]) -> None:
        """Acknowledge together the entries done while the previous acknowledgement was under
        way: one round trip for a burst."""
        try:
            await self.inbox.done(*entries)
        except RedisError:
            log.warning("%s: %d entries not acknowledged; they will be taken again",
                        self.inbox.stream, len(entries))
