"""Channels: each translates between one platform and the engine's Inbound / Rendered."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Channel(Protocol):
    """What the process needs of a channel: its HTTP routes, and a start and a stop."""

    def routes(self) -> list[web.RouteDef]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
