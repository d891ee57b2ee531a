"""Main menu, help and the helpful fallback; what is said to a stale button, a bad link, a
message too long or not text."""

from __future__ import annotations

from handlers.buttons import Button, Menu
from handlers.context import Context
from handlers.feature import Feature
from handlers.messages import Choice, Isolated, Local, Reply, When, _, reply
from handlers.seat_buttons import offer_choices
from handlers.understanding import Intent
from storage.models import RegistrationStatus

feature = Feature("menu", Intent.MENU)


class MenuItem(Button, prefix="m", is_global=True):
    """An entry of a menu: `ws`, `st`, `my`..., or a stand facet code (the router looks it up
    among the features' menu items)."""

    item: str


# Words channels draw around the choices: the button that opens a WhatsApp list, and the row
# that shows the rest of a long list.
LIST_BUTTON = _("Choose")
MORE_CHOICES = _("More")


def menu_choices(saved: bool = False) -> list[Choice]:
    """The main menu's entries; "My list" only for someone who saved a stand."""
    return [
        Choice(MenuItem("ws").pack(), _("Workshops")),
        Choice(MenuItem("my").pack(), _("My workshops")),
        Choice(MenuItem("st").pack(), _("Find a stand")),
        *([Choice(MenuItem("sv").pack(), _("My list"))] if saved else []),
        Choice(MenuItem("fb").pack(), _("Give feedback")),
        Choice(MenuItem("info").pack(), _("Practical information")),
        Choice(MenuItem("lang").pack(), _("Language")),
    ]


# The menu entry "Continue on WhatsApp / Telegram" (handlers/transfer.py answers it).
CONTINUE_ITEM = "app"


def continue_choice(ctx: Context) -> Choice | None:
    """On the web chat, when a messaging app is configured: continue there."""
    if ctx.inbound.channel != "web" or not ctx.apps:
        return None
    if "whatsapp" in ctx.apps and "telegram" in ctx.apps:
        label = _("Continue on WhatsApp or Telegram")
    elif "whatsapp" in ctx.apps:
        label = _("Continue on WhatsApp")
    else:
        label = _("Continue on Telegram")
    return Choice(MenuItem(CONTINUE_ITEM).pack(), label)


async def main_menu(ctx: Context) -> list[Choice]:
    """The main menu's entries for this person."""
    choices = menu_choices(saved=bool(await ctx.saved.stands(ctx.fair.id, ctx.contact.id)))
    app = continue_choice(ctx)
    return choices if app is None else [*choices, app]


async def news(ctx: Context) -> list[Reply]:
    """What the menu shows first: a seat offered to the person, with its buttons, or else the
    next workshop they are registered for; nothing when there is neither."""
    items = await ctx.registrations.mine(ctx.fair.id, ctx.contact.id)
    for item in items:
        if (item.status == RegistrationStatus.OFFERED and item.offered_until is not None
                and item.offered_until > ctx.now):
            return [reply(_("A seat is offered to you at {title}, {when}: accept it before "
                            "{until}.", title=Local(item.title),
                            when=When(item.starts_at, "day_time"),
                            until=When(item.offered_until, "day_time")),
                          choices=offer_choices(item.workshop_id))]
    for item in items:
        if item.status == RegistrationStatus.CONFIRMED and item.ends_at > ctx.now:
            return [reply(_("Your next workshop: {title}, {when}, {room}.",
                            title=Local(item.title), when=When(item.starts_at, "day_time"),
                            room=Local(item.room)))]
    return []


def back_to_menu() -> Choice:
    return Choice(Menu().pack(), _("Main menu"))


@feature.intent(Intent.MENU)
@feature.command("menu", description=_("Main menu"), words={
    "fr": ["menu"], "ar": ["القائمة", "قائمة", "المنيو"], "ary": ["lmenu"], "*": ["0"]})
async def menu(ctx: Context) -> list[Reply]:
    """The main menu, under a seat offered to the person or their next workshop."""
    ctx.leave()
    return [*await news(ctx),
            reply(_("What would you like to do?"), choices=await main_menu(ctx))]


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
        _("• my workshops: your registrations, your waiting lists and the seats offered to "
          "you"),
        _("• stands: type a stand number such as A12, or a name"),
        _("• my list: the stands you saved from their card"),
        _("• feedback: rate the fair"),
        _("• info: hours, venue and practical information"),
        _("• menu: the main menu · language: change language"),
        _("• stop: no more announcements (send resume to receive them again)"),
        *([_("• continue on WhatsApp or Telegram: your workshops and your list come with "
             "you, and the reminders reach you there")] if continue_choice(ctx) else []),
        choices=await main_menu(ctx),
    )]


async def fallback(ctx: Context) -> list[Reply]:
    """Said when nothing else understood the message: what the person can do instead."""
    return [reply(
        _("Sorry, I did not understand. Type a stand number (for example A12), a name, "
          "or choose below."),
        choices=await main_menu(ctx),
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
