"""Cooperatives: a member links their chat to their cooperative with its code."""

from __future__ import annotations

from dataclasses import replace

from bot.messages import Isolated, Local, Reply, _, reply
from handlers.context import Context
from handlers.menu import menu_choices
from storage.models import Role


async def link(ctx: Context, code: str) -> list[Reply]:
    """`coop_<code>`: link this chat to the cooperative, for its reminders."""
    linked = await ctx.cooperatives.link(ctx.contact.id, code)
    if linked is None:
        return [reply(_("This cooperative code is not valid. Please check it with the "
                        "organizers."), choices=menu_choices())]
    if ctx.contact.role != Role.ORGANIZER:
        ctx.contact = replace(ctx.contact, role=Role.COOPERATIVE)
    if linked.stand:
        text = _("You are now linked to {name}, stand {stand}. You will receive the reminders "
                 "for cooperatives.", name=Local(linked.name), stand=Isolated(linked.stand))
    else:
        text = _("You are now linked to {name}. You will receive the reminders for "
                 "cooperatives.", name=Local(linked.name))
    return [reply(text, choices=menu_choices())]
