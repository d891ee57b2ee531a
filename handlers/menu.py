"""Main menu, help and the helpful fallback; what is said to a stale button, a bad link, a
message too long or not text."""

from __future__ import annotations

from handlers.buttons import Button, Menu
from handlers.context import Context
from handlers.feature import Feature
from handlers.messages import Choice, Isolated, Local, Reply, _, reply
from handlers.understanding import Intent

feature = Feature("menu", Intent.MENU)


class MenuItem(Button, prefix="m", is_global=True):
    """An entry of a menu: `ws`, `st`, `my`..., or a stand facet code (the router looks it up
    among the features' menu items)."""

    item: str


# Words channels draw around the choices: the button that opens a WhatsApp list, and the row
# that shows the rest of a long list.
LIST_BUTTON = _("Choose")
MORE_CHOICES = _("More")


def menu_choices() -> list[Choice]:
    return [
        Choice(MenuItem("ws").pack(), _("Workshops")),
        Choice(MenuItem("st").pack(), _("Find a stand")),
        Choice(MenuItem("fb").pack(), _("Give feedback")),
        Choice(MenuItem("info").pack(), _("Practical information")),
        Choice(MenuItem("lang").pack(), _("Language")),
    ]


def back_to_menu() -> Choice:
    return Choice(Menu().pack(), _("Main menu"))


@feature.intent(Intent.MENU)
@feature.command("menu", description=_("Main menu"), words={
    "fr": ["menu"], "ar": ["القائمة", "قائمة", "المنيو"], "ary": ["lmenu"], "*": ["0"]})
async def menu(ctx: Context) -> list[Reply]:
    """The main menu."""
    ctx.leave()
    return [reply(_("What would you like to do?"), choices=menu_choices())]


@feature.button(Menu)
async def _menu_button(ctx: Context, button: Menu) -> list[Reply]:
    return await menu(ctx)


@feature.intent(Intent.HELP)
@feature.command("help", description=_("Help"), intent=Intent.HELP, words={
    "en": ["help"], "fr": ["aide"], "ar": ["مساعدة", "المساعدة", "عاوني"], "ary": ["3awni"],
    "*": ["?"]})
async def help_(ctx: Context) -> list[Reply]:
    """What the bot understands, in the person's language."""
    ctx.leave()
    return [reply(
        _("I can help you at {fair}:", fair=Local(ctx.fair.name)),
        _("• workshops: the training programme and seats left"),
        _("• stands: type a stand number such as A12, or a name"),
        _("• feedback: rate the fair"),
        _("• info: hours, venue and practical information"),
        _("• menu: the main menu · language: change language"),
        _("• stop: no more announcements (write again to resume)"),
        choices=menu_choices(),
    )]


async def fallback(ctx: Context) -> list[Reply]:
    """Said when nothing else understood the message: what the person can do instead."""
    return [reply(
        _("Sorry, I did not understand. Type a stand number (for example A12), a name, "
          "or choose below."),
        choices=menu_choices(),
    )]


async def unsupported(ctx: Context) -> list[Reply]:
    """Stickers, voice notes, photos: say what works instead."""
    return [reply(_("I can only read text messages. Please type your question or choose below."),
                  choices=menu_choices())]


def private_chat_only(link: str) -> Reply:
    """Said once in a group chat: the bot answers in private conversations only."""
    if link:
        return reply(_("I answer in private conversations only. Write to me here: {link}",
                       link=Isolated(link)))
    return reply(_("I answer in private conversations only. Please write to me directly."))


async def too_long(ctx: Context) -> list[Reply]:
    return [reply(_("Your message is too long. Please write a shorter one."),
                  choices=[back_to_menu()])]


async def invalid_link(ctx: Context) -> list[Reply]:
    """A deep link we cannot read (cut, mistyped or forged): said without repeating it."""
    return [reply(_("This link is not valid. Here is the menu."), choices=menu_choices())]


async def stale_choice(ctx: Context) -> list[Reply]:
    """A button that was not offered to this person (old, or forged)."""
    return [reply(_("This button is no longer valid. Here is the menu."),
                  choices=menu_choices())]
