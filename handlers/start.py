"""Welcome, language choice and opting out of announcements."""

from __future__ import annotations

import datetime as dt

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature, folded
from handlers.menu import main_menu, news
from handlers.messages import Choice, Local, Reply, _, date_range, reply
from handlers.privacy import short_notice
from handlers.understanding import Intent

feature = Feature("start", Intent.WELCOME)

LANGUAGE_NAMES = {"ar": "العربية", "fr": "Français", "en": "English"}
# Said in a sentence, a language's name is written as that sentence's language writes it
# ("Langue choisie : français"), not as its button shows it.
LANGUAGE_SET = {"ar": _("Language set: Arabic."), "fr": _("Language set: French."),
                "en": _("Language set: English.")}

# The router's tables of plain words (folded: no accents, no case, no hamza marks).
GREETINGS = {folded(word) for word in (
    "bonjour", "bonsoir", "salut", "coucou", "hello", "hi", "hey", "start", "salam", "slm",
    "salam alaykoum", "salam alaikoum", "assalamu alaikum", "mrhba", "marhba", "سلام", "السلام",
    "السلام عليكم", "مرحبا", "أهلا", "اهلا", "صباح الخير", "مساء الخير", "بدء", "ابدأ",
)}
LANGUAGE_WORDS = {
    **{folded(word): "ar" for word in ("العربية", "عربية", "عربي", "arabe", "arabic",
                                       "3arbia", "l3arbia", "darija", "الدارجة")},
    **{folded(word): "fr" for word in ("français", "francais", "french", "فرنسية",
                                       "الفرنسية", "الفرنسي", "fransawiya")},
    **{folded(word): "en" for word in ("english", "anglais", "inglizia", "nglizia",
                                       "الإنجليزية", "الانجليزية", "إنجليزية", "الإنجليزي",
                                       "الإنكليزية", "النجليزية")},
}


class Language(Button, prefix="lang", is_global=True):
    """Speak this language from now on."""

    language: str


def language_choices() -> list[Choice]:
    # Each language is offered in its own script so anyone can find theirs.
    return [Choice(Language(language=code).pack(), name) for code, name in LANGUAGE_NAMES.items()]


def welcome_lines(ctx: Context) -> list[Reply]:
    fair = ctx.fair
    opens, _sep, closes = fair.hours.partition("-")
    first = dt.datetime.combine(fair.opens, dt.time(12), ctx.zone)
    last = dt.datetime.combine(fair.closes, dt.time(12), ctx.zone)
    return [reply(
        _("Welcome to {fair}!", fair=Local(fair.name)),
        _("{city}, from {first} to {last}, every day from {opens} to {closes}.",
          city=Local(fair.city), **date_range(first, last), opens=opens, closes=closes),
        _("Venue: {venue}", venue=Local(fair.venue)),
    )]


async def welcome(ctx: Context) -> list[Reply]:
    """First contact: the fair in a few words, what is kept about the person, then one tap
    to confirm the language."""
    first, *rest = welcome_lines(ctx)
    # What is kept about them, said under the welcome, with its button: one message more
    # for each newcomer would be thousands more to send at the fair's opening.
    notice = short_notice(ctx)
    replies = [reply(*first.lines, *notice.lines, choices=notice.choices), *rest]
    replies.append(reply(_("Which language do you prefer?"), choices=language_choices()))
    ctx.session.language_prompted = True
    return replies


@feature.intent(Intent.WELCOME)
async def greet(ctx: Context) -> list[Reply]:
    """A returning person says hello: the welcome, a seat offered to them or their next
    workshop, and the menu."""
    replies = welcome_lines(ctx)
    replies += await news(ctx)
    replies.append(reply(_("What would you like to do?"), choices=await main_menu(ctx)))
    return replies


@feature.command("lang", description=_("Change language"), menu_item="lang",
                 intent=Intent.LANGUAGE, words={
    "en": ["lang", "language"], "fr": ["langue", "langues"], "ar": ["اللغة", "لغة"],
    "ary": ["lugha", "lougha"]})
async def ask_language(ctx: Context) -> list[Reply]:
    return [reply(_("Which language do you prefer?"), choices=language_choices())]


async def set_language(ctx: Context, language: str) -> list[Reply]:
    """Switch the conversation language; confirmed by the person's own tap or word."""
    if language not in LANGUAGE_NAMES:
        return await ask_language(ctx)
    await ctx.set_language(language)
    return [reply(LANGUAGE_SET[language], _("What would you like to do?"),
                  choices=await main_menu(ctx))]


async def switch_language(ctx: Context, language: str) -> Reply:
    """Speak `language` from now on, said in one line: what follows is the answer the person
    had before, again in their language."""
    await ctx.set_language(language)
    return reply(LANGUAGE_SET[language])


@feature.intent(Intent.LANGUAGE)
async def language_asked(ctx: Context) -> list[Reply]:
    """"En arabe svp", "بالفرنسية": that language; a language not named, or not spoken here:
    the question."""
    named = ctx.understood.entities.language if ctx.understood is not None else None
    if named in LANGUAGE_NAMES:
        return await set_language(ctx, named)
    return await ask_language(ctx)


@feature.button(Language, intent=Intent.LANGUAGE)
async def _language(ctx: Context, button: Language) -> list[Reply]:
    return await set_language(ctx, button.language)


@feature.intent(Intent.STOP)
@feature.command("stop", description=_("Stop announcements"), intent=Intent.STOP, words={
    "fr": ["stop", "arret", "arrete", "desabonner"], "en": ["unsubscribe"],
    "ar": ["توقف", "وقف"]})
async def stop(ctx: Context) -> list[Reply]:
    """Opt out of announcements and reminders, until the person asks for them again."""
    ctx.leave()
    await ctx.set_opted_out(True)
    ctx.session.resume_asked = False
    return [reply(
        _("Done: you will not receive announcements or reminders any more."),
        _("You can still write to me at any time. To receive them again, send resume."),
    )]


class Resume(Button, prefix="resume", is_global=True):
    """Receive announcements and reminders again."""


@feature.command("resume", intent=Intent.STOP, words={
    "en": ["resume", "subscribe"], "fr": ["reprendre", "abonner", "reabonner", "s'abonner"],
    "ar": ["استئناف", "اشتراك", "تفعيل الإعلانات"], "ary": ["rje3"]})
async def resume(ctx: Context) -> list[Reply]:
    """Announcements and reminders again, at the person's own request."""
    await ctx.set_opted_out(False)
    return [reply(_("Welcome back: you will receive announcements again. Send stop to turn "
                    "them off."), choices=await main_menu(ctx))]


@feature.button(Resume, intent=Intent.STOP)
async def _resume(ctx: Context, button: Resume) -> list[Reply]:
    return await resume(ctx)


def resume_question() -> Reply:
    """Asked once after a stop, under the answer to the person's next message."""
    return reply(_("You asked not to receive announcements. Turn them back on?"),
                 choices=[Choice(Resume().pack(), _("Yes, turn them on"))])
