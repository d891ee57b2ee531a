"""Writes that wait for one another: what arrives while a write is under way is written
together by the next one (a group commit). Each caller still returns only once its part is
written, and a burst of hundreds costs a few writes instead of hundreds."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")


class GroupWrite(Generic[K]):
    """Counts per key, handed to `write` a batch at a time; `add` returns once written."""

    def __init__(self, write: Callable[[Counter[K]], Awaitable[None]]) -> None:
        self.write = write
        self._waiting: Counter[K] = Counter()
        self._written: asyncio.Future[None] | None = None
        self._writing: asyncio.Task[None] | None = None

    async def add(self, key: K, amount: int = 1) -> None:
        """Count `amount` for `key`; returns once a write carried it (raises what it raised)."""
        self._waiting[key] += amount
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all())
        await asyncio.shield(written)

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, Counter()
                written, self._written = self._written, None
                try:
                    await self.write(batch)
                except BaseException as exc:
                    if written is not None and not written.done():
                        written.set_exception(exc if isinstance(exc, Exception)
                                              else asyncio.CancelledError())
                    if not isinstance(exc, Exception):
                        raise
                else:
                    if written is not None and not written.done():
                        written.set_result(None)
        finally:
            self._writing = None
            left, self._written = self._written, None
            if left is not None and not left.done():  # cancelled at shutdown: let them go
                left.set_result(None)
            self._waiting.clear()
