"""Writes that wait for one another: what arrives while a write is under way is written
together by the next one (a group commit). Each caller still returns only once its part is
written, and a burst of hundreds costs a few writes instead of hundreds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

K = TypeVar("K")

log = logging.getLogger(__name__)


class GroupWrite(Generic[K]):
    """Counts per key, handed to `write` a batch at a time; `add` returns once written."""

    def __init__(self, write: Callable[[Counter[K]], Awaitable[None]],
                 linger: float = 0.0) -> None:
        self.write = write
        # Seconds a write waits for company before it starts: under a steady flow, writes
        # follow one another as fast as each ends and carry one or two items each; a few
        # milliseconds make each carry many, for that much more wait of its callers.
        self.linger = linger
        self._waiting: Counter[K] = Counter()
        self._written: asyncio.Future[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    def count(self, key: K, amount: int = 1) -> None:
        """Count `amount` for `key` without waiting for the write: for statistics, which no
        answer should wait for (`flush` waits, at shutdown)."""
        self._waiting[key] += amount
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all())

    async def flush(self) -> None:
        """Return once everything counted so far is written, without the linger."""
        while (writing := self._writing) is not None:
            self._hurry.set()
            await asyncio.wait({writing})

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
                if self.linger > 0 and not self._hurry.is_set():
                    # asyncio.sleep unless flush() hurries it
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._hurry.wait(), self.linger)
                batch, self._waiting = self._waiting, Counter()
                written, self._written = self._written, None
                try:
                    await self.write(batch)
                except BaseException as exc:
                    if written is not None and not written.done():
                        written.set_exception(exc if isinstance(exc, Exception)
                                              else asyncio.CancelledError())
                    elif isinstance(exc, Exception):  # counted, and nobody waits to be told
                        log.exception("%d counts not written", sum(batch.values()))
                    if not isinstance(exc, Exception):
                        raise
                else:
                    if written is not None and not written.done():
                        written.set_result(None)
        finally:
            self._writing = None
            self._hurry.clear()
            left, self._written = self._written, None
            if left is not None and not left.done():  # cancelled at shutdown: let them go
                left.set_result(None)
            self._waiting.clear()


Build = Callable[[Any], None]
"""Adds one caller's commands to a redis-py pipeline."""


class Pipelined:
    """Redis commands of many callers in one round trip: the commands asked for while a
    pipeline is on its way go together in the next one, each caller getting its own results.
    Under load a message's few Redis calls share their round trips with other people's, which
    costs the client (packing, a socket write and read, a pooled connection) and the server far
    less than a round trip each; alone, a caller waits for nobody."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: list[tuple[Build, asyncio.Future[list[Any]]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def run(self, build: Build) -> list[Any]:
        """The results of the commands `build` adds, in order. A command's error is raised
        (the first of them), as a pipeline of one caller's own would."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((build, future))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_all())
        results = await asyncio.shield(future)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._send(batch)
                except BaseException as exc:
                    for _build, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception)
                                                 else asyncio.CancelledError())
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._sending = None
            for _build, future in self._waiting:  # cancelled at shutdown
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
            self._waiting.clear()

    async def _send(self, batch: list[tuple[Build, asyncio.Future[list[Any]]]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        bounds: list[tuple[int, int]] = []
        for build, _future in batch:
            start = len(pipe.command_stack)
            build(pipe)
            bounds.append((start, len(pipe.command_stack)))
        async with pipe:
            results = await pipe.execute(raise_on_error=False)
        for (start, end), (_build, future) in zip(bounds, batch, strict=True):
            if not future.done():
                future.set_result(list(results[start:end]))


_pipelines: weakref.WeakKeyDictionary[Redis, Pipelined] = weakref.WeakKeyDictionary()


def pipelined(redis: Redis) -> Pipelined:
    """The one batcher of a Redis client, shared by everything that uses the client."""
    batcher = _pipelines.get(redis)
    if batcher is None:
        batcher = _pipelines[redis] = Pipelined(redis)
    return batcher


async def evalsha(redis: Redis, script: AsyncScript, names: list[str], args: list[Any]) -> Any:
    """Run a Lua script in the shared pipeline: EVALSHA straight away (redis-py would first ask
    whether the script is loaded, one more round trip), loading it once more when Redis does
    not know it (restarted, flushed)."""
    for attempt in (1, 2):
        try:
            results = await pipelined(redis).run(
                lambda pipe: pipe.evalsha(script.sha, len(names), *names, *args))
            return results[0]
        except NoScriptError:
            if attempt == 2:
                raise
            await redis.script_load(script.script)
    raise AssertionError("unreachable")
