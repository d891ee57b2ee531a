"""The audit log page: who did what in the console, and when."""

from __future__ import annotations

from aiohttp import web

from bot.console.core import Page, _, requires
from storage.console import ConsoleRole

PAGE_SIZE = 100

# What the log's actions read as (each page module adds its own in its ACTIONS).
ACTIONS = {
    "login": _("signed in"),
    "login failed": _("failed sign-in"),
    "login refused": _("sign-in refused: too many failures"),
    "logout": _("signed out"),
    "account added": _("account made"),
    "account changed": _("account changed"),
    "account removed": _("account removed"),
}


@requires(ConsoleRole.VIEWER)
async def audit_page(request: web.Request, page: Page) -> web.StreamResponse:
    before_text = request.query.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 18 else None
    entries = await page.console.audit.recent(PAGE_SIZE, before)
    return page.render("audit.html", entries=entries, actions=page.console.actions)


def routes() -> list[web.RouteDef]:
    return [web.get("/audit", audit_page)]
