"""Personal data: how people are named where they must not be (log lines, shared exports),
what is kept about one person, and their erasure (on request, or after the retention time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from storage.repositories import Sessions
from storage.webinbox import service_key

# The service keys (table service_keys) of the two ways of naming someone without their id.
LOG_KEY_NAME = "log-reference"
PSEUDONYM_KEY_NAME = "export-pseudonym"

# Until the process has read the deployment's key (`load_log_key`), a key of its own: the
# references of one process still match each other.
_log_key: bytes = secrets.token_bytes(32)


def person(channel: str, user_id: str) -> str:
    """How a log line names a person: the channel and a short keyed hash of their id
    (`whatsapp:#3f9a0c1d`), never the id itself (a phone number on WhatsApp). The same person
    gets the same reference in every process of a deployment once `load_log_key` ran, so one
    person's lines can be followed; the id cannot be found back from it."""
    digest = hmac.new(_log_key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{channel}:#{digest[:8]}"


async def load_log_key(sessions: Sessions) -> None:
    """Use the deployment's log-reference key, kept in the database (made the first time)."""
    global _log_key
    value = await service_key(sessions, LOG_KEY_NAME, lambda: secrets.token_hex(32))
    _log_key = value.encode()


class Pseudonyms:
    """Stable pseudonyms for shared exports (`tadamon export --anonymous`): the same person has
    the same pseudonym in every file and every run of a deployment, so rows can be matched
    across files, and nobody without the key can find the id back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    async def of(cls, sessions: Sessions) -> Pseudonyms:
        value = await service_key(sessions, PSEUDONYM_KEY_NAME, lambda: secrets.token_hex(32))
        return cls(value.encode())

    def __call__(self, channel: str, user_id: str) -> str:
        """`p-` and 16 hex digits; the empty text for a row that names nobody."""
        if not user_id:
            return ""
        digest = hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256)
        return "p-" + digest.hexdigest()[:16]
