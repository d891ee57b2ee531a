"""Shared fixtures: real Redis and PostgreSQL servers, databases with the sample fair, and a
web chat client that reads like a conversation."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis as SyncRedis

from bot.app import App, sample_catalogue
from bot.catalogue import import_catalogue
from bot.http import make_web_app
from bot.settings import Settings
from storage import database
from storage.websessions import public_id
from tests import commands
from tests.servers import RunningServer, start_postgres, start_redis

pytest_plugins = ["tests.platforms", "tests.console"]
"""The Telegram and WhatsApp test channels (make_telegram, make_whatsapp), and the organizer
console's client (make_console)."""

_counter = itertools.count()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RunningServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[RunningServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RunningServer) -> str:
    """The real Redis server, emptied before each test."""
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


def _pg_admin_dsn(server: RunningServer) -> str:
    return server.url.replace("postgresql+asyncpg://", "postgresql://")


async def _create_pg_database(server: RunningServer, template: str | None = None) -> str:
    name = f"t{next(_counter)}_{id(server) % 10_000}"
    connection = await asyncpg.connect(_pg_admin_dsn(server))
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await connection.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await connection.close()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@dataclass
class Templates:
    """Databases migrated and loaded with the sample fair once, copied for each test."""

    sqlite: Path | None = None
    postgres: str | None = None
    made: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates()


async def _loaded(url: str) -> None:
    engine = database.create_engine(url)
    try:
        await database.upgrade(engine)
        await import_catalogue(database.create_sessionmaker(engine), sample_catalogue())
    finally:
        await engine.dispose()


DatabaseFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: Templates,
) -> DatabaseFactory:
    """`await make_database("sqlite" | "postgres", sample=True)` -> a fresh database URL."""

    async def make(kind: str = "sqlite", *, sample: bool = True, migrated: bool = True) -> str:
        if kind == "sqlite":
            target = tmp_path / f"tadamon-{next(_counter)}.db"
            if sample:
                if templates.sqlite is None:
                    path = tmp_path_factory.mktemp("template") / "sample.db"
                    await _loaded(f"sqlite+aiosqlite:///{path}")
                    templates.sqlite = path
                shutil.copy(templates.sqlite, target)
            url = f"sqlite+aiosqlite:///{target}"
        elif kind == "postgres":
            server: RunningServer = request.getfixturevalue("postgres_server")
            if sample:
                if templates.postgres is None:
                    template_url = await _create_pg_database(server)
                    await _loaded(template_url)
                    templates.postgres = template_url.rsplit("/", 1)[1]
                url = await _create_pg_database(server, templates.postgres)
            else:
                url = await _create_pg_database(server)
        else:
            raise ValueError(kind)
        if migrated and not sample:
            engine = database.create_engine(url)
            await database.upgrade(engine)
            await engine.dispose()
        return url

    return make


AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(
    request: pytest.FixtureRequest, make_database: DatabaseFactory
) -> AsyncIterator[AppFactory]:
    """`await make_app(database="sqlite"|"postgres", redis="real"|"fake", **settings)`."""
    apps: list[App] = []

    async def make(database: str = "sqlite", redis: str = "real", sample: bool = True,
                   **overrides: Any) -> App:
        settings_values: dict[str, Any] = {
            "database_url": await make_database(database, sample=sample),
            "redis_url": request.getfixturevalue("redis_url") if redis == "real" else None,
        }
        settings_values.update(overrides)
        app = App(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
        await app.prepare(load_sample=sample)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()


TADAMON = commands.TADAMON
"""The console script of the installed package."""


def cli_env(**settings: str) -> dict[str, str]:
    """The environment without any TADAMON_ variable of the caller's, plus `settings`
    (`TADAMON_DATABASE_URL=...`)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TADAMON_")}
    env.update(settings)
    return env


async def run_tadamon(*args: str, env: dict[str, str], cwd: Path,
                      fresh: bool = False) -> tuple[int, str, str]:
    """Run `tadamon ARGS` to its end: exit code, stdout, stderr. The command runs in a process
    forked from a warm one (tests/commands.py); `fresh=True` starts the console script."""
    done = await asyncio.to_thread(commands.run, *args, env=env, cwd=cwd, fresh=fresh)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


class Answer:
    """What the web chat answered to one message."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.replies: list[dict[str, Any]] = body.get("replies", [])

    @property
    def text(self) -> str:
        return "\n".join(reply["text"] for reply in self.replies)

    @property
    def choices(self) -> list[dict[str, str]]:
        return [choice for reply in self.replies for choice in reply["choices"]]

    @property
    def labels(self) -> list[str]:
        return [choice["label"] for choice in self.choices]

    @property
    def lang(self) -> str:
        return str(self.body.get("lang"))

    def mentions(self, *words: str) -> bool:
        return all(word in self.text for word in words)

    def choice_id(self, label_or_id: str) -> str:
        for choice in self.choices:
            if label_or_id in (choice["id"], choice["label"]):
                return choice["id"]
        for choice in self.choices:
            if label_or_id in choice["label"]:
                return choice["id"]
        raise AssertionError(f"no choice {label_or_id!r} in {self.choices}")

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.text!r}, {self.labels})"


