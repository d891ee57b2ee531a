"""A platform asked us to slow down (Telegram 429, WhatsApp 130429): every send of the channel
waits, in this process at once and in the others through Redis."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from storage.state import State

log = logging.getLogger(__name__)


class SendPause:
    """The channel-wide pause, shared by every process."""

    def __init__(self, state: State, channel: str) -> None:
        self.state = state
        self.channel = channel
        self._until = 0.0
        self._checked = -1.0

    async def pause(self, seconds: float) -> None:
        """Hold every send of the channel for `seconds`."""
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)
        log.warning("%s asks to slow down: sends wait %.1f s", self.channel, seconds)
        try:
            await self.state.pause_channel(self.channel, seconds)
        except RedisError:
            log.warning("redis unavailable: the pause holds in this process only")

    async def wait(self) -> None:
        """Wait out a pause: ours, or another process's (looked up at most once a second)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._until and now - self._checked >= 1.0:
            self._checked = now
            try:
                shared = await self.state.channel_paused_for(self.channel)
            except RedisError:
                shared = 0.0
            self._until = max(self._until, now + shared)
        remaining = self._until - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
