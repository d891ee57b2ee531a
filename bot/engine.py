"""The engine: one inbound message -> dedupe -> per-user lock -> contact and session -> handler
-> replies rendered in the person's language. Channels call `Engine.handle` and draw the result."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from bot.i18n import LANGUAGES, Renderer
from bot.metrics import Metrics
from handlers.context import Context
from handlers.language import detect_language
from handlers.menu import private_chat_only
from handlers.messages import AppLink, Inbound, Kind, Msg, Rendered, Reply, _, reply
from handlers.router import route
from handlers.session import Session
from handlers.understanding import Intent
from storage.cooperatives import CooperativeRepository, LinkAttempts
from storage.database import DATABASE_ERRORS
from storage.feedback import FeedbackRepository
from storage.models import utcnow
from storage.outbox import DEFAULT_QUIET_HOURS, Outbox, QuietHours
from storage.privacy import PersonalData, person
from storage.registrations import RegistrationRepository, Reminders
from storage.reports import ReportRepository
from storage.repositories import (
    CatalogueRepository,
    ContactRepository,
    ContactView,
    SavedStandRepository,
    Sessions,
)
from storage.state import State, UserBusy
from storage.transfers import TransferCodes, Transfers

log = logging.getLogger(__name__)



# How long the conversation's copy of the person is trusted before the database is read (and
# their last message time written) again.
CONTACT_FRESH = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one message: the replies drawn, and what the message was understood as
    (CONTRACT, section Intents)."""

    rendered: list[Rendered] = field(default_factory=list)
    intent: Intent | None = None
    """None when no part of the conversation answered (a duplicate, a flood notice, an
    outage apology): not counted in the metrics."""
    erased: bool = False
    """The person was erased by this message: the channel forgets what it holds of them."""


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
        clock: Callable[[], dt.datetime] = utcnow,
        reminders: Reminders | None = None,
        quiet_hours: QuietHours | None = DEFAULT_QUIET_HOURS,
        retention_days: int = 180,
    ) -> None:
        self.state = state
        self.renderer = renderer
        self._renderers = {str(renderer.zone): renderer}
        self.zone = zone
        self.metrics = metrics
        self.clock = clock
        self.contacts = ContactRepository(sessions)
        self.catalogue = CatalogueRepository(sessions, version=state.catalogue_version)
        self.feedback = FeedbackRepository(sessions)
        self.reports = ReportRepository(sessions)
        self.cooperatives = CooperativeRepository(sessions)
        self.link_attempts = LinkAttempts(state.redis)
        self.registrations = RegistrationRepository(sessions, zone, reminders or Reminders(),
                                                    quiet_hours)
        self.outbox = Outbox(sessions)
        self.saved = SavedStandRepository(sessions)
        # The apps the web chat may send people to whose links' target (the WhatsApp number)
        # is asked of the platform when first needed; the Telegram bot's name comes at start.
        self.app_lookups: dict[str, Callable[[], Awaitable[str | None]]] = {}
        self.transfer_codes = TransferCodes(state.redis)
        self.transfers = Transfers(sessions, self.registrations)
        self.personal = PersonalData(sessions, self.registrations, state.redis)
        self.retention_days = retention_days

    async def flush_statistics(self) -> None:
        """Write the card views, intent counts and messages per minute kept for a moment (at
        shutdown)."""
        await self.feedback.flush()
        await self.reports.questions.flush()

    async def handle(self, inbound: Inbound) -> list[Rendered]:
        """Handle one message; never raises: failures become a polite, localized answer."""
        return (await self.answer(inbound)).rendered

    async def answer(self, inbound: Inbound) -> Answer:
        """Handle one message, and say what it was understood as; never raises."""
        started = time.perf_counter()
        channel = inbound.channel
        self.metrics.updates_in.labels(channel).inc()
        try:
            if inbound.kind is Kind.GROUP:
                return Answer(self._apology(inbound, self._guess_language(inbound, Session()),
                                            private_chat_only(inbound.payload or "")))
            try:
                async with self.state.turn(channel, inbound.user_id,
                                           inbound.message_id) as turn:
                    if turn.duplicate:
                        self.metrics.duplicates.labels(channel).inc()
                        turn.save = False
                        return Answer()
                    session = Session.load(turn.session)
                    if turn.throttled:
                        turn.save = False
                        return Answer(await self._flood_notice(inbound, session))
                    answer = await self._handle(inbound, session)
                    turn.session = session.dump()
                    # Erased: their Redis keys went with them, and nothing is written back.
                    turn.save = not answer.erased
            except UserBusy:
                log.warning("%s still busy after waiting for the lock",
                            person(channel, inbound.user_id))
                answer = Answer(await self._notice(inbound, _(
                    "Please wait a moment: I am still answering your previous message.")))
            except RedisError:
                log.exception("redis unavailable: handling %s without dedupe, lock or "
                              "conversation state", person(channel, inbound.user_id))
                answer = await self._handle(inbound, Session())
        finally:
            self.metrics.handler_latency.labels(channel).observe(time.perf_counter() - started)
        self.metrics.updates_out.labels(channel).inc(len(answer.rendered))
        if answer.intent is not None:
            self.metrics.intents.labels(channel, answer.intent.value).inc()
        return answer

    async def _flood_notice(self, inbound: Inbound, session: Session) -> list[Rendered]:
        """One polite notice per throttle window, then silence."""
        try:
            if not await self.state.first_throttle_notice(inbound.channel, inbound.user_id):
                return []
        except RedisError:
            return []
        log.info("throttling %s", person(inbound.channel, inbound.user_id))
        return self._apology(inbound, self._guess_language(inbound, session), _(
            "You are sending messages very fast. Please wait a few seconds, then write again."))

    async def _contact(self, inbound: Inbound, session: Session, guess: str) -> ContactView:
        """The person, from the conversation's copy while fresh, else from the database
        (which records the time of their message, for the WhatsApp 24-hour window)."""
        cached = session.contact
        if cached is not None and time.time() - cached.at < CONTACT_FRESH:
            return cached.contact
        contact = await self.contacts.arrive(
            inbound.channel, inbound.user_id, guess if guess in LANGUAGES else None,
            alt_id=inbound.user_alt_id)
        session.keep_contact(contact)
        return contact

    async def _handle(self, inbound: Inbound, session: Session) -> Answer:
        channel, user_id = inbound.channel, inbound.user_id
        guess = self._guess_language(inbound, session)
        try:
            contact = await self._contact(inbound, session, guess)
            fair = await self.catalogue.fair()
        except DATABASE_ERRORS:
            log.exception("database unavailable while handling %s", person(channel, user_id))
            return Answer(self._apology(inbound, guess, _(
                "Sorry, the service is briefly unavailable. Please try again in a minute.")))
        if fair is None:
            log.error("no fair is loaded: import a catalogue with `tadamon import`")
            return Answer(self._apology(inbound, guess, _(
                "The fair programme is not available yet. Please come back later.")))
        ctx = Context(
            inbound=inbound,
            contact=contact,
            language=contact.language or guess,
            session=session,
            fair=fair,
            catalogue=self.catalogue,
            contacts=self.contacts,
            feedback=self.feedback,
            cooperatives=self.cooperatives,
            link_attempts=self.link_attempts,
            outbox=self.outbox,
            registrations=self.registrations,
            saved=self.saved,
            reports=self.reports,
            now=self.clock(),
            zone=ZoneInfo(fair.timezone),
            transfer_codes=self.transfer_codes,
            transfers=self.transfers,
            apps=self._apps(),
            personal=self.personal,
            retention_days=self.retention_days,
        )
        try:
            replies = await route(ctx)
            # The pictures described are drawn here, so that a failure is the handler's.
            replies = await self._renderer(fair.timezone).draw_pictures(replies, ctx.language)
            await self._learn_app_targets(replies)
        except DATABASE_ERRORS:
            log.exception("database failed while handling %s", person(channel, user_id))
            self.metrics.handler_errors.labels(channel).inc()
            replies = [reply(_(
                "Sorry, the service is briefly unavailable. Please try again in a minute."))]
        except Exception:  # the one error boundary for handlers: log once, apologize
            log.exception("handler failed for %s on %r", person(channel, user_id), inbound.kind)
            self.metrics.handler_errors.labels(channel).inc()
            replies = [reply(_("Sorry, something went wrong on our side. Please try again."))]
        # Every message the conversation took (text, button, start payload, place) counts
        # once in its minute, in the language it was answered in: in memory, written with the
        # intent counts (flush_statistics).
        self.reports.questions.count_message(fair.id, channel, ctx.language, ctx.now)
        rendered = self._renderer(fair.timezone).render_all(replies, ctx.language)
        if ctx.erased:  # the session is not saved: nothing of the person is kept
            return Answer(rendered, ctx.intent, erased=True)
        session.remember_offered([choice.id for item in replies for choice in item.choices])
        session.language = ctx.language
        if ctx.contact != contact:  # changed by the handler (language, opt-out): keep it so
            session.keep_contact(ctx.contact, session.contact.at if session.contact else None)
        return Answer(rendered, ctx.intent)

    def _apps(self) -> tuple[str, ...]:
        """The messaging apps a web chat person can continue on."""
        known = {name for name, target in self.renderer.apps.items() if target}
        return tuple(sorted(known | set(self.app_lookups)))

    async def _learn_app_targets(self, replies: list[Reply]) -> None:
        """Ask the platforms, once, what the app links of these replies name."""
        wanted = {value.app for item in replies for line in item.lines if isinstance(line, Msg)
                  for value in line.params.values() if isinstance(value, AppLink)}
        for app in wanted - set(self.renderer.apps):
            lookup = self.app_lookups.get(app)
            target = await lookup() if lookup is not None else None
            if target:
                self.renderer.apps[app] = target
            else:
                log.warning("%s did not say what its links name: its link is left out", app)

    def _renderer(self, timezone: str) -> Renderer:
        """A renderer showing times in the fair's own time zone."""
        if timezone not in self._renderers:
            self._renderers[timezone] = Renderer(self.renderer.translations, ZoneInfo(timezone),
                                                 self.renderer.apps, self.renderer.public_url)
        return self._renderers[timezone]

    async def fair_renderer(self) -> Renderer:
        """A renderer showing times in the served fair's own time zone (TADAMON_TIMEZONE's
        when no fair is loaded): for what is sent later, as for the answers."""
        fair = await self.catalogue.fair()
        return self.renderer if fair is None else self._renderer(fair.timezone)

    def _guess_language(self, inbound: Inbound, session: Session) -> str:
        remembered = session.language
        if remembered is not None and remembered in self.renderer.translations:
            return remembered
        hint = (inbound.language_hint or "").split("-")[0].lower()
        if hint not in self.renderer.translations:
            hint = "fr"
        command = inbound.text.startswith("/")  # `/start coop_...`: the words are not language
        if inbound.kind is Kind.TEXT and not command and any(ch.isalpha() for ch in inbound.text):
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
            session = Session.load(await self.state.load_session(inbound.channel,
                                                                 inbound.user_id))
        except RedisError:
            session = Session()
        return self._apology(inbound, self._guess_language(inbound, session), message)