class Chat:
    """Drives the web chat API like people in a browser: `await chat("amina", "bonjour")`.
    Each person gets a session from the server on their first message."""

    def __init__(self, client: TestClient[Any, Any], app: App) -> None:
        self.client = client
        self.app = app
        self.history: dict[str, list[Answer]] = {}
        self.tokens: dict[str, str] = {}

    def session(self, user: str) -> str:
        """The session token the server issued to `user` (who has written already)."""
        if user not in self.tokens:
            raise AssertionError(f"{user!r} has no session yet: await chat.new_session({user!r})"
                                 " or let them write first")
        return self.tokens[user]

    def user_id(self, user: str) -> str:
        """The person's id in the records (contacts, exports): the session's public id."""
        return public_id(self.session(user))

    async def new_session(self, user: str) -> str:
        """Ask the server for a session, as the page does, and keep it as `user`'s."""
        response = await self.client.post("/chat/api/sessions", json={})
        body = await response.json()
        assert response.status == 201, (response.status, body)
        self.tokens[user] = str(body["session"])
        return self.tokens[user]

    async def post(self, body: Any, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        if raw is not None:
            sent = {"Content-Type": "application/json", **(headers or {})}
            response = await self.client.post("/chat/api/messages", data=raw, headers=sent)
        else:
            response = await self.client.post("/chat/api/messages", json=body, headers=headers)
        return Answer(response.status, await response.json())

    async def __call__(self, user: str, text: str, **extra: Any) -> Answer:
        token = self.tokens.get(user) or await self.new_session(user)
        answer = await self.post({"session": token, "text": text, **extra})
        self.history.setdefault(user, []).append(answer)
        return answer

    async def tap(self, user: str, label_or_id: str) -> Answer:
        """Tap a button of the last answer, found by id or label."""
        choice = self.last(user).choice_id(label_or_id)
        answer = await self.post({"session": self.session(user), "choice": choice})
        self.history.setdefault(user, []).append(answer)
        return answer

    def last(self, user: str) -> Answer:
        return self.history[user][-1]


ChatFactory = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def make_chat(make_app: AppFactory) -> AsyncIterator[ChatFactory]:
    clients: list[TestClient[Any, Any]] = []

    async def make(app: App | None = None, **options: Any) -> Chat:
        """A web chat on a new app (`options` are its settings), or on `app`."""
        if app is None:
            # Every test person comes from 127.0.0.1: no limit on their new sessions.
            options.setdefault("web_sessions_per_minute", 100_000)
            app = await make_app(**options)
        client: TestClient[Any, Any] = TestClient(TestServer(make_web_app(app)))
        await client.start_server()
        clients.append(client)
        return Chat(client, app)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def chat(make_chat: ChatFactory) -> Chat:
    """A web chat on SQLite and the real Redis server, with the sample fair."""
    return await make_chat()


# ---------------------------------------------------------------------------------------------
# Long tests first

# Tests that take long (their share of a full run, in seconds on a busy 2-core machine, from
# `pytest --durations`), with the tests sharing a module-scoped fixture kept in one block.
# xdist's worksteal scheduler hands each worker a contiguous share of the collection and an
# idle worker steals from the end of another's share: each share starts with its long tests,
# so that the last minutes run short tests on both workers instead of one long test on one.
SLOW_FIRST: tuple[tuple[float, tuple[str, ...]], ...] = (
    (54, ("tests/test_deployment.py::",)),
    (35, ("tests/test_console_browser.py::",)),
    (28, ("tests/test_understanding.py::test_two_trainings_give_the_same_predictions",
          "tests/test_understanding.py::test_fast_path_computes_what_the_pipeline_does",
          "tests/test_understanding.py::test_training_happens_in_a_child_process")),
    (27, ("tests/test_posters.py::test_one_poster_per_stand_with_both_codes",)),
    (26, ("tests/test_posters.py::test_three_codes_side_by_side_when_every_channel_is_set",)),
    (25, ("tests/test_webchat_inbox_browser.py::test_a_reminder_and_an_offer_come_into",)),
    (18, ("tests/test_registrations.py::test_500_attempts_for_30_seats_from_two_processes",)),
    (17, ("tests/test_aiogram_types.py::test_aiogram_types_are_built_when_first_used",)),
    (17, ("tests/test_workshop_cards_browser.py::test_the_calendar_file_shows_its_caption",)),
    (17, ("tests/test_fuzz.py::test_fuzzed_whatsapp_webhooks",)),
    (16, ("tests/test_cli.py::test_read_only_commands_need_no_redis",)),
    (15, ("tests/test_fuzz.py::test_fuzzed_telegram_updates",)),
    (15, ("tests/test_outbox.py::test_two_workers_racing_send_each_row_exactly_once",)),
    (15, ("tests/test_outbox.py::test_a_worker_killed_mid_broadcast_loses_nothing",)),
    (13, ("tests/test_map_browser.py::test_the_map_is_legible_and_enlarges_on_a_phone",)),
    (13, ("tests/test_telegram.py::test_tadamon_run_serves_telegram[webhook]",)),
    (13, ("tests/test_transfer_browser.py::test_the_page_offers_whatsapp_after_registering",)),
    (12, ("tests/test_fuzz.py::test_fuzzed_web_chat_requests",)),
    (11, ("tests/test_registrations.py::test_500_attempts_for_30_seats_in_one_process_on",)),
    (10, ("tests/test_language_screenshots_browser.py::test_a_conversation_reads_right_on_a"
          "_phone[ar]",)),
    (10, ("tests/test_language_screenshots_browser.py::test_a_conversation_reads_right_on_a"
          "_phone[fr]",)),
    (10, ("tests/test_whatsapp.py::test_tadamon_run_serves_whatsapp[ar]",)),
    (10, ("tests/test_telegram.py::test_a_reply_does_not_wait_behind_a_broadcast",)),
    (9, ("tests/test_faults.py::test_telegram_refusing_a_persons_messages_past_every_retry",)),
    (9, ("tests/test_webchat_first_contact_browser.py::test_a_poster_code_on_a_phone",)),
    (8, ("tests/test_telegram.py::test_tadamon_run_serves_telegram[polling]",)),
    (8, ("tests/test_send_window.py::test_broadcasts_and_replies_never_exceed_the_limit_in_any"
         "_second[postgres-real-2]",)),
    (7, ("tests/test_cli.py::test_run_serves_the_web_chat_and_stops_on_sigterm",)),
    (6, ("tests/test_cli.py::test_import_twice_prints_the_same_counts",)),
    (6, ("tests/test_whatsapp.py::test_tadamon_run_serves_whatsapp[fr]",)),
    (6, ("tests/test_stats.py::test_chart_titles_fit_in_their_pictures",)),
    (6, ("tests/test_send_window.py::test_broadcasts_and_replies_never_exceed_the_limit_in_any"
         "_second[sqlite-fake-1]",)),
    (6, ("tests/test_posters.py::test_telegram_alone_gives_one_code_and_empty_stands",)),
    (6, ("tests/test_report.py::test_the_report_folder_holds_the_tables_and_charts",)),
    (6, ("tests/test_faults.py::test_outbox_worker_survives_a_postgresql_restart_mid",)),
    (6, ("tests/test_exports.py::test_a_survey_comment_stays_text_in_the_report_tables",)),
    (6, ("tests/test_catalogue.py::test_reimport_replaces_the_fairs_info_answers[sqlite]",)),
    (5, ("tests/test_cli.py::test_db_upgrade_twice",)),
    (5, ("tests/test_catalogue.py::test_importing_the_sample_again_changes_nothing[postgres]",)),
)


def _slow_blocks(items: list[pytest.Item]) -> list[tuple[float, list[pytest.Item]]]:
    """The SLOW_FIRST blocks found among `items` (in collection order within a block)."""
    blocks = []
    for weight, prefixes in SLOW_FIRST:
        block = [item for item in items if item.nodeid.startswith(prefixes)]
        if block:
            blocks.append((weight, block))
    return blocks


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the collection imported (test modules, the libraries, hundreds of thousands of
    objects) lives until the end: the garbage collector stops walking it at each full pass,
    which took a twentieth of a worker's time."""
    # Imported before, not after: at its import Hypothesis runs its plugins' set-up (trio
    # registers its random generator), which asks gc.get_referrers, blind to frozen objects.
    import hypothesis  # noqa: F401

    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start each worker's share of the collection with its long tests (SLOW_FIRST)."""
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    blocks = sorted(_slow_blocks(items), key=lambda block: -block[0])
    taken = {id(item) for _, block in blocks for item in block}
    rest = [item for item in items if id(item) not in taken]
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for weight, block in blocks:  # the longest block to the least loaded share
        share = loads.index(min(loads))
        shares[share].extend(block)
        loads[share] += weight
    # The scheduler's split: worker i takes len(remaining) // (workers - i) tests.
    remaining, ordered = len(items), []
    for index, share in enumerate(shares):
        size = remaining // (workers - index)
        fill = max(0, size - len(share))
        share.extend(rest[:fill])
        del rest[:fill]
        remaining -= len(share)
        ordered.extend(share)
    ordered.extend(rest)
    items[:] = ordered
