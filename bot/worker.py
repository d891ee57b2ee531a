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
from typing import TYPE_CHECKING

from bot.channels import BulkSender, Delivery
from bot.i18n import LANGUAGES
from bot.messages import Rendered
from handlers.notices import broadcast_progress, notice
from storage.database import DATABASE_ERRORS
from storage.models import OutboxStatus, utcnow
from storage.outbox import (
    BULK_KINDS,
    BroadcastReport,
    Claimed,
    Outbox,
    Outcome,
    broadcasts_to_report,
    queue_reminders,
    record_progress,
)
from storage.ratelimit import RateLimiter

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

BATCH = 200
LEASE = 120.0
CONCURRENCY = 64
MAX_ATTEMPTS = 6
REMINDERS_EVERY = 60.0  # seconds between passes that queue catalogue reminders
PROGRESS_EVERY = 5.0  # seconds between edits of an organizer's progress message
QUIET_START, QUIET_END = dt.time(22), dt.time(8)


def quiet_until(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
    """During quiet hours (22:00-08:00 fair time), the morning they end; else None."""
    local = now.astimezone(zone)
    if QUIET_END <= local.time() < QUIET_START:
        return None
    morning = local.date() if local.time() < QUIET_END else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(morning, QUIET_END, zone).astimezone(dt.UTC)


class OutboxWorker:
    """Claims due outbox rows and sends them through the channels."""

    def __init__(self, app: App, batch: int = BATCH, lease: float = LEASE,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.app = app
        self.clock = clock
        self.outbox = Outbox(app.sessions)
        self.limiter = RateLimiter(app.redis)
        self.batch = batch
        self.lease = lease
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._progress_start: dict[int, tuple[float, int]] = {}
        self._outcomes: list[Outcome] = []
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; database or Redis outages only pause the work."""
        log.info("outbox worker: on")
        reminders_checked = -REMINDERS_EVERY
        progress_shown = -PROGRESS_EVERY
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if loop.time() - reminders_checked >= REMINDERS_EVERY:
                reminders_checked = loop.time()
                await self._queue_reminders()
            if loop.time() - progress_shown >= PROGRESS_EVERY:
                progress_shown = loop.time()
                await self.report_progress()
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
            await self._batch(rows)

    async def _batch(self, rows: list[Claimed]) -> None:
        """Send a claimed batch, then record every outcome in one transaction."""
        await asyncio.gather(*(self._one(row) for row in rows))
        outcomes, self._outcomes = self._outcomes, []
        try:
            await self.outbox.settle_many(outcomes)
        except DATABASE_ERRORS:
            # The rows stay claimed until their lease ends, then go out again: the messages
            # of this batch may repeat, none is lost.
            log.exception("outcomes of %d outbox rows not recorded", len(outcomes))

    def _record_outcome(self, row_id: int, status: OutboxStatus, *,
                        platform_message_id: str | None = None, error: str | None = None,
                        retry_at: dt.datetime | None = None) -> None:
        self._outcomes.append(Outcome(row_id, status, platform_message_id, error, retry_at))

    async def _queue_reminders(self) -> None:
        """Catalogue reminders for the people who arrived since the last pass."""
        try:
            added = await queue_reminders(self.app.sessions, self.clock())
        except DATABASE_ERRORS:
            log.warning("reminders not queued this time", exc_info=True)
            return
        if added:
            log.info("queued %d reminder messages", added)

    async def report_progress(self) -> None:
        """Show each organizer how their broadcast goes: one message, edited where the
        platform allows (Telegram), and its outcome at the end."""
        try:
            reports = await broadcasts_to_report(self.app.sessions)
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
            rendered = self.app.renderer.render(
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

    async def drain(self) -> int:
        """Send everything due now, then return how many rows were handled (tests, CLI)."""
        handled = 0
        while rows := await self.outbox.claim(self.batch, self.lease, self.clock()):
            await self._batch(rows)
            handled += len(rows)
        return handled

    async def _one(self, row: Claimed) -> None:
        async with self._slots:
            try:
                await self._send(row)
            except Exception as exc:  # one place logs; the row is tried again later
                log.exception("outbox row %s failed", row.id)
                self._failed(row, f"{type(exc).__name__}: {exc}")

    async def _send(self, row: Claimed) -> None:
        now = self.clock()
        if row.opted_out:
            self._record_outcome(row.id, OutboxStatus.SKIPPED, error="opted out")
            return
        if row.unreachable:
            self._record_outcome(row.id, OutboxStatus.SKIPPED,
                                     error="unreachable: the person blocked the bot")
            return
        if row.kind in BULK_KINDS and not row.urgent:
            morning = quiet_until(now, self.app.settings.zone)
            if morning is not None:
                self._record_outcome(row.id, OutboxStatus.PENDING, retry_at=morning)
                return
        reply = notice(row.kind, row.payload)
        if reply is None:
            self._record_outcome(row.id, OutboxStatus.FAILED,
                                     error=f"unknown message kind {row.kind!r}")
            return
        channel = self.app.bulk_sender(row.channel)
        if channel is None:
            reason = ("the web chat cannot receive messages later" if row.channel == "web"
                      else f"channel {row.channel} is not configured")
            self._record_outcome(row.id, OutboxStatus.SKIPPED, error=reason)
            return
        language = row.language if row.language in LANGUAGES else "fr"
        rendered = self.app.renderer.render(reply, language)
        # The person's bucket first, then the channel's: charging the channel only when the
        # message is about to go keeps every second of the channel under its limit.
        for name, rate, burst in self._buckets(row):
            await self.limiter.acquire(name, rate, burst)
        delivery = await channel.send_bulk(row.user_id, language, row.last_inbound_at,
                                           row.kind, rendered, now)
        await self._record(row, delivery)

    def _buckets(self, row: Claimed) -> list[tuple[str, float, float | None]]:
        settings = self.app.settings
        if row.channel == "telegram":
            # One message a second to any one chat, and the whole bot's rate. No burst on the
            # channel: evenly spaced sends never put more than the limit into any one second.
            return [(f"telegram:chat:{row.user_id}", 1.0, 1.0),
                    ("telegram", settings.telegram_rate, 1.0)]
        return [(row.channel, float(settings.whatsapp_rate), 1.0)]

    async def _record(self, row: Claimed, delivery: Delivery) -> None:
        if delivery.status == "sent":
            self.sent += 1
            self._record_outcome(row.id, OutboxStatus.SENT,
                                     platform_message_id=delivery.platform_message_id)
        elif delivery.status == "skipped":
            self._record_outcome(row.id, OutboxStatus.SKIPPED, error=delivery.reason)
        else:
            self._record_outcome(row.id, OutboxStatus.FAILED, error=delivery.reason)

    def _failed(self, row: Claimed, error: str) -> None:
        """Try a failed row again later with backoff, until MAX_ATTEMPTS."""
        if row.attempts >= MAX_ATTEMPTS:
            self._record_outcome(row.id, OutboxStatus.FAILED, error=error)
        else:
            delay = dt.timedelta(seconds=min(30 * 2 ** row.attempts, 3600))
            self._record_outcome(row.id, OutboxStatus.PENDING, error=error,
                                 retry_at=utcnow() + delay)
