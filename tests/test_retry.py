"""The one retry policy of the platform channels, and what each platform's errors ask of it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage

from bot.channels import telegram, whatsapp
from bot.channels.pause import SendPause
from bot.channels.retry import GIVE_UP, RETRY, Action, RetryPolicy, Verdict, pause_all
from bot.channels.whatsapp import GraphError
from storage.state import State, connect_redis


class Glitch(Exception):
    pass


class Refused(Exception):
    pass


class Slow(Exception):
    pass


class Busy(Exception):
    pass


def classify(exc: Exception) -> Verdict:
    if isinstance(exc, Glitch):
        return RETRY
    if isinstance(exc, Slow):
        return pause_all(0.01 if exc.args else None)
    if isinstance(exc, Busy):
        return Verdict(Action.WAIT_PERSON)
    return GIVE_UP


class Calls:
    """A platform call that fails with the given errors, in turn, then answers "sent"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.errors:
            raise self.errors.pop(0)
        return "sent"


@pytest.fixture
async def pause() -> AsyncIterator[SendPause]:
    redis = connect_redis(None)
    await redis.flushall()
    yield SendPause(State(redis), "test")
    await redis.aclose()


def policy(slept: list[float]) -> RetryPolicy:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return RetryPolicy(attempts=4, base_delay=1.0, classify=classify, sleep=sleep)


async def test_glitches_are_retried_with_a_doubling_jittered_backoff(pause: SendPause) -> None:
    slept: list[float] = []
    call = Calls(Glitch(), Glitch())
    assert await policy(slept).run(call, pause) == "sent"
    assert call.count == 3
    assert 1.0 <= slept[0] <= 1.5 and 2.0 <= slept[1] <= 3.0


async def test_the_last_glitch_is_raised_after_every_attempt(pause: SendPause) -> None:
    slept: list[float] = []
    call = Calls(*(Glitch(n) for n in range(10)))
    with pytest.raises(Glitch, match="3"):
        await policy(slept).run(call, pause)
    assert call.count == 4 and len(slept) == 3


async def test_a_final_error_is_raised_at_once(pause: SendPause) -> None:
    slept: list[float] = []
    call = Calls(Refused(), Glitch())
    with pytest.raises(Refused):
        await policy(slept).run(call, pause)
    assert call.count == 1 and slept == []


async def test_a_throughput_error_pauses_the_whole_channel(
        pause: SendPause, caplog: pytest.LogCaptureFixture) -> None:
    slept: list[float] = []
    call = Calls(Slow())
    await dataclasses.replace(policy(slept), base_delay=0.2).run(call, pause)
    assert "test asks to slow down: sends wait 0.2 s" in caplog.text
    assert call.count == 2 and slept == []


async def test_a_persons_rate_waits_for_them_only(pause: SendPause) -> None:
    slept: list[float] = []
    call = Calls(Glitch(), Busy())
    await policy(slept).run(call, pause)
    assert slept[1] == 4.0  # twice the backoff, which doubled after the glitch
    assert await pause.state.channel_paused_for("test") == 0


async def test_a_wait_the_platform_names_is_honoured_even_after_the_last_attempt(
        pause: SendPause) -> None:
    """Telegram's retry_after: every attempt may get one; one more call follows the last, and
    the backoff does not grow meanwhile."""
    slept: list[float] = []
    call = Calls(*(Slow("named") for _ in range(4)))
    assert await policy(slept).run(call, pause) == "sent"
    assert call.count == 5 and slept == []
    call = Calls(*(Slow("named") for _ in range(5)))
    with pytest.raises(Slow):
        await policy(slept).run(call, pause)
    assert call.count == 5
    call = Calls(Slow("named"), Glitch())
    assert await policy(slept).run(call, pause) == "sent"
    assert 1.0 <= slept[0] <= 1.5  # the glitch after a named wait: the first backoff


def test_whatsapp_errors_ask_what_meta_documents() -> None:
    verdict = whatsapp.verdict
    assert verdict(GraphError(400, 130429, "throughput")).action is Action.PAUSE_ALL
    assert verdict(GraphError(400, 131056, "pair rate")).action is Action.WAIT_PERSON
    assert verdict(GraphError(400, 131047, "window")) == GIVE_UP
    assert verdict(GraphError(401, 190, "token")) == GIVE_UP
    assert verdict(GraphError(401, 0, "token")) == GIVE_UP
    assert verdict(GraphError(500, 1, "server")) == RETRY
    assert verdict(GraphError(400, 131026, "undeliverable")) == GIVE_UP
    assert verdict(aiohttp.ClientConnectionError()) == RETRY
    assert verdict(TimeoutError()) == RETRY
    assert verdict(KeyError("messages")) == GIVE_UP
    assert whatsapp.SEND_RETRY.attempts == 4 and whatsapp.SEND_RETRY.base_delay == 1.0


def test_telegram_errors_ask_what_the_bot_api_documents() -> None:
    method = SendMessage(chat_id=1, text="bonjour")
    verdict = telegram.verdict
    assert verdict(TelegramRetryAfter(method, "Too Many Requests", 7)) == pause_all(7)
    assert verdict(TelegramServerError(method, "Bad Gateway")) == RETRY
    assert verdict(TelegramNetworkError(method, "timeout")) == RETRY
    assert verdict(aiohttp.ClientConnectionError()) == RETRY
    assert verdict(TelegramForbiddenError(method, "blocked")) == GIVE_UP
    assert verdict(TelegramBadRequest(method, "chat not found")) == GIVE_UP
    assert telegram.SEND_RETRY.attempts == 5 and telegram.SEND_RETRY.base_delay == 0.5
