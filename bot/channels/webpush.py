"""Web Push (the browsers' Push API, RFC 8030/8291/8292) to web chat people who allowed
notifications: a short text saying a message waits, encrypted for their browser (aes128gcm) and
signed with the service's VAPID key. The message itself waits in their inbox."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from bot.settings import Settings
from storage.repositories import Sessions
from storage.webinbox import PushTarget, WebInbox, service_key

# cryptography, py_vapid and pywebpush (with requests) are imported when a key or a push is
# first needed: about 13 MB that a process whose web chat nobody subscribes to never uses.
if TYPE_CHECKING:
    from py_vapid import Vapid02

log = logging.getLogger(__name__)

VAPID_KEY_NAME = "vapid-private-key"
# A notification nobody could deliver within this is no longer worth showing.
PUSH_TTL = 12 * 3600
PUSH_TIMEOUT = aiohttp.ClientTimeout(total=10)
BODY_MAX = 120
# A push service's answer meaning the subscription is gone for good.
GONE = (404, 410)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_private_key(vapid: Vapid02) -> str:
    number: int = vapid.private_key.private_numbers().private_value
    return b64url(number.to_bytes(32, "big"))


def new_private_key() -> str:
    """A new VAPID private key: base64url of its 32 raw bytes."""
    from py_vapid import Vapid02

    vapid = Vapid02()
    vapid.generate_keys()
    return _raw_private_key(vapid)


def load_vapid(text: str) -> Vapid02:
    """A VAPID key from base64url raw bytes, base64url DER, or PEM."""
    from py_vapid import Vapid02

    text = text.strip()
    if text.startswith("-----BEGIN"):
        return Vapid02.from_pem(text.encode())
    return Vapid02.from_string(text)


def endpoint_allowed(endpoint: str, services: tuple[str, ...]) -> bool:
    """Whether a subscription's endpoint is at a push service we post to: https at one of
    the hosts (or a subdomain), or exactly one of the listed origins."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if not host or scheme not in ("http", "https") or parts.username or parts.password:
        return False
    origin = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    for service in services:
        if "://" in service:
            if origin == service:
                return True
        elif scheme == "https" and (host == service or host.endswith("." + service)):
            return True
    return False


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def notification(text: str, language: str) -> dict[str, str]:
    """What the notification shows: our name as its title and the message's first line as its
    body; nothing but what the message says (the rest waits on the page)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {"title": "تضامن" if language == "ar" else "Tadamon",
            "body": shorten(lines[0], BODY_MAX) if lines else "",
            "lang": language, "dir": "rtl" if language == "ar" else "ltr"}


class WebPush:
    """Sends push notifications to a person's subscribed browsers; forgets the ones gone."""

    def __init__(self, settings: Settings, sessions: Sessions, inbox: WebInbox) -> None:
        self.settings = settings
        self.sessions = sessions
        self.inbox = inbox
        self._vapid: Vapid02 | None = None
        self._vapid_lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    @property
    def subject(self) -> str:
        """The VAPID `sub` claim: the setting, else the public URL, else a placeholder."""
        if self.settings.vapid_subject:
            return self.settings.vapid_subject
        public = self.settings.public_url
        if public and public.startswith("https://"):
            return public
        return "mailto:tadamon@localhost"

    async def vapid(self) -> Vapid02:
        """The service's VAPID key: the setting's, else the one kept in the database (made
        there once, the same for every process and after every restart)."""
        async with self._vapid_lock:
            if self._vapid is None:
                configured = self.settings.vapid_private_key
                if configured is not None:
                    self._vapid = load_vapid(configured.get_secret_value())
                else:
                    kept = await service_key(self.sessions, VAPID_KEY_NAME, new_private_key)
                    self._vapid = load_vapid(kept)
            return self._vapid

    async def public_key(self) -> str:
        """The applicationServerKey browsers subscribe with: base64url of the public point."""
        from cryptography.hazmat.primitives import serialization

        vapid = await self.vapid()
        point = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        return b64url(point)

    def allowed(self, endpoint: str) -> bool:
        """Whether we would post to this endpoint."""
        return endpoint_allowed(endpoint, self.settings.push_services)

    async def notify(self, contact_id: int, text: str, language: str) -> int:
        """Push to each of the person's browsers; returns how many push services took it."""
        targets = await self.inbox.subscriptions(contact_id)
        if not targets:
            return 0
        data = json.dumps(notification(text, language), ensure_ascii=False)
        vapid = await self.vapid()
        results = await asyncio.gather(*(self._push(target, data, vapid) for target in targets))
        return sum(results)

    async def _push(self, target: PushTarget, data: str, vapid: Vapid02) -> bool:
        from pywebpush import WebPushException, webpush_async

        if not self.allowed(target.endpoint):  # the setting changed since it was kept
            log.info("web push: a subscription outside TADAMON_PUSH_SERVICES is forgotten")
            await self.inbox.unsubscribe(target.endpoint)
            return False
        subscription = {"endpoint": target.endpoint,
                        "keys": {"p256dh": target.p256dh, "auth": target.auth}}
        try:
            # Claims are made anew for each call: the library writes the audience into them.
            await webpush_async(subscription, data, vapid_private_key=vapid,
                                vapid_claims={"sub": self.subject}, ttl=PUSH_TTL,
                                timeout=PUSH_TIMEOUT, aiohttp_session=self._session(),
                                headers={"Urgency": "normal"})
        except WebPushException as exc:
            status = exc.status_code
            if status in GONE:
                log.info("web push: the browser unsubscribed (%s); subscription forgotten",
                         status)
                await self.inbox.unsubscribe(target.endpoint)
            else:
                log.warning("web push refused (%s); the message waits in the inbox", status)
            return False
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("web push not sent (%s); the message waits in the inbox",
                        type(exc).__name__)
            return False
        return True

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=PUSH_TIMEOUT)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
