"""The broadcasts pages of the organizer console: compose in French and Arabic, preview on each
channel with the audience counted per channel, send (now or later), follow live, cancel. The
checks and the queueing are `bot.broadcasting`'s, as for `tadamon broadcast`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup
from multidict import MultiDictProxy

from bot import broadcasting
from bot.console.core import HEADERS, Page, _, _n, requires
from bot.errors import CatalogueError
from bot.i18n import LANGUAGES as READER_LANGUAGES
from handlers.notices import notice
from handlers.organizers import TEXT_MAX
from storage.console import ConsoleRole
from storage.database import DATABASE_ERRORS
from storage.notices import BroadcastNotice
from storage.outbox import BroadcastSummary, ChannelReach, Outbox

log = logging.getLogger(__name__)

ACTIONS = {
    "broadcast queued": _("broadcast queued"),
    "broadcast cancelled": _("broadcast cancelled"),
}

AUDIENCES = {
    "all": _("Everyone"),
    "visitors": _("Visitors"),
    "cooperatives": _("Cooperatives"),
    "organizers": _("Organizers"),
    "lang:ar": _("Arabic speakers"),
    "lang:fr": _("French speakers"),
}
WORKSHOP = "workshop:"
CHANNELS = ("telegram", "whatsapp", "web")
STATUSES = {
    "scheduled": _("scheduled"),
    "queued": _("waiting to be sent"),
    "sending": _("being sent"),
    "done": _("finished"),
    "cancelled": _("cancelled"),
}
REQUIRED = {
    "audience": _("Choose who receives the broadcast."),
    "text_fr": _("Write the French text."),
    "text_ar": _("Write the Arabic text."),
}
BROADCAST_ID = re.compile(r"[1-9][0-9]{0,17}")
TICK = 1.0
"""Seconds between two progress events."""
FIELD_MAX = 20_000
"""A form field longer than this is cut: far past what a broadcast holds."""


@dataclass(frozen=True, slots=True)
class Written:
    """The compose form as the organizer filled it in, kept when it is shown again."""

    text_fr: str = ""
    text_ar: str = ""
    audience: str = "all"
    at: str = ""
    urgent: bool = False

    @classmethod
    def of(cls, form: MultiDictProxy[Any]) -> Written:
        def field(name: str) -> str:
            value = form.get(name, "")
            return value[:FIELD_MAX] if isinstance(value, str) else ""

        return cls(field("text_fr"), field("text_ar"), field("audience"), field("at").strip(),
                   bool(field("urgent")))

    def draft(self) -> broadcasting.Draft:
        """The shared checks of the form (BroadcastInputError saying what is wrong)."""
        return broadcasting.read(self.audience, self.text_fr, self.text_ar, self.at or None,
                                 self.urgent)


# ---------------------------------------------------------------------- pages


@requires(ConsoleRole.VIEWER)
async def list_page(request: web.Request, page: Page) -> web.StreamResponse:
    broadcasts = await Outbox(page.console.app.sessions).broadcasts()
    titles = await _workshop_titles(page)
    return page.render("broadcasts.html", broadcasts=[
        _shown(page, broadcast, titles) for broadcast in broadcasts])


@requires(ConsoleRole.ORGANIZER)
async def compose_page(request: web.Request, page: Page) -> web.StreamResponse:
    return await _compose(page, Written())


@requires(ConsoleRole.ORGANIZER)
async def preview(request: web.Request, page: Page) -> web.StreamResponse:
    form = await request.post()
    written = Written.of(form)
    if form.get("edit"):  # back from the preview to change it
        return await _compose(page, written)
    try:
        planned = await _plan(page, written)
    except _Refused as refused:
        return await _compose(page, written, refused.message, refused.field)
    reach = await _reach(page, planned.draft.audience)
    return page.render(
        "broadcast_preview.html", written=written, planned=planned,
        audience=await _audience_label(page, planned.draft.audience),
        at=page.when(planned.when, planned.timezone), now=not written.at,
        previews=await _previews(page, planned.draft), reach=reach,
        recipients=sum(counts.reachable for counts in reach.values()))


@requires(ConsoleRole.ORGANIZER)
async def send(request: web.Request, page: Page) -> web.StreamResponse:
    written = Written.of(await request.post())
    try:
        planned = await _plan(page, written)
    except _Refused as refused:
        return await _compose(page, written, refused.message, refused.field)
    broadcast_id, count = await broadcasting.queue(page.console.app.sessions, planned)
    log.info("console: %s queued broadcast %s for %s recipients", page.actor, broadcast_id,
             count)
    await page.audit("broadcast queued", str(broadcast_id),
                     f"{planned.draft.audience}, {count}")
    raise web.HTTPSeeOther(f"/admin/broadcasts/{broadcast_id}")


@requires(ConsoleRole.VIEWER)
async def broadcast_page(request: web.Request, page: Page) -> web.StreamResponse:
    broadcast = await _broadcast(request, page)
    if broadcast is None:
        return page.error(404, _("There is no such broadcast."))
    titles = await _workshop_titles(page)
    return page.render("broadcast.html", broadcast=_shown(page, broadcast, titles),
                       progress=_progress(page, broadcast))


@requires(ConsoleRole.VIEWER)
async def events(request: web.Request, page: Page) -> web.StreamResponse:
    """The broadcast's progress as server-sent events, one a second, the last (`done`) once
    nothing waits; the stream ends then, or when the browser goes."""
    broadcast_id = _broadcast_id(request)
    outbox = Outbox(page.console.app.sessions)
    if broadcast_id is None or not await outbox.broadcast_exists(broadcast_id):
        return page.error(404, _("There is no such broadcast."))
    response = web.StreamResponse(headers={
        **HEADERS, "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    started, first_done = time.monotonic(), None
    try:
        while True:
            try:
                broadcast = await outbox.broadcast(broadcast_id)
            except DATABASE_ERRORS as exc:
                log.warning("console: progress of broadcast %s not read (%s); trying again",
                            broadcast_id, exc)
                await asyncio.sleep(TICK)
                continue
            if broadcast is None:  # it cannot go, but a database restored from a copy may
                break
            first_done = broadcast.done if first_done is None else first_done
            elapsed = time.monotonic() - started
            rate = (broadcast.done - first_done) / elapsed if elapsed >= TICK else 0.0
            state = _progress(page, broadcast, rate)
            kind = "done" if broadcast.finished else "progress"
            await response.write(f"event: {kind}\ndata: {json.dumps(state)}\n\n".encode())
            if broadcast.finished:
                break
            await asyncio.sleep(TICK)
    except ConnectionError:
        log.debug("console: the browser following broadcast %s went", broadcast_id)
        return response
    except asyncio.CancelledError:  # the server stops following when the browser goes
        log.debug("console: the browser following broadcast %s went", broadcast_id)
        raise
    await response.write_eof()
    return response


@requires(ConsoleRole.ORGANIZER)
async def cancel(request: web.Request, page: Page) -> web.StreamResponse:
    broadcast_id = _broadcast_id(request)
    cancelled = None
    if broadcast_id is not None:
        cancelled = await Outbox(page.console.app.sessions).cancel_broadcast(broadcast_id)
    if broadcast_id is None or cancelled is None:
        return page.error(404, _("There is no such broadcast."))
    log.info("console: %s cancelled broadcast %s, %s messages not sent", page.actor,
             broadcast_id, cancelled)
    await page.audit("broadcast cancelled", str(broadcast_id), str(cancelled))
    raise web.HTTPSeeOther(f"/admin/broadcasts/{broadcast_id}")


# ---------------------------------------------------------------------- checking


class _Refused(Exception):
    """What the organizer wrote cannot be sent: the message for the page, and which field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


