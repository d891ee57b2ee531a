"""One retry policy for every platform call: so many attempts, a backoff that doubles with a
jitter, and a per-platform classifier saying what each failure asks for."""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.channels.pause import SendPause

T = TypeVar("T")


class Action(enum.Enum):
    RETRY = "retry"  # a glitch (network, server error): try again after the backoff
    PAUSE_ALL = "pause-all"  # the platform asks the whole channel to slow down
    WAIT_PERSON = "wait-person"  # too many messages to this one person: only they wait
    GIVE_UP = "give-up"  # trying again will not help: the error goes to the caller


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failure asks for; `seconds` is a wait the platform named (Telegram's
    retry_after), else the policy's backoff decides."""

    action: Action
    seconds: float | None = None


RETRY = Verdict(Action.RETRY)
GIVE_UP = Verdict(Action.GIVE_UP)


def pause_all(seconds: float | None = None) -> Verdict:
    return Verdict(Action.PAUSE_ALL, seconds)


def wait_person(seconds: float | None = None) -> Verdict:
    return Verdict(Action.WAIT_PERSON, seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Runs a call up to `attempts` times. Between attempts the backoff (`base_delay`, doubled
    each time up to `max_delay`, with up to `jitter` of it added at random) is slept for a
    glitch, paused by the whole channel for PAUSE_ALL, and slept `person_wait` times over for
    WAIT_PERSON.

    A wait the platform named pauses the channel that long and leaves the backoff as it was;
    it is honoured even after the last attempt, with one more call.

    Given `patience` seconds, a call goes on being tried past its attempts until that long
    after the first: a platform outage of a few seconds then costs no message."""

    attempts: int
    base_delay: float
    classify: Callable[[Exception], Verdict]
    jitter: float = 0.5
    person_wait: float = 2.0
    max_delay: float = 4.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def backoff(self, delay: float) -> float:
        return delay * (1 + random.random() * self.jitter)

    async def run(self, call: Callable[[], Awaitable[T]], pause: SendPause,
                  patience: float = 0.0) -> T:
        """The call's result; the last error when the attempts (and the patience) are spent
        or it gives up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        delay = self.base_delay
        attempt = 0
        while True:
            attempt += 1
            await pause.wait()
            try:
                return await call()
            except Exception as exc:
                verdict = self.classify(exc)
                if verdict.action is Action.GIVE_UP:
                    raise
                spent = loop.time() >= deadline
                if verdict.seconds is not None:
                    if attempt > self.attempts and spent:
                        raise
                    await self._named_wait(verdict, pause)
                    continue
                if attempt >= self.attempts and spent:
                    raise
                if verdict.action is Action.PAUSE_ALL:
                    await pause.pause(delay)
                elif verdict.action is Action.WAIT_PERSON:
                    await self.sleep(delay * self.person_wait)
                else:
                    await self.sleep(self.backoff(delay))
            delay = min(delay * 2, self.max_delay)

    async def _named_wait(self, verdict: Verdict, pause: SendPause) -> None:
        seconds = verdict.seconds or 0.0
        if verdict.action is Action.PAUSE_ALL:
            await pause.pause(seconds)
        else:
            await self.sleep(seconds)
