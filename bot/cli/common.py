"""What every command shares: settings, logging, the event loop, exit codes, the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from bot.errors import BadInput, CatalogueError, ConfigurationError, TadamonError
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from storage.repositories import Sessions

T = TypeVar("T")


def setup_logging() -> None:
    """Log lines on standard error; the access log and Alembic only when they warn."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def settings() -> Settings:
    """The settings; a bad one exits 2 with one line naming it."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(2) from None


def bad_input(message: str) -> typer.Exit:
    """Say what is wrong in one line; the exit (status 2) is for the caller to raise."""
    typer.echo(f"tadamon: {message}", err=True)
    return typer.Exit(2)


def plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows): the same asyncio, with
    sockets, timers and TLS in C, which lets one process send and answer noticeably more."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _let_sqlite_threads_finish(within: float = 1.0) -> None:
    """aiosqlite stops the thread of a connection that failed to open without waiting for it;
    should the event loop close first, the thread prints a traceback at exit under our one-line
    error. Give such threads a moment while the loop is still open."""
    deadline = time.monotonic() + within
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def run(main: Callable[[], Coroutine[Any, Any, T]], *, serving: bool = False) -> T:
    """Run a coroutine; bad input exits 2 with one line, other failures exit 1. Serving
    processes (`run`, `worker`) get uvloop; one-shot commands keep asyncio's own loop."""
    from sqlalchemy.exc import SQLAlchemyError  # imported here: settings errors start faster

    try:
        with asyncio.Runner(loop_factory=_loop_factory() if serving else None) as runner:
            try:
                return runner.run(main())
            finally:
                _let_sqlite_threads_finish()
    except (CatalogueError, BadInput) as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(2) from None
    except (TadamonError, OSError) as exc:  # OSError: ConnectionError and the like
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.echo(f"tadamon: database error: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Sessions]:
    """The database of the settings with its pending migrations applied, as a sessionmaker;
    the engine is disposed of on the way out. Every command that uses the database opens it
    here (and only the serving commands build the whole App, with Redis and the channels)."""
    from storage import database

    engine = database.create_engine(settings.database_url)
    try:
        await database.upgrade(engine)
        yield database.create_sessionmaker(engine)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def progress(label: str = "importing",
             at_least: int = 200) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal for work of `at_least` items (a large file); silent
    otherwise."""
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            if total >= at_least:
                bar.update(task, completed=done, total=total)

        yield update
