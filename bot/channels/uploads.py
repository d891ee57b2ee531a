"""Platform ids of files already uploaded, by content: a floor map goes to thousands of people
and is uploaded once per process, then sent by the id the platform gave it (Telegram's file_id,
WhatsApp's media id)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable


class UploadCache:
    """A bounded map from a file's SHA-256 to its platform id; the least recently used goes
    first, and an id older than `ttl` seconds is not trusted (WhatsApp's expire in 30 days)."""

    def __init__(self, size: int = 256, ttl: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._ids: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    @staticmethod
    def _key(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def get(self, data: bytes) -> str | None:
        """The id these bytes were uploaded under, if still fresh."""
        key = self._key(data)
        found = self._ids.get(key)
        if found is None:
            return None
        platform_id, stored_at = found
        if self.clock() - stored_at > self.ttl:
            del self._ids[key]
            return None
        self._ids.move_to_end(key)
        return platform_id

    def put(self, data: bytes, platform_id: str) -> None:
        key = self._key(data)
        self._ids[key] = (platform_id, self.clock())
        self._ids.move_to_end(key)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def forget(self, data: bytes) -> None:
        """The platform refused the id: the next send uploads again."""
        self._ids.pop(self._key(data), None)
