"""The catalogue page: the fair loaded, and a catalogue file uploaded, checked (the import's dry
run: what it would create, update, remove and cancel, and who would be told) and then applied,
through the same import as `tadamon import`."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import BodyPartReader, web

from bot.catalogue import import_catalogue_bytes, safe_file_name
from bot.console.core import Page, _, requires
from bot.errors import CatalogueError
from storage.catalogue import (
    UPLOAD_LIMIT,
    CatalogueUpload,
    CatalogueUploads,
    ImportReport,
    loaded_fair,
)
from storage.console import ConsoleRole
from storage.models import utcnow

log = logging.getLogger(__name__)

ACTIONS = {
    "catalogue checked": _("catalogue checked"),
    "catalogue imported": _("catalogue imported"),
    "catalogue import failed": _("catalogue import failed"),
}

# What each kind of record of a catalogue reads as (named as in storage.catalogue_counts).
KINDS = {
    "categories": _("Categories"),
    "stands": _("Stands"),
    "exhibitors": _("Exhibitors"),
    "workshops": _("Workshops"),
    "reminders": _("Reminders"),
    "info answers": _("Practical answers"),
    "places": _("Places"),
}
CHUNK = 64 * 1024
MEGABYTES = UPLOAD_LIMIT // (1024 * 1024)


class Refused(Exception):
    """An upload the page answers without reading it as a catalogue."""

    def __init__(self, status: int, message: str, name: str = "", **values: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.name = name
        self.values = values


async def _read_upload(request: web.Request) -> tuple[str, bytes]:
    """The uploaded file's name and bytes, read as a stream up to UPLOAD_LIMIT (the server's
    own body limit does not apply to a streamed multipart read)."""
    too_large = Refused(413, _("This file is too large: at most {size} MB."), size=MEGABYTES)
    if request.content_type != "multipart/form-data":
        raise Refused(400, _("Choose a catalogue file to check."))
    if request.content_length is not None and request.content_length > UPLOAD_LIMIT + CHUNK:
        raise too_large
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            name = part.filename or ""
            data = bytearray()
            while chunk := await part.read_chunk(CHUNK):
                data.extend(chunk)
                if len(data) > UPLOAD_LIMIT:
                    too_large.name = _shown(name)
                    raise too_large
            return name, bytes(data)
    except Refused:
        raise
    except Exception as exc:  # a malformed body: aiohttp raises several kinds
        log.warning("console: unreadable catalogue upload (%s)", exc)
        raise Refused(400, _("The upload could not be read: send the file again.")) from None
    raise Refused(400, _("Choose a catalogue file to check."))


def _shown(name: str) -> str:
    """A refused file's name as the page and the audit log show it: printable, not too long."""
    return "".join(char if char.isprintable() else "_" for char in name)[:120]


def _file_name(name: str, data: bytes) -> str:
    if not name:
        raise Refused(400, _("Choose a catalogue file to check."))
    safe = safe_file_name(name)
    if safe is None:
        raise Refused(415, _("{name} is not a catalogue file: send one of {types}."),
                      name=_shown(name), types=".yaml, .yml, .csv, .xlsx")
    if not data:
        raise Refused(400, _("{name} is empty."), name=safe)
    return safe


async def _show(page: Page, status: int = 200, **context: Any) -> web.Response:
    async with page.console.app.sessions() as session:
        fair = await loaded_fair(session)

    def local(text: dict[str, str]) -> str:
        return text.get(page.language) or text.get("fr") or next(iter(text.values()), "")

    values: dict[str, Any] = {"report": None, "error": "", "located": False, "upload": None,
                              "done": False,
                              "again": None, "replaces": "", **context}
    report: ImportReport | None = values["report"]
    if report is not None and fair is not None and report.fair != fair.key and not values["done"]:
        values["replaces"] = fair.key
    return page.render("catalogue.html", status=status, fair=fair, kinds=KINDS, local=local,
                       megabytes=MEGABYTES, **values)


