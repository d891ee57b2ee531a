"""Personal data in the chat: the short notice at first contact and the full one, what is kept
about the person ("mes données", "بياناتي", "my data", "data dyali"), and their erasure on
request, confirmed with one tap (law 09-08: the right to see and to erase)."""

from __future__ import annotations

import datetime as dt
import re

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature, folded
from handlers.menu import back_to_menu
from handlers.messages import Choice, Content, Isolated, Local, Msg, Reply, When, _, _n, reply
from handlers.understanding import Intent
from storage.models import RegistrationStatus
from storage.privacy import Erased, Kept, KeptRegistration

feature = Feature("privacy", Intent.PRIVACY)

# A confirmation button older than this is refused (the question is asked again): a tap on an
# old "Yes, erase" long after the person changed their mind erases nothing.
CONFIRM_MINUTES = 30

# What asks to erase rather than to see, among free texts understood as privacy: the start of
# a folded word (French, English, Darija in Latin letters) or a part of an Arabic one.
_ERASE_LATIN = re.compile(
    r"(supprim|effac|oubli|retir|delet|eras|remov|forget|wipe|ms7|mse7|nms7|tms7|yms7|ams7|"
    r"7yd|7ayd|n7yd|t7yd|7ay?do|m7i|n7i)")
_ERASE_ARABIC = ("مسح", "حذف", "محي", "ازيل", "ازاله")

# A language named inside a sentence is written as that sentence's language writes it.
LANGUAGE_LINES: dict[str, Msg] = {"ar": _("• your language: Arabic"),
                                  "fr": _("• your language: French"),
                                  "en": _("• your language: English")}
CHANNEL_NAMES: dict[str, Msg] = {"telegram": _("your Telegram id"),
                                 "whatsapp": _("your WhatsApp number"),
                                 "web": _("the code of your web chat session")}


class AboutData(Button, prefix="pvabout", is_global=True):
    """The full privacy notice: the same text for everyone, nothing of the person in it."""


class SeeData(Button, prefix="pvsee"):
    """What is kept about the person who taps it (under the full notice)."""


class EraseData(Button, prefix="pverase"):
    """Erase my data: asks for confirmation."""


class EraseAnswer(Button, prefix="pvconfirm"):
    """The answer to "Erase all your data?": `erase`, and the minute the question was asked
    (a tap on a question older than CONFIRM_MINUTES asks it again)."""

    erase: bool
    asked: int


def wants_erasure(text: str) -> bool:
    """Whether a text about personal data asks to erase them ("امسح بياناتي", "forget me")."""
    for word in folded(text).split():
        if _ERASE_LATIN.match(word) or any(part in word for part in _ERASE_ARABIC):
            return True
    return False


def _retention_day(ctx: Context) -> dt.datetime:
    """Noon of the first day people who no longer write are erased (for a date in a
    sentence): `retention_days` after the end of the fair's last day."""
    day = ctx.fair.closes + dt.timedelta(days=ctx.retention_days + 1)
    return dt.datetime.combine(day, dt.time(12), ctx.zone)


def _days(ctx: Context) -> Msg:
    return _n("{n} day", "{n} days", ctx.retention_days)


def short_notice(ctx: Context) -> Reply:
    """Said once at first contact, under the welcome (its lines and its button)."""
    return reply(
        _("Your data: I keep only what serves you here (your language, your registrations, "
          "your ratings), at most {days} after the fair. Write \"my data\" to see it or "
          "erase it.", days=_days(ctx)),
        choices=[Choice(AboutData().pack(), _("About your data"))])


def full_notice(ctx: Context) -> list[Reply]:
    """Who runs the service, what is kept and why, for how long, and the person's rights: the
    fair's own text when the catalogue gives one, else the default one."""
    how = _("To see what is kept about you, write \"my data\"; to erase it, write \"delete my "
            "data\".")
    choices = [Choice(SeeData().pack(), _("My data")), back_to_menu()]
    if ctx.fair.privacy:
        return [reply(Local(ctx.fair.privacy), how, choices=choices)]
    return [reply(
        _("Your data and your rights"),
        _("This service is run by the organizers of {fair}.", fair=Local(ctx.fair.name)),
        _("To answer you, it keeps {id}, your language, the workshops you register for, the "
          "stands you save, your ratings and comments, and when you last wrote (for the "
          "reminders, and the rules of the messaging apps).",
          id=CHANNEL_NAMES.get(ctx.inbound.channel, CHANNEL_NAMES["web"])),
        _("It serves this fair only: nothing is sold or given to anyone. The figures the "
          "organizers see are anonymous."),
        _("If you stop writing, all of it is erased {days} after the fair (from {day}).",
          day=When(_retention_day(ctx), "date"), days=_days(ctx)),
        _("Under law 09-08 you may see your data and have it erased at any time."),
        how,
        choices=choices)]


