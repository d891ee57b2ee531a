"""The HTTP server itself: JSON errors and nosniff on every route, /metrics that reads only
memory and can want a token, idle connections closed, and the reverse proxy docker-compose.yml
puts in front."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from bot.app import App
from bot.http import KEEPALIVE_TIMEOUT, make_runner, make_web_app
from storage.catalogue import active_fair
from storage.models import utcnow
from tests.conftest import AppFactory, ChatFactory
from tests.servers import free_port
from tests.test_outbox import add_contacts

ROOT = Path(__file__).resolve().parents[1]
ClientFactory = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[ClientFactory]:
    """`await serve(app, **make_web_app options)` -> a test client of that web app."""
    clients: list[TestClient[Any, Any]] = []

    async def start(app: App, **options: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(make_web_app(app, **options)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


# --- errors and headers ---------------------------------------------------------------------


async def test_an_unexpected_error_is_a_logged_json_500(
    make_app: AppFactory, serve: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def refused(request: web.Request) -> web.Response:
        raise web.HTTPForbidden(text="no")

    client = await serve(await make_app(), routes=[web.get("/broken", broken),
                                                   web.get("/refused", refused)])
    response = await client.get("/broken")
    assert response.status == 500
    assert response.content_type == "application/json"
    assert (await response.json())["error"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert any("GET /broken" in record.getMessage() and record.exc_info
               for record in caplog.records)
    forbidden = await client.get("/refused")  # an HTTP error raised on purpose stays itself
    assert (forbidden.status, await forbidden.text()) == (403, "no")
    assert forbidden.headers["X-Content-Type-Options"] == "nosniff"


async def test_every_response_says_nosniff(make_chat: ChatFactory) -> None:
    chat = await make_chat()
    for path in ("/", "/healthz", "/metrics", "/no/such/page"):
        response = await chat.client.get(path)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    answer = await chat.client.post("/chat/api/messages", data=b"not json")
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"


# --- /metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_scraping_metrics_never_queries_the_database(
    make_app: AppFactory, serve: ClientFactory, database: str
) -> None:
    app = await make_app(database=database)
    client = await serve(app)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(app.db.sync_engine, "before_cursor_execute", record)
    try:
        for _ in range(50):
            response = await client.get("/metrics")
            assert response.status == 200
            assert "tadamon_outbox_depth 0.0" in await response.text()
    finally:
        event.remove(app.db.sync_engine, "before_cursor_execute", record)
    assert statements == []


async def test_the_outbox_depth_is_kept_fresh_in_the_background(
    make_app: AppFactory, serve: ClientFactory
) -> None:
    app = await make_app()
    client = await serve(app, gauge_period=0.05)
    await add_contacts(app, 3)
    async with app.sessions() as session:
        fair = await active_fair(session)
    assert fair is not None
    await app.engine.outbox.queue_broadcast(fair.id, "all", {"fr": "Bonjour", "ar": "مرحبا"},
                                            utcnow() + dt.timedelta(hours=1))
    for _ in range(600):  # a refresh every 0.05 s: the first one after the queueing shows it
        if "tadamon_outbox_depth 3.0" in await (await client.get("/metrics")).text():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the outbox depth on /metrics never showed the 3 queued messages")


async def test_metrics_want_the_token_when_one_is_set(make_chat: ChatFactory) -> None:
    chat = await make_chat(metrics_token="s3cret-scraper-token")
    await chat("amina", "bonjour")
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "s3cret-scraper-token"},
                    {"Authorization": "Basic czNjcmV0LXNjcmFwZXItdG9rZW4="},
                    {"Authorization": "Bearer s3cret-scraper-token-and-more"}):
        refused = await chat.client.get("/metrics", headers=headers)
        assert refused.status == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        body = await refused.json()
        assert body["error"] and "s3cret" not in str(body)
    allowed = await chat.client.get("/metrics",
                                    headers={"Authorization": "Bearer s3cret-scraper-token"})
    assert allowed.status == 200
    assert 'tadamon_updates_in_total{channel="web"} 1.0' in await allowed.text()
    assert (await chat.client.get("/healthz")).status == 200  # only /metrics is guarded


# --- connections ----------------------------------------------------------------------------


async def test_idle_connections_are_not_kept_for_an_hour(make_app: AppFactory) -> None:
    runner = make_runner(await make_app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: tadamon\r\n\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        assert runner.server is not None
        [connection] = runner.server.connections
        assert connection.keepalive_timeout == KEEPALIVE_TIMEOUT <= 120
        writer.close()
    finally:
        await runner.cleanup()


def test_compose_puts_a_reverse_proxy_that_closes_slow_clients_in_front() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "ports" not in services["bot"]  # reached through nginx only
    proxy = services["nginx"]
    assert proxy["ports"] == ["8080:8080"]
    [mounted] = proxy["configs"]
    config = compose["configs"][mounted["source"]]["content"]
    assert mounted["target"].startswith("/etc/nginx/conf.d/")
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout",
                      "client_max_body_size", "keepalive_timeout", "limit_req_zone"):
        assert f"\n{directive} " in f"\n{config}", directive
    sessions = config.split("location = /chat/api/sessions", 1)[1].split("}", 1)[0]
    assert "limit_req zone=" in sessions and "proxy_pass http://tadamon;" in sessions
    assert "zone=" in config and "$$binary_remote_addr" in config  # escaped for compose
    assert "proxy_set_header X-Forwarded-For $$remote_addr;" in config
    assert "server bot:8080;" in config
    address = proxy["networks"]["default"]["ipv4_address"]
    assert services["bot"]["environment"]["TADAMON_TRUSTED_PROXIES"] == address

