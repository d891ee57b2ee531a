"""What organizers take away: `tadamon export`, `report`, `coop-codes` and `posters`. Each reads
the database (coop-codes also makes missing codes) and none needs Redis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot import links
from bot.cli import common
from bot.csvfiles import EXPORTS, Export, write_csv
from bot.settings import Settings

if TYPE_CHECKING:
    from storage.cooperatives import CoopCode
    from storage.repositories import CatalogueSnapshot

export_cli = typer.Typer(help="CSV exports for organizers.", no_args_is_help=True)

# What a link names while its platform is not configured (coop-codes still lists the codes).
NO_BOT, NO_NUMBER = "<bot>", "<number>"


AnonymousOption = Annotated[bool, typer.Option(
    "--anonymous", help="A stable pseudonym in place of each person's id, and no name or "
                        "number in any column: a file to share.")]


def _export(out: Path, export: Export, anonymous: bool) -> None:
    """Migrate, read the export's rows, write them as CSV with its columns, say how many."""
    settings = common.settings()

    async def rows() -> list[dict[str, Any]]:
        async with common.open_database(settings) as sessions:
            return await export.rows(sessions, anonymous=anonymous)

    found = common.run(rows)
    with out.open("w", newline="", encoding="utf-8") as handle:
        write_csv(handle, export.columns, found)
    typer.echo(f"{len(found)} {export.name} written to {out}"
               + (" (anonymous)" if anonymous else ""))


@export_cli.command("deliveries")
def export_deliveries(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    anonymous: AnonymousOption = False,
) -> None:
    """Every message the outbox sent, skipped or failed, with its recipient."""
    _export(out, EXPORTS["deliveries"], anonymous)


@export_cli.command("registrations")
def export_registrations(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    anonymous: AnonymousOption = False,
) -> None:
    """Every workshop registration with its status (confirmed, offered, waitlisted,
    cancelled)."""
    _export(out, EXPORTS["registrations"], anonymous)


@export_cli.command("feedback")
def export_feedback(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    anonymous: AnonymousOption = False,
) -> None:
    """Every rating and comment, with who gave it and what it is about (fair, workshop or
    stand)."""
    _export(out, EXPORTS["feedback"], anonymous)


@export_cli.command("contacts")
def export_contacts(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    anonymous: AnonymousOption = False,
) -> None:
    """Everyone who wrote to the bot: channel, id, language, role, opted out."""
    _export(out, EXPORTS["contacts"], anonymous)