def _registration(item: KeptRegistration) -> Msg:
    if item.status == RegistrationStatus.CONFIRMED:
        status = _("registered")
    elif item.status == RegistrationStatus.OFFERED:
        status = _("a seat is offered to you")
    else:
        status = _("waiting list, number {position}", position=Isolated(str(item.position or 0)))
    return _("◦ {when} · {title} · {status}", when=When(item.starts_at, "day_time"),
             title=Local(item.title), status=status)


def _kept_lines(ctx: Context, kept: Kept) -> list[Content]:
    lines: list[Content] = [_("Here is what I keep about you:")]
    lines.append(_("• {id}", id=CHANNEL_NAMES.get(kept.channel, CHANNEL_NAMES["web"])))
    if kept.language in LANGUAGE_LINES:
        lines.append(LANGUAGE_LINES[kept.language])
    lines.append(_("• you first wrote on {first}", first=When(kept.created_at, "date")))
    if kept.last_inbound_at is not None:
        lines.append(_("• your last message: {when}", when=When(kept.last_inbound_at)))
    if kept.cooperative:
        lines.append(_("• your cooperative: {name}", name=Local(kept.cooperative)))
    if kept.registrations:
        lines.append(_n("• {n} workshop registration:", "• {n} workshop registrations:",
                        len(kept.registrations)))
        lines += [_registration(item) for item in kept.registrations]
    if kept.saved_stands:
        lines.append(_n("• {n} saved stand: {stands}", "• {n} saved stands: {stands}",
                        len(kept.saved_stands),
                        stands=Isolated(", ".join(kept.saved_stands))))
    if kept.ratings:
        lines.append(_n("• {n} rating", "• {n} ratings", kept.ratings))
    if kept.comments:
        lines.append(_n("• {n} comment", "• {n} comments", kept.comments))
    if kept.pending_messages:
        lines.append(_n("• {n} message waiting to be sent to you",
                        "• {n} messages waiting to be sent to you", kept.pending_messages))
    lines.append(_("• you asked to receive no announcements") if kept.opted_out
                 else _("• you receive announcements and reminders (send stop to end them)"))
    lines.append(_("If you stop writing, all of it is erased {days} after the fair (from {day}).",
                   day=When(_retention_day(ctx), "date"), days=_days(ctx)))
    return lines


@feature.command("privacy", words={
    "fr": ["mes données", "mes donnees", "mes infos", "mes informations", "données personnelles",
           "mes données personnelles", "confidentialité", "vie privée"],
    "en": ["my data", "my personal data", "privacy", "data"],
    "ar": ["بياناتي", "معطياتي", "معلوماتي", "بياناتي الشخصية", "المعطيات الشخصية", "الخصوصية",
           "البيانات ديالي", "المعطيات ديالي", "معلوماتي الشخصية"],
    "ary": ["data dyali", "data dyal", "les données dyali", "les donnees dyali",
            "les infos dyali", "donnees dyali", "données dyali", "ma3lomat dyali",
            "l'information dyali"]})
async def kept(ctx: Context) -> list[Reply]:
    """What is kept about the person, with the way to erase it and the full notice."""
    ctx.leave()
    found = await ctx.personal.kept(ctx.contact.id) if ctx.personal is not None else None
    if found is None:  # nobody: the person was erased meanwhile
        return [reply(_("I keep nothing about you."), choices=[back_to_menu()])]
    return [reply(*_kept_lines(ctx, found), choices=[
        Choice(EraseData().pack(), _("Erase my data")),
        Choice(AboutData().pack(), _("About your data")),
        back_to_menu()])]


