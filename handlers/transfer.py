"""Continue on WhatsApp or Telegram: a web chat person gets a one-time code in a link to the
app; sent there (`LINK <code>`, `/start link_<code>`), it moves their language, workshops and
list to that chat, where the reminders then go."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Literal

from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import CONTINUE_ITEM, main_menu, menu
from handlers.messages import AppLink, Isolated, Msg, Reply, _, _n, reply
from handlers.understanding import Intent
from storage.keys import TRANSFER_CODE_TTL
from storage.privacy import person
from storage.transfers import normalize_transfer_code

log = logging.getLogger(__name__)

feature = Feature("transfer", Intent.MENU)

# `LINK <code>`: the text the WhatsApp link prepares (any case); `link_<code>` too, and a code
# typed in two halves. Not a sentence that starts with "link".
LINK_WORD = re.compile(r"(?i:link)[\s_:-]+([A-Za-z0-9]{2,12}(?:[\s-][A-Za-z0-9]{1,12})?)")
# The deep-link kind on Telegram: `/start link_<code>`.
LINK_KIND = "link"
_LINK_CODE = re.compile(r"[A-Za-z0-9-]{1,32}")
_APPS: tuple[Literal["whatsapp", "telegram"], ...] = ("whatsapp", "telegram")


@feature.menu_item(CONTINUE_ITEM)
async def offer(ctx: Context) -> list[Reply]:
    """On the web chat: links to the configured apps, with a new one-time code."""
    if ctx.inbound.channel != "web" or not ctx.apps or ctx.transfer_codes is None:
        return await menu(ctx)
    code = await ctx.transfer_codes.issue(ctx.contact.id, ctx.now)
    lines: list[Msg] = [_("To continue in a messaging app, open its link below on this "
                          "phone and send the message it prepares: your workshops, your "
                          "waiting lists and your list come with you, and the reminders go "
                          "there.")]
    for app in _APPS:
        if app in ctx.apps:
            link = AppLink(app, code)
            lines.append(_("Continue on WhatsApp: {link}", link=link) if app == "whatsapp"
                         else _("Continue on Telegram: {link}", link=link))
    minutes = TRANSFER_CODE_TTL // 60
    lines.append(_n("Or send {text} there yourself. The code works only once, for {n} minute.",
                    "Or send {text} there yourself. The code works only once, for {n} minutes.",
                    minutes, text=Isolated(f"LINK {code}")))
    return [reply(*lines, choices=await main_menu(ctx))]


def _not_valid() -> Reply:
    return reply(_("This code is not valid: it may have been used already or have expired. "
                   "Ask the web chat for a new one."))


def _moved(workshops: int, stands: int) -> Msg:
    """What moved, in one sentence: "2 workshops and 3 stands are now here."."""
    if workshops and stands:
        return _("{workshops} and {stands} are now here.",
                 workshops=_n("{n} workshop", "{n} workshops", workshops),
                 stands=_n("{n} saved stand", "{n} saved stands", stands))
    if workshops:
        return _n("{n} workshop is now here.", "{n} workshops are now here.", workshops)
    if stands:
        return _n("{n} saved stand is now here.", "{n} saved stands are now here.", stands)
    return _("You now continue here. There was no workshop or saved stand to bring.")


async def take(ctx: Context, code: str) -> list[Reply]:
    """`LINK <code>` on WhatsApp, `/start link_<code>` on Telegram: what the web chat person
    had moves to this chat. Wrong codes are limited as cooperative codes are."""
    ctx.intent = Intent.WELCOME
    if ctx.inbound.channel == "web" or ctx.transfer_codes is None or ctx.transfers is None:
        return [_not_valid()]  # a web chat is where people come from, never where they go
    attempt = await ctx.link_attempts.take(ctx.contact.id, ctx.inbound.client)
    if attempt.unavailable:
        return [reply(_("Sorry, the service is briefly unavailable. Please try again in a "
                        "minute."))]
    if not attempt.allowed:
        return [reply(_n("Too many wrong codes were tried. For security, please try again in "
                         "{n} minute.",
                         "Too many wrong codes were tried. For security, please try again in "
                         "{n} minutes.", attempt.retry_minutes))]
    normalized = normalize_transfer_code(code)
    source = None if normalized is None else await ctx.transfer_codes.take(normalized, ctx.now)
    if source is None:
        log.info("wrong, used or expired transfer code from %s",
                 person(ctx.inbound.channel, ctx.inbound.user_id))
        if normalized is None:  # could not be a code: nothing was checked
            await ctx.link_attempts.give_back(attempt)
        return [_not_valid()]
    await ctx.link_attempts.give_back(attempt)
    moved = await ctx.transfers.move(source, ctx.contact.id, ctx.now)
    if moved.language is not None:
        ctx.contact = replace(ctx.contact, language=moved.language, language_confirmed=True)
        ctx.language = moved.language
    ctx.session.language_prompted = True  # their language came with them
    lines = [_moved(moved.registrations, moved.stands)]
    if moved.registrations:
        lines.append(_("Your reminders and seat offers will now come here."))
    return [reply(*lines, choices=await main_menu(ctx))]


@feature.link(LINK_KIND)
async def _link(ctx: Context, value: str) -> list[Reply] | None:
    """`link_<code>`: the web chat person continues here."""
    return await take(ctx, value) if _LINK_CODE.fullmatch(value) else None
