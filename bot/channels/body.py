"""Reading request bodies the same way on every route: the whole body, however many TCP segments
it came in, under a size limit and a time limit; JSON parsed without letting deep nesting crash
the handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

# A client that sends its body slower than this holds a connection for nothing.
BODY_TIMEOUT = 15.0
CHUNK = 64 * 1024


class BadBody(Exception):
    """A request body we refuse; `status` is the HTTP answer (400, 408, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: web.Request, limit: int, seconds: float = BODY_TIMEOUT) -> bytes:
    """The whole body, or BadBody(413) past `limit` bytes, BadBody(408) past `seconds`."""
    if request.content_length is not None and request.content_length > limit:
        raise BadBody(413, "request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BadBody(413, "request body too large")
                chunks.append(chunk)
    except TimeoutError:
        raise BadBody(408, "request body not received in time") from None
    return b"".join(chunks)


def load_json(raw: bytes | str) -> Any:
    """Parsed JSON, or BadBody(400) for anything that is not (bad UTF-8, too deeply nested)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadBody(400, "the body is not valid JSON") from None


def error_response(status: int, message: str) -> web.Response:
    """The JSON error every route answers with."""
    return web.json_response({"error": message}, status=status)
