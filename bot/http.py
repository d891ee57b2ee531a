"""The HTTP server: health, metrics and every channel's routes on one aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from bot.app import App
from bot.channels.body import error_response
from bot.console import make_console

log = logging.getLogger(__name__)

# How old the outbox depth on /metrics may be: it is counted in the background this often, so a
# scrape never costs the database anything.
GAUGE_PERIOD = 15.0
# An idle keep-alive connection is closed after this (aiohttp's default is an hour). Longer than
# the 60 s idle timeout of common load balancers, which must close first.
KEEPALIVE_TIMEOUT = 75.0
# On shutdown, requests in progress get this long to finish; slow clients do not hold it up.
SHUTDOWN_TIMEOUT = 10.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An unexpected exception becomes a logged 500 with a JSON body, like our other errors,
    instead of aiohttp's plain-text page; HTTP errors raised on purpose pass as they are."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # the one boundary for route handlers: log once, answer JSON
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal error")


async def _no_sniffing(request: web.Request, response: web.StreamResponse) -> None:
    """Browsers take every response for the type it says it is, never for what it looks like."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def bearer_ok(request: web.Request, token: SecretStr | None) -> bool:
    """True when no token is configured, or the request carries `Authorization: Bearer <it>`
    (compared in constant time)."""
    if token is None:
        return True
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), expected)


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/admin/")


def make_web_app(app: App, routes: Iterable[web.RouteDef] = (),
                 gauge_period: float = GAUGE_PERIOD) -> web.Application:
    """The aiohttp application serving `app`: health, metrics, web chat and channel routes."""
    web_app = web.Application(client_max_size=1024 * 1024, middlewares=[json_errors])
    web_app.on_response_prepare.append(_no_sniffing)

    async def healthz(request: web.Request) -> web.Response:
        database, redis = await asyncio.gather(app.database_ok(), app.redis_ok())
        body = {
            "status": "ok" if database and redis else "unavailable",
            "database": "ok" if database else "down",
            "redis": "ok" if redis else "down",
        }
        return web.json_response(body, status=200 if database and redis else 503)

    async def metrics(request: web.Request) -> web.Response:
        if not bearer_ok(request, app.settings.metrics_token):
            response = error_response(401, "metrics need Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return web.Response(body=app.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def fresh_gauges(web_app: web.Application) -> AsyncIterator[None]:
        await app.refresh_gauges()
        task = asyncio.create_task(app.keep_gauges_fresh(gauge_period))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    web_app.cleanup_ctx.append(fresh_gauges)
    web_app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    web_app.add_routes(app.web_chat.routes())
    web_app.add_routes([web.get("/admin", _to_console)])
    web_app.add_subapp("/admin/", make_console(app))
    for channel in app.channels:
        web_app.add_routes(channel.routes())
    web_app.add_routes(list(routes))
    return web_app


def make_runner(app: App) -> web.AppRunner:
    """The runner `tadamon run` serves with: no access log (our own lines say what matters),
    idle connections closed, a bounded shutdown. Slow headers and bodies are a reverse proxy's
    work (docker-compose.yml ships one); bodies are also read under a time limit (body.py)."""
    return web.AppRunner(make_web_app(app), handle_signals=False, access_log=None,
                         keepalive_timeout=KEEPALIVE_TIMEOUT, shutdown_timeout=SHUTDOWN_TIMEOUT)
