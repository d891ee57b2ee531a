"""Channels: each translates between one platform and the engine's Inbound / Rendered."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

from aiohttp import web

from handlers.messages import Rendered


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of a message that had to go out (reminder, offer, broadcast): "later" when
    the platform was still unavailable after the retries (the outbox tries it again)."""

    status: Literal["sent", "skipped", "failed", "later"]
    platform_message_id: str | None = None
    reason: str | None = None


class Channel(Protocol):
    """What the process needs of a channel: its HTTP routes, and a start and a stop."""

    def routes(self) -> list[web.RouteDef]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class BulkSender(Protocol):
    """A channel that can reach a person who did not just write (reminders, broadcasts)."""

    async def send_bulk(self, to: str, language: str, last_inbound_at: dt.datetime | None,
                        kind: str, rendered: Rendered, now: dt.datetime) -> Delivery: ...
