"""Today: the fair at a glance, refreshed by itself."""

from __future__ import annotations

from aiohttp import web

from bot.console.core import Page, requires
from storage.console import ConsoleRole


@requires(ConsoleRole.VIEWER)
async def today_page(request: web.Request, page: Page) -> web.StreamResponse:
    return page.render("today.html")


def routes() -> list[web.RouteDef]:
    return [web.get("/", today_page)]
