"""The workshops pages of the organizer console: each workshop's seats, waiting list and who
came; the registrants' CSV; cancelling a workshop with its notices; and check-in at the door,
by a button in the registrants' list or by the code (typed, or scanned from the QR code of the
chat's confirmation).

Checking in is open to viewers: door staff need it, and it neither shows personal data nor
tells anyone anything (it is audited, and undone in one tap). Cancelling and the CSV (personal
data) are the organizers'."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from bot.console.core import Page, _, _n, requires
from bot.csvfiles import write_csv
from storage.console import ConsoleRole
from storage.models import RegistrationStatus
from storage.registrations import (
    CheckIn,
    CheckInOutcome,
    Registrant,
    check_in,
    find_registrant,
    normalize_checkin_code,
    registrants,
    undo_check_in,
)
from storage.workshops import (
    WorkshopLine,
    cancel_by_organizers,
    served_fair_id,
    workshop_lines,
)

log = logging.getLogger(__name__)

ACTIONS = {
    "checked in": _("checked in"),
    "check-in undone": _("check-in undone"),
    "workshop cancelled": _("workshop cancelled"),
    "registrants downloaded": _("registrants downloaded"),
}

STATUSES = {
    RegistrationStatus.CONFIRMED: _("confirmed"),
    RegistrationStatus.OFFERED: _("seat offered"),
    RegistrationStatus.WAITLISTED: _("waiting list"),
    RegistrationStatus.CANCELLED: _("cancelled"),
}

CSV_COLUMNS = ("workshop_id", "channel", "user_id", "status", "created_at", "checked_in_at")
CODE_INPUT_MAX = 600  # a code, or the address of the QR code that carries it
KEY_MAX = 100


def local(values: Mapping[str, Any] | None, language: str) -> str:
    """A catalogue text in the page's language, else French, else any."""
    values = values or {}
    for candidate in (language, "fr", "ar", "en"):
        text = values.get(candidate)
        if text:
            return str(text)
    return ""


def code_of(text: str) -> str | None:
    """The check-in code typed or scanned: the code itself, or the console address the QR code
    carries (`.../admin/checkin?code=XXXX`)."""
    text = text.strip()[:CODE_INPUT_MAX]
    if "code=" in text:
        found = parse_qs(urlsplit(text).query).get("code") or parse_qs(text.split("?")[-1]).get(
            "code")
        text = found[0] if found else ""
    return normalize_checkin_code(text)


