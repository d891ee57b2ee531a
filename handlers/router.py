"""Routing one message to its handler: start payloads and global words first, then the active
flow, then free text: the few exact forms (a stand number, a code), then what the understanding
step makes of it, sent to the feature that answers that intent. The handlers are the features'
(one module each, `feature = Feature(...)`), composed here in one Router; the order of
precedence is here."""

from __future__ import annotations

import logging

from handlers import (
    cooperatives,
    feedback,
    info,
    menu,
    organizers,
    privacy,
    registrations,
    stands,
    start,
    talk,
    transfer,
    workshops,
)
from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import FlowText, Router, folded
from handlers.menu import MenuItem
from handlers.messages import Kind, Msg, Reply
from handlers.talk import Clarify
from handlers.understanding import Intent, Understanding, asks
from storage.catalogue import normalize_stand_number
from storage.notices import NOTICE_KINDS

log = logging.getLogger(__name__)

MAX_TEXT = 2000
# A text written while a comment is awaited is taken as a request when it is understood this
# surely as one, and is a few words that ask ("miel", "fin kayn l3sel") or a short question
# ("où sont les toilettes ?"): a sentence or a remark is a comment, whatever it speaks of
# ("plus d'ateliers sur l'export, svp", "الفضة ديالهم زوينة").
REQUEST_CONFIDENCE = 0.8
REQUEST_WORDS = 3
QUESTION_WORDS = 8
_QUESTION_MARKS = ("?", "؟")
# What a comment may well be: these are never taken for a request made instead.
_COMMENT_LIKE = (Intent.SMALLTALK, Intent.UNKNOWN, Intent.FEEDBACK, Intent.WELCOME)

router = Router()
router.include(start.feature, menu.feature, info.feature, workshops.feature,
               registrations.feature, stands.feature, feedback.feature, cooperatives.feature,
               organizers.feature, talk.feature, transfer.feature, privacy.feature)


@router.button(MenuItem, intent=Intent.MENU)
async def _menu_item(ctx: Context, button: MenuItem) -> list[Reply]:
    """An entry of the main menu (or of a feature's own menu), as the features declare them."""
    action = router.menu_items.get(button.item)
    if action is None:
        return await menu.menu(ctx)
    ctx.intent = router.menu_intents.get(button.item, Intent.MENU)
    return await action(ctx)


@router.button(Clarify, intent=Intent.UNKNOWN)
async def _clarify(ctx: Context, button: Clarify) -> list[Reply]:
    """The answer to the question asked in doubt: the text asked about, with the intent the
    person chose."""
    text, ctx.session.asked = ctx.session.asked, None
    if text is None or button.intent not in Intent.__members__.values():
        return await menu.stale_choice(ctx)
    understood = await ctx.understand(text)
    chosen = Understanding(Intent(button.intent), 1.0, understood.entities)
    return await _answer(ctx, chosen, text)


def _all_buttons(kind: type[Button] = Button) -> list[type[Button]]:
    found = kind.__subclasses__()
    return [item for sub in found for item in (sub, *_all_buttons(sub))]


router.check(_all_buttons(), NOTICE_KINDS, Intent)

# What Telegram shows in its command menu, in each language, in this order.
_TELEGRAM_MENU = ("menu", "workshops", "stands", "my", "feedback", "lang", "help", "stop")
COMMAND_DESCRIPTIONS: dict[str, Msg] = {
    name: description for name in _TELEGRAM_MENU
    if (description := router.commands[name].description) is not None}
if _unlisted := {command.name for command in router.commands.values()
                 if command.description is not None} - set(COMMAND_DESCRIPTIONS):
    raise RuntimeError(f"commands with a description missing from the Telegram menu: {_unlisted}")

# The words that mean a command, in both languages (folded: no accents, no case, no hamza
# marks); the organizers' ones apart, since anyone else gets the ordinary answer to them.
WORDS: dict[str, str] = {word: command.name for word, command in router.words.items()
                         if not command.organizer}
