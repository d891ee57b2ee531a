"""Exports and the report: the files of `tadamon export` and `tadamon report`, downloaded.

Each file is made by the command line's own code (bot.csvfiles.EXPORTS, bot.report.write_report)
and is the same, byte for byte. Files that name people (the exports, the exhibitors' survey
answers, and so the whole report) are for organizers; charts and the report's statistics are
for viewers too. Each export also comes anonymous (`tadamon export NAME --anonymous`: a
pseudonym in place of each id, no name or number), to share: for organizers as well, since
comments may still say more than their author meant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import time
import weakref
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bot.console.core import Console, Page, _, requires
from bot.csvfiles import EXPORTS, csv_text
from storage.console import ConsoleRole
from storage.reports import ReportRepository

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

ACTIONS = {
    "export downloaded": _("export downloaded"),
    "anonymous export downloaded": _("anonymous export downloaded"),
    "report downloaded": _("report downloaded"),
}

REPORT_SECONDS = 60.0
"""How long a report made for the page is served before it is made again: the page's charts
ask for it together, and drawing them takes seconds."""


@dataclass(frozen=True, slots=True)
class File:
    """A file the page offers: what it is called there, and whether it names people."""

    label: str
    about: str = ""
    personal: bool = False


# The exports of `tadamon export` (they name people), then two tables of the report that
# count messages and questions (no person: questions are stored cleaned of personal data).
DOWNLOADS: dict[str, File] = {
    "registrations": File(_("Workshop registrations"), _(
        "Every registration and its status: confirmed, offered a freed seat, waiting list, "
        "cancelled."), personal=True),
    "feedback": File(_("Ratings and comments"), _(
        "Every rating and comment, with who gave it and what it is about."), personal=True),
    "contacts": File(_("Contacts"), _(
        "Everyone who wrote to the bot: channel, language, role, stopped or not."),
        personal=True),
    "deliveries": File(_("Messages sent"), _(
        "Every message sent, skipped or failed, with its recipient and the error."),
        personal=True),
    "intents": File(_("Messages per intent"), _(
        "How many messages asked for what, per day, channel and language.")),
    "questions": File(_("Unanswered questions"), _(
        "What people asked that was not understood, personal data removed, most frequent "
        "first.")),
}
REPORT_DOWNLOADS = ("intents", "questions")
"""Downloads that are tables of the report."""
ANONYMOUS = _("Anonymous version")
ANONYMOUS_SUFFIX = "anonymous"
"""In the file name of an anonymous export: `registrations-anonymous-2026-12-13.csv`."""

CHARTS: dict[str, File] = {
    "fair_ratings": File(_("Rating of the fair"), _(
        "Bar chart: how many people gave the fair 1, 2, 3, 4 or 5 stars.")),
    "workshop_ratings": File(_("Ratings of each workshop"), _(
        "Bar chart: how many ratings each workshop received, by number of stars.")),
    "stand_ratings": File(_("Stands by average rating"), _(
        "Bar chart: the average rating of each stand, out of 5.")),
    "workshop_registrations": File(_("Registrations per workshop"), _(
        "Bar chart: each workshop's registrations against its capacity, and the share of "
        "seats taken.")),
    "contacts_per_day": File(_("New contacts per day"), _(
        "Bar charts: new contacts per day, by channel and by language.")),
}

TABLES: dict[str, File] = {
    "key_figures": File(_("Key figures")),
    "fair_ratings": File(_("Rating of the fair")),
    "workshop_ratings": File(_("Ratings of each workshop")),
    "stand_ratings": File(_("Stands by average rating")),
    "workshop_registrations": File(_("Registrations per workshop")),
    "contacts_by_channel": File(_("New contacts per day, by channel")),
    "contacts_by_language": File(_("New contacts per day, by language")),
    # One row per exhibitor member's answer, with their own words.
    "exhibitor_survey": File(_("Exhibitors' survey answers"), personal=True),
    "intents": File(_("Messages per intent")),
    "questions": File(_("Unanswered questions")),
}

ONLY_ORGANIZERS = _("Only organizers may do this; your account can only look.")
NO_FILE = _("There is no such file.")
NO_FAIR = _("No fair is loaded yet: import a catalogue first.")


# ---- the report, made once for a while ----------------------------------------------------

class ReportCache:
    """The report files of one console, made by `tadamon report`'s code in a thread and kept
    REPORT_SECONDS; requests that come while it is made wait for it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.files: Mapping[str, bytes] = {}
        self.made = -REPORT_SECONDS

    async def get(self, app: App) -> Mapping[str, bytes] | None:
        """The report's files by name; None when no fair is loaded."""
        async with self.lock:
            if self.files and time.monotonic() - self.made < REPORT_SECONDS:
                return self.files
            found = await ReportRepository(app.sessions).report()
            if found is None:
                return None
            from bot.report import report_files  # matplotlib: loaded on first use

            started = time.monotonic()
            self.files = await asyncio.to_thread(report_files, found,
                                                 app.renderer.translations)
            self.made = time.monotonic()
            log.info("console: report of %s made in %.1f s", found.fair_key,
                     self.made - started)
            return self.files


_caches: weakref.WeakKeyDictionary[Console, ReportCache] = weakref.WeakKeyDictionary()


