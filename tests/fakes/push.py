"""A fake Web Push service (RFC 8030) on localhost, checking what a real one checks.

A test makes browsers' subscriptions with ``fake.subscribe()``: each has its own P-256 key pair
and auth secret, like a browser's, and an endpoint on this server. Every push posted to an
endpoint is recorded as a :class:`Push` after the fake has

- verified the VAPID ``Authorization: vapid t=<JWT>,k=<public key>`` header (RFC 8292): the JWT
  is ES256-signed with the private key of ``k``, its ``aud`` is this server's origin, its
  ``exp`` is in the future and at most a day away, and it names a ``sub``;
- decrypted the body (``Content-Encoding: aes128gcm``, RFC 8291) with the subscription's
  private key and auth secret.

A push that fails a check is answered 400/401/403 and recorded with ``error``. An endpoint can
be made to answer ``410 Gone`` (``fake.gone(subscription)``), as when the browser unsubscribed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["FakePushService", "Push"]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Browser:
    key: ec.EllipticCurvePrivateKey
    auth: bytes
    gone: bool = False


@dataclass
class Push:
    """One push the fake received."""

    endpoint: str
    status: int
    vapid_key: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    ttl: str | None = None
    text: str = ""
    error: str = ""

    @property
    def data(self) -> dict[str, Any]:
        """The decrypted body, read as JSON."""
        loaded: dict[str, Any] = json.loads(self.text)
        return loaded


class FakePushService:
    """The push service of a browser vendor, reduced to what a sender meets."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self._browsers: dict[str, _Browser] = {}
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        self._changed = asyncio.Condition()

    @property
    def base_url(self) -> str:
        """The origin of this server (``http://127.0.0.1:PORT``)."""
        return self._base_url

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePushService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self) -> dict[str, Any]:
        """A new browser's subscription, as `PushSubscription.toJSON()` gives it."""
        browser_id = secrets.token_urlsafe(12)
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))
        self._browsers[browser_id] = browser
        public = browser.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self._base_url}/push/{browser_id}", "expirationTime": None,
                "keys": {"p256dh": _b64encode(public), "auth": _b64encode(browser.auth)}}

    def gone(self, subscription: dict[str, Any]) -> None:
        """From now on, this endpoint answers 410 Gone."""
        self._browsers[subscription["endpoint"].rsplit("/", 1)[1]].gone = True

    def pushes_to(self, subscription: dict[str, Any]) -> list[Push]:
        return [push for push in self.pushes if push.endpoint == subscription["endpoint"]]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Push]:  # noqa: ASYNC109
        """Wait until `count` pushes were received."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.pushes) >= count), timeout)
            except TimeoutError:
                raise AssertionError(f"{len(self.pushes)} pushes, not {count}: "
                                     f"{self.pushes}") from None
        return self.pushes

    async def _record(self, push: Push) -> web.Response:
        self.pushes.append(push)
        async with self._changed:
            self._changed.notify_all()
        if push.error:
            return web.json_response({"error": push.error}, status=push.status)
        return web.Response(status=push.status)

    async def _handle(self, request: web.Request) -> web.Response:
        endpoint = f"{self._base_url}/push/{request.match_info['id']}"
        browser = self._browsers.get(request.match_info["id"])
        if browser is None:
            return await self._record(Push(endpoint, 404, error="no such subscription"))
        if browser.gone:
            return await self._record(Push(endpoint, 410, error="unsubscribed"))
        try:
            key, claims = self._check_vapid(request.headers.get("Authorization", ""))
        except ValueError as exc:
            return await self._record(Push(endpoint, 401, error=f"vapid: {exc}"))
        ttl = request.headers.get("TTL")
        if ttl is None or not ttl.isdigit():
            return await self._record(Push(endpoint, 400, key, claims, error="no TTL header"))
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return await self._record(Push(endpoint, 400, key, claims, ttl,
                                           error="not aes128gcm"))
        body = await request.read()
        try:
            text = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth,
                                    version="aes128gcm").decode()
        except Exception as exc:
            return await self._record(Push(endpoint, 400, key, claims, ttl,
                                           error=f"cannot decrypt: {exc!r}"))
        return await self._record(Push(endpoint, 201, key, claims, ttl, text))

    def _check_vapid(self, header: str) -> tuple[str, dict[str, Any]]:
        """The VAPID public key and claims of a valid header; ValueError saying why not."""
        scheme, _sep, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"scheme {scheme!r} is not vapid")
        parts = dict(item.strip().split("=", 1) for item in params.split(",") if "=" in item)
        if "t" not in parts or "k" not in parts:
            raise ValueError("t= and k= are required")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                                  _b64decode(parts["k"]))
            head, payload, signature = parts["t"].split(".")
            raw = _b64decode(signature)
        except ValueError as exc:
            raise ValueError(f"malformed: {exc}") from None
        if json.loads(_b64decode(head)).get("alg") != "ES256" or len(raw) != 64:
            raise ValueError("not an ES256 JWT")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        try:
            public.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("the JWT is not signed by the key k") from None
        claims: dict[str, Any] = json.loads(_b64decode(payload))
        if claims.get("aud") != self._base_url:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self._base_url!r}")
        exp = int(claims.get("exp", 0))
        if not time.time() < exp <= time.time() + 24 * 3600:
            raise ValueError("exp is not within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError("sub is missing")
        return parts["k"], claims