async def _plan(page: Page, written: Written) -> broadcasting.Planned:
    """The form through the shared checks; _Refused with the reason in the page's language."""
    app = page.console.app
    try:
        return await broadcasting.plan(app.sessions, written.draft(), app.settings.timezone)
    except broadcasting.BroadcastInputError as exc:
        log.info("console: broadcast refused: %s", exc)
        raise _Refused(_refusal(page, exc), exc.field) from None
    except CatalogueError as exc:
        log.info("console: broadcast refused: %s", exc)
        raise _Refused(page.gettext(_("No fair is loaded: import a catalogue first.")),
                       "fair") from None


def _refusal(page: Page, error: broadcasting.BroadcastInputError) -> str:
    """What the console says of a refused broadcast."""
    values = error.values
    if error.reason == "required":
        return page.gettext(REQUIRED[error.field])
    if error.reason == "too_long":
        forms = (_n("The French text has {n} character; a broadcast holds at most {limit}.",
                    "The French text has {n} characters; a broadcast holds at most {limit}.")
                 if error.field == "text_fr" else
                 _n("The Arabic text has {n} character; a broadcast holds at most {limit}.",
                    "The Arabic text has {n} characters; a broadcast holds at most {limit}."))
        return page.ngettext(forms, int(values["length"]), limit=page.iso(str(values["limit"])))
    if error.reason == "time":
        return page.gettext(_("“{at}” is not a date and time."),
                            at=page.iso(str(values["at"])[:40]))
    if error.reason == "past":
        return page.gettext(_("This time is already past: it is {now} at the fair. Leave the "
                              "time empty to send now."),
                            now=page.when(values["now"], str(values["timezone"])))
    if error.reason == "workshop":
        return page.gettext(_("The fair has no workshop {key}."),
                            key=page.iso(str(values["workshop"])[:100]))
    return page.gettext(_("This audience is unknown: choose one of the list."))


