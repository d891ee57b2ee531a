"""Routing one message to its handler: start payloads and global words first, then the active
flow, then free text (a stand number or a name)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from handlers import (
    cooperatives,
    feedback,
    menu,
    organizers,
    registrations,
    stands,
    start,
    workshops,
)
from handlers.buttons import (
    BroadcastAudience,
    BroadcastCancel,
    BroadcastConfirm,
    BroadcastNow,
    Button,
    CalendarFile,
    FacetStands,
    FloorMap,
    Language,
    Menu,
    MenuItem,
    MoreResults,
    Neighbours,
    OfferAnswer,
    RateStand,
    Rating,
    Register,
    RegisterAnyway,
    SaveStand,
    SkipComment,
    StandCard,
    SurveyAnswer,
    Unregister,
    UnsaveStand,
    WorkshopCard,
    WorkshopDay,
    WorkshopLanguage,
    WorkshopRating,
    WorkshopTopic,
    ZoneStands,
)
from handlers.context import Context
from handlers.messages import Kind, Msg, Reply, _
from storage.catalogue import normalize_stand_number
from storage.text import fold

MAX_TEXT = 2000

Action = Callable[[Context], Awaitable[list[Reply]]]

COMMANDS: dict[str, Action] = {
    "menu": menu.menu,
    "lang": start.ask_language,
    "workshops": workshops.programme,
    "my": registrations.mine,
    "stands": stands.zones,
    "feedback": feedback.ask_fair,
    "stop": start.stop,
    "help": menu.help_,
    "info": menu.info,
    "list": stands.saved,
}

# What Telegram shows in its command menu, in each language.
COMMAND_DESCRIPTIONS: dict[str, Msg] = {
    "menu": _("Main menu"),
    "workshops": _("Workshops"),
    "stands": _("Find a stand"),
    "my": _("My workshops"),
    "feedback": _("Give feedback"),
    "lang": _("Change language"),
    "help": _("Help"),
    "stop": _("Stop announcements"),
}


def _folded(text: str) -> str:
    """A text as the word tables hold it: `fold`ed, or as it is when it is only signs (`?`)."""
    return fold(text) or text.strip()


# The same words as plain text, in both languages (folded: no accents, no case, no hamza marks).
WORDS: dict[str, str] = {
    word: command
    for command, words in {
        "menu": ["menu", "القائمة", "قائمة", "المنيو", "lmenu", "0"],
        "lang": ["lang", "langue", "language", "langues", "اللغة", "لغة", "lugha", "lougha"],
        "workshops": ["workshops", "workshop", "ateliers", "atelier", "ورشات", "الورشات", "ورشة",
                      "الورشة", "formations", "formation", "تكوين", "programme", "برنامج"],
        "my": ["my", "mes ateliers", "mes inscriptions", "ورشاتي", "تسجيلاتي"],
        "list": ["ma liste", "my list", "liste", "قائمتي", "لائحتي"],
        "stands": ["stands", "exposants", "exposant", "الأروقة", "أروقة", "الاروقة", "اروقة",
                   "رواق", "العارضين", "العارضون", "plan"],
        "feedback": ["feedback", "avis", "rating", "رأي", "رايي", "تقييم", "رأيي", "noter"],
        "stop": ["stop", "arret", "arrete", "توقف", "وقف", "unsubscribe", "desabonner"],
        "help": ["help", "aide", "مساعدة", "المساعدة", "3awni", "?", "عاوني"],
        "info": ["info", "infos", "information", "informations", "معلومات", "horaires",
                 "المعلومات", "pratique"],
    }.items()
    for word in (_folded(item) for item in words)
}
# Organizers only; anyone else gets the ordinary answer to an unknown word.
BROADCAST_WORDS = {_folded(word) for word in ("broadcast", "diffusion", "annonce", "بث")}
STATS_WORDS = {_folded(word) for word in ("stats", "statistiques", "إحصائيات", "احصائيات")}
GREETINGS = {_folded(word) for word in (
    "bonjour", "bonsoir", "salut", "coucou", "hello", "hi", "hey", "start", "salam", "slm",
    "salam alaykoum", "salam alaikoum", "assalamu alaikum", "mrhba", "marhba", "سلام", "السلام",
    "السلام عليكم", "مرحبا", "أهلا", "اهلا", "صباح الخير", "مساء الخير", "بدء", "ابدأ",
)}
LANGUAGE_WORDS = {
    **{_folded(word): "ar" for word in ("العربية", "عربية", "عربي", "arabe", "arabic",
                                        "3arbia", "l3arbia", "darija", "الدارجة")},
    **{_folded(word): "fr" for word in ("français", "francais", "french", "فرنسية",
                                        "الفرنسية", "الفرنسي", "fransawiya")},
}
# `coop <code>` (the WhatsApp link's text), `coop_<code>`, `تعاونية <code>`: whatever the
# length, so a mistyped code is told it is not valid rather than searched for as a name; not
# "cooperative", which is a search.
_COOP_WORD = re.compile(r"(?:(?i:coop)[\s_:-]+|تعاونية[\s_:-]*)([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)")
_STAND_WORD = re.compile(r"(?:stand|رواق)\s*(.+)", re.IGNORECASE)
# The shapes of deep-link values: a workshop id as catalogues write them, a cooperative code.
_WORKSHOP_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_LINK_CODE = re.compile(r"[A-Za-z0-9]{1,64}")


async def route(ctx: Context) -> list[Reply]:
    """Pick the handler for this message and return its replies."""
    inbound = ctx.inbound
    prefix: list[Reply] = []
    if ctx.contact.opted_out and not _is_stop(inbound.text):
        await ctx.set_opted_out(False)
        prefix.append(start.welcome_back())
    return prefix + await _dispatch(ctx)


def _is_stop(text: str) -> bool:
    word = _folded(text.strip().lstrip("/"))
    return WORDS.get(word) == "stop"


async def _dispatch(ctx: Context) -> list[Reply]:
    inbound = ctx.inbound
    if inbound.kind is Kind.CHOICE:
        return await _choice(ctx, inbound.choice or "")
    if inbound.kind in (Kind.MEDIA, Kind.UNSUPPORTED):
        return await menu.unsupported(ctx)
    if inbound.kind is Kind.LOCATION:
        return await menu.info(ctx)
    if inbound.kind is Kind.START:
        return await _start(ctx, inbound.payload or "")
    text = inbound.text.strip()
    if len(text) > MAX_TEXT and not await _long_text_expected(ctx):
        return await menu.too_long(ctx)
    if not text:
        return await menu.help_(ctx)
    if text.startswith("/"):
        command, _sep, argument = text[1:].partition(" ")
        command = command.split("@", 1)[0].lower()
        if command == "start":
            return await _start(ctx, argument.strip())
        if command == "broadcast" and await organizers.is_organizer(ctx):
            return await organizers.start(ctx)
        if command == "stats" and await organizers.is_organizer(ctx):
            return await registrations.stats(ctx)
        if command in COMMANDS:
            return await COMMANDS[command](ctx)
        return await menu.fallback(ctx)
    if _first_contact(ctx):
        return await _welcome_with(ctx, await _free_text(ctx, text, first=True))
    return await _free_text(ctx, text) or await menu.fallback(ctx)


async def _long_text_expected(ctx: Context) -> bool:
    """A comment is cut to its limit instead, and said so; a broadcast's text is refused with
    the limit of a broadcast."""
    if ctx.flow in ("feedback-comment", "survey-comment"):
        return True
    return ctx.flow == "broadcast" and await organizers.is_organizer(ctx)


def _first_contact(ctx: Context) -> bool:
    return ctx.contact.created and not ctx.session.language_prompted


async def _welcome_with(ctx: Context, answer: list[Reply] | None) -> list[Reply]:
    """A first contact gets the welcome, the answer to what they asked, and the language
    question last, so its buttons are the ones at hand."""
    welcome = await start.welcome(ctx)
    return welcome[:-1] + (answer or []) + welcome[-1:]


async def _free_text(ctx: Context, text: str, first: bool = False) -> list[Reply] | None:
    """Free text; None when it asks for nothing in particular (a greeting, or not understood)."""
    word = _folded(text)
    if ctx.flow == "feedback-comment" and word not in WORDS:
        return await feedback.comment(ctx, text)
    if ctx.flow == "survey-comment" and word not in WORDS:
        return await feedback.survey_comment(ctx, text)
    if ctx.flow == "broadcast" and word not in WORDS and await organizers.is_organizer(ctx):
        return await organizers.text(ctx, text)
    if word in BROADCAST_WORDS and await organizers.is_organizer(ctx):
        return await organizers.start(ctx)
    if word in STATS_WORDS and await organizers.is_organizer(ctx):
        return await registrations.stats(ctx)
    if word in WORDS:
        return await COMMANDS[WORDS[word]](ctx)
    if word in LANGUAGE_WORDS:
        return await start.set_language(ctx, LANGUAGE_WORDS[word])
    if ctx.flow == "feedback" and word in {"1", "2", "3", "4", "5"}:
        return await feedback.rate(ctx, int(word))
    coop_word = _COOP_WORD.fullmatch(text.strip())
    if coop_word:
        return await cooperatives.link(ctx, coop_word.group(1))
    stand_word = _STAND_WORD.fullmatch(text.strip())
    number = normalize_stand_number(stand_word.group(1) if stand_word else text)
    if number is not None:
        return await stands.card(ctx, number)
    if word in GREETINGS:
        return None if first else await start.greet(ctx)
    return await stands.lookup(ctx, text)


async def _start(ctx: Context, payload: str) -> list[Reply]:
    """`/start`, or a deep link: stand_A12, ws_<id>, feedback."""
    kind, _sep, value = payload.partition("_")
    kind = kind.lower()
    if _first_contact(ctx):
        return await _welcome_with(ctx, await _payload(ctx, kind, value))
    return await _payload(ctx, kind, value) or await start.greet(ctx)


async def _payload(ctx: Context, kind: str, value: str) -> list[Reply] | None:
    """What a deep link opens; None for a plain `/start`. A link can carry any text, so only a
    well-formed value is looked up, and nothing of any other is ever repeated."""
    if kind == "stand" and (number := normalize_stand_number(value)) is not None:
        return await stands.card(ctx, number)
    if kind == "ws" and _WORKSHOP_KEY.fullmatch(value):
        return await workshops.card(ctx, key=value)
    if kind == "feedback":
        return await feedback.ask_fair(ctx)
    if kind == "coop" and _LINK_CODE.fullmatch(value):
        return await cooperatives.link(ctx, value)
    if not kind and not value:
        return None
    return await menu.invalid_link(ctx)


async def _choice(ctx: Context, choice: str) -> list[Reply]:
    """A tapped button; only ids we offered to this person are honoured, and global ones
    (their handlers check the person may use them)."""
    button = Button.unpack(choice)
    if button is None or not (button.is_global or choice in ctx.session.offered):
        return await menu.stale_choice(ctx)
    match button:
        case Menu():
            return await menu.menu(ctx)
        case Language(language=language):
            return await start.set_language(ctx, language)
        case MenuItem(item=item):
            return await _menu_item(ctx, item)
        case WorkshopDay(index=index):
            return await workshops.day(ctx, index)
        case WorkshopCard(workshop_id=workshop_id):
            return await workshops.card(ctx, workshop_id=workshop_id)
        case WorkshopTopic(index=index):
            return await workshops.topic(ctx, index)
        case WorkshopLanguage(language=language):
            return await workshops.in_language(ctx, language)
        case Register(workshop_id=workshop_id):
            return await registrations.register(ctx, workshop_id)
        case RegisterAnyway(workshop_id=workshop_id):
            return await registrations.register(ctx, workshop_id, allow_overlap=True)
        case Unregister(workshop_id=workshop_id):
            return await registrations.cancel(ctx, workshop_id)
        case OfferAnswer(accept=accept, workshop_id=workshop_id):
            return await registrations.answer_offer(ctx, workshop_id, accept)
        case CalendarFile():
            return await registrations.calendar(ctx)
        case ZoneStands(index=index, page=page):
            return await stands.zone(ctx, index, page)
        case StandCard(number=number):
            return await stands.card(ctx, number)
        case Neighbours(number=number):
            return await stands.neighbours(ctx, number)
        case FloorMap(number=number):
            return await stands.floor_map(ctx, number)
        case MoreResults(page=page):
            return await stands.more_results(ctx, page)
        case SaveStand(number=number):
            return await stands.save(ctx, number)
        case UnsaveStand(number=number):
            return await stands.unsave(ctx, number)
        case FacetStands(facet=facet, index=index, page=page):
            return await stands.facet_stands(ctx, facet, index, page)
        case RateStand(number=number):
            return await feedback.ask_stand(ctx, number)
        case Rating(stars=stars):
            return await feedback.rate(ctx, stars)
        case SkipComment():
            return await feedback.skip(ctx)
        case WorkshopRating(workshop_id=workshop_id, stars=stars):
            return await feedback.rate_workshop(ctx, workshop_id, stars)
        case SurveyAnswer():
            return await feedback.survey_answer(ctx, button)
        case BroadcastCancel() | BroadcastAudience() | BroadcastNow() | BroadcastConfirm():
            if await organizers.is_organizer(ctx):
                return await organizers.choose(ctx, button)
    return await menu.stale_choice(ctx)


async def _menu_item(ctx: Context, item: str) -> list[Reply]:
    action = {"ws": workshops.programme, "st": stands.zones, "fb": feedback.ask_fair,
              "info": menu.info, "lang": start.ask_language,
              "my": registrations.mine, "wst": workshops.topics,
              "wsl": workshops.languages, "sv": stands.saved}.get(item)
    if action is None and item in stands.FACETS:
        return await stands.facet(ctx, item)
    return await action(ctx) if action else await menu.menu(ctx)
