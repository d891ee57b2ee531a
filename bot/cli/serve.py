"""`tadamon run` and `tadamon worker`: the long-running processes, the only ones that build the
whole App (database, Redis, channels)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli import common
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("tadamon")

M_ARENA_MAX = -8  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1
MALLOC_ARENAS = 2
MALLOC_THRESHOLD = 128 * 1024  # glibc's default, kept fixed


def run(
    no_worker: Annotated[bool, typer.Option("--no-worker",
                                            help="Do not run an outbox worker here.")] = False,
) -> None:
    """Serve every configured channel and the HTTP routes."""
    limit_malloc_arenas()
    common.setup_logging()
    settings = common.settings()
    common.run(lambda: _serve(settings, worker=not no_worker), serving=True)


async def _serve(settings: Settings, *, worker: bool) -> None:
    # Imported here, as bot.app is: the other commands (export, organizer...) start faster.
    from aiohttp import web

    from bot.app import App
    from bot.http import make_runner

    app = App(settings)
    try:
        await migrate_aside(app)
        await app.prepare()
        runner = make_runner(app)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        _announce_channels(settings)
        await app.start_channels()
        settle_garbage_collector()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sending: asyncio.Task[None] | None = None
        if worker:
            from bot.worker import OutboxWorker

            sending = asyncio.create_task(OutboxWorker(app).run(stop))
        else:
            log.info("outbox worker: off in this process (--no-worker)")
        await stop.wait()
        log.info("shutting down")
        if sending is not None:
            await sending
        await runner.cleanup()
        await app.stop_channels()
    finally:
        await app.close()


async def migrate_aside(app: App) -> None:
    """Apply pending migrations in a child process: Alembic, with Mako and Pygments under it
    (about 11 MB), never enters a process that then serves for days. Should the child fail,
    `App.prepare` migrates here, and says what is wrong as it always did."""
    from storage import database

    if await database.is_current(app.db):
        return
    path = os.pathsep.join(entry for entry in sys.path if entry)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "storage.database", stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
    _out, err = await child.communicate(app.settings.database_url.encode())
    if child.returncode != 0:
        log.info("migrating in a child process failed, migrating here: %s",
                 err.decode("utf-8", "replace").strip().splitlines()[-1:])


def settle_garbage_collector() -> None:
    """For a long-running process, once started: what exists now (aiogram's and SQLAlchemy's
    thousands of classes, the catalogue) lives until the end, so the collector stops looking
    at it (gc.freeze), and it runs less often over the young objects every message makes.
    Together about a tenth more messages a second (bench/broadcast.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    release_free_memory()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most `arenas` glibc malloc arenas (MALLOC_ARENA_MAX=2), before any thread starts,
    unless MALLOC_ARENA_MAX is set already; True when glibc took it. Each thread that allocates
    gets an arena of its own by default (up to 8 per core): the thread pools (libuv's resolver,
    asyncio's to_thread) kept about 23 MB more in a run answering 1,000 people by webhook
    (bench/memory.py), for no measurable speed in a process that runs Python in one thread.
    The mmap and trim thresholds are fixed too (unless set in the environment): glibc raises
    them to the size of any large block freed, after which blocks of megabytes (a file read
    at start, a large body) come from the heap and stay in it once freed (about 2 MB)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows)
        return False
    for variable, parameter in (("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD),
                                ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD)):
        if variable not in os.environ:
            mallopt(parameter, MALLOC_THRESHOLD)
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Hand the pages glibc holds free (what start-up allocated and let go) back to the
    system; nothing where the C library is not glibc."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        return


def _announce_channels(settings: Settings) -> None:
    url = f"http://{settings.http_host}:{settings.http_port}"
    log.info("web chat: on at %s/", url)
    log.info("organizer console: on at %s/admin/ (accounts: tadamon admin add EMAIL --role "
             "organizer)", url)
    if settings.telegram_token is None:
        log.info("telegram: off (set TADAMON_TELEGRAM_TOKEN to turn it on)")
    else:
        log.info("telegram: connecting to %s", settings.telegram_api_base)
    if settings.whatsapp_token is None:
        log.info("whatsapp: off (set TADAMON_WHATSAPP_TOKEN to turn it on)")
    else:
        log.info("whatsapp: connecting to %s", settings.whatsapp_api_base)
    if settings.redis_url is None:
        log.info("redis: in-process stand-in (set TADAMON_REDIS_URL for production)")


def worker() -> None:
    """Run an outbox worker alone (reminders, notices, broadcasts)."""
    limit_malloc_arenas()
    common.setup_logging()
    settings = common.settings()

    async def work() -> None:
        from bot.app import App
        from bot.worker import OutboxWorker

        app = App(settings)
        try:
            await migrate_aside(app)
            await app.prepare(load_sample=False, understands=False)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            settle_garbage_collector()
            await OutboxWorker(app).run(stop)
        finally:
            await app.close()

    common.run(work, serving=True)
