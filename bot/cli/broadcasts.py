"""`tadamon broadcast` and its `status` and `cancel`: organizer broadcasts."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli import common
from bot.errors import BadInput, CatalogueError

log = logging.getLogger("tadamon")

broadcast_cli = typer.Typer(help="Organizer broadcasts.", invoke_without_command=True)

# How far in the past `--at` may be: the time it takes to type the command and confirm.
AT_SLACK = dt.timedelta(minutes=1)


@broadcast_cli.callback()
def broadcast(
    context: typer.Context,
    audience: Annotated[str | None, typer.Option(help="all, visitors, cooperatives, "
                                                      "organizers, lang:ar, lang:fr, "
                                                      "workshop:<id>")] = None,
    text_fr: Annotated[str | None, typer.Option("--text-fr", help="The French text.")] = None,
    text_ar: Annotated[str | None, typer.Option("--text-ar", help="The Arabic text.")] = None,
    at: Annotated[str | None, typer.Option(help="When (ISO time, fair time zone); "
                                                "default now.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    urgent: Annotated[bool, typer.Option("--urgent", help="Send during quiet hours "
                                                          "too.")] = False,
) -> None:
    """Queue a broadcast (each recipient gets their language); prints its id."""
    if context.invoked_subcommand is not None:
        return
    common.setup_logging()
    settings = common.settings()
    if audience is None or not (text_fr or "").strip() or not (text_ar or "").strip():
        raise common.bad_input("--audience, --text-fr and --text-ar are required")
    from handlers.organizers import TEXT_MAX
    from storage.outbox import audience_filter

    try:
        audience_filter(audience)
    except ValueError as exc:
        raise common.bad_input(f"--audience: {exc}") from None
    moment = _moment(at)
    text = {"fr": (text_fr or "").strip(), "ar": (text_ar or "").strip()}
    for language, written in text.items():
        if len(written) > TEXT_MAX:
            raise common.bad_input(f"--text-{language}: {len(written)} characters, a broadcast "
                                   f"holds at most {TEXT_MAX} (what a WhatsApp template "
                                   "carries)")

    async def queue() -> tuple[int, int]:
        from storage.catalogue import active_fair
        from storage.outbox import Outbox

        async with common.open_database(settings) as sessions:
            async with sessions() as session:
                fair = await active_fair(session)
            # --at is read in the served fair's own time zone, as conversations show times.
            timezone = settings.timezone if fair is None else fair.timezone
            when = _when(at, moment, timezone)
            if fair is None:
                raise CatalogueError("no fair is loaded: import a catalogue first")
            outbox = Outbox(sessions)
            try:
                await outbox.check_audience(fair.id, audience)
            except ValueError as exc:
                raise BadInput(f"--audience: {exc}") from None
            count = await outbox.recipients(audience)
            if not yes:
                typer.echo(f"audience {audience}: {count} recipients, at "
                           f"{_local(when, timezone)}")
                typer.echo(f"fr: {text['fr']}\nar: {text['ar']}")
                if not typer.confirm("queue this broadcast?"):
                    raise typer.Exit(1)
            return await outbox.queue_broadcast(fair.id, audience, text, when, urgent)

    broadcast_id, count = common.run(queue)
    log.info("broadcast %s queued for %s recipients", broadcast_id, count)
    typer.echo(broadcast_id)


def _moment(at: str | None) -> dt.datetime | None:
    """`--at` as written (its time zone is the fair's when it names none)."""
    if at is None:
        return None
    try:
        return dt.datetime.fromisoformat(at)
    except ValueError:
        raise common.bad_input(f"--at: {at!r} is not an ISO time like 2026-12-13T09:00") from None


def _when(at: str | None, moment: dt.datetime | None, timezone: str) -> dt.datetime:
    """The UTC time to send at: `moment` read in `timezone`, now when not given; refused when
    past."""
    now = dt.datetime.now(dt.UTC)
    if moment is None:
        return now
    zone = ZoneInfo(timezone)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment < now - AT_SLACK:
        local = now.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        raise BadInput(f"--at: {at!r} is in the past (it is {local} in {timezone}; a minute "
                       "of slack is allowed): leave --at out to send now")
    return moment.astimezone(dt.UTC)


def _local(moment: dt.datetime, timezone: str) -> str:
    """`2026-12-13 09:00 (Africa/Casablanca)`: what the preview shows of when it goes."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} ({timezone})"


def _broadcast_id(value: str) -> int:
    """The id `tadamon broadcast` printed; exit 2 with one line for anything else."""
    if not re.fullmatch(r"[1-9][0-9]{0,17}", value):
        raise common.bad_input(f"{value!r} is not a broadcast id (the number `tadamon "
                               "broadcast` printed)")
    return int(value)


@broadcast_cli.command("status")
def broadcast_status(
    broadcast: Annotated[str, typer.Argument(help="The id `tadamon broadcast` printed.")],
    follow: Annotated[bool, typer.Option("--follow", help="Show progress until done.")] = False,
) -> None:
    """Sent / failed / skipped / pending counts, rate and ETA."""
    settings = common.settings()
    broadcast_id = _broadcast_id(broadcast)

    async def show() -> None:
        import time

        from storage.outbox import Outbox

        async with common.open_database(settings) as sessions:
            outbox = Outbox(sessions)
            if not await outbox.broadcast_exists(broadcast_id):
                raise BadInput(f"broadcast {broadcast_id}: no such broadcast")
            started, first_done = time.monotonic(), None
            while True:
                counts = await outbox.progress(broadcast_id)
                total = sum(counts.values())
                done = counts["sent"] + counts["failed"] + counts["skipped"]
                first_done = done if first_done is None else first_done
                elapsed = time.monotonic() - started
                rate = (done - first_done) / elapsed if elapsed > 1 else 0.0
                left = total - done
                eta = f"{left / rate:.0f} s" if rate > 0 else "-"
                percent = 100 * done / total if total else 100.0
                line = (f"broadcast {broadcast_id}: {done}/{total} ({percent:.0f}%) sent "
                        f"{counts['sent']}, failed {counts['failed']}, skipped "
                        f"{counts['skipped']}, pending {counts['pending'] + counts['sending']}"
                        f", {rate:.1f}/s, ETA {eta}")
                if not follow or left == 0:
                    typer.echo(line)
                    return
                typer.echo("\r" + line, nl=False, err=True)
                await asyncio.sleep(1)

    common.run(show)


@broadcast_cli.command("cancel")
def broadcast_cancel(
    broadcast: Annotated[str, typer.Argument(help="The id `tadamon broadcast` printed.")],
) -> None:
    """Stop a broadcast: what is not sent yet will not be."""
    settings = common.settings()
    broadcast_id = _broadcast_id(broadcast)

    async def cancel() -> int:
        from storage.outbox import Outbox

        async with common.open_database(settings) as sessions:
            cancelled = await Outbox(sessions).cancel_broadcast(broadcast_id)
        if cancelled is None:
            raise BadInput(f"broadcast {broadcast_id}: no such broadcast")
        return cancelled

    typer.echo(f"broadcast {broadcast_id} cancelled: {common.run(cancel)} messages will not "
               "be sent")