ORGANIZER_WORDS: dict[str, str] = {word: command.name for word, command in router.words.items()
                                   if command.organizer}


async def route(ctx: Context) -> list[Reply]:
    """Pick the handler for this message and return its replies; someone who stopped the
    announcements is asked once, under the answer, whether to turn them back on (only their
    own request does)."""
    # What the first answer answered is shown again only in reply to the very next message.
    again, ctx.session.again = ctx.session.again, None
    replies = await _dispatch(ctx, again)
    if (ctx.contact.opted_out and not ctx.session.resume_asked and ctx.intent is not Intent.STOP
            and not ctx.erased):
        ctx.session.resume_asked = True
        replies.append(start.resume_question())
    return replies


async def _dispatch(ctx: Context, again: str | None = None) -> list[Reply]:
    inbound = ctx.inbound
    if inbound.kind is Kind.CHOICE:
        return await _choice(ctx, inbound.choice or "", again)
    if inbound.kind in (Kind.MEDIA, Kind.UNSUPPORTED):
        return await menu.unsupported(ctx)
    if inbound.kind is Kind.LOCATION:
        ctx.intent = Intent.INFO
        return await info.info(ctx)
    if inbound.kind is Kind.START:
        return await _start(ctx, (inbound.payload or "").strip())
    text = inbound.text.strip()
    if len(text) > MAX_TEXT and not await _long_text_expected(ctx):
        return await menu.too_long(ctx)
    if not text:
        ctx.intent = Intent.HELP
        return await menu.help_(ctx)
    if text.startswith("/"):
        name, _sep, argument = text[1:].partition(" ")
        name = name.split("@", 1)[0].lower()
        if name == "start":
            return await _start(ctx, argument.strip())
        command = router.commands.get(name)
        if command is not None and (not command.organizer
                                    or await organizers.is_organizer(ctx)):
            return await _command(ctx, name)
        return await menu.fallback(ctx)
    link_word = transfer.LINK_WORD.fullmatch(text) if inbound.channel != "web" else None
    if link_word:  # before any welcome: the person's language comes with them
        return await transfer.take(ctx, link_word.group(1))
    if _first_contact(ctx):
        answer = await _free_text(ctx, text, first=True)
        if answer is None:
            ctx.intent = Intent.WELCOME
        else:
            ctx.session.again = text
        return await _welcome_with(ctx, answer)
    return await _free_text(ctx, text, again=again) or await _nothing_understood(ctx)


async def _nothing_understood(ctx: Context) -> list[Reply]:
    ctx.intent = Intent.UNKNOWN
    return await menu.fallback(ctx)


def _flow_text(ctx: Context) -> FlowText | None:
    """What the person's current flow does with text, if they are in one."""
    state = ctx.flow
    return router.flows.get(state) if state is not None else None


async def _long_text_expected(ctx: Context) -> bool:
    """A comment is cut to its limit instead, and said so; a broadcast's text is refused with
    the limit of a broadcast."""
    flow = _flow_text(ctx)
    if flow is None or not flow.long_text:
        return False
    return not flow.organizer or await organizers.is_organizer(ctx)


def _first_contact(ctx: Context) -> bool:
    return ctx.contact.created and not ctx.session.language_prompted


async def _welcome_with(ctx: Context, answer: list[Reply] | None) -> list[Reply]:
    """A first contact gets the welcome, the answer to what they asked, and the language
    question last, so its buttons are the ones at hand."""
    welcome = await start.welcome(ctx)
    return welcome[:-1] + (answer or []) + welcome[-1:]


