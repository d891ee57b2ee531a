"""Wiring, done once: settings -> database, Redis, catalogs, engine and channels."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from importlib import resources
from pathlib import Path

from redis.exceptions import RedisError

from bot.catalogue import import_catalogue
from bot.channels import BulkSender, Channel
from bot.channels.base import PlatformChannel
from bot.engine import Engine
from bot.i18n import Renderer, load_translations
from bot.metrics import Metrics
from bot.settings import ORGANIZER_CHANNELS, Settings
from handlers.understanding import warm
from storage import database
from storage.catalogue import ImportReport, active_fair
from storage.outbox import QuietHours
from storage.privacy import load_log_key, person
from storage.registrations import Reminders
from storage.state import State, connect_redis
from storage.webinbox import WebInbox
from storage.websessions import WebSessionRepository

log = logging.getLogger(__name__)


def _people(entries: list[str]) -> str:
    """`CHANNEL:USER_ID` entries as log lines name people."""
    return ", ".join(person(channel, user_id) for channel, _sep, user_id
                     in (entry.partition(":") for entry in entries))


def sample_catalogue() -> Path:
    """The bundled sample fair (fictional data, for demonstrations)."""
    return Path(str(resources.files("bot").joinpath("data", "sample-fair.yaml")))


class App:
    """Everything a process shares: made once from the settings, closed once."""

    def __init__(self, settings: Settings) -> None:
        from bot.channels.web import WebChat, WebInboxSender
        from bot.channels.webpush import WebPush

        self.settings = settings
        self.db = database.create_engine(settings.database_url)
        self.sessions = database.create_sessionmaker(self.db)
        self.redis = connect_redis(settings.redis_url)
        self.state = State(self.redis)
        self.metrics = Metrics()
        self.quiet_hours = QuietHours(*settings.quiet_hours) if settings.quiet_hours else None
        self.renderer = Renderer(load_translations(), settings.zone,
                                 public_url=settings.public_url)
        self.engine = Engine(
            sessions=self.sessions,
            state=self.state,
            renderer=self.renderer,
            zone=settings.zone,
            metrics=self.metrics,
            reminders=Reminders(settings.reminder_evening,
                                dt.timedelta(minutes=settings.reminder_before)),
            quiet_hours=self.quiet_hours,
            retention_days=settings.retention_days,
        )
        self.web_sessions = WebSessionRepository(self.sessions, self.redis,
                                                 settings.web_sessions_per_minute)
        self.web_inbox = WebInbox(self.sessions)
        self.web_push = WebPush(settings, self.sessions, self.web_inbox)
        self.web_chat = WebChat(self.engine, self.state, self.web_sessions, settings,
                                self.web_inbox, self.web_push)
        self.web_sender = WebInboxSender(self.web_chat)
        self.channels: list[Channel] = []
        if settings.telegram_token is not None:
            from bot.channels.telegram import TelegramChannel

            self.channels.append(TelegramChannel(settings, self.engine, self.state,
                                                 self.engine.contacts, self.metrics))
        if settings.whatsapp_token is not None:
            from bot.channels.whatsapp import WhatsAppChannel, display_number

            self.channels.append(WhatsAppChannel(settings, self.engine, self.state,
                                                 self.sessions, self.metrics))
            # What "Continue on WhatsApp" links name: asked of the Graph API when first needed.
            self.engine.app_lookups["whatsapp"] = functools.partial(display_number, settings)

    def bulk_sender(self, name: str) -> BulkSender | None:
        """The configured channel that can reach people later, by name: Telegram, WhatsApp, and
        the web chat (its people's inbox)."""
        if name == "web":
            return self.web_sender
        for channel in self.channels:
            if isinstance(channel, PlatformChannel) and channel.name == name:
                return channel
        return None

    async def start_channels(self) -> None:
        """Connect every configured platform (each retries on its own if it is down)."""
        for channel in self.channels:
            await channel.start()

    async def stop_channels(self) -> None:
        """Stop receiving, and let what was received be answered."""
        for channel in self.channels:
            await channel.stop()

    async def prepare(self, *, load_sample: bool = True, organizers: bool = True,
                      understands: bool = True) -> ImportReport | None:
        """Apply migrations and TADAMON_ORGANIZERS (unless `organizers` is False: a one-shot
        command, whose shell may not hold the deployment's setting); load TADAMON_CATALOGUE,
        or the sample fair when none is loaded. `understands`: False for a process that never
        reads a message (a worker), which then starts without training the classifier."""
        await database.upgrade(self.db)
        await self.load_log_key()
        # The understanding step's classifier is trained now, not on the first visitor's
        # message (a few seconds, once per process).
        if understands:
            await asyncio.to_thread(warm)
        if organizers:
            await self.apply_organizers()
        path = self.settings.catalogue
        if path is None:
            async with self.sessions() as session:
                if await active_fair(session) is not None or not load_sample:
                    return None
            path = sample_catalogue()
        report = await import_catalogue(self.sessions, path)
        await self.catalogue_changed()
        log.info("catalogue %s loaded: %s", path.name, report.summary())
        return report

    async def load_log_key(self) -> None:
        """Name people in log lines with the deployment's key, so that every process gives a
        person the same reference; without the database, this process's own key."""
        try:
            await load_log_key(self.sessions)
        except database.DATABASE_ERRORS:
            log.warning("the log reference key is unreadable: this process's references to "
                        "people match its own log lines only", exc_info=True)

    async def apply_organizers(self) -> None:
        """Make the setting's organizers organizers, and take the role back from those it no
        longer lists (those `tadamon organizer add` named keep theirs)."""
        granted, withdrawn = await self.engine.contacts.sync_organizers(
            self.settings.organizers, ORGANIZER_CHANNELS)
        if granted:
            log.info("organizers by TADAMON_ORGANIZERS: %s", _people(granted))
        if withdrawn:
            log.warning("no longer organizers (not in TADAMON_ORGANIZERS, or not a Telegram or "
                        "WhatsApp identity): %s", _people(withdrawn))

    async def catalogue_changed(self) -> None:
        """Tell every process that the catalogue changed (they rebuild their caches)."""
        self.engine.catalogue.invalidate()
        try:
            await self.state.bump_catalogue_version()
        except RedisError:
            log.warning("redis unavailable: other processes learn of the catalogue later")

    async def database_ok(self) -> bool:
        return await database.ping(self.db)

    async def redis_ok(self) -> bool:
        try:
            async with asyncio.timeout(2):
                return await self.state.ping()
        except (RedisError, OSError, TimeoutError):
            log.warning("redis ping failed", exc_info=True)
            return False

    async def refresh_gauges(self) -> None:
        """Read the values the gauges show from the database: the outbox depth."""
        try:
            self.metrics.outbox_depth.set(await self.engine.outbox.pending())
        except database.DATABASE_ERRORS:
            log.warning("cannot read the outbox depth", exc_info=True)

    async def keep_gauges_fresh(self, period: float) -> None:
        """Refresh the gauges every `period` seconds, so that a scrape of /metrics reads only
        memory however often it comes (a COUNT per scrape is work anyone could ask for)."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.refresh_gauges()
            except Exception:  # a gauge is not worth the task: log, and try again next time
                log.exception("cannot refresh the gauges")

    async def close(self) -> None:
        """Release everything: channels (their HTTP sessions), Redis, the database."""
        await self.stop_channels()
        await self.engine.flush_statistics()
        await self.web_push.close()
        await self.redis.aclose(close_connection_pool=True)
        await self.db.dispose()
