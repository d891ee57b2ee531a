"""The `tadamon` command line (CONTRACT.md): run, import, db upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from aiohttp import web

from bot.csvfiles import write_csv
from bot.errors import BadInput, CatalogueError, ConfigurationError, TadamonError
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from bot.i18n import Renderer
    from storage.repositories import CatalogueSnapshot, Sessions

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


def _run(main: Callable[[], Coroutine[Any, Any, T]], *, serving: bool = False) -> T:
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
    _run(lambda: _serve(settings, worker=not no_worker), serving=True)


async def _serve(settings: Settings, *, worker: bool) -> None:
    from bot.app import App
    from bot.http import make_runner

    app = App(settings)
    try:
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


def settle_garbage_collector() -> None:
    """For a long-running process, once started: what exists now (aiogram's and SQLAlchemy's
    thousands of classes, the catalogue) lives until the end, so the collector stops looking
    at it (gc.freeze), and it runs less often over the young objects every message makes.
    Together about a tenth more messages a second (bench/broadcast.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


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
        await app.prepare(load_sample=False, organizers=False)
        with _progress() as progress:
            report = await import_catalogue(app.sessions, path, dry_run=dry_run,
                                            progress=progress)
        if not dry_run:
            await app.catalogue_changed()
        return report
    finally:
        await app.close()


@contextlib.contextmanager
def _progress(label: str = "importing",
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


@cli.command()
def worker() -> None:
    """Run an outbox worker alone (reminders, notices, broadcasts)."""
    _setup_logging()
    settings = _settings()

    async def work() -> None:
        from bot.app import App
        from bot.worker import OutboxWorker

        app = App(settings)
        try:
            await app.prepare(load_sample=False)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            settle_garbage_collector()
            await OutboxWorker(app).run(stop)
        finally:
            await app.close()

    _run(work, serving=True)


organizer_cli = typer.Typer(help="Who may broadcast and read statistics in chat.",
                            no_args_is_help=True)
cli.add_typer(organizer_cli, name="organizer")


def _person(who: str) -> tuple[str, str]:
    from bot.settings import parse_organizer

    try:
        return parse_organizer(who)
    except ValueError as exc:
        raise _bad_input(str(exc)) from None


def _with_contacts(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        from storage import database
        from storage.repositories import ContactRepository

        engine = database.create_engine(settings.database_url)
        try:
            await database.upgrade(engine)
            return await work(ContactRepository(database.create_sessionmaker(engine)))
        finally:
            await engine.dispose()

    return _run(run)


@organizer_cli.command("add")
def organizer_add(who: Annotated[str, typer.Argument(help="telegram:USER_ID or "
                                                          "whatsapp:USER_ID")]) -> None:
    """Let someone broadcast and read statistics in chat (until `organizer remove`)."""
    from storage.repositories import ROLE_BY_COMMAND

    settings = _settings()
    channel, user_id = _person(who)
    _with_contacts(settings, lambda contacts: contacts.grant_organizer(channel, user_id,
                                                                        ROLE_BY_COMMAND))
    typer.echo(f"{channel}:{user_id} is an organizer")


@organizer_cli.command("remove")
def organizer_remove(who: Annotated[str, typer.Argument(help="telegram:USER_ID or "
                                                             "whatsapp:USER_ID")]) -> None:
    """Take the organizer role back, at once (whatever gave it)."""
    settings = _settings()
    channel, user_id = _person(who)
    was = _with_contacts(settings,
                         lambda contacts: contacts.withdraw_organizer(channel, user_id))
    typer.echo(f"{channel}:{user_id} is no longer an organizer" if was
               else f"{channel}:{user_id} was not an organizer")
    if f"{channel}:{user_id}" in settings.organizers:
        typer.echo(f"tadamon: TADAMON_ORGANIZERS still lists {channel}:{user_id}: they will "
                   "be an organizer again at the next start unless it is taken out there",
                   err=True)


@organizer_cli.command("list")
def organizer_list() -> None:
    """Everyone who may broadcast, and where their role comes from."""
    from bot.settings import ORGANIZER_CHANNELS
    from storage.repositories import ROLE_BY_SETTING

    settings = _settings()
    found = _with_contacts(settings, lambda contacts: contacts.organizers())
    sources = {f"{contact.channel}:{contact.user_id}": source for contact, source in found}
    for who, source in sources.items():
        if source == ROLE_BY_SETTING:
            where = "TADAMON_ORGANIZERS"
            if who not in settings.organizers:
                where += " (no longer listed here: taken back at the next start)"
        else:
            where = "tadamon organizer add"
        if who.partition(":")[0] not in ORGANIZER_CHANNELS:
            where += " (not a Telegram or WhatsApp identity: taken back at the next start)"
        typer.echo(f"{who}\t{where}")
    for who in settings.organizers:
        if who not in sources:
            typer.echo(f"{who}\tTADAMON_ORGANIZERS (from the next start)")


@cli.command("coop-codes")
def coop_codes(
    out: Annotated[Path | None, typer.Option("--out", help="Write a CSV file.")] = None,
    revoke: Annotated[str | None, typer.Option(
        "--revoke", help="An exhibitor id whose code is replaced (the old one stops "
                         "working).")] = None,
) -> None:
    """One link code per exhibitor, with its Telegram and WhatsApp deep links."""
    settings = _settings()

    async def work() -> tuple[list[Any], str, str]:
        from bot.app import App
        from storage.cooperatives import CooperativeRepository

        app = App(settings)
        try:
            await app.prepare(load_sample=False, organizers=False)
            codes = await CooperativeRepository(app.sessions).codes(revoke)
            bot, number = await _link_targets(settings)
            return codes, bot, number
        finally:
            await app.close()

    codes, bot, number = _run(work)
    if revoke is not None and not any(code.exhibitor == revoke for code in codes):
        raise _bad_input(f"--revoke: unknown exhibitor {revoke!r}")
    columns = ["exhibitor_id", "name_fr", "name_ar", "stand", "code", "telegram_link",
               "whatsapp_link"]
    rows = [{"exhibitor_id": code.exhibitor, "name_fr": code.name.get("fr", ""),
             "name_ar": code.name.get("ar", ""), "stand": code.stand or "", "code": code.code,
             "telegram_link": f"https://t.me/{bot}?start=coop_{code.code}",
             "whatsapp_link": f"https://wa.me/{number}?text=COOP%20{code.code}"}
            for code in codes]
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        write_csv(handle, columns, rows)
    finally:
        if out:
            handle.close()
    if out:
        typer.echo(f"{len(rows)} cooperative codes written to {out}")


async def _link_targets(settings: Settings) -> tuple[str, str]:
    """The Telegram bot's name and the WhatsApp number, asked of the platforms when set."""
    import aiohttp

    bot, number = "<bot>", "<number>"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        if settings.telegram_token is not None:
            url = f"{settings.telegram_api_base}/bot{settings.telegram_token.get_secret_value()}"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                async with client.get(f"{url}/getMe") as response:
                    bot = (await response.json())["result"]["username"]
        if settings.whatsapp_token is not None and settings.whatsapp_phone_number_id:
            headers = {"Authorization":
                       f"Bearer {settings.whatsapp_token.get_secret_value()}"}
            url = f"{settings.whatsapp_api_base}/{settings.whatsapp_phone_number_id}"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                async with client.get(url, headers=headers,
                                      params={"fields": "display_phone_number"}) as response:
                    shown = (await response.json())["display_phone_number"]
                    number = "".join(ch for ch in str(shown) if ch.isdigit())
    return bot, number


@cli.command()
def posters(
    out: Annotated[Path, typer.Option("--out", help="The PDF file to write.")],
) -> None:
    """One printable page per stand: its name in both scripts and QR codes to its Telegram
    and WhatsApp deep links."""
    from bot.posters import (
        SCAN_INSTRUCTION,
        PosterPage,
        telegram_link,
        whatsapp_link,
        write_posters,
    )

    settings = _settings()
    if out.is_dir() or not out.parent.is_dir():
        raise _bad_input(f"--out {out}: not a file in an existing folder")
    telegram_on = settings.telegram_token is not None
    whatsapp_on = settings.whatsapp_token is not None
    if not telegram_on and not whatsapp_on:
        # A poster without a working code must not be printed.
        raise _bad_input("posters need a channel to link to: set TADAMON_TELEGRAM_TOKEN "
                         "or TADAMON_WHATSAPP_TOKEN")

    async def read() -> tuple[CatalogueSnapshot | None, str, str, Renderer]:
        from bot.app import App

        # Only the catalogue is read: no channel is made (aiogram alone takes seconds to load).
        app = App(settings.model_copy(update={"telegram_token": None, "whatsapp_token": None}))
        try:
            await app.prepare(load_sample=False, organizers=False)
            snapshot = await app.engine.catalogue.snapshot()
            if snapshot is None:
                return None, "", "", app.renderer
            bot, number = await _link_targets(settings)
            return snapshot, bot, number, app.renderer
        finally:
            await app.close()

    snapshot, bot, number, renderer = _run(read)
    if snapshot is None:
        raise _bad_input("no fair is loaded: import a catalogue first (tadamon import PATH)")
    # Their answers are what the codes link to: without one, that code cannot be made.
    silent = [f"{name} ({base})" for name, on, answer, unset, base in (
        ("Telegram", telegram_on, bot, "<bot>", settings.telegram_api_base),
        ("WhatsApp", whatsapp_on, number, "<number>", settings.whatsapp_api_base),
    ) if on and answer in ("", unset)]
    if silent:
        typer.echo(f"tadamon: {' and '.join(silent)} did not answer: no poster written",
                   err=True)
        raise typer.Exit(1)
    instruction = {language: renderer.message(SCAN_INSTRUCTION, language)
                   for language in ("fr", "ar")}
    pages = [
        PosterPage(
            stand=stand.number, zone=stand.zone,
            exhibitors=tuple(exhibitor.name for exhibitor in stand.exhibitors),
            fair=snapshot.fair.name,
            telegram=telegram_link(bot, stand.number) if telegram_on else None,
            whatsapp=whatsapp_link(number, stand.number) if whatsapp_on else None,
            instruction=instruction,
        )
        for stand in snapshot.stands.values() if stand.exhibitors
    ]
    skipped = len(snapshot.stands) - len(pages)
    if not pages:
        raise _bad_input(f"no stand of the fair has an exhibitor: no poster to print "
                         f"({skipped} {_plural(skipped, 'stand')})")
    # Laying out pages is CPU work: done here, once the event loop has ended.
    with _progress("posters", at_least=1) as progress:
        try:
            written = write_posters(pages, out, progress)
        except OSError as exc:
            typer.echo(f"tadamon: {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{written} {_plural(written, 'poster')} written to {out} ({skipped} "
               f"{_plural(skipped, 'stand')} without an exhibitor skipped)")


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


broadcast_cli = typer.Typer(help="Organizer broadcasts.", invoke_without_command=True)
cli.add_typer(broadcast_cli, name="broadcast")


def _bad_input(message: str) -> typer.Exit:
    typer.echo(f"tadamon: {message}", err=True)
    return typer.Exit(2)


@broadcast_cli.callback()
def broadcast(
    context: typer.Context,
    audience: Annotated[str | None, typer.Option(help="all, visitors, cooperatives, "
                                                      "organizers, lang:ar, lang:fr, "
                                                      "workshop:<id>")] = None,
    text_fr: Annotated[str | None, typer.Option("--text-fr", help="The French text.")] = None,
    text_ar: Annotated[str | None, typer.Option("--text-ar", help="The Arabic text.")] = None,
    at: Annotated[str | None, typer.Option(help="When (ISO time, fair time zone); "
                                                "default now.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    urgent: Annotated[bool, typer.Option("--urgent", help="Send during quiet hours "
                                                          "too.")] = False,
) -> None:
    """Queue a broadcast (each recipient gets their language); prints its id."""
    if context.invoked_subcommand is not None:
        return
    _setup_logging()
    settings = _settings()
    if audience is None or not (text_fr or "").strip() or not (text_ar or "").strip():
        raise _bad_input("--audience, --text-fr and --text-ar are required")
    from handlers.organizers import TEXT_MAX
    from storage.outbox import audience_filter

    try:
        audience_filter(audience)
    except ValueError as exc:
        raise _bad_input(f"--audience: {exc}") from None
    when = _when(at, settings)
    text = {"fr": (text_fr or "").strip(), "ar": (text_ar or "").strip()}
    for language, written in text.items():
        if len(written) > TEXT_MAX:
            raise _bad_input(f"--text-{language}: {len(written)} characters, a broadcast holds "
                             f"at most {TEXT_MAX} (what a WhatsApp template carries)")

    async def queue() -> tuple[int, int]:
        from bot.app import App
        from storage.catalogue import active_fair
        from storage.outbox import Outbox

        app = App(settings)
        try:
            await app.prepare(load_sample=False, organizers=False)
            async with app.sessions() as session:
                fair = await active_fair(session)
            if fair is None:
                raise CatalogueError("no fair is loaded: import a catalogue first")
            outbox = Outbox(app.sessions)
            try:
                await outbox.check_audience(fair.id, audience)
            except ValueError as exc:
                raise BadInput(f"--audience: {exc}") from None
            count = await outbox.recipients(audience)
            if not yes:
                typer.echo(f"audience {audience}: {count} recipients, at {when.isoformat()}")
                typer.echo(f"fr: {text['fr']}\nar: {text['ar']}")
                if not typer.confirm("queue this broadcast?"):
                    raise typer.Exit(1)
            return await outbox.queue_broadcast(fair.id, audience, text, when, urgent)
        finally:
            await app.close()

    broadcast_id, count = _run(queue)
    log.info("broadcast %s queued for %s recipients", broadcast_id, count)
    typer.echo(broadcast_id)


# How far in the past `--at` may be: the time it takes to type the command and confirm.
AT_SLACK = dt.timedelta(minutes=1)


def _when(at: str | None, settings: Settings) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if at is None:
        return now
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise _bad_input(f"--at: {at!r} is not an ISO time like 2026-12-13T09:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.zone)
    if moment < now - AT_SLACK:
        local = now.astimezone(settings.zone).strftime("%Y-%m-%dT%H:%M")
        raise _bad_input(f"--at: {at!r} is in the past (it is {local} in {settings.timezone}; "
                         "a minute of slack is allowed): leave --at out to send now")
    return moment.astimezone(dt.UTC)


def _broadcast_id(value: str) -> int:
    """The id `tadamon broadcast` printed; exit 2 with one line for anything else."""
    if not re.fullmatch(r"[1-9][0-9]{0,17}", value):
        raise _bad_input(f"{value!r} is not a broadcast id (the number `tadamon broadcast` "
                         "printed)")
    return int(value)


@broadcast_cli.command("status")
def broadcast_status(
    broadcast: Annotated[str, typer.Argument(help="The id `tadamon broadcast` printed.")],
    follow: Annotated[bool, typer.Option("--follow", help="Show progress until done.")] = False,
) -> None:
    """Sent / failed / skipped / pending counts, rate and ETA."""
    settings = _settings()
    broadcast_id = _broadcast_id(broadcast)

    async def show() -> None:
        import time

        from storage import database
        from storage.outbox import Outbox

        engine = database.create_engine(settings.database_url)
        outbox = Outbox(database.create_sessionmaker(engine))
        try:
            await database.upgrade(engine)
            if not await outbox.broadcast_exists(broadcast_id):
                raise BadInput(f"broadcast {broadcast_id}: no such broadcast")
            started, first_done = time.monotonic(), None
            while True:
                counts = await outbox.progress(broadcast_id)
                total = sum(counts.values())
                done = counts["sent"] + counts["failed"] + counts["skipped"]
                first_done = done if first_done is None else first_done
                elapsed = time.monotonic() - started
                rate = (done - first_done) / elapsed if elapsed > 1 else 0.0
                left = total - done
                eta = f"{left / rate:.0f} s" if rate > 0 else "-"
                percent = 100 * done / total if total else 100.0
                line = (f"broadcast {broadcast_id}: {done}/{total} ({percent:.0f}%) sent "
                        f"{counts['sent']}, failed {counts['failed']}, skipped "
                        f"{counts['skipped']}, pending {counts['pending'] + counts['sending']}"
                        f", {rate:.1f}/s, ETA {eta}")
                if not follow or left == 0:
                    typer.echo(line)
                    return
                typer.echo("\r" + line, nl=False, err=True)
                await asyncio.sleep(1)
        finally:
            await engine.dispose()

    _run(show)


@broadcast_cli.command("cancel")
def broadcast_cancel(
    broadcast: Annotated[str, typer.Argument(help="The id `tadamon broadcast` printed.")],
) -> None:
    """Stop a broadcast: what is not sent yet will not be."""
    settings = _settings()
    broadcast_id = _broadcast_id(broadcast)

    async def cancel() -> int:
        from storage import database
        from storage.outbox import Outbox

        engine = database.create_engine(settings.database_url)
        try:
            await database.upgrade(engine)
            cancelled = await Outbox(database.create_sessionmaker(engine)).cancel_broadcast(
                broadcast_id)
            if cancelled is None:
                raise BadInput(f"broadcast {broadcast_id}: no such broadcast")
            return cancelled
        finally:
            await engine.dispose()

    typer.echo(f"broadcast {broadcast_id} cancelled: {_run(cancel)} messages will not be sent")


export_cli = typer.Typer(help="CSV exports for organizers.", no_args_is_help=True)
cli.add_typer(export_cli, name="export")


def _export(out: Path, what: str, columns: list[str],
            fetch: Callable[[Sessions], Awaitable[list[dict[str, Any]]]]) -> None:
    """Migrate, read the rows, write them as CSV with `columns`, say how many."""
    settings = _settings()

    async def rows() -> list[dict[str, Any]]:
        from storage import database

        engine = database.create_engine(settings.database_url)
        try:
            await database.upgrade(engine)
            return await fetch(database.create_sessionmaker(engine))
        finally:
            await engine.dispose()

    found = _run(rows)
    with out.open("w", newline="", encoding="utf-8") as handle:
        write_csv(handle, columns, found)
    typer.echo(f"{len(found)} {what} written to {out}")


@export_cli.command("deliveries")
def export_deliveries(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
) -> None:
    """Every message the outbox sent, skipped or failed, with its recipient."""
    from storage.outbox import Outbox

    _export(out, "deliveries", ["broadcast_id", "channel", "user_id", "status", "sent_at",
                                "error", "kind", "delivery_status"],
            lambda sessions: Outbox(sessions).deliveries())


@export_cli.command("registrations")
def export_registrations(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
) -> None:
    """Every workshop registration with its status (confirmed, offered, waitlisted,
    cancelled)."""
    from storage.registrations import export_rows

    _export(out, "registrations", ["workshop_id", "channel", "user_id", "status", "created_at"],
            export_rows)


@export_cli.command("feedback")
def export_feedback(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
) -> None:
    """Every rating and comment, with who gave it and what it is about (fair, workshop or
    stand)."""
    from storage.reports import feedback_rows

    _export(out, "feedback", ["target_kind", "target_id", "rating", "comment", "language",
                              "channel", "user_id", "created_at", "fair_id", "target_name_fr",
                              "target_name_ar"],
            feedback_rows)


@export_cli.command("contacts")
def export_contacts(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
) -> None:
    """Everyone who wrote to the bot: channel, id, language, role, opted out."""
    from storage.reports import contact_rows

    _export(out, "contacts", ["channel", "user_id", "language", "role", "opted_out",
                              "created_at", "unreachable", "last_inbound_at", "exhibitor_id"],
            contact_rows)


@cli.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The folder to write (made if needed).")],
    min_ratings: Annotated[int, typer.Option(
        "--min-ratings", min=1, help="Ratings a stand needs to be ranked.")] = 1,
) -> None:
    """Registrations and feedback summary of the served fair: CSV tables and PNG charts."""
    from zoneinfo import ZoneInfo

    from bot.i18n import Renderer, load_translations
    from bot.report import figure_lines, write_report
    from storage.reports import FairReport, ReportRepository

    settings = _settings()
    if out.exists() and not out.is_dir():
        raise _bad_input(f"--out {out}: a file, not a folder")

    async def read() -> FairReport | None:
        from storage import database

        engine = database.create_engine(settings.database_url)
        try:
            await database.upgrade(engine)
            return await ReportRepository(database.create_sessionmaker(engine)).report(
                min_ratings)
        finally:
            await engine.dispose()

    found = _run(read)
    if found is None:
        raise _bad_input("no fair is loaded: import a catalogue first (tadamon import PATH)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _bad_input(f"--out {out}: {exc.strerror or exc}") from None
    renderer = Renderer(load_translations(), ZoneInfo(found.timezone))
    # Drawing charts is CPU work: done here, once the event loop has ended.
    with _progress("report", at_least=1) as progress:
        try:
            written = write_report(found, out, renderer, progress)
        except OSError as exc:
            typer.echo(f"tadamon: {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"report of {found.fair_key}: {len(written)} files written to {out}")
    for path in written:
        typer.echo(f"  {path.name}")
    for line in figure_lines(found.figures):
        typer.echo(renderer.message(line, "en"))


def main() -> None:
    """Console script entry point."""
    cli()


