"""The engine: one inbound message -> dedupe -> per-user lock -> contact and session -> handler
-> replies rendered in the person's language. Channels call `Engine.handle` and draw the result."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from bot.i18n import LANGUAGES, Renderer, detect_language
from bot.messages import Inbound, Kind, Msg, Rendered, Reply, _, reply
from bot.metrics import Metrics
from handlers.context import Context
from handlers.menu import private_chat_only
from handlers.router import remember_offered, route
from storage.database import DATABASE_ERRORS
from storage.models import utcnow
from storage.repositories import (
    CatalogueRepository,
    ContactRepository,
    FeedbackRepository,
    Sessions,
)
from storage.state import State, UserBusy

log = logging.getLogger(__name__)



class Engine:
    """Channel-neutral conversation engine, shared by every channel of a process."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        state: State,
        renderer: Renderer,
        zone: ZoneInfo,
        metrics: Metrics,
        organizers: Sequence[str] = (),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.state = state
        self.renderer = renderer
        self._renderers = {str(renderer.zone): renderer}
        self.zone = zone
        self.metrics = metrics
        self.organizers = tuple(organizers)
        self.clock = clock
        self.contacts = ContactRepository(sessions)
        self.catalogue = CatalogueRepository(sessions, version=state.catalogue_version)
        self.feedback = FeedbackRepository(sessions)

    async def handle(self, inbound: Inbound) -> list[Rendered]:
        """Handle one message; never raises: failures become a polite, localized answer."""
        started = time.perf_counter()
        channel = inbound.channel
        self.metrics.updates_in.labels(channel).inc()
        try:
            if inbound.message_id and not await self._first_delivery(inbound):
                self.metrics.duplicates.labels(channel).inc()
                return []
            if inbound.kind is Kind.GROUP:
                return self._apology(inbound, self._guess_language(inbound, {}),
                                     private_chat_only(inbound.payload or ""))
            throttled = await self._throttled(inbound)
            if throttled is not None:
                return throttled
            try:
                async with self.state.user_lock(channel, inbound.user_id):
                    rendered = await self._handle(inbound)
            except UserBusy:
                log.warning("user %s:%s still busy after waiting for the lock", channel,
                            inbound.user_id)
                rendered = await self._notice(inbound, _(
                    "Please wait a moment: I am still answering your previous message."))
            except RedisError:
                log.exception("redis unavailable for the user lock; handling without it")
                rendered = await self._handle(inbound, redis_ok=False)
        finally:
            self.metrics.handler_latency.labels(channel).observe(time.perf_counter() - started)
        self.metrics.updates_out.labels(channel).inc(len(rendered))
        return rendered

    async def _first_delivery(self, inbound: Inbound) -> bool:
        assert inbound.message_id is not None
        try:
            return await self.state.first_delivery(inbound.channel, inbound.message_id)
        except RedisError:
            log.exception("redis unavailable for dedupe; handling the message anyway")
            return True

    async def _throttled(self, inbound: Inbound) -> list[Rendered] | None:
        """None to go on; else what to answer a flood: one polite notice, then silence."""
        try:
            if not await self.state.throttled(inbound.channel, inbound.user_id):
                return None
            if not await self.state.first_throttle_notice(inbound.channel, inbound.user_id):
                return []
        except RedisError:
            log.exception("redis unavailable for the throttle")
            return None
        log.info("throttling %s:%s", inbound.channel, inbound.user_id)
        return await self._notice(inbound, _(
            "You are sending messages very fast. Please wait a few seconds, then write again."))

    async def _handle(self, inbound: Inbound, redis_ok: bool = True) -> list[Rendered]:
        channel, user_id = inbound.channel, inbound.user_id
        session: dict[str, Any] = {}
        if redis_ok:
            try:
                session = await self.state.load_session(channel, user_id)
            except RedisError:
                log.exception("redis unavailable: conversation state lost for this message")
                redis_ok = False
        guess = self._guess_language(inbound, session)
        try:
            contact = await self.contacts.arrive(
                channel, user_id, guess if guess in LANGUAGES else None, self.organizers)
            fair = await self.catalogue.fair()
        except DATABASE_ERRORS:
            log.exception("database unavailable while handling %s:%s", channel, user_id)
            return self._apology(inbound, guess, _(
                "Sorry, the service is briefly unavailable. Please try again in a minute."))
        if fair is None:
            log.error("no fair is loaded: import a catalogue with `tadamon import`")
            return self._apology(inbound, guess, _(
                "The fair programme is not available yet. Please come back later."))
        ctx = Context(
            inbound=inbound,
            contact=contact,
            language=contact.language or guess,
            session=session,
            fair=fair,
            catalogue=self.catalogue,
            contacts=self.contacts,
            feedback=self.feedback,
            now=self.clock(),
            zone=ZoneInfo(fair.timezone),
        )
        try:
            replies = await route(ctx)
        except DATABASE_ERRORS:
            log.exception("database failed while handling %s:%s", channel, user_id)
            self.metrics.handler_errors.labels(channel).inc()
            replies = [reply(_(
                "Sorry, the service is briefly unavailable. Please try again in a minute."))]
        except Exception:  # the one error boundary for handlers: log once, apologize
            log.exception("handler failed for %s:%s on %r", channel, user_id, inbound.kind)
            self.metrics.handler_errors.labels(channel).inc()
            replies = [reply(_("Sorry, something went wrong on our side. Please try again."))]
        remember_offered(ctx.session, replies)
        ctx.session["lang"] = ctx.language
        if redis_ok:
            try:
                await self.state.save_session(channel, user_id, ctx.session)
            except RedisError:
                log.exception("redis unavailable: conversation state not saved")
        return self._renderer(fair.timezone).render_all(replies, ctx.language)

    def _renderer(self, timezone: str) -> Renderer:
        """A renderer showing times in the fair's own time zone."""
        if timezone not in self._renderers:
            self._renderers[timezone] = Renderer(self.renderer.translations, ZoneInfo(timezone))
        return self._renderers[timezone]

    def _guess_language(self, inbound: Inbound, session: dict[str, Any]) -> str:
        remembered = session.get("lang")
        if isinstance(remembered, str) and remembered in self.renderer.translations:
            return remembered
        hint = (inbound.language_hint or "").split("-")[0].lower()
        if hint not in self.renderer.translations:
            hint = "fr"
        if inbound.kind is Kind.TEXT and any(ch.isalpha() for ch in inbound.text):
            return detect_language(inbound.text, default=hint)
        return hint

    def _apology(self, inbound: Inbound, language: str, message: Msg | Reply
                 ) -> list[Rendered]:
        if isinstance(message, Msg):
            message = Reply((message,))
        return [self.renderer.render(message, language)]

    async def _notice(self, inbound: Inbound, message: Msg) -> list[Rendered]:
        """A short notice in the language of the person's conversation, when Redis knows it."""
        try:
            session = await self.state.load_session(inbound.channel, inbound.user_id)
        except RedisError:
            session = {}
        return self._apology(inbound, self._guess_language(inbound, session), message)