async def _compose(page: Page, written: Written, error: str = "", field: str = ""
                   ) -> web.Response:
    """The compose form, filled in as it was, with what is wrong if anything."""
    options = [(key, page.gettext(label)) for key, label in AUDIENCES.items()]
    for key, title in (await _workshop_titles(page, upcoming=True)).items():
        options.append((WORKSHOP + key, title))
    if written.audience and written.audience not in dict(options):
        options.append((written.audience, written.audience))
    fair = await page.console.app.engine.catalogue.fair()
    zone = page.console.app.settings.timezone if fair is None else fair.timezone
    return page.render("broadcast_new.html", status=400 if error else 200, written=written,
                       error=error, field=field, options=options,
                       text_max=TEXT_MAX, zone=zone)


# ---------------------------------------------------------------------- what it shows


async def _workshop_titles(page: Page, upcoming: bool = False) -> dict[str, str]:
    """The fair's workshops by key, with their title in the page's language (the French one
    in English); only those not cancelled nor over when `upcoming`."""
    catalogue = page.console.app.engine.catalogue
    fair = await catalogue.fair()
    if fair is None:
        return {}
    now = dt.datetime.now(dt.UTC)
    language = "fr" if page.language == "en" else page.language
    workshops = sorted(await catalogue.workshops(fair.id),
                       key=lambda workshop: (workshop.starts_at, workshop.id))
    return {workshop.key: workshop.title.get(language) or next(iter(workshop.title.values()),
                                                               workshop.key)
            for workshop in workshops
            if not upcoming or (not workshop.cancelled and workshop.ends_at > now)}


async def _audience_label(page: Page, audience: str) -> str:
    return _label(page, audience, await _workshop_titles(page))


def _label(page: Page, audience: str, titles: dict[str, str]) -> str:
    if audience in AUDIENCES:
        return page.gettext(AUDIENCES[audience])
    key = audience.removeprefix(WORKSHOP)
    return page.gettext(_("Registrants of the workshop “{title}”"),
                        title=titles.get(key, key))


def _status(broadcast: BroadcastSummary) -> str:
    """What a broadcast is at: cancelled, finished, being sent, scheduled or waiting."""
    if broadcast.status == "cancelled":
        return "cancelled"
    if broadcast.finished:
        return "done"
    if broadcast.done:
        return "sending"
    if broadcast.scheduled_at > dt.datetime.now(dt.UTC):
        return "scheduled"
    return "queued"