def report(
    out: Annotated[Path, typer.Option("--out", help="The folder to write (made if needed).")],
    min_ratings: Annotated[int, typer.Option(
        "--min-ratings", min=1, help="Ratings a stand needs to be ranked.")] = 1,
) -> None:
    """Registrations and feedback summary of the served fair: CSV tables and PNG charts."""
    from bot.i18n import load_translations
    from bot.report import report_renderer, write_report
    from handlers.figures import figure_lines
    from storage.reports import FairReport, ReportRepository

    settings = common.settings()
    if out.exists() and not out.is_dir():
        raise common.bad_input(f"--out {out}: a file, not a folder")

    async def read() -> FairReport | None:
        async with common.open_database(settings) as sessions:
            return await ReportRepository(sessions).report(min_ratings)

    found = common.run(read)
    if found is None:
        raise common.bad_input("no fair is loaded: import a catalogue first (tadamon import "
                               "PATH)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise common.bad_input(f"--out {out}: {exc.strerror or exc}") from None
    renderer = report_renderer(found, load_translations())
    # Drawing charts is CPU work: done here, once the event loop has ended.
    with common.progress("report", at_least=1) as progress:
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


def coop_codes(
    out: Annotated[Path | None, typer.Option("--out", help="Write a CSV file.")] = None,
    revoke: Annotated[str | None, typer.Option(
        "--revoke", help="An exhibitor id whose code is replaced (the old one stops "
                         "working).")] = None,
) -> None:
    """One link code per exhibitor, with its Telegram and WhatsApp deep links, and its web
    chat link when TADAMON_PUBLIC_URL is set."""
    settings = common.settings()
    telegram_on = settings.telegram_token is not None
    whatsapp_on = settings.whatsapp_token is not None
    public_url = settings.public_url
    if not telegram_on and not whatsapp_on and public_url is None:
        # A code is handed out with its link: a link to no channel would be a placeholder.
        raise common.bad_input("coop-codes need a channel to link to: set "
                               "TADAMON_TELEGRAM_TOKEN, TADAMON_WHATSAPP_TOKEN or "
                               "TADAMON_PUBLIC_URL (the web chat)")

    async def work() -> tuple[list[CoopCode], str, str]:
        from storage.cooperatives import CooperativeRepository

        async with common.open_database(settings) as sessions:
            codes = await CooperativeRepository(sessions).codes(revoke)
        bot, number = await _link_targets(settings)
        return codes, bot, number

    codes, bot, number = common.run(work)
    if revoke is not None and not any(code.exhibitor == revoke for code in codes):
        raise common.bad_input(f"--revoke: unknown exhibitor {revoke!r}")
    columns = ["exhibitor_id", "name_fr", "name_ar", "stand", "code", "telegram_link",
               "whatsapp_link", "web_link"]
    # A channel that is off gets an empty cell, never a link to nowhere.
    rows = [{"exhibitor_id": code.exhibitor, "name_fr": code.name.get("fr", ""),
             "name_ar": code.name.get("ar", ""), "stand": code.stand or "", "code": code.code,
             "telegram_link": links.telegram(bot, links.cooperative(code.code))
             if telegram_on else "",
             "whatsapp_link": links.whatsapp(number, links.cooperative(code.code))
             if whatsapp_on else "",
             "web_link": links.web(public_url, links.cooperative(code.code))
             if public_url else ""}
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
    """The Telegram bot's name and the WhatsApp number, asked of the platforms (through their
    channel modules) when set; NO_BOT and NO_NUMBER otherwise or when they do not answer."""
    bot, number = None, None
    if settings.telegram_token is not None:
        from bot.channels.telegram import bot_username

        bot = await bot_username(settings)
    if settings.whatsapp_token is not None:
        from bot.channels.whatsapp import display_number

        number = await display_number(settings)
    return (NO_BOT if bot is None else bot), (NO_NUMBER if number is None else number)


def posters(
    out: Annotated[Path, typer.Option("--out", help="The PDF file to write.")],
) -> None:
    """One printable page per stand: its name in both scripts and QR codes to its Telegram
    and WhatsApp deep links, and to the web chat when TADAMON_PUBLIC_URL is set."""
    from bot.posters import SCAN_INSTRUCTION, PosterPage, write_posters

    settings = common.settings()
    if out.is_dir() or not out.parent.is_dir():
        raise common.bad_input(f"--out {out}: not a file in an existing folder")
    telegram_on = settings.telegram_token is not None
    whatsapp_on = settings.whatsapp_token is not None
    public_url = settings.public_url
    if not telegram_on and not whatsapp_on and public_url is None:
        # A poster without a working code must not be printed.
        raise common.bad_input("posters need a channel to link to: set TADAMON_TELEGRAM_TOKEN, "
                               "TADAMON_WHATSAPP_TOKEN or TADAMON_PUBLIC_URL")

    async def read() -> tuple[CatalogueSnapshot | None, str, str]:
        from storage.repositories import CatalogueRepository

        async with common.open_database(settings) as sessions:
            snapshot = await CatalogueRepository(sessions).snapshot()
        if snapshot is None:
            return None, "", ""
        bot, number = await _link_targets(settings)
        return snapshot, bot, number

    snapshot, bot, number = common.run(read)
    if snapshot is None:
        raise common.bad_input("no fair is loaded: import a catalogue first (tadamon import "
                               "PATH)")
    # Their answers are what the codes link to: without one, that code cannot be made.
    silent = [f"{name} ({base})" for name, on, answer, unset, base in (
        ("Telegram", telegram_on, bot, NO_BOT, settings.telegram_api_base),
        ("WhatsApp", whatsapp_on, number, NO_NUMBER, settings.whatsapp_api_base),
    ) if on and answer in ("", unset)]
    if silent:
        typer.echo(f"tadamon: {' and '.join(silent)} did not answer: no poster written",
                   err=True)
        raise typer.Exit(1)
    from bot.i18n import Renderer, load_translations

    renderer = Renderer(load_translations(), settings.zone)
    instruction = {language: renderer.message(SCAN_INSTRUCTION, language)
                   for language in ("fr", "ar")}
    pages = [
        PosterPage(
            stand=stand.number, zone=stand.zone,
            exhibitors=tuple(exhibitor.name for exhibitor in stand.exhibitors),
            fair=snapshot.fair.name,
            telegram=links.telegram(bot, links.stand(stand.number)) if telegram_on else None,
            whatsapp=links.whatsapp(number, links.stand(stand.number)) if whatsapp_on else None,
            instruction=instruction,
            web=links.web(public_url, links.stand(stand.number)) if public_url else None,
        )
        for stand in snapshot.stands.values() if stand.exhibitors
    ]
    skipped = len(snapshot.stands) - len(pages)
    if not pages:
        raise common.bad_input(f"no stand of the fair has an exhibitor: no poster to print "
                               f"({skipped} {common.plural(skipped, 'stand')})")
    # Laying out pages is CPU work: done here, once the event loop has ended.
    with common.progress("posters", at_least=1) as progress:
        try:
            written = write_posters(pages, out, progress)
        except OSError as exc:
            typer.echo(f"tadamon: {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{written} {common.plural(written, 'poster')} written to {out} ({skipped} "
               f"{common.plural(skipped, 'stand')} without an exhibitor skipped)")