async def _free_text(ctx: Context, text: str, first: bool = False, again: str | None = None,
                     count: bool = True) -> list[Reply] | None:
    """Free text; None when it asks for nothing in particular (a greeting or a text not
    understood, on a first contact). In this order: the flow the person is in, organizer words,
    command words, language words, the few words a flow takes (a rating's digit), a
    cooperative code, a stand number; then what the understanding step makes of it. `again`:
    what the first answer answered, shown again when a language is named; `count`: whether
    the text is counted for the organizers (not when it is answered a second time)."""
    word = folded(text)
    # A question asked in doubt is answered by the next message, or no more.
    ctx.session.asked = None
    flow = _flow_text(ctx)
    if (flow is not None and flow.words is None and word not in WORDS
            and (not flow.organizer or await organizers.is_organizer(ctx))):
        if not flow.requests:
            ctx.intent = flow.intent
            return await flow.handler(ctx, text)
        request = await _request_instead(ctx, text)
        if request is not None:
            return request
        ctx.intent = flow.intent
        return await flow.handler(ctx, text)
    if word in ORGANIZER_WORDS and await organizers.is_organizer(ctx):
        return await _command(ctx, ORGANIZER_WORDS[word])
    if word in WORDS:
        return await _command(ctx, WORDS[word])
    if word in start.LANGUAGE_WORDS:
        ctx.intent = Intent.LANGUAGE
        return await _language(ctx, start.LANGUAGE_WORDS[word], again)
    if flow is not None and flow.words is not None and word in flow.words:
        ctx.intent = flow.intent
        return await flow.handler(ctx, word)
    coop_word = cooperatives.COOP_WORD.fullmatch(text.strip())
    if coop_word:
        ctx.intent = Intent.COOPERATIVE
        return await cooperatives.link(ctx, coop_word.group(1))
    number = _stand_number(text)
    if number is not None:
        ctx.intent = Intent.STAND
        return await stands.card(ctx, number)
    understood = await ctx.understand(text)
    if count:
        await _count(ctx, understood, text)
    if first and understood.intent in (Intent.WELCOME, Intent.UNKNOWN):
        ctx.intent = understood.intent
        ctx.understood = understood
        return None
    named = understood.entities.language
    if (understood.intent is Intent.LANGUAGE and again is not None
            and named in start.LANGUAGE_NAMES):  # "en arabe svp" under a first answer
        ctx.intent = Intent.LANGUAGE
        return await _language(ctx, named, again)
    if understood.in_doubt and understood.intent is not Intent.UNKNOWN:
        ctx.understood = understood
        ctx.text = text.strip()
        ctx.intent = Intent.UNKNOWN
        question = await talk.ask(ctx, text)
        if question:
            return question
    return await _answer(ctx, understood, text)


def _stand_number(text: str) -> str | None:
    """The stand number a whole message is (`A12`, `stand A12`, `رواق A12`), if it is one."""
    stand_word = stands.STAND_WORD.fullmatch(text.strip())
    return normalize_stand_number(stand_word.group(1) if stand_word else text)


async def _command(ctx: Context, name: str) -> list[Reply]:
    command = router.commands[name]
    ctx.intent = command.intent
    return await command.action(ctx)


async def _answer(ctx: Context, understood: Understanding, text: str) -> list[Reply]:
    """The answer of the feature that handles what the text was understood as."""
    ctx.understood = understood
    ctx.text = text.strip()
    ctx.intent = understood.intent
    return await router.intents[understood.intent](ctx)


async def _count(ctx: Context, understood: Understanding, text: str) -> None:
    """Count the text for the organizers (`tadamon report`, /stats): its intent, and the text
    itself (cleaned of personal data by the log) when it was not understood. Statistics only:
    a failure is logged, and the person is answered all the same."""
    question = text if understood.intent is Intent.UNKNOWN else None
    try:
        await ctx.reports.questions.record(
            ctx.fair.id, ctx.local_day(ctx.now), ctx.inbound.channel, ctx.language,
            understood.intent.value, question, ctx.now)
    except Exception:  # statistics never cost an answer
        log.exception("the %s question was not counted", understood.intent.value)