def _shown(page: Page, broadcast: BroadcastSummary, titles: dict[str, str]) -> dict[str, Any]:
    status = _status(broadcast)
    return {"id": broadcast.id, "audience": _label(page, broadcast.audience, titles),
            "text": broadcast.text, "created": page.when(broadcast.created_at),
            "scheduled": page.when(broadcast.scheduled_at), "urgent": broadcast.urgent,
            "status": status, "status_label": page.gettext(STATUSES[status]),
            "counts": broadcast.counts, "pending": broadcast.pending,
            "finished": broadcast.finished, "cancelled": broadcast.status == "cancelled"}


def _progress(page: Page, broadcast: BroadcastSummary, rate: float | None = None
              ) -> dict[str, Any]:
    """What the page and its events show of a broadcast's progress."""
    counts = broadcast.counts
    return {"sent": counts["sent"], "failed": counts["failed"], "skipped": counts["skipped"],
            "pending": broadcast.pending, "done": broadcast.done,
            "value": broadcast.done if broadcast.total else 1,
            "max": broadcast.total or 1, "percent": page.percent(broadcast.ratio),
            "rate": "–" if rate is None else page.gettext(
                _("{rate} per second"), rate=page.iso(page.number(round(rate, 1)))),
            "finished": broadcast.finished,
            "status": page.gettext(STATUSES[_status(broadcast)])}


def _broadcast_id(request: web.Request) -> int | None:
    text = request.match_info.get("id", "")
    return int(text) if BROADCAST_ID.fullmatch(text) else None


async def _broadcast(request: web.Request, page: Page) -> BroadcastSummary | None:
    broadcast_id = _broadcast_id(request)
    if broadcast_id is None:
        log.info("console: %r is not a broadcast id", request.match_info.get("id", "")[:40])
        return None
    return await Outbox(page.console.app.sessions).broadcast(broadcast_id)


async def _reach(page: Page, audience: str) -> dict[str, ChannelReach]:
    """The audience's counts per channel, the three channels always shown."""
    # The channels' modules come with the first preview: a process whose console never
    # previews a broadcast does not load aiogram for it.
    from bot.channels import whatsapp

    templates = page.console.app.settings.whatsapp_templates

    def templated(language: str | None) -> bool:
        # The worker sends to an unknown language in French.
        reader = language if language in READER_LANGUAGES else "fr"
        return whatsapp.template_for(templates, BroadcastNotice.template, reader) is not None

    reach = await Outbox(page.console.app.sessions).audience_reach(
        audience, dt.datetime.now(dt.UTC), whatsapp.WINDOW - whatsapp.WINDOW_MARGIN, templated)
    return {channel: reach.pop(channel, ChannelReach()) for channel in CHANNELS} | reach


async def _previews(page: Page, draft: broadcasting.Draft) -> list[dict[str, Any]]:
    """The broadcast in each language as each channel sends it: the worker's rendering of its
    notice, then Telegram's HTML, WhatsApp's text (or its template outside the 24-hour
    window) and the web chat's text."""
    from bot.channels import telegram, whatsapp

    app = page.console.app
    renderer = await app.engine.fair_renderer()
    reply = notice(BroadcastNotice(text=draft.text, urgent=draft.urgent))
    previews = []
    for language in broadcasting.LANGUAGES:
        text = renderer.render(reply, language).text
        template = whatsapp.template_for(app.settings.whatsapp_templates,
                                         BroadcastNotice.template, language)
        previews.append({
            "language": language,
            # Telegram's pieces are HTML-escaped by its own formatting: shown as it shows them.
            "telegram": [Markup(piece) for piece in telegram.html_pieces(text)],
            "whatsapp": whatsapp.split_text(text),
            "template": None if template is None else {
                "name": template[0], "code": template[1],
                "text": whatsapp.template_text(text)},
            "web": text,
        })
    return previews


def routes() -> list[web.RouteDef]:
    return [web.get("/broadcasts", list_page), web.get("/broadcasts/new", compose_page),
            web.post("/broadcasts/preview", preview), web.post("/broadcasts", send),
            web.get("/broadcasts/{id}", broadcast_page),
            web.get("/broadcasts/{id}/events", events),
            web.post("/broadcasts/{id}/cancel", cancel)]