def _registration_id(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


class Door:
    """What the workshops pages show of a check-in, in the page's language."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def who(self, registrant: Registrant) -> str:
        code = f" · {registrant.checkin_code}" if registrant.checkin_code else ""
        return self.page.iso(self.page.person(registrant.channel, registrant.user_id) + code)

    def time(self, registrant: Registrant) -> str:
        moment = registrant.checked_in_at
        if moment is None:
            return ""
        return self.page.iso(moment.astimezone(self.page.zone).strftime("%H:%M"))

    def message(self, result: CheckIn) -> tuple[str, bool]:
        """The sentence saying what happened, and whether it went well."""
        page, found = self.page, result.registrant
        if found is None:
            return page.gettext(_("No registration has this code: check it and try again.")), False
        title = local(found.title, page.language)
        who = self.who(found)
        outcome = result.outcome
        if outcome is CheckInOutcome.CHECKED_IN:
            return page.gettext(_("{who} is checked in for {title}."), who=who, title=title), True
        if outcome is CheckInOutcome.ALREADY:
            return page.gettext(_("{who} was already checked in for {title}, at {time}."),
                                who=who, title=title, time=self.time(found)), True
        if outcome is CheckInOutcome.UNDONE:
            return page.gettext(_("Check-in of {who} undone."), who=who), True
        if outcome is CheckInOutcome.NOT_CHECKED_IN:
            return page.gettext(_("{who} was not checked in."), who=who), True
        if outcome is CheckInOutcome.OTHER_WORKSHOP:
            return page.gettext(_("This code is for another workshop, {title}: not checked in."),
                                title=title), False
        if outcome is CheckInOutcome.WORKSHOP_CANCELLED:
            return page.gettext(_("{title} is cancelled: not checked in."), title=title), False
        if found.status == RegistrationStatus.WAITLISTED:
            return page.gettext(_("{who} is on the waiting list of {title}, without a seat: "
                                  "not checked in."), who=who, title=title), False
        if found.status == RegistrationStatus.OFFERED:
            return page.gettext(_("{who} has not yet accepted the seat offered at {title}: "
                                  "not checked in."), who=who, title=title), False
        return page.gettext(_("{who} cancelled their registration for {title}: not checked "
                              "in."), who=who, title=title), False


# ------------------------------------------------------------------ reading


async def _fair(page: Page) -> int | None:
    return await served_fair_id(page.console.app.sessions)


async def _workshop(request: web.Request, page: Page) -> tuple[int, WorkshopLine] | None:
    key = request.match_info.get("key", "")
    fair_id = await _fair(page)
    if fair_id is None or not key or len(key) > KEY_MAX:
        return None
    found = await workshop_lines(page.console.app.sessions, fair_id, key)
    return (fair_id, found[0]) if found else None


def _not_found(page: Page) -> web.Response:
    return page.error(404, _("There is no such workshop at this fair."))


def _context(page: Page) -> dict[str, Any]:
    return {"local": lambda values: local(values, page.language),
            "statuses": STATUSES, "door": Door(page),
            "confirmed_status": RegistrationStatus.CONFIRMED,
            "offered_status": RegistrationStatus.OFFERED}


async def _render_workshop(page: Page, workshop: WorkshopLine, *, status: int = 200,
                           result: str = "", result_ok: bool = True, cancelled: str = ""
                           ) -> web.Response:
    people = await registrants(page.console.app.sessions, workshop.id)
    seats = [person for person in people if person.status != RegistrationStatus.WAITLISTED]
    waiting = [person for person in people if person.status == RegistrationStatus.WAITLISTED]
    return page.render("workshop.html", status=status, workshop=workshop, seats=seats,
                       waiting=waiting, result=result, result_ok=result_ok,
                       cancelled_notice=cancelled, **_context(page))


@requires(ConsoleRole.VIEWER)
async def workshops_page(request: web.Request, page: Page) -> web.StreamResponse:
    fair_id = await _fair(page)
    lines = [] if fair_id is None else await workshop_lines(page.console.app.sessions, fair_id)
    return page.render("workshops.html", workshops=lines, **_context(page))


@requires(ConsoleRole.VIEWER)
async def workshop_page(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _workshop(request, page)
    if found is None:
        return _not_found(page)
    return await _render_workshop(page, found[1])


@requires(ConsoleRole.ORGANIZER)
async def registrants_csv(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _workshop(request, page)
    if found is None:
        return _not_found(page)
    workshop = found[1]
    people = await registrants(page.console.app.sessions, workshop.id)
    handle = io.StringIO(newline="")
    count = write_csv(handle, CSV_COLUMNS, (
        {"workshop_id": person.workshop_key, "channel": person.channel,
         "user_id": person.user_id, "status": str(person.status),
         "created_at": person.created_at.isoformat(),
         "checked_in_at": person.checked_in_at.isoformat() if person.checked_in_at else ""}
        for person in people))
    await page.audit("registrants downloaded", workshop.key, str(count))
    name = re.sub(r"[^A-Za-z0-9_-]", "_", workshop.key)
    return web.Response(body=handle.getvalue().encode("utf-8"), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition": f'attachment; filename="registrants-{name}.csv"',
                            "Cache-Control": "no-store"})


# ------------------------------------------------------------------ acting


async def _audit_check_in(page: Page, result: CheckIn) -> None:
    found = result.registrant
    if found is None:
        return
    if result.outcome is CheckInOutcome.CHECKED_IN:
        await page.audit("checked in", found.workshop_key, f"#{found.registration_id}")
    elif result.outcome is CheckInOutcome.UNDONE:
        await page.audit("check-in undone", found.workshop_key,
                         f"#{found.registration_id}")


@requires(ConsoleRole.VIEWER)
async def check_in_row(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _workshop(request, page)
    if found is None:
        return _not_found(page)
    fair_id, workshop = found
    registration_id = _registration_id((await request.post()).get("registration"))
    if registration_id is None:
        log.info("console: check-in without a valid registration id")
        result = CheckIn(CheckInOutcome.UNKNOWN)
    else:
        result = await check_in(page.console.app.sessions, fair_id,
                                page.console.app.engine.clock(),
                                registration_id=registration_id, workshop_id=workshop.id)
    await _audit_check_in(page, result)
    message, ok = Door(page).message(result)
    return await _render_workshop(page, workshop, result=message, result_ok=ok,
                                  status=200 if result.registrant else 400)


@requires(ConsoleRole.VIEWER)
async def undo_row(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _workshop(request, page)
    if found is None:
        return _not_found(page)
    fair_id, workshop = found
    registration_id = _registration_id((await request.post()).get("registration"))
    result = (CheckIn(CheckInOutcome.UNKNOWN) if registration_id is None else
              await undo_check_in(page.console.app.sessions, fair_id, registration_id,
                                  workshop.id))
    await _audit_check_in(page, result)
    message, ok = Door(page).message(result)
    return await _render_workshop(page, workshop, result=message, result_ok=ok,
                                  status=200 if result.registrant else 400)


@requires(ConsoleRole.ORGANIZER)
async def cancel_page(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _workshop(request, page)
    if found is None:
        return _not_found(page)
    app = page.console.app
    done = await cancel_by_organizers(app.sessions, found[1].id)
    if done.already:
        notice = page.gettext(_("This workshop was already cancelled: nobody is told again."))
    else:
        await app.catalogue_changed()  # every process's chat shows it cancelled from now on
        await page.audit("workshop cancelled", found[1].key, str(done.told))
        notice = page.ngettext(_n("Workshop cancelled: {n} person will be told.",
                                  "Workshop cancelled: {n} people will be told."), done.told)
    refreshed = await workshop_lines(app.sessions, found[0], found[1].key)
    return await _render_workshop(page, refreshed[0] if refreshed else found[1],
                                  cancelled=notice)


# ------------------------------------------------------------------ check-in by code


async def _checkin_context(page: Page, fair_id: int | None, selected: str
                           ) -> dict[str, Any]:
    lines = [] if fair_id is None else await workshop_lines(page.console.app.sessions, fair_id)
    chosen = next((line for line in lines if line.key == selected), None)
    return {"workshops": lines, "selected": chosen, **_context(page)}


@requires(ConsoleRole.VIEWER)
async def checkin_page(request: web.Request, page: Page) -> web.StreamResponse:
    """The door's page; with `?code=` (a phone's camera opening the QR code's address) it shows
    whose code it is and asks to confirm: a GET never checks anyone in."""
    fair_id = await _fair(page)
    context = await _checkin_context(page, fair_id, request.query.get("workshop", "")[:KEY_MAX])
    typed = request.query.get("code", "")
    result, ok, preview = "", True, None
    if typed and fair_id is not None:
        code = code_of(typed)
        preview = None if code is None else await find_registrant(
            page.console.app.sessions, fair_id, code=code)
        if preview is None:
            result, ok = Door(page).message(CheckIn(CheckInOutcome.UNKNOWN))
    code_value = preview.checkin_code if preview is not None else typed[:40]
    return page.render("checkin.html", code=code_value or "", preview=preview,
                       result=result, result_ok=ok, **context)


@requires(ConsoleRole.VIEWER)
async def checkin_post(request: web.Request, page: Page) -> web.StreamResponse:
    form = await request.post()
    fair_id = await _fair(page)
    context = await _checkin_context(page, fair_id, str(form.get("workshop", ""))[:KEY_MAX])
    code = code_of(str(form.get("code", "")))
    if code is None or fair_id is None:
        log.info("console: check-in code refused: not a code")
        result = CheckIn(CheckInOutcome.UNKNOWN)
    else:
        chosen = context["selected"]
        result = await check_in(page.console.app.sessions, fair_id,
                                page.console.app.engine.clock(), code=code,
                                workshop_id=chosen.id if chosen is not None else None)
    await _audit_check_in(page, result)
    message, ok = Door(page).message(result)
    return page.render("checkin.html", status=200 if result.registrant else 400, code="",
                       preview=None, result=message, result_ok=ok, **context)


def routes() -> list[web.RouteDef]:
    return [web.get("/workshops", workshops_page),
            web.get("/workshops/{key}", workshop_page),
            web.get("/workshops/{key}/registrants.csv", registrants_csv),
            web.post("/workshops/{key}/checkin", check_in_row),
            web.post("/workshops/{key}/undo", undo_row),
            web.post("/workshops/{key}/cancel", cancel_page),
            web.get("/checkin", checkin_page),
            web.post("/checkin", checkin_post)]
