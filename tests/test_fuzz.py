"""Property-based tests: generated Telegram updates, WhatsApp webhook bodies, web chat requests
and catalogue files (strategies in tests/fuzzing.py, shared with bench/fuzz.py). Whatever comes
in: no 5xx, no error logged, every message sent accepted by the platform, and the records'
invariants intact (seats within capacity, one rating per person and day, nothing sent to someone
who opted out). One app per test, many cases against it."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from bot.app import App
from tests.conftest import AppFactory
from tests.fuzzing import (
    CATALOGUES,
    TELEGRAM_CASES,
    WEB_CASES,
    WHATSAPP_CASES,
    CatalogueCase,
    ErrorLog,
    Findings,
    TelegramTarget,
    WebTarget,
    WhatsAppTarget,
    import_case,
    load_case,
    run_case,
)

NUMBERS = itertools.count()
BROADCASTS = itertools.count(1)
# A broadcast costs a second (Telegram's one message a second per chat): not after every case.
BROADCAST_EVERY = 10
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


async def served(kind: Any, make_app: AppFactory) -> AsyncIterator[Any]:
    """A fuzzing target's app for one test; at the end, no opted-out person was reached."""
    target = await kind.start(make_app)
    yield target
    try:
        assert await target.opted_out_reached() == []
    finally:
        await target.close()


@pytest.fixture
async def telegram(make_app: AppFactory) -> AsyncIterator[Any]:
    async for target in served(TelegramTarget, make_app):
        yield target


@pytest.fixture
async def whatsapp(make_app: AppFactory) -> AsyncIterator[Any]:
    async for target in served(WhatsAppTarget, make_app):
        yield target


@pytest.fixture
async def web(make_app: AppFactory) -> AsyncIterator[Any]:
    async for target in served(WebTarget, make_app):
        yield target


@settings(FUZZ, max_examples=40)
@given(actions=TELEGRAM_CASES)
async def test_fuzzed_telegram_updates(telegram: TelegramTarget, errors: ErrorLog,
                                       caplog: pytest.LogCaptureFixture,
                                       actions: list[Any]) -> None:
    await check(telegram, actions, errors, caplog)


@settings(FUZZ, max_examples=50)
@given(actions=WHATSAPP_CASES)
async def test_fuzzed_whatsapp_webhooks(whatsapp: WhatsAppTarget, errors: ErrorLog,
                                        caplog: pytest.LogCaptureFixture,
                                        actions: list[Any]) -> None:
    await check(whatsapp, actions, errors, caplog)


@settings(FUZZ, max_examples=60)
@given(actions=WEB_CASES)
async def test_fuzzed_web_chat_requests(web: WebTarget, errors: ErrorLog,
                                        caplog: pytest.LogCaptureFixture,
                                        actions: list[Any]) -> None:
    await check(web, actions, errors, caplog)


async def check(target: Any, actions: list[Any], errors: ErrorLog,
                caplog: pytest.LogCaptureFixture) -> None:
    """One case: sent, answered, checked; every few cases (and after the last, at teardown),
    a broadcast that must miss whoever opted out."""
    findings = Findings()
    await run_case(target, actions, findings, errors)
    if next(BROADCASTS) % BROADCAST_EVERY == 0:
        findings.problems.extend(await target.opted_out_reached())
    assert findings.problems == []
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []


@settings(FUZZ, max_examples=100)
@given(case=CATALOGUES)
# Found by fuzzing: a time zone naming a folder of the zone database raised IsADirectoryError.
@example(case=CatalogueCase("yaml", "fair: {id: x, timezone: Africa}\n", ".yaml"))
def test_fuzzed_catalogue_files(tmp_path: Path, case: CatalogueCase) -> None:
    assert load_case(case, tmp_path, next(NUMBERS)) in ("loaded", "refused")


@pytest.fixture
async def postgres_app(make_app: AppFactory) -> App:
    return await make_app(database="postgres")


@pytest.mark.postgres
@settings(FUZZ, max_examples=15)
@given(case=CATALOGUES.filter(lambda case: case.kind != "text"))
async def test_fuzzed_catalogue_imports(postgres_app: App, tmp_path: Path,
                                        case: CatalogueCase) -> None:
    """What the loader accepts, PostgreSQL stores (or the import refuses it clearly)."""
    assert await import_case(postgres_app.sessions, case, tmp_path, next(NUMBERS)) in (
        "imported", "refused")
