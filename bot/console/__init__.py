"""The organizer console at /admin/: server-rendered pages (Jinja2) on the bot's aiohttp server,
for `organizer` and `viewer` accounts made with `tadamon admin add`. Each page goes through the
same code as the command line and the chat: it never has its own import, broadcast or export.

One module per page: `auth` (sign in and out, language), `today`, `catalogue`, `workshops`,
`broadcasts`, `exports`, `privacy` (erasing a person), `audit`; `core` holds what they
share."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from bot.console import (
    audit,
    auth,
    broadcasts,
    catalogue,
    exports,
    privacy,
    today,
    workshops,
)
from bot.console.core import CONSOLE_KEY, Console, security_headers

if TYPE_CHECKING:
    from bot.app import App

# One stylesheet and one script per page module beside the shared ones, so each page's look
# and behaviour live with it.
STATIC = {f"{name}.{kind}": media for name in ("console", "today", "catalogue", "workshops",
                                                "broadcasts", "exports")
          for kind, media in (("css", "text/css"), ("js", "text/javascript"))}


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files("bot.console").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600"})


async def slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/admin/")


def make_console(app: App) -> web.Application:
    """The console, to be mounted at /admin/."""
    console_app = web.Application(middlewares=[security_headers])
    console = console_app[CONSOLE_KEY] = Console(app)
    console_app.add_routes([web.get("/static/{name}", static)])
    for module in (auth, today, catalogue, workshops, broadcasts, exports, privacy, audit):
        console_app.add_routes(module.routes())
        console.actions.update(getattr(module, "ACTIONS", {}))
    return console_app