async def _request_instead(ctx: Context, text: str) -> list[Reply] | None:
    """While a comment is awaited: a stand number, or a short text understood surely as a
    request (the honey stands for "miel"), is answered as such and ends the wait; None for
    what is taken as the comment."""
    number = _stand_number(text)
    if number is not None:
        ctx.leave()
        ctx.intent = Intent.STAND
        return await stands.card(ctx, number)
    words = len(text.split())
    question = text.rstrip().endswith(_QUESTION_MARKS)
    if words > (QUESTION_WORDS if question else REQUEST_WORDS):
        return None
    if not question and not asks(text):  # "الفضة ديالهم زوينة": a remark, not a request
        return None
    understood = await ctx.understand(text)
    if (understood.intent in _COMMENT_LIKE or understood.in_doubt
            or understood.confidence < REQUEST_CONFIDENCE):
        return None
    ctx.leave()
    await _count(ctx, understood, text)
    return await _answer(ctx, understood, text)


async def _start(ctx: Context, payload: str) -> list[Reply]:
    """`/start`, or a deep link: stand_A12, ws_<id>, feedback."""
    kind, _sep, value = payload.partition("_")
    kind = kind.lower()
    ctx.intent = router.link_intents.get(kind, Intent.WELCOME)
    if kind == transfer.LINK_KIND and ctx.inbound.channel != "web":
        return await transfer.take(ctx, value) if value else await menu.invalid_link(ctx)
    if _first_contact(ctx):
        answer = await _payload(ctx, kind, value)
        if answer is not None and ctx.intent is not Intent.UNKNOWN:
            ctx.session.again = f"/start {payload}"
        return await _welcome_with(ctx, answer)
    if not payload and ctx.contact.opted_out:  # `/start` said again: announcements wanted
        ctx.intent = Intent.WELCOME
        return await start.resume(ctx)
    answer = await _payload(ctx, kind, value)
    if answer is not None:
        return answer
    ctx.intent = Intent.WELCOME
    return await start.greet(ctx)


async def _payload(ctx: Context, kind: str, value: str) -> list[Reply] | None:
    """What a deep link opens; None for a plain `/start`. A link can carry any text, so only a
    well-formed value is looked up (by the feature that declares the link), and nothing of any
    other is ever repeated."""
    link = router.links.get(kind)
    if link is not None and (answer := await link(ctx, value)) is not None:
        return answer
    if not kind and not value:
        ctx.intent = Intent.WELCOME
        return None
    ctx.intent = Intent.UNKNOWN
    return await menu.invalid_link(ctx)


async def _language(ctx: Context, language: str, again: str | None) -> list[Reply]:
    """The language chosen; right after a first answer in another language, that answer
    again in the new one (rather than the menu)."""
    if (again is None or language not in start.LANGUAGE_NAMES
            or language == ctx.language):
        return await start.set_language(ctx, language)
    said = await start.switch_language(ctx, language)
    if again.startswith("/start "):
        kind, _sep, value = again.removeprefix("/start ").partition("_")
        ctx.intent = router.link_intents.get(kind.lower(), Intent.WELCOME)
        answer = await _payload(ctx, kind.lower(), value)
    else:
        answer = await _free_text(ctx, again, count=False)
    if answer is None:
        return await start.set_language(ctx, language)
    return [said, *answer]


async def _choice(ctx: Context, choice: str, again: str | None = None) -> list[Reply]:
    """A tapped button; only ids we offered to this person are honoured, and global ones
    (their handlers check the person may use them)."""
    button = Button.unpack(choice)
    if button is None or not (button.is_global or choice in ctx.session.offered):
        return await menu.stale_choice(ctx)
    target = router.buttons.get(type(button))
    if target is None or (target.organizer and not await organizers.is_organizer(ctx)):
        return await menu.stale_choice(ctx)
    ctx.intent = target.intent
    if isinstance(button, start.Language):
        return await _language(ctx, button.language, again)
    return await target.handler(ctx, button)
