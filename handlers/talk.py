"""Small talk, and what is said when a free text is not understood or is in doubt: one
question with buttons, the tap answering it."""

from __future__ import annotations

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature, folded
from handlers.menu import back_to_menu, menu_choices
from handlers.messages import Choice, Msg, Reply, _, reply
from handlers.understanding import Intent

feature = Feature("talk", Intent.SMALLTALK)


class Clarify(Button, prefix="why"):
    """The answer to "a stand or a workshop?": the intent the person meant by what they wrote
    (the text is kept in the session)."""

    intent: str


# Words that thank, and words that take leave, in the four forms of writing (folded).
THANKS = frozenset(folded(word) for word in (
    "merci", "mercii", "mrc", "thanks", "thank", "thx", "شكرا", "متشكرين", "shukran", "choukran",
    "chokran", "chukran", "shokran", "baraka", "barak", "بارك", "يجازيك", "tbarkallah",
    "تبارك", "mersi", "merssi"))
GOODBYES = frozenset(folded(word) for word in (
    "revoir", "bye", "goodbye", "ciao", "bslama", "beslama", "bsslama", "besslama", "بسلامة",
    "السلامة", "تصبح", "demain", "plus", "soiree", "journee", "night", "later"))

# What a button offering an intent says.
INTENT_LABELS: dict[Intent, Msg] = {
    Intent.STANDS: _("Stands"),
    Intent.STAND: _("A stand"),
    Intent.WORKSHOPS: _("Workshops"),
    Intent.WORKSHOP: _("A workshop"),
    Intent.MY_WORKSHOPS: _("My workshops"),
    Intent.MY_LIST: _("My list"),
    Intent.INFO: _("Practical information"),
    Intent.FEEDBACK: _("Give feedback"),
    Intent.LANGUAGE: _("Language"),
    Intent.HELP: _("Help"),
    Intent.PRIVACY: _("My data"),
    Intent.COOPERATIVE: _("Cooperatives"),
}
_STANDISH = (Intent.STAND, Intent.STANDS)
_WORKSHOPISH = (Intent.WORKSHOP, Intent.WORKSHOPS)


def _ways_on(intents: tuple[Intent, ...]) -> list[Choice]:
    """At most three buttons, one per intent that can be offered, each once."""
    seen: list[Intent] = []
    for intent in intents:
        if intent in INTENT_LABELS and intent not in seen:
            seen.append(intent)
    return [Choice(Clarify(intent.value).pack(), INTENT_LABELS[intent]) for intent in seen[:3]]


async def ask(ctx: Context, text: str) -> list[Reply]:
    """In doubt: one question, a button per likely intent; the tap answers it with the text."""
    understood = ctx.understood
    assert understood is not None
    choices = _ways_on((understood.intent, *understood.alternatives))
    if len(choices) < 2:
        return []
    ctx.session.asked = text
    meant = {understood.intent, *understood.alternatives}
    question = (_("A stand or a workshop?")
                if meant & set(_STANDISH) and meant & set(_WORKSHOPISH)
                else _("I am not sure what you mean. Is it one of these?"))
    return [reply(question, choices=[*choices, back_to_menu()])]


@feature.intent(Intent.SMALLTALK)
async def smalltalk(ctx: Context) -> list[Reply]:
    """Thanks, ok, goodbye, 👍: a short friendly answer."""
    words = set(folded(ctx.text).split())
    if words & THANKS:
        return [reply(_("You're welcome! Enjoy the fair."))]
    if words & GOODBYES:
        return [reply(_("Goodbye, and enjoy the fair!"))]
    return [reply(_("Great! Write to me whenever you need anything."))]


@feature.intent(Intent.UNKNOWN)
async def unknown(ctx: Context) -> list[Reply]:
    """Not understood: said so, with the likely ways on and the menu."""
    understood = ctx.understood
    choices = _ways_on(understood.alternatives) if understood is not None else []
    if choices and ctx.understood is not None:
        ctx.session.asked = ctx.text
        return [reply(_("Sorry, I did not understand. Did you mean one of these?"),
                      choices=[*choices, back_to_menu()])]
    return [reply(
        _("Sorry, I did not understand. Type a stand number (for example A12), a name, "
          "or choose below."),
        choices=menu_choices(),
    )]
