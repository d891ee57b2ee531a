"""Self-check of the throwaway server helpers in ``tests/servers.py``."""

from __future__ import annotations

import importlib
import socket
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.servers import RunningServer, free_port, start_postgres, start_redis


def _resp(sock: socket.socket, *args: str) -> bytes:
    """Send one RESP command over a raw socket and return the raw reply."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"".join(parts))
    return sock.recv(4096)


def _assert_stopped(server: RunningServer) -> None:
    assert server.process.returncode is not None
    assert not server.workdir.exists()
    for folder in server.extra_dirs:
        assert not folder.exists()


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_redis_raw_socket_and_cleanup(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.workdir.parent == tmp_path
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            assert _resp(sock, "SET", "greeting", "marhaba") == b"+OK\r\n"
            assert _resp(sock, "GET", "greeting") == b"$7\r\nmarhaba\r\n"
    finally:
        server.stop()
    _assert_stopped(server)
    server.stop()  # idempotent


async def test_redis_asyncio_client() -> None:
    server = start_redis()
    try:
        client = aioredis.from_url(server.url)
        try:
            assert await client.set("greeting", "bonjour")
            assert await client.get("greeting") == b"bonjour"
        finally:
            await client.aclose()
    finally:
        server.stop()
    _assert_stopped(server)


@pytest.mark.postgres
async def test_postgres_select_and_cleanup(tmp_path: Path) -> None:
    # tmp_path is private to root when running as root: exercises the fallback folder.
    server = start_postgres(tmp_path)
    try:
        assert server.url.startswith("postgresql+asyncpg://tadamon@127.0.0.1:")
        assert server.url.endswith("/tadamon")
        asyncpg: Any = importlib.import_module("asyncpg")  # asyncpg ships no type hints
        conn = await asyncpg.connect(server.url.replace("+asyncpg", ""))
        try:
            assert await conn.fetchval("SELECT 1") == 1
            row = await conn.fetchrow("SELECT current_database() AS db, current_user AS usr")
            assert (row["db"], row["usr"]) == ("tadamon", "tadamon")
        finally:
            await conn.close()
    finally:
        server.stop()
    _assert_stopped(server)
