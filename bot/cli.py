"""The `tadamon` command line (CONTRACT.md): run, import, db upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiohttp import web

from bot.errors import CatalogueError, ConfigurationError, TadamonError
from bot.settings import Settings, load_settings

log = logging.getLogger("tadamon")

cli = typer.Typer(
    name="tadamon",
    help="Tadamon: the chatbot of social and solidarity economy fairs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")

T = TypeVar("T")


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; bad input exits 2 with one line, other failures exit 1."""
    from sqlalchemy.exc import SQLAlchemyError  # imported here: settings errors start faster

    try:
        return asyncio.run(main())
    except CatalogueError as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(2) from None
    except TadamonError as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ConnectionError) as exc:
        typer.echo(f"tadamon: {exc}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.echo(f"tadamon: database error: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


@cli.command()
def run(
    no_worker: Annotated[bool, typer.Option("--no-worker",
                                            help="Do not run an outbox worker here.")] = False,
) -> None:
    """Serve every configured channel and the HTTP routes."""
    _setup_logging()
    settings = _settings()
    _run(lambda: _serve(settings, worker=not no_worker))


async def _serve(settings: Settings, *, worker: bool) -> None:
    from bot.app import App
    from bot.http import make_web_app

    app = App(settings)
    try:
        await app.prepare()
        runner = web.AppRunner(make_web_app(app), handle_signals=False,
                               access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        _announce_channels(settings)
        await app.start_channels()
        if not worker:
            log.info("outbox worker: off in this process (--no-worker)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        await runner.cleanup()
        await app.stop_channels()
    finally:
        await app.close()


def _announce_channels(settings: Settings) -> None:
    url = f"http://{settings.http_host}:{settings.http_port}"
    log.info("web chat: on at %s/", url)
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


@cli.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A catalogue: .yaml, or .csv / .xlsx sheets.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate.")] = False,
) -> None:
    """Load a catalogue (idempotent: importing again updates in place)."""
    _setup_logging()
    settings = _settings()
    report = _run(lambda: _import(settings, path, dry_run))
    typer.echo(("valid (dry run, nothing stored): " if dry_run else "imported: ")
               + report.summary())


async def _import(settings: Settings, path: Path, dry_run: bool) -> Any:
    from bot.app import App
    from bot.catalogue import import_catalogue, load_catalogue_file

    if dry_run:
        # Validate the file first: a broken file must not need a database.
        load_catalogue_file(path)
    # TADAMON_CATALOGUE is for start-up: importing another file (or a dry run) must not load it.
    app = App(settings.model_copy(update={"catalogue": None}))
    try:
        await app.prepare(load_sample=False)
        with _progress() as progress:
            report = await import_catalogue(app.sessions, path, dry_run=dry_run,
                                            progress=progress)
        if not dry_run:
            await app.catalogue_changed()
        return report
    finally:
        await app.close()


@contextlib.contextmanager
def _progress() -> Any:
    """A progress bar on a terminal for large files; silent otherwise."""
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("importing", total=None)

        def update(done: int, total: int) -> None:
            if total >= 200:
                bar.update(task, completed=done, total=total)

        yield update


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    _setup_logging()
    settings = _settings()

    async def upgrade() -> None:
        from storage import database

        engine = database.create_engine(settings.database_url)
        try:
            await database.upgrade(engine)
        finally:
            await engine.dispose()

    _run(upgrade)
    typer.echo("database is up to date")


def main() -> None:
    """Console script entry point."""
    cli()


