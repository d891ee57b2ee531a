"""`tadamon organizer add | remove | list`: who may broadcast and read statistics in chat."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bot.cli import common
from bot.settings import Settings

if TYPE_CHECKING:
    from storage.repositories import ContactRepository

T = TypeVar("T")

organizer_cli = typer.Typer(help="Who may broadcast and read statistics in chat.",
                            no_args_is_help=True)


def _person(who: str) -> tuple[str, str]:
    from bot.settings import parse_organizer

    try:
        return parse_organizer(who)
    except ValueError as exc:
        raise common.bad_input(str(exc)) from None


def _with_contacts(settings: Settings,
                   work: Callable[[ContactRepository], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        from storage.repositories import ContactRepository

        async with common.open_database(settings) as sessions:
            return await work(ContactRepository(sessions))

    return common.run(run)


@organizer_cli.command("add")
def organizer_add(who: Annotated[str, typer.Argument(help="telegram:USER_ID or "
                                                          "whatsapp:USER_ID")]) -> None:
    """Let someone broadcast and read statistics in chat (until `organizer remove`)."""
    from storage.repositories import ROLE_BY_COMMAND

    settings = common.settings()
    channel, user_id = _person(who)
    _with_contacts(settings, lambda contacts: contacts.grant_organizer(channel, user_id,
                                                                        ROLE_BY_COMMAND))
    typer.echo(f"{channel}:{user_id} is an organizer")


@organizer_cli.command("remove")
def organizer_remove(who: Annotated[str, typer.Argument(help="telegram:USER_ID or "
                                                             "whatsapp:USER_ID")]) -> None:
    """Take the organizer role back, at once (whatever gave it)."""
    settings = common.settings()
    channel, user_id = _person(who)
    was = _with_contacts(settings,
                         lambda contacts: contacts.withdraw_organizer(channel, user_id))
    typer.echo(f"{channel}:{user_id} is no longer an organizer" if was
               else f"{channel}:{user_id} was not an organizer")
    if f"{channel}:{user_id}" in settings.organizers:
        typer.echo(f"tadamon: TADAMON_ORGANIZERS still lists {channel}:{user_id}: they will "
                   "be an organizer again at the next start unless it is taken out there",
                   err=True)


@organizer_cli.command("list")
def organizer_list() -> None:
    """Everyone who may broadcast, and where their role comes from."""
    from bot.settings import ORGANIZER_CHANNELS
    from storage.repositories import ROLE_BY_SETTING

    settings = common.settings()
    found = _with_contacts(settings, lambda contacts: contacts.organizers())
    sources = {f"{contact.channel}:{contact.user_id}": source for contact, source in found}
    for who, source in sources.items():
        if source == ROLE_BY_SETTING:
            where = "TADAMON_ORGANIZERS"
            if who not in settings.organizers:
                where += " (no longer listed here: taken back at the next start)"
        else:
            where = "tadamon organizer add"
        if who.partition(":")[0] not in ORGANIZER_CHANNELS:
            where += " (not a Telegram or WhatsApp identity: taken back at the next start)"
        typer.echo(f"{who}\t{where}")
    for who in settings.organizers:
        if who not in sources:
            typer.echo(f"{who}\tTADAMON_ORGANIZERS (from the next start)")
