"""The web chat channel: a phone-sized page and its JSON API (`POST /chat/api/messages`)."""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from bot.engine import Engine
from bot.messages import Inbound, Kind, Rendered
from storage.state import State

log = logging.getLogger(__name__)

CHANNEL = "web"
MAX_BODY = 16 * 1024
SESSION_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CHOICE_RE = re.compile(r"^[\w:.+-]{1,64}$")
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{10,64}$")


def _error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error, "replies": []}, status=status)


class WebChat:
    """Translates between the browser's JSON and the engine; no conversation logic here."""

    def __init__(self, engine: Engine, state: State) -> None:
        self.engine = engine
        self.state = state
        self.page = resources.files("bot.channels").joinpath("webchat.html").read_bytes()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.post("/chat/api/messages", self.message),
            web.get("/chat/media/{token}", self.media),
        ]

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache",
                                     "Content-Security-Policy": "default-src 'self'; "
                                     "style-src 'self' 'unsafe-inline'; "
                                     "script-src 'self' 'unsafe-inline'; img-src 'self' data:"})

    async def message(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "message too large")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _error(413, "message too large")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, 'send JSON: {"session": ..., "text": ...} or {"session": ..., '
                               '"choice": ...}')
        inbound = self._inbound(data)
        if isinstance(inbound, web.Response):
            return inbound
        rendered = await self.engine.handle(inbound)
        return web.json_response(await self._answer(rendered),
                                 dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    def _inbound(self, data: Any) -> Inbound | web.Response:
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        session = data.get("session")
        if not isinstance(session, str) or not SESSION_RE.match(session):
            return _error(400, "session must be 1 to 64 letters, digits, ., :, - or _")
        message_id = data.get("id")
        if message_id is not None and (not isinstance(message_id, str)
                                       or not MESSAGE_ID_RE.match(message_id)):
            return _error(400, "id must be 1 to 64 letters, digits, - or _")
        text, choice = data.get("text"), data.get("choice")
        if choice is not None:
            if not isinstance(choice, str) or not CHOICE_RE.match(choice):
                return _error(400, "choice must be a short button id")
            return Inbound(CHANNEL, session, Kind.CHOICE, choice=choice, message_id=message_id)
        if not isinstance(text, str):
            return _error(400, "text or choice is required")
        return Inbound(CHANNEL, session, Kind.TEXT, text=text, message_id=message_id)

    async def _answer(self, rendered: list[Rendered]) -> dict[str, Any]:
        language = rendered[-1].language if rendered else "fr"
        replies = []
        for item in rendered:
            media: list[dict[str, Any]] = []
            for part in item.media:
                if part.kind == "location":
                    media.append({"type": "location", "latitude": part.latitude,
                                  "longitude": part.longitude, "label": part.caption})
                    continue
                try:
                    token = await self.state.put_media(part.data, part.mime, part.filename)
                except RedisError:
                    log.exception("cannot keep a web chat file; it is left out of the reply")
                    continue
                entry: dict[str, Any] = {"type": part.kind, "url": f"/chat/media/{token}",
                                         "caption": part.caption}
                if part.kind == "document":
                    entry["filename"] = part.filename
                media.append(entry)
            replies.append({
                "text": item.text,
                "choices": [{"id": choice.id, "label": choice.label} for choice in item.choices],
                "media": media,
            })
        return {"lang": language, "dir": "rtl" if language == "ar" else "ltr", "replies": replies}

    async def media(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not TOKEN_RE.match(token):
            raise web.HTTPNotFound()
        found = await self.state.get_media(token)
        if found is None:
            raise web.HTTPNotFound()
        data, mime, filename = found
        headers = {"Cache-Control": "private, max-age=86400"}
        if filename:
            headers["Content-Disposition"] = f'inline; filename="{filename}"'
        return web.Response(body=data, content_type=mime, headers=headers)
