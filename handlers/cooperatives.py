"""Cooperatives: a member links their chat to their cooperative with its code."""

from __future__ import annotations

from dataclasses import replace

from handlers.context import Context
from handlers.menu import menu_choices
from handlers.messages import Isolated, Local, Reply, _, _n, reply
from storage.cooperatives import normalize_code
from storage.models import Role


def not_valid() -> Reply:
    """The answer to a wrong code, and to a text that cannot be a code."""
    return reply(_("This cooperative code is not valid. Please check it with the organizers."),
                 choices=menu_choices())


async def link(ctx: Context, code: str) -> list[Reply]:
    """`coop_<code>` or `coop <code>`: link this chat to the cooperative, for its reminders.
    Once a person, or their address, has given too many wrong codes, no code is checked until
    the window passes, not even a right one: codes cannot be found by trying."""
    attempt = await ctx.link_attempts.take(ctx.contact.id, ctx.inbound.client)
    if attempt.unavailable:
        return [reply(_("Sorry, the service is briefly unavailable. Please try again in a "
                        "minute."))]
    if not attempt.allowed:
        return [reply(_n("Too many wrong cooperative codes were tried. For security, please "
                         "try again in {n} minute, or ask the organizers for help.",
                         "Too many wrong cooperative codes were tried. For security, please "
                         "try again in {n} minutes, or ask the organizers for help.",
                         attempt.retry_minutes), choices=menu_choices())]
    if normalize_code(code) is None:  # checks nothing: not counted
        await ctx.link_attempts.give_back(attempt)
        return [not_valid()]
    linked = await ctx.cooperatives.link(ctx.contact.id, code)
    if linked is None:
        return [not_valid()]
    await ctx.link_attempts.give_back(attempt)
    if ctx.contact.role != Role.ORGANIZER:
        ctx.contact = replace(ctx.contact, role=Role.COOPERATIVE)
    if linked.stand:
        text = _("You are now linked to {name}, stand {stand}. You will receive the reminders "
                 "for cooperatives.", name=Local(linked.name), stand=Isolated(linked.stand))
    else:
        text = _("You are now linked to {name}. You will receive the reminders for "
                 "cooperatives.", name=Local(linked.name))
    return [reply(text, choices=menu_choices())]