@requires(ConsoleRole.VIEWER)
async def catalogue_page(request: web.Request, page: Page) -> web.StreamResponse:
    """The fair loaded and its totals; the upload form for organizers."""
    return await _show(page)


@requires(ConsoleRole.ORGANIZER)
async def check(request: web.Request, page: Page) -> web.StreamResponse:
    """The dry run of an uploaded file: the import, rolled back; the file is kept for apply."""
    app = page.console.app
    try:
        name, data = await _read_upload(request)
        name = _file_name(name, data)
    except Refused as refused:
        values = {key: page.iso(str(value))
                  for key, value in {**refused.values, "name": refused.name}.items()}
        message = page.gettext(refused.message, **values)
        log.info("console: catalogue upload by %s refused: %s", page.actor, refused.message)
        await page.audit("catalogue checked", refused.name, message)
        return await _show(page, refused.status, error=message)
    try:
        report = await import_catalogue_bytes(app.sessions, name, data, dry_run=True)
        upload_id = await CatalogueUploads(app.redis).keep(name, data, page.actor, utcnow())
    except CatalogueError as exc:
        log.info("console: catalogue %s checked by %s: %s", name, page.actor, exc)
        await page.audit("catalogue checked", name, str(exc))
        return await _show(page, 400, error=str(exc), located=True)
    except Exception:
        log.exception("console: checking catalogue %s failed", name)
        return await _show(page, 500, error=page.gettext(_(
            "The check failed on the server; "
            "nothing was changed. The server's log says why.")))
    log.info("console: catalogue %s checked by %s: %s", name, page.actor, report.summary())
    await page.audit("catalogue checked", name, report.summary())
    return await _show(page, report=report, upload=upload_id, name=name)


@requires(ConsoleRole.ORGANIZER)
async def apply(request: web.Request, page: Page) -> web.StreamResponse:
    """The import of a file checked before (kept in Redis, so any process can apply it)."""
    app = page.console.app
    uploads = CatalogueUploads(app.redis)
    upload_id = str((await request.post()).get("upload", ""))[:100]
    upload = await uploads.get(upload_id)
    if upload is None:
        log.warning("console: %s applied an unknown or expired catalogue upload", page.actor)
        return await _show(page, 400, error=page.gettext(_(
            "This upload is unknown or has expired (files are kept an hour after their check): "
            "send the file again.")))
    token = await uploads.lock()
    if token is None:
        return await _show(page, 409, error=page.gettext(_(
            "Another catalogue import is running: try again in a minute.")))
    try:
        report = await import_catalogue_bytes(app.sessions, upload.name, upload.data)
    except CatalogueError as exc:
        log.info("console: catalogue %s not imported: %s", upload.name, exc)
        await page.audit("catalogue import failed", upload.name, str(exc))
        return await _show(page, 400, error=str(exc), located=True)
    except Exception as exc:
        log.exception("console: importing catalogue %s failed", upload.name)
        await page.audit("catalogue import failed", upload.name, type(exc).__name__)
        return await _show(page, 500, error=page.gettext(_(
            "The import failed on the server; "
            "nothing was changed. The server's log says why.")))
    finally:
        await uploads.unlock(token)
    await app.catalogue_changed()
    await uploads.mark_applied(upload.id, page.actor, utcnow())
    log.info("console: catalogue %s imported by %s: %s", upload.name, page.actor,
             report.summary())
    await page.audit("catalogue imported", upload.name, report.summary())
    return await _show(page, report=report, done=True, name=upload.name,
                       again=_again(upload))


def _again(upload: CatalogueUpload) -> CatalogueUpload | None:
    """The upload when it had been applied before this time (the page says so)."""
    return upload if upload.applied_at is not None else None


def routes() -> list[web.RouteDef]:
    """The catalogue page and its two actions."""
    return [web.get("/catalogue", catalogue_page),
            web.post("/catalogue/check", check),
            web.post("/catalogue/apply", apply)]
