"""The broadcasts pages of the organizer console."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
