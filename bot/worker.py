"""The outbox worker: sends what is not a direct reply (reminders, notices, broadcasts).

Any number of workers, in any number of processes, share the outbox: each claims due rows for
a lease (PostgreSQL skips rows another worker holds), sends them under the shared per-channel
rate limit, and records how each ended. A worker that dies loses its claims when the leases end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from bot.channels import BulkSender, Delivery
from bot.channels.quota import BULK, channel_bucket
from bot.channels.web import WebInboxSender
from bot.i18n import LANGUAGES, Renderer
from handlers.messages import Rendered
from handlers.notices import broadcast_progress, notice
from storage.database import DATABASE_ERRORS
from storage.feedback import queue_cooperative_messages
from storage.models import OutboxStatus, utcnow
from storage.notices import BroadcastNotice, Notice, PayloadError, load_notice
from storage.outbox import (
    BroadcastReport,
    Claimed,
    Outbox,
    Outcome,
    broadcasts_to_report,
    queue_reminders,
    quiet_until,
    record_progress,
)
from storage.privacy import PersonalData
from storage.ratelimit import Booking, Bucket, RateLimiter, telegram_chat_bucket

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

BATCH = 500
LEASE = 120.0
CONCURRENCY = 64
GROUP = 16  # rows booked with the rate limiter in one round trip
# Outcomes are recorded this often, or as soon as SETTLE_AT are waiting: what a crash can make
# go out twice is what was sent and not recorded yet.
SETTLE_EVERY = 0.1
SETTLE_AT = 50
MAX_ATTEMPTS = 6
REMINDERS_EVERY = 60.0  # seconds between passes that queue catalogue reminders
OFFERS_EVERY = 30.0  # seconds between passes over expired offers and free seats
PROGRESS_EVERY = 5.0  # seconds between edits of an organizer's progress message
RETENTION_EVERY = 3600.0  # seconds between passes that erase the people kept long enough


@dataclass(frozen=True, slots=True)
class _Ready:
    """A claimed row whose message is rendered and whose channel can take it."""

    row: Claimed
    payload: Notice
    channel: BulkSender
    language: str
    rendered: Rendered


class OutboxWorker:
    """Claims due outbox rows and sends them through the channels."""

    def __init__(self, app: App, batch: int = BATCH, lease: float = LEASE,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.app = app
        self.clock = clock
        self.outbox = Outbox(app.sessions)
        self.limiter = RateLimiter(app.redis)
        # A claimed row must go out before its lease ends, or another worker takes it too:
        # at a slow send rate, claim fewer (a quarter of what the lease has time for).
        slowest = min(app.settings.telegram_rate, float(app.settings.whatsapp_rate))
        self.batch = max(1, min(batch, int(slowest * lease / 4)))
        self.lease = lease
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._progress_start: dict[int, tuple[float, int]] = {}
        self._outcomes: list[Outcome] = []
        self._settle_now = asyncio.Event()
        self._settling = asyncio.Lock()
        self._rendered: dict[tuple[int | None, str], Rendered] = {}
        self._last_send: dict[str, float] = {}
        self._limiter_away = False
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; database or Redis outages only pause the work.

        A pipeline: the next batch is claimed while the last sends of the one before are in
        flight, and outcomes are recorded alongside, every SETTLE_EVERY seconds."""
        log.info("outbox worker: on")
        reminders_checked = -REMINDERS_EVERY
        offers_checked = -OFFERS_EVERY
        progress_shown = -PROGRESS_EVERY
        retention_applied = -RETENTION_EVERY
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        settler = asyncio.create_task(self._settle_loop(finished))
        try:
            while not stop.is_set():
                if loop.time() - reminders_checked >= REMINDERS_EVERY:
                    reminders_checked = loop.time()
                    await self._queue_reminders()
                if loop.time() - offers_checked >= OFFERS_EVERY:
                    offers_checked = loop.time()
                    await self.pass_offers_on()
                if loop.time() - progress_shown >= PROGRESS_EVERY:
                    progress_shown = loop.time()
                    await self.report_progress()
                if loop.time() - retention_applied >= RETENTION_EVERY:
                    retention_applied = loop.time()
                    await self.apply_retention()
                if not await self._rate_limiter_reachable():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1)
                    continue
                try:
                    rows = await self.outbox.claim(self.batch, self.lease, self.clock())
                except DATABASE_ERRORS:
                    log.warning("outbox unreachable; retrying in 2 s", exc_info=True)
                    rows = []
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 2)
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
                    continue
                await self._dispatch(rows, stop)
        finally:
            await self._finish(settler, finished)

    async def _rate_limiter_reachable(self) -> bool:
        """Whether Redis, which keeps the shared send rate, answers: while it does not, rows
        are left in the outbox, rather than claimed only to spend an attempt of each on the
        outage (and, after MAX_ATTEMPTS, be failed for it)."""
        try:
            async with asyncio.timeout(2):
                await self.app.state.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._limiter_away:
                log.warning("redis unreachable: outbox rows wait for the rate limiter (%s)", exc)
            self._limiter_away = True
            return False
        if self._limiter_away:
            log.info("redis is back: the outbox goes on")
        self._limiter_away = False
        return True

    async def drain(self) -> int:
        """Send everything due now, then return how many rows were handled (tests, CLI)."""
        handled = 0
        finished = asyncio.Event()
        settler = asyncio.create_task(self._settle_loop(finished))
        try:
            while rows := await self.outbox.claim(self.batch, self.lease, self.clock()):
                await self._dispatch(rows, None)
                handled += len(rows)
        finally:
            await self._finish(settler, finished)
        return handled

    async def _dispatch(self, rows: list[Claimed], stop: asyncio.Event | None) -> None:
        """Send the rows GROUP at a time: take a slot for each (at most CONCURRENCY sends in
        flight), book their places with the rate limiter in one round trip, start them. On
        stop, the rows not started go back to the outbox at once, not at the lease's end."""
        try:
            renderer = await self.app.engine.fair_renderer()
        except DATABASE_ERRORS as exc:  # the fair's time zone is unknown: none can go yet
            log.warning("the fair is unreadable; %d outbox rows wait", len(rows), exc_info=True)
            for row in rows:
                self._failed(row, f"{type(exc).__name__}: {exc}")
            return
        for start in range(0, len(rows), GROUP):
            if stop is not None and stop.is_set():
                now = self.clock()
                for left in rows[start:]:
                    self._record_outcome(left.id, OutboxStatus.PENDING, retry_at=now)
                return
            now = self.clock()
            ready = [item for row in rows[start:start + GROUP]
                     if (item := self._prepare(row, now, renderer)) is not None]
            for _item in ready:
                await self._slots.acquire()
            for item, booking in zip(ready, await self._book(ready), strict=True):
                task = asyncio.create_task(self._deliver(item, booking))
                self._in_flight.add(task)
                task.add_done_callback(self._sent_one)

    def _sent_one(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if len(self._outcomes) >= SETTLE_AT:
            self._settle_now.set()

    async def _finish(self, settler: asyncio.Task[None], finished: asyncio.Event) -> None:
        """Let the sends in flight end, then the background recording (never cut off in the
        middle of a transaction), and record what is left."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        finished.set()
        self._settle_now.set()
        await settler
        await self._settle()

    async def _settle_loop(self, finished: asyncio.Event) -> None:
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settle_now.wait(), SETTLE_EVERY)
            self._settle_now.clear()
            await self._settle()

    async def _settle(self) -> None:
        """Record the outcomes gathered so far, in one transaction."""
        async with self._settling:
            outcomes, self._outcomes = self._outcomes, []
            if not outcomes:
                return
            try:
                await self.outbox.settle_many(outcomes, self.clock())
            except Exception:
                # Kept for the next try. Should the lease end first, the rows go out again:
                # they may repeat, none is lost.
                log.exception("outcomes of %d outbox rows not recorded yet", len(outcomes))
                self._outcomes[:0] = outcomes
            except BaseException:  # cancelled: whoever records next records these too
                self._outcomes[:0] = outcomes
                raise

    def _record_outcome(self, row_id: int, status: OutboxStatus, *,
                        platform_message_id: str | None = None, error: str | None = None,
                        retry_at: dt.datetime | None = None) -> None:
        self._outcomes.append(Outcome(row_id, status, platform_message_id, error, retry_at))

    async def _queue_reminders(self) -> None:
        """Catalogue reminders for the people who arrived since the last pass; cooperatives'
        digests and survey when due."""
        try:
            added = await queue_reminders(self.app.sessions, self.clock())
            # the card views this process counted in the last moment go in the digests too
            await self.app.engine.flush_statistics()
            added += await queue_cooperative_messages(self.app.sessions, self.clock())
        except DATABASE_ERRORS:
            log.warning("reminders not queued this time", exc_info=True)
            return
        if added:
            log.info("queued %d reminder messages", added)

    async def pass_offers_on(self) -> None:
        """Offers nobody answered in time go to the next person waiting; free seats (a
        capacity raised by a re-import) are offered."""
        now = self.clock()
        try:
            expired = await self.app.engine.registrations.expire_offers(now)
            offered = await self.app.engine.registrations.offer_free_seats(now)
        except DATABASE_ERRORS:
            log.warning("offers not passed on this time", exc_info=True)
            return
        if expired or offered:
            log.info("offers: %d expired and passed on, %d new", expired, offered)

    async def apply_retention(self) -> int:
        """TADAMON_RETENTION_DAYS after the fair's last day, erase the people who have not
        written for as long; returns how many were erased."""
        personal = PersonalData(self.app.sessions, self.app.engine.registrations,
                                self.app.redis)
        try:
            return await personal.sweep(self.clock(), self.app.settings.retention_days)
        except DATABASE_ERRORS:
            log.warning("retention not applied this time", exc_info=True)
        except Exception:  # the erasure waits for the next pass; the messages go on
            log.exception("retention failed; tried again in an hour")
        return 0

    async def report_progress(self) -> None:
        """Show each organizer how their broadcast goes: one message, edited where the
        platform allows (Telegram), and its outcome at the end."""
        try:
            reports = await broadcasts_to_report(self.app.sessions)
            renderer = await self.app.engine.fair_renderer()
        except DATABASE_ERRORS:
            return
        loop = asyncio.get_running_loop()
        for report in reports:
            finished = report.done >= report.total
            first = self._progress_start.setdefault(report.id, (loop.time(), report.done))
            elapsed, progressed = loop.time() - first[0], report.done - first[1]
            left = ((report.total - report.done) * elapsed / progressed
                    if progressed > 0 and elapsed > 0 else None)
            language = report.language if report.language in LANGUAGES else "fr"
            rendered = renderer.render(
                broadcast_progress(report.id, report.counts, left), language)
            channel = self.app.bulk_sender(report.channel)
            try:
                await self._show_progress(report, channel, rendered, language, finished)
            except Exception:  # progress is a courtesy: never stop the sending for it
                log.warning("progress of broadcast %s not shown", report.id, exc_info=True)
            if finished:
                self._progress_start.pop(report.id, None)

    async def _show_progress(self, report: BroadcastReport, channel: BulkSender | None,
                             rendered: Rendered, language: str, finished: bool) -> None:
        message_id = report.progress_message_id
        if channel is not None:
            edit = getattr(channel, "edit_text", None)
            if message_id is None or (finished and edit is None):
                delivery = await channel.send_bulk(report.user_id, language,
                                                   report.last_inbound_at, "progress",
                                                   rendered, self.clock())
                message_id = delivery.platform_message_id or message_id
            elif edit is not None:
                await edit(report.user_id, message_id, rendered)
        await record_progress(self.app.sessions, report.id, message_id=message_id,
                              finished=finished)

    def _prepare(self, row: Claimed, now: dt.datetime, renderer: Renderer) -> _Ready | None:
        """The message of a row, ready to go (its times, and quiet hours, in the renderer's
        zone: the fair's); or None when its outcome is already known (not to be sent, or
        later)."""
        try:
            if row.opted_out:
                self._record_outcome(row.id, OutboxStatus.SKIPPED, error="opted out")
                return None
            if row.unreachable:
                self._record_outcome(row.id, OutboxStatus.SKIPPED,
                                     error="unreachable: the person blocked the bot")
                return None
            try:
                payload: Notice | None = load_notice(row.kind, row.payload)
                unreadable = ""
            except PayloadError as exc:
                payload, unreadable = None, str(exc)
            if payload is not None and payload.held_in_quiet_hours():
                morning = quiet_until(now, renderer.zone, self.app.quiet_hours)
                if morning is not None:
                    self._record_outcome(row.id, OutboxStatus.PENDING, retry_at=morning)
                    return None
            channel = self.app.bulk_sender(row.channel)
            if channel is None:
                self._record_outcome(row.id, OutboxStatus.SKIPPED,
                                     error=f"channel {row.channel} is not configured")
                return None
            if payload is None:
                # Tried again it would fail again: recorded as failed at once, with why.
                log.error("outbox row %s not sent: %s", row.id, unreadable)
                self._record_outcome(row.id, OutboxStatus.FAILED, error=unreadable)
                return None
            language = row.language if row.language in LANGUAGES else "fr"
            return _Ready(row, payload, channel, language,
                          self._render(row, payload, language, renderer))
        except Exception as exc:  # one place logs; the row is tried again later
            log.exception("outbox row %s failed", row.id)
            self._failed(row, f"{type(exc).__name__}: {exc}")
            return None

    def _render(self, row: Claimed, payload: Notice, language: str,
                renderer: Renderer) -> Rendered:
        """The row's message in its reader's language. A broadcast's rows all carry the same
        message: it is rendered once per language."""
        key = (row.broadcast_id, language) if isinstance(payload, BroadcastNotice) else None
        if key is not None and (cached := self._rendered.get(key)) is not None:
            return cached
        reply = notice(payload)
        rendered = renderer.render(reply, language)
        if key is not None:
            if len(self._rendered) >= 64:
                self._rendered.clear()
            self._rendered[key] = rendered
        return rendered

    async def _book(self, ready: list[_Ready]) -> list[Booking | None]:
        """Places for these messages with the shared rate limiter: one round trip per channel.
        When Redis cannot answer, None: each message then asks on its own as it goes."""
        bookings: list[Booking | None] = [None] * len(ready)
        groups: dict[Bucket, list[int]] = {}
        for index, item in enumerate(ready):
            if isinstance(item.channel, WebInboxSender):
                continue  # kept in the inbox: no platform rate to keep to
            groups.setdefault(self._channel_bucket(item.row.channel), []).append(index)
        for channel, indexes in groups.items():
            recipients = [bucket for index in indexes
                          if (bucket := self._recipient_bucket(ready[index].row)) is not None]
            try:
                booked = await self.limiter.reserve_each(channel, len(indexes), recipients)
            except Exception:
                log.warning("send places not booked for %d messages", len(indexes),
                            exc_info=True)
                continue
            for index, booking in zip(indexes, booked, strict=True):
                bookings[index] = booking
        return bookings

    async def _deliver(self, item: _Ready, booking: Booking | None) -> None:
        row = item.row
        BULK.set(True)  # this task's sends were booked in the bucket here, not by the window
        if isinstance(item.channel, WebInboxSender):
            await self._keep_for_web(item)
            return
        try:
            # The person's bucket first, then the channel's: charging the channel only when
            # the message is about to go keeps every second of the channel under its limit.
            channel = self._channel_bucket(row.channel)
            if booking is None:
                recipient = self._recipient_bucket(row)
                await self.limiter.acquire_in_order(
                    [channel] if recipient is None else [recipient, channel])
            else:
                if booking.wait > 0:
                    await asyncio.sleep(booking.wait)
                if not booking.channel_charged:
                    await self.limiter.acquire_in_order([channel])
            await self._pace(channel)
            delivery = await item.channel.send_bulk(row.user_id, item.language,
                                                    row.last_inbound_at, item.payload.template,
                                                    item.rendered, self.clock())
            self._record(row, delivery)
        except Exception as exc:  # one place logs; the row is tried again later
            log.exception("outbox row %s failed", row.id)
            self._failed(row, f"{type(exc).__name__}: {exc}")

    async def _keep_for_web(self, item: _Ready) -> None:
        """A web chat person's message goes to their inbox (sent once kept there), under no
        platform's rate: the push notifications that follow go to many push services."""
        assert isinstance(item.channel, WebInboxSender)
        row = item.row
        try:
            delivery = await item.channel.deliver(row.id, row.contact_id, item.rendered,
                                                  self.clock())
            self._record(row, delivery)
        except Exception as exc:  # one place logs; the row is tried again later
            log.exception("outbox row %s failed", row.id)
            self._failed(row, f"{type(exc).__name__}: {exc}")

    async def _pace(self, bucket: Bucket) -> None:
        """Never two sends of a channel from this process closer than 1/rate: after the event
        loop was held up, the sends that fell due meanwhile leave one by one, not together."""
        name, rate, _burst = bucket
        now = asyncio.get_running_loop().time()
        previous = self._last_send.get(name)
        slot = now if previous is None else max(now, previous + 1.0 / rate)
        self._last_send[name] = slot
        if slot - now > 0.001:
            await asyncio.sleep(slot - now)

    def _channel_bucket(self, channel: str) -> Bucket:
        settings = self.app.settings
        return channel_bucket(channel, settings.telegram_rate if channel == "telegram"
                              else settings.whatsapp_rate)

    def _recipient_bucket(self, row: Claimed) -> Bucket | None:
        # Telegram: one message a second to any one chat.
        if row.channel == "telegram":
            return telegram_chat_bucket(row.user_id)
        return None

    def _record(self, row: Claimed, delivery: Delivery) -> None:
        if delivery.status == "sent":
            self.sent += 1
            self._record_outcome(row.id, OutboxStatus.SENT,
                                     platform_message_id=delivery.platform_message_id)
        elif delivery.status == "skipped":
            self._record_outcome(row.id, OutboxStatus.SKIPPED, error=delivery.reason)
        elif delivery.status == "later":
            self._failed(row, delivery.reason or "the platform is unavailable")
        else:
            self._record_outcome(row.id, OutboxStatus.FAILED, error=delivery.reason)

    def _failed(self, row: Claimed, error: str) -> None:
        """Try a failed row again later with backoff, until MAX_ATTEMPTS."""
        if row.attempts >= MAX_ATTEMPTS:
            self._record_outcome(row.id, OutboxStatus.FAILED, error=error)
        else:
            delay = dt.timedelta(seconds=min(30 * 2 ** row.attempts, 3600))
            self._record_outcome(row.id, OutboxStatus.PENDING, error=error,
                                 retry_at=self.clock() + delay)