async def _report(page: Page) -> Mapping[str, bytes] | None:
    cache = _caches.setdefault(page.console, ReportCache())
    return await cache.get(page.console.app)


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---- pages and files ----------------------------------------------------------------------

def _dated(page: Page, name: str, suffix: str) -> str:
    """`registrations-2026-12-13.csv`: the day of the download, in the fair's time zone."""
    return f"{name}-{dt.datetime.now(page.zone).date().isoformat()}.{suffix}"


def _attachment(body: bytes, filename: str, content_type: str) -> web.Response:
    return web.Response(body=body, headers={
        "Content-Type": content_type, "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{filename}"'})


async def _downloaded(page: Page, action: str, subject: str, filename: str) -> None:
    """Write the download in the audit log (a HEAD request downloads nothing)."""
    if page.request.method == "GET":
        await page.audit(action, subject, filename)


def _organizer(page: Page) -> bool:
    return page.account is not None and page.account.organizer


def _refused(page: Page, status: int, message: str, what: str) -> web.Response:
    log.info("console: %s refused %s (%s)", page.actor, what, status)
    return page.error(status, message)


@requires(ConsoleRole.VIEWER)
async def exports_page(request: web.Request, page: Page) -> web.StreamResponse:
    fair = await page.console.app.engine.catalogue.fair()
    return page.render("exports.html", downloads=DOWNLOADS, charts=CHARTS, tables=TABLES,
                       fair_loaded=fair is not None, no_fair=NO_FAIR, exports=EXPORTS,
                       anonymous=ANONYMOUS)


@requires(ConsoleRole.VIEWER)
async def download_export(request: web.Request, page: Page) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in DOWNLOADS:
        return _refused(page, 404, NO_FILE, f"export {name[:40]!r}")
    if DOWNLOADS[name].personal and not _organizer(page):
        return _refused(page, 403, ONLY_ORGANIZERS, f"export {name}")
    if name in REPORT_DOWNLOADS:
        files = await _report(page)
        if files is None:
            return _refused(page, 404, NO_FAIR, f"export {name}")
        body = files[f"{name}.csv"]
    else:
        export = EXPORTS[name]
        body = csv_text(export.columns, await export.rows(page.console.app.sessions)
                        ).encode("utf-8")
    filename = _dated(page, name, "csv")
    await _downloaded(page, "export downloaded", name, filename)
    return _attachment(body, filename, "text/csv; charset=utf-8")


@requires(ConsoleRole.VIEWER)
async def download_anonymous_export(request: web.Request, page: Page) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in EXPORTS:
        return _refused(page, 404, NO_FILE, f"anonymous export {name[:40]!r}")
    if not _organizer(page):
        return _refused(page, 403, ONLY_ORGANIZERS, f"anonymous export {name}")
    export = EXPORTS[name]
    body = csv_text(export.columns, await export.rows(page.console.app.sessions,
                                                      anonymous=True)).encode("utf-8")
    filename = _dated(page, f"{name}-{ANONYMOUS_SUFFIX}", "csv")
    await _downloaded(page, "anonymous export downloaded", name, filename)
    return _attachment(body, filename, "text/csv; charset=utf-8")


@requires(ConsoleRole.VIEWER)
async def report_table(request: web.Request, page: Page) -> web.StreamResponse:
    name = request.match_info["table"]
    if name not in TABLES:
        return _refused(page, 404, NO_FILE, f"report table {name[:40]!r}")
    if TABLES[name].personal and not _organizer(page):
        return _refused(page, 403, ONLY_ORGANIZERS, f"report table {name}")
    files = await _report(page)
    if files is None:
        return _refused(page, 404, NO_FAIR, f"report table {name}")
    filename = _dated(page, name, "csv")
    await _downloaded(page, "report downloaded", f"{name}.csv", filename)
    return _attachment(files[f"{name}.csv"], filename, "text/csv; charset=utf-8")


@requires(ConsoleRole.VIEWER)
async def report_chart(request: web.Request, page: Page) -> web.StreamResponse:
    name = request.match_info["chart"]
    if name not in CHARTS:
        return _refused(page, 404, NO_FILE, f"chart {name[:40]!r}")
    files = await _report(page)
    if files is None:
        return _refused(page, 404, NO_FAIR, f"chart {name}")
    # Statistics, shown in the page: kept by the browser as long as the report is here.
    return web.Response(body=files[f"{name}.png"], content_type="image/png", headers={
        "Cache-Control": f"private, max-age={int(REPORT_SECONDS)}"})


@requires(ConsoleRole.ORGANIZER)
async def report_zip(request: web.Request, page: Page) -> web.StreamResponse:
    files = await _report(page)
    if files is None:
        return _refused(page, 404, NO_FAIR, "report.zip")
    body = await asyncio.to_thread(_zip, files)
    filename = _dated(page, "report", "zip")
    await _downloaded(page, "report downloaded", "report.zip", filename)
    return _attachment(body, filename, "application/zip")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/exports", exports_page),
        web.get("/exports/report.zip", report_zip),
        web.get("/exports/report/{chart}.png", report_chart),
        web.get("/exports/report/{table}.csv", report_table),
        web.get("/exports/anonymous/{name}.csv", download_anonymous_export),
        web.get("/exports/{name}.csv", download_export),
    ]