@feature.command("forget", words={
    "fr": ["supprimer mes données", "supprimer mes donnees", "effacer mes données",
           "effacer mes donnees", "supprimez mes données", "effacez mes données",
           "supprimer mes données personnelles", "oubliez moi", "oubliez-moi",
           "supprimer mon compte"],
    "en": ["delete my data", "erase my data", "remove my data", "delete my account",
           "forget me", "delete my personal data"],
    "ar": ["امسح بياناتي", "احذف بياناتي", "حذف بياناتي", "مسح بياناتي", "امسحوا بياناتي",
           "احذفوا بياناتي", "امسح معطياتي", "احذف معطياتي", "امسح معلوماتي", "احذف معلوماتي",
           "بغيت نمسح البيانات ديالي", "بغيت نمسح المعطيات ديالي", "امسحو المعطيات ديالي",
           "امسح البيانات ديالي", "احذف حسابي"],
    "ary": ["ms7 les données dyali", "ms7 les donnees dyali", "ms7 data dyali",
            "7ayd data dyali", "7yd data dyali", "7ayed data dyali", "ms7 kolchi",
            "bghit nms7 data dyali", "ms7o data dyali", "7aydo data dyali",
            "ms7 les infos dyali"]})
async def ask_erasure(ctx: Context) -> list[Reply]:
    """Erase my data: one question, one tap to confirm."""
    ctx.leave()
    minute = int(ctx.now.timestamp() // 60)
    return [reply(_("Erase all your data? This cannot be undone."), choices=[
        Choice(EraseAnswer(erase=True, asked=minute).pack(), _("Yes, erase")),
        Choice(EraseAnswer(erase=False, asked=minute).pack(), _("No, keep"))])]


@feature.intent(Intent.PRIVACY)
async def understood(ctx: Context) -> list[Reply]:
    """A free sentence about personal data: erasure asked, or what is kept."""
    if wants_erasure(ctx.text):
        return await ask_erasure(ctx)
    return await kept(ctx)


def _erased_lines(erased: Erased) -> list[Content]:
    lines: list[Content] = [_("Done: your data is erased.")]
    if erased.registrations:
        lines.append(_n("• {n} workshop registration cancelled",
                        "• {n} workshop registrations cancelled", erased.registrations))
    if erased.seats_freed:
        lines.append(_n("• {n} seat given to the next person on the waiting list",
                        "• {n} seats given to the next people on the waiting lists",
                        erased.seats_freed))
    if erased.saved_stands:
        lines.append(_n("• {n} saved stand removed", "• {n} saved stands removed",
                        erased.saved_stands))
    if erased.messages:
        lines.append(_n("• {n} message that was waiting to be sent removed",
                        "• {n} messages that were waiting to be sent removed", erased.messages))
    lines.append(_("• your id, your language and our conversation"))
    if erased.ratings:
        lines.append(_n("Your rating or comment stays only as an anonymous figure, with "
                        "nothing that leads to you.",
                        "Your {n} ratings and comments stay only as anonymous figures, with "
                        "nothing that leads to you.", erased.ratings))
    lines.append(_("If you write to me again, we start afresh, as with someone new."))
    return lines


@feature.button(EraseAnswer)
async def _erase_answer(ctx: Context, button: EraseAnswer) -> list[Reply]:
    """Yes: everything erased, and said; No: nothing erased, and said."""
    if not button.erase:
        return [reply(_("Nothing was erased: your data is kept."), choices=[back_to_menu()])]
    if not 0 <= int(ctx.now.timestamp() // 60) - button.asked <= CONFIRM_MINUTES:
        return [reply(_("This question is too old: here it is again.")),
                *await ask_erasure(ctx)]
    erased = (await ctx.personal.erase(ctx.inbound.channel, ctx.inbound.user_id, ctx.now)
              if ctx.personal is not None else None)
    ctx.erased = True
    if erased is None:
        return [reply(_("I keep nothing about you."))]
    return [reply(*_erased_lines(erased))]


@feature.button(EraseData)
async def _erase_data(ctx: Context, button: EraseData) -> list[Reply]:
    return await ask_erasure(ctx)


@feature.button(SeeData)
async def _see_data(ctx: Context, button: SeeData) -> list[Reply]:
    return await kept(ctx)


@feature.button(AboutData)
async def _about(ctx: Context, button: AboutData) -> list[Reply]:
    return full_notice(ctx)
