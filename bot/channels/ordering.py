"""Updates of one person handled in order, of different people concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class HandleLater(Exception):
    """An event that nobody waits an answer for could not be handled now (the database is
    away): its inbox entry stays to be handled again. The raiser logs why."""


class PerPersonQueue(Generic[Item]):
    """Runs `handle(item)` for each item; an item waits for the same person's earlier ones.

    At most `limit` items are in hand at once: `put` waits for room, which slows the reader
    (polling, stream) rather than letting memory grow without bound.
    """

    def __init__(self, handle: Callable[[Item], Awaitable[None]], limit: int = 512) -> None:
        self.handle = handle
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(limit)

    async def put(self, person: str, item: Item) -> asyncio.Task[None]:
        """Queue an item behind the same person's earlier ones; returns the task handling it."""
        await self._slots.acquire()
        previous = self._tails.get(person)
        task = asyncio.create_task(self._after(previous, item))
        self._tails[person] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._slots.release()
            if self._tails.get(person) is finished:
                del self._tails[person]

        task.add_done_callback(done)
        task.add_done_callback(_retrieved)
        return task

    async def _after(self, previous: asyncio.Task[None] | None, item: Item) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        try:
            await self.handle(item)
        except HandleLater:
            raise  # for the inbox reader to see: the entry is not acknowledged
        except Exception:  # one place logs; nothing else escapes to the reader
            # Its kind only: the item (an update, a webhook event) names and quotes the person.
            log.exception("handling a %s failed", type(item).__name__)

    async def idle(self) -> None:
        """Wait until every item put so far has been handled."""
        while self._tails:
            await asyncio.wait(list(self._tails.values()))

    async def drain(self, seconds: float) -> None:
        """Let the items in hand finish, for at most `seconds` (at shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.idle()


def _retrieved(task: asyncio.Task[None]) -> None:
    """Mark a HandleLater as seen: a queue fed by polling has no reader to look at it."""
    if not task.cancelled():
        task.exception()
