"""`tadamon broadcast` and its `status` and `cancel`: organizer broadcasts."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated

import typer

from bot.cli import common
from bot.errors import BadInput

log = logging.getLogger("tadamon")

broadcast_cli = typer.Typer(help="Organizer broadcasts.", invoke_without_command=True)


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
    from bot import broadcasting

    try:
        draft = broadcasting.read(audience, text_fr, text_ar, at, urgent)
    except BadInput as exc:
        raise common.bad_input(str(exc)) from None

    async def queue() -> tuple[int, int]:
        from storage.outbox import Outbox

        async with common.open_database(settings) as sessions:
            planned = await broadcasting.plan(sessions, draft, settings.timezone)
            if not yes:
                count = await Outbox(sessions).recipients(draft.audience)
                typer.echo(f"audience {draft.audience}: {count} recipients, at "
                           f"{broadcasting.local(planned.when, planned.timezone)}")
                typer.echo(f"fr: {draft.text['fr']}\nar: {draft.text['ar']}")
                if not typer.confirm("queue this broadcast?"):
                    raise typer.Exit(1)
            return await broadcasting.queue(sessions, planned)

    broadcast_id, count = common.run(queue)
    log.info("broadcast %s queued for %s recipients", broadcast_id, count)
    typer.echo(broadcast_id)


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
