"""The personal data page: an organizer erases a person at their request (law 09-08), as
`tadamon forget` does: first what is kept about them, then the erasure, written in the audit
log without the person's id."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.core import Page, _, _n, requires
from storage.console import ConsoleRole
from storage.models import utcnow
from storage.privacy import Erased, Kept, PersonalData, parse_person

ACTIONS = {"person erased": _("person erased")}
WHO_MAX = 200
FORM = "CHANNEL:ID"
"""How a person is written, as on the command line (`tadamon forget CHANNEL:USER_ID`)."""


def _render(page: Page, status: int = 200, **context: Any) -> web.Response:
    values: dict[str, Any] = {"who": "", "error": "", "kept": None, "person": "",
                              "done": None, "form": page.iso(FORM), **context}
    return page.render("privacy.html", status=status, **values)


def _personal(page: Page) -> PersonalData:
    app = page.console.app
    return PersonalData(app.sessions, app.engine.registrations, app.redis)


@requires(ConsoleRole.VIEWER)
async def privacy_page(request: web.Request, page: Page) -> web.StreamResponse:
    return _render(page, who="")


async def _person(request: web.Request, page: Page
                  ) -> tuple[str, str, str] | web.StreamResponse:
    """The person the form names: (what was typed, channel, id), or the page again saying
    what is wrong."""
    typed = str((await request.post()).get("who", "")).strip()[:WHO_MAX]
    try:
        channel, user_id = parse_person(typed)
    except ValueError:
        return _render(page, status=400, who=typed, error=page.gettext(_(
            "Write the person as {form}, for example {whatsapp} or {telegram} (web chat ids "
            "are in the exports)."), form=page.iso(FORM), whatsapp=page.iso(
                "whatsapp:212612345678"), telegram=page.iso("telegram:123456789")))
    return typed, channel, user_id


@requires(ConsoleRole.ORGANIZER)
async def check_page(request: web.Request, page: Page) -> web.StreamResponse:
    """What is kept about the person, and the button that erases it: nothing is erased yet."""
    found = await _person(request, page)
    if isinstance(found, web.StreamResponse):
        return found
    typed, channel, user_id = found
    contact = await page.console.app.engine.contacts.get(channel, user_id)
    kept = None if contact is None else await _personal(page).kept(contact.id)
    if kept is None:
        return _nobody(page, typed)
    return _render(page, who=f"{channel}:{user_id}",
                   person=page.iso(page.person(channel, user_id)), kept=_kept_lines(page, kept))


@requires(ConsoleRole.ORGANIZER)
async def erase_page(request: web.Request, page: Page) -> web.StreamResponse:
    found = await _person(request, page)
    if isinstance(found, web.StreamResponse):
        return found
    typed, channel, user_id = found
    erased = await _personal(page).erase(channel, user_id, utcnow())
    if erased is None:
        return _nobody(page, typed)
    # The log says who erased someone, when, and from which channel: never whom.
    await page.audit("person erased", channel, _audit_detail(erased))
    return _render(page, who="", done=_erased_lines(page, erased))


def _nobody(page: Page, typed: str) -> web.Response:
    return _render(page, status=404, who=typed, error=page.gettext(_(
        "Nobody is known by this id: there is nothing to erase.")))


def _kept_lines(page: Page, kept: Kept) -> list[str]:
    lines = [page.gettext(_("First message: {when}"), when=page.when(kept.created_at))]
    if kept.last_inbound_at is not None:
        lines.append(page.gettext(_("Last message: {when}"), when=page.when(kept.last_inbound_at)))
    lines += [
        page.ngettext(_n("{n} registration", "{n} registrations"), len(kept.registrations)),
        page.ngettext(_n("{n} saved stand", "{n} saved stands"), len(kept.saved_stands)),
        page.ngettext(_n("{n} rating", "{n} ratings"), kept.ratings),
        page.ngettext(_n("{n} comment", "{n} comments"), kept.comments),
        page.ngettext(_n("{n} message waiting to be sent", "{n} messages waiting to be sent"),
                      kept.pending_messages),
    ]
    return lines


def _erased_lines(page: Page, erased: Erased) -> list[str]:
    return [
        page.ngettext(_n("{n} registration removed", "{n} registrations removed"),
                      erased.registrations),
        page.ngettext(_n("{n} seat offered to the next person waiting",
                         "{n} seats offered to the next people waiting"), erased.seats_freed),
        page.ngettext(_n("{n} saved stand removed", "{n} saved stands removed"),
                      erased.saved_stands),
        page.ngettext(_n("{n} message not sent", "{n} messages not sent"), erased.messages),
        page.ngettext(_n("{n} rating or answer kept, naming nobody",
                         "{n} ratings or answers kept, naming nobody"), erased.ratings),
    ]


def _audit_detail(erased: Erased) -> str:
    return (f"registrations {erased.registrations}, seats freed {erased.seats_freed}, "
            f"saved stands {erased.saved_stands}, messages {erased.messages}, "
            f"ratings kept {erased.ratings}")


def routes() -> list[web.RouteDef]:
    return [web.get("/privacy", privacy_page), web.post("/privacy/check", check_page),
            web.post("/privacy/erase", erase_page)]
