"""The HTTP server: health, metrics and every channel's routes on one aiohttp application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.app import App

log = logging.getLogger(__name__)


def make_web_app(app: App, routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The aiohttp application serving `app`: health, metrics, web chat and channel routes."""
    web_app = web.Application(client_max_size=1024 * 1024)

    async def healthz(request: web.Request) -> web.Response:
        database, redis = await asyncio.gather(app.database_ok(), app.redis_ok())
        body = {
            "status": "ok" if database and redis else "unavailable",
            "database": "ok" if database else "down",
            "redis": "ok" if redis else "down",
        }
        return web.json_response(body, status=200 if database and redis else 503)

    async def metrics(request: web.Request) -> web.Response:
        await app.refresh_gauges()
        return web.Response(body=app.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    web_app.add_routes(app.web_chat.routes())
    for channel in app.channels:
        web_app.add_routes(channel.routes())
    web_app.add_routes(list(routes))
    return web_app
