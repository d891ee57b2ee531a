"""`tadamon forget CHANNEL:USER_ID`: erase a person at their request (law 09-08), as they can in
the chat."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import typer

from bot.cli import common

CHANNELS = ("telegram", "whatsapp", "web")
# What people write a WhatsApp number with (+212 6 12-34-56-78): the wa_id is its digits.
_NUMBER_SIGNS = re.compile(r"[\s+().-]")


def parse_person(who: str) -> tuple[str, str]:
    """`whatsapp:+212 612 345 678` -> ("whatsapp", "212612345678"); ValueError otherwise."""
    channel, sep, user_id = who.strip().partition(":")
    channel, user_id = channel.strip().lower(), user_id.strip()
    if channel == "whatsapp":
        user_id = _NUMBER_SIGNS.sub("", user_id)
    if not sep or channel not in CHANNELS or not user_id:
        raise ValueError(f"{who.strip()!r} is not CHANNEL:USER_ID with CHANNEL telegram, "
                         "whatsapp or web")
    return channel, user_id


def forget(who: Annotated[str, typer.Argument(
        help="telegram:USER_ID, whatsapp:WA_ID or web:USER_ID (as the exports show it)")],
           ) -> None:
    """Erase a person: contact, conversation, registrations (the seat goes to the waiting
    list), saved stands, messages not sent yet; their ratings stay as anonymous figures."""
    settings = common.settings()
    try:
        channel, user_id = parse_person(who)
    except ValueError as exc:
        raise common.bad_input(str(exc)) from None

    async def run() -> str:
        from storage.console import COMMAND_LINE, AuditLog
        from storage.models import utcnow
        from storage.outbox import QuietHours
        from storage.privacy import PersonalData
        from storage.registrations import RegistrationRepository, Reminders
        from storage.state import connect_redis

        quiet = QuietHours(*settings.quiet_hours) if settings.quiet_hours else None
        redis = connect_redis(settings.redis_url)
        try:
            async with common.open_database(settings) as sessions:
                registrations = RegistrationRepository(
                    sessions, settings.zone,
                    Reminders(settings.reminder_evening,
                              dt.timedelta(minutes=settings.reminder_before)), quiet)
                erased = await PersonalData(sessions, registrations, redis).erase(
                    channel, user_id, utcnow())
                if erased is None:
                    return f"nobody is known as {channel}:{user_id}: nothing to erase"
                said = (f"{_count(erased.registrations, 'registration')} removed "
                        f"({erased.seats_freed} held a seat, offered to the next person "
                        f"waiting), {_count(erased.saved_stands, 'saved stand')}, "
                        f"{_count(erased.messages, 'message')} not sent; "
                        f"{_count(erased.ratings, 'rating')} kept without a name")
                # The log says that someone was erased, and from which channel: never who.
                await AuditLog(sessions).write(COMMAND_LINE, "person erased", channel, said)
                return f"{channel}:{user_id} erased: {said}"
        finally:
            await redis.aclose(close_connection_pool=True)

    typer.echo(common.run(run))


def _count(count: int, word: str) -> str:
    return f"{count} {common.plural(count, word)}"
